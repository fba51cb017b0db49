//! The JOSE header, read by us before jsonwebtoken sees the token, because jsonwebtoken
//! ignores `crit` and silently tolerates key-pointing parameters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::ValidationError;

/// The only algorithm accepted: what B2C's JWKS publishes. Never `none`, never HS*.
pub(crate) const ACCEPTED_ALG: &str = "RS256";

/// Parameters that point at or carry a key. Keys come only from the issuer's JWKS, so a token
/// that tries to name its own key is refused outright rather than silently ignored.
const KEY_POINTERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// Longest `kid` looked up; longer ones are simply unknown.
const MAX_KID_BYTES: usize = 256;

/// Checks the header of a compact JWS and returns its `kid`.
pub(crate) fn inspect(token: &str) -> Result<String, ValidationError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ValidationError::Malformed("a signed token has three parts"));
    };
    if header.is_empty() || claims.is_empty() {
        return Err(ValidationError::Malformed("empty header or claims"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| ValidationError::Malformed("the header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| ValidationError::Malformed("the header is not a JSON object"))?;

    match header.get("alg") {
        Some(Value::String(alg)) if alg == ACCEPTED_ALG => {}
        _ => return Err(ValidationError::UnsupportedAlgorithm),
    }
    if signature.is_empty() {
        return Err(ValidationError::Malformed("the token is not signed"));
    }
    if let Some(name) = KEY_POINTERS.iter().find(|name| header.contains_key(**name)) {
        return Err(ValidationError::ForbiddenHeader(name));
    }
    // We implement no JWS extension, so any critical one must be refused (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(ValidationError::UnsupportedCritical);
    }
    if header.contains_key("zip") {
        return Err(ValidationError::ForbiddenHeader("zip"));
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid,
        Some(Value::String(_)) | None => {
            return Err(ValidationError::Malformed("the header has no `kid`"));
        }
        Some(_) => {
            return Err(ValidationError::Malformed(
                "the header's `kid` is not a string",
            ));
        }
    };
    if kid.len() > MAX_KID_BYTES {
        return Err(ValidationError::UnknownKey);
    }
    Ok(kid.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn accepts_rs256_with_a_kid() {
        assert_eq!(
            inspect(&token(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#)),
            Ok("k1".into())
        );
    }

    #[test]
    fn refuses_other_algorithms_and_key_pointers() {
        for (header, expected) in [
            (
                r#"{"alg":"none","kid":"k"}"#,
                ValidationError::UnsupportedAlgorithm,
            ),
            (
                r#"{"alg":"HS256","kid":"k"}"#,
                ValidationError::UnsupportedAlgorithm,
            ),
            (
                r#"{"alg":"rs256","kid":"k"}"#,
                ValidationError::UnsupportedAlgorithm,
            ),
            (r#"{"kid":"k"}"#, ValidationError::UnsupportedAlgorithm),
            (
                r#"{"alg":"RS256","kid":"k","jku":"http://x"}"#,
                ValidationError::ForbiddenHeader("jku"),
            ),
            (
                r#"{"alg":"RS256","kid":"k","x5u":"http://x"}"#,
                ValidationError::ForbiddenHeader("x5u"),
            ),
            (
                r#"{"alg":"RS256","kid":"k","jwk":{}}"#,
                ValidationError::ForbiddenHeader("jwk"),
            ),
            (
                r#"{"alg":"RS256","kid":"k","x5c":[]}"#,
                ValidationError::ForbiddenHeader("x5c"),
            ),
            (
                r#"{"alg":"RS256","kid":"k","crit":["exp"]}"#,
                ValidationError::UnsupportedCritical,
            ),
            (
                r#"{"alg":"RS256","kid":"k","zip":"DEF"}"#,
                ValidationError::ForbiddenHeader("zip"),
            ),
        ] {
            assert_eq!(inspect(&token(header)), Err(expected), "{header}");
        }
    }

    #[test]
    fn refuses_malformed_tokens_without_panicking() {
        for bad in [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            "%%%.e30.c2ln",
            "e30.e30.c2ln",
            "bnVsbA.e30.c2ln",
        ] {
            assert!(inspect(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            inspect(&format!(
                "{}.e30.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#)
            )),
            Err(ValidationError::Malformed(_))
        ));
        assert!(matches!(
            inspect(&token(r#"{"alg":"RS256","kid":7}"#)),
            Err(ValidationError::Malformed(_))
        ));
        assert!(matches!(
            inspect(&token(r#"{"alg":"RS256"}"#)),
            Err(ValidationError::Malformed(_))
        ));
    }
}
