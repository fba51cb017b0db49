//! Why a token was refused, and how to say so in RFC 6750's terms.

use http::{HeaderValue, StatusCode};

/// Every way a bearer token can be refused. The `Display` text never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("no bearer token was sent")]
    MissingToken,
    #[error("the Authorization header is not a Bearer credential")]
    NotBearer,
    #[error("the token is longer than {max} bytes")]
    TooLarge { max: usize },
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("the token header carries `{0}`, which is never accepted")]
    ForbiddenHeader(&'static str),
    #[error("the token header marks an extension as critical")]
    UnsupportedCritical,
    #[error("the token's signing key is not published by the issuer")]
    UnknownKey,
    /// The issuer's keys were never loaded (IdP down since start): nothing can be verified.
    /// Callers may answer 503 with `Retry-After`.
    #[error("the issuer's signing keys are not available yet")]
    KeysUnavailable,
    #[error("the token's signature is invalid")]
    InvalidSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    InvalidIssuer,
    #[error("the token's audience is not accepted")]
    InvalidAudience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token's `{0}` claim has the wrong type")]
    InvalidClaim(&'static str),
    #[error("an ID token is not an access token")]
    IdToken,
    /// The token is valid but fails a [`RequiredClaim`](crate::RequiredClaim) rule.
    #[error("the token lacks a required value of the `{claim}` claim")]
    RequiredClaim { claim: String },
}

impl ValidationError {
    /// The `error_description` text: the `Display` text restricted to RFC 6750's character set.
    pub fn description(&self) -> String {
        let text = self.to_string();
        let mut chars = text.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase());
        first
            .into_iter()
            .chain(chars)
            .map(|c| match c {
                ' ' | '!' | '#'..='[' | ']'..='~' => c,
                _ => '?',
            })
            .collect()
    }

    /// The RFC 6750 error code, or `None` when no credential was sent at all (§3.1: then no code).
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken => None,
            Self::NotBearer => Some("invalid_request"),
            Self::RequiredClaim { .. } => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// `WWW-Authenticate: Bearer error="invalid_token", error_description="…"`.
    pub fn www_authenticate(&self) -> HeaderValue {
        let value = match self.error_code() {
            None => "Bearer".to_owned(),
            Some(code) => format!(
                "Bearer error=\"{code}\", error_description=\"{}\"",
                self.description()
            ),
        };
        // `description` keeps to visible ASCII and spaces, so this cannot fail; stay safe anyway.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// The status RFC 6750 suggests: 401, 403 for a failed claims rule, 503 when keys were never loaded.
    /// (API Management answers 401 for every validate-jwt failure; the gateway may do so.)
    pub fn status(&self) -> StatusCode {
        match self {
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequiredClaim { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// For [`KeysUnavailable`](Self::KeysUnavailable): how long a client should wait (`Retry-After`).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        matches!(self, Self::KeysUnavailable).then_some(5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn www_authenticate_follows_rfc_6750() {
        assert_eq!(
            ValidationError::Expired.www_authenticate(),
            "Bearer error=\"invalid_token\", error_description=\"The token has expired\""
        );
        assert_eq!(ValidationError::MissingToken.www_authenticate(), "Bearer");
        let scope = ValidationError::RequiredClaim {
            claim: "scp\"\\é".into(),
        };
        assert_eq!(
            scope.www_authenticate(),
            "Bearer error=\"insufficient_scope\", error_description=\"The token lacks a required value of the `scp???` claim\""
        );
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            ValidationError::KeysUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
