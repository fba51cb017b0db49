//! Test support: an in-test OpenID issuer, free ports, process spawning and readiness waits.
