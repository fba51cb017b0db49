//! The OAuth 2.0 values the provider takes in, keeps and hands out, each a type of its own so a
//! redirect URI cannot be passed where a client id is meant, a scope set is parsed once, and a
//! code or refresh token never reaches a log (`Debug` is redacted, as oauth2-rs's
//! `new_secret_type!`). The SQLite store keeps them as text; [`crate::store`] converts at its
//! boundary.
//!
//! Own types rather than the oauth2 crate's: that crate is a client's, so its
//! `PkceCodeChallenge` can only be computed from a verifier (never taken from a request), its
//! `Scope` is one scope, not a set, and it would bring chrono, rand 0.8 and thiserror 1 into the
//! server's build.

use std::fmt;
use std::ops::Deref;

use crate::{pkce, random_token, secret_hash};

/// A newtype over `String` for a public protocol value: compared exactly, shown as is.
macro_rules! text_type {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A registered application's `client_id`, as its registration spells it.
    ClientId
);

text_type!(
    /// A redirect URI a registration lists, byte for byte (never normalised: RFC 6749 §3.1.2.3
    /// compares them as strings).
    RedirectUri
);

http_serve::secret_type!(
    /// An authorization code (RFC 6749 §4.1.2); the store keeps only its hash.
    pub struct AuthorizationCode
);

http_serve::secret_type!(
    /// A refresh token (RFC 6749 §6); the store keeps only its hash.
    pub struct RefreshToken
);

http_serve::secret_type!(
    /// The PKCE `code_verifier` a client redeems its code with (RFC 7636 §4.5).
    pub struct CodeVerifier
);

http_serve::secret_type!(
    /// The client secret a token request presents (RFC 6749 §2.3.1), compared with the
    /// registered one and dropped.
    pub struct PresentedSecret
);

impl AuthorizationCode {
    /// A fresh code: 32 random bytes.
    pub fn random() -> Self {
        Self::new(random_token())
    }

    /// What the store keys it by.
    pub fn hash(&self) -> String {
        secret_hash(self.secret())
    }
}

impl RefreshToken {
    /// A fresh refresh token: 32 random bytes.
    pub fn random() -> Self {
        Self::new(random_token())
    }

    /// What the store keys it by.
    pub fn hash(&self) -> String {
        secret_hash(self.secret())
    }
}

/// An S256 code challenge (RFC 7636 §4.2): the base64url SHA-256 of a verifier, 43 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// `None` unless `value` has the shape of an S256 challenge.
    pub fn parse(value: &str) -> Option<Self> {
        pkce::valid_challenge(value).then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is a well-formed verifier whose S256 is this challenge.
    pub fn verify(&self, verifier: &CodeVerifier) -> bool {
        pkce::verify(verifier.secret(), &self.0)
    }
}

/// A set of scopes in the order first named, each once: what a grant carries and what the token
/// response's `scope` lists (space-separated, RFC 6749 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// The words of a space-separated list, repeats dropped.
    pub fn parse(list: &str) -> Self {
        let mut scopes = Self::default();
        for scope in list.split_whitespace() {
            scopes.insert(scope);
        }
        scopes
    }

    /// Adds `scope` unless it is already in the set.
    pub fn insert(&mut self, scope: &str) {
        if !self.has(scope) {
            self.0.push(scope.to_owned());
        }
    }

    pub fn has(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The space-separated form.
    pub fn joined(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_and_refresh_tokens_never_show_in_debug() {
        let code = AuthorizationCode::new("the-code".into());
        let refresh = RefreshToken::new("the-refresh-token".into());
        let verifier = CodeVerifier::new("the-verifier".into());
        let secret = PresentedSecret::new("the-secret".into());
        let shown = format!("{code:?} {refresh:?} {verifier:?} {secret:?}");
        assert!(!shown.contains("the-"), "{shown}");
        assert_eq!(code.hash(), secret_hash("the-code"));
        assert_ne!(AuthorizationCode::random(), AuthorizationCode::random());
    }

    #[test]
    fn scopes_are_a_set_in_request_order() {
        let scopes = Scopes::parse("  openid offline_access openid  api ");
        assert_eq!(scopes.joined(), "openid offline_access api");
        assert!(scopes.has("api") && !scopes.has("ap"));
        assert!(Scopes::parse("   ").is_empty());
        assert_eq!(Scopes::parse(&scopes.joined()), scopes);
    }

    #[test]
    fn a_challenge_has_the_s256_shape_and_checks_its_verifier() {
        assert!(CodeChallenge::parse("too-short").is_none());
        assert!(CodeChallenge::parse(&"a".repeat(44)).is_none());
        assert!(CodeChallenge::parse(&format!("{}+", "a".repeat(42))).is_none());
        // RFC 7636 appendix B.
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(challenge.verify(&CodeVerifier::new(verifier.into())));
        assert!(!challenge.verify(&CodeVerifier::new(verifier.replace('d', "e"))));
    }
}
