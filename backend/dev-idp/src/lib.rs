//! A local OpenID Connect provider shaped like Azure AD B2C, for development and tests.
