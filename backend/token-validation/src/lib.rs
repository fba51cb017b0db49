//! Validates bearer tokens from an OpenID Connect issuer: discovery, JWKS cache, hardened JWT checks, typed principal.
