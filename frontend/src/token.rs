//! The token endpoint's answers (RFC 6749 §5.1 and §5.2).

use oauth2::{AccessToken, RefreshToken};
use serde::Deserialize;

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
    /// Seconds; B2C sends a number, some providers a string.
    #[serde(default)]
    pub expires_in: Option<Seconds>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    pub fn get(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }
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
        assert_eq!(ok.expires_in.unwrap().get(), Some(3600));
        let text = parse_token_response(200, r#"{"access_token":"at","expires_in":"60"}"#).unwrap();
        assert_eq!(text.expires_in.unwrap().get(), Some(60));
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
