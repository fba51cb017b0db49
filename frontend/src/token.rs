//! The token endpoint's answers (RFC 6749 §5.1 and §5.2).

use oauth2::{AccessToken, RefreshToken};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// A successful token response; B2C adds `id_token` (OpenID Connect) and the granted `scope`.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// Seconds; B2C sends a number, some providers a string. `None` if absent or unreadable.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<u64>,
}

/// A number or a numeric string (a visitor: `#[serde(untagged)]` would cost KBs of wasm).
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Seconds;
    impl Visitor<'_> for Seconds {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of seconds")
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            Ok(Some(value))
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(value.trim().parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Seconds)
}

#[derive(Debug, Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Reads the token endpoint's answer: the tokens, or a sentence saying why not.
pub fn parse_token_response(status: u16, body: &str) -> Result<TokenResponse, String> {
    if (200..300).contains(&status) {
        let response: TokenResponse = serde_json::from_str(body)
            .map_err(|_| "the token endpoint's answer could not be read".to_owned())?;
        let bearer = response
            .token_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
        if !bearer {
            return Err("the token endpoint did not issue a bearer token".into());
        }
        return Ok(response);
    }
    match serde_json::from_str::<TokenErrorBody>(body) {
        Ok(err) => Err(match err.error_description {
            Some(description) => {
                format!("the token endpoint refused: {} ({description})", err.error)
            }
            None => format!("the token endpoint refused: {}", err.error),
        }),
        Err(_) => Err(format!("the token endpoint answered HTTP {status}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_b2c_token_responses() {
        let ok = parse_token_response(
            200,
            r#"{"access_token":"at","id_token":"it","token_type":"Bearer","not_before":1,"expires_in":3600,"refresh_token":"rt","scope":"openid"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token.secret(), "at");
        assert_eq!(ok.refresh_token.unwrap().secret(), "rt");
        assert_eq!(ok.expires_in, Some(3600));
        let text = parse_token_response(200, r#"{"access_token":"at","expires_in":"60"}"#).unwrap();
        assert_eq!(text.expires_in, Some(60));
        let null = parse_token_response(200, r#"{"access_token":"at","expires_in":null}"#).unwrap();
        assert_eq!(null.expires_in, None);
    }

    #[test]
    fn refusals_become_sentences() {
        let err = parse_token_response(
            400,
            r#"{"error":"invalid_grant","error_description":"AADB2C90080: The provided grant has expired."}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "the token endpoint refused: invalid_grant (AADB2C90080: The provided grant has expired.)"
        );
        assert_eq!(
            parse_token_response(502, "<html>").unwrap_err(),
            "the token endpoint answered HTTP 502"
        );
        assert!(parse_token_response(200, r#"{"access_token":"at","token_type":"mac"}"#).is_err());
        assert!(parse_token_response(200, "{}").is_err());
    }
}
