//! The token endpoint's answers (RFC 6749 §5.1 and §5.2).

use crate::json::Json;
use oauth2::{AccessToken, RefreshToken};

/// A successful token response; B2C adds `id_token` (OpenID Connect) and the granted `scope`.
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub token_type: Option<String>,
    pub id_token: Option<String>,
    pub refresh_token: Option<RefreshToken>,
    /// Seconds; B2C sends a number, some providers a string. `None` if absent or unreadable.
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    fn from_json(doc: &Json) -> Result<Self, String> {
        let (access_token, token_type, id_token, refresh_token) = (
            doc.string("access_token")?,
            doc.optional_string("token_type")?,
            doc.optional_string("id_token")?,
            doc.optional_string("refresh_token")?,
        );
        Ok(Self {
            access_token: AccessToken::new(access_token.to_owned()),
            token_type: token_type.map(str::to_owned),
            id_token: id_token.map(str::to_owned),
            refresh_token: refresh_token.map(|t| RefreshToken::new(t.to_owned())),
            expires_in: doc.get("expires_in").and_then(seconds),
        })
    }
}

/// A number or a numeric string.
fn seconds(value: &Json) -> Option<u64> {
    match value {
        Json::String(text) => text.trim().parse().ok(),
        other => other.as_u64(),
    }
}

/// Reads the token endpoint's answer: the tokens, or a sentence saying why not.
pub fn parse_token_response(status: u16, body: &str) -> Result<TokenResponse, String> {
    let doc = Json::parse(body);
    if (200..300).contains(&status) {
        let response = doc
            .as_ref()
            .and_then(|doc| TokenResponse::from_json(doc).ok())
            .ok_or_else(|| "the token endpoint's answer could not be read".to_owned())?;
        let bearer = response
            .token_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
        if !bearer {
            return Err("the token endpoint did not issue a bearer token".into());
        }
        return Ok(response);
    }
    let error = doc.as_ref().and_then(|doc| {
        let error = doc.string("error").ok()?;
        let description = doc.optional_string("error_description").ok()?;
        Some((error.to_owned(), description.map(str::to_owned)))
    });
    Err(match error {
        Some((error, Some(description))) => {
            format!("the token endpoint refused: {error} ({description})")
        }
        Some((error, None)) => format!("the token endpoint refused: {error}"),
        None => format!("the token endpoint answered HTTP {status}"),
    })
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
        assert!(parse_token_response(200, r#"{"access_token":7}"#).is_err());
        assert!(parse_token_response(200, "[]").is_err());
    }
}
