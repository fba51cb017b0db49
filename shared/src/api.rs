//! The HTTP API's bodies: the hello response and the error body in API Management's shape.

use serde::{Deserialize, Serialize};

/// `GET /api/hello` as JSON: the seed's greeting plus who called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HelloResponse {
    /// `Hello World, time and date are <date and time>` — the seed function's text, with the
    /// `name` query parameter in place of `World` when one was given.
    pub message: String,
    /// Who the validated token says called.
    pub caller: Caller,
    /// Server time of the answer, RFC 3339 in UTC.
    pub time: String,
}

/// The identity behind a call, as the hello function saw it after validating the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Caller {
    /// `name` claim, when the token has one (user tokens do, client-credential tokens do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `sub` claim: the user's object id, or the calling app for client credentials.
    pub subject: String,
    /// Delegated permissions (`scp`), empty for app tokens.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Application permissions (`roles`), empty for user tokens.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Error body in API Management's shape, e.g.
/// `{"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."}`.
///
/// The gateway and the function answer every error with it, so the SPA has one thing to parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub status_code: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status_code: u16, message: impl Into<String>) -> Self {
        Self {
            status_code,
            message: message.into(),
        }
    }

    /// APIM's validate-jwt failure, with the seed's message.
    pub fn unauthorized() -> Self {
        Self::new(401, messages::UNAUTHORIZED)
    }

    /// APIM's rate-limit-by-key failure.
    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        Self::new(429, messages::rate_limited(retry_after_seconds))
    }
}

/// `GET /api/hello?name=`: whom the greeting names. The gateway validates it from the OpenAPI
/// document's [`PATTERN`](greeting_name::PATTERN); the function checks it again with
/// [`is_valid`](greeting_name::is_valid) (defence in depth, as for the token), and a test keeps
/// the two the same rule.
pub mod greeting_name {
    /// The query parameter's name.
    pub const PARAMETER: &str = "name";
    pub const MAX_CHARS: usize = 64;
    /// JSON Schema `pattern`: ASCII letters and digits, space, `-` and `'` (ASCII so that every
    /// regex dialect on the way — APIM's .NET, the validators', the browser's — reads it alike).
    /// The length is the schema's `minLength`/`maxLength`: 1 to [`MAX_CHARS`].
    pub const PATTERN: &str = "^[A-Za-z0-9 '-]+$";

    pub fn is_valid(name: &str) -> bool {
        (1..=MAX_CHARS).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" '-".contains(&b))
    }
}

/// The exact texts API Management answers with; the SPA and the tests rely on them.
pub mod messages {
    pub const UNAUTHORIZED: &str = "Unauthorized. Access token is missing or invalid.";

    pub fn rate_limited(retry_after_seconds: u64) -> String {
        format!("Rate limit is exceeded. Try again in {retry_after_seconds} seconds.")
    }

    pub const SUBSCRIPTION_KEY_MISSING: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
    pub const SUBSCRIPTION_KEY_INVALID: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

    /// The renewal time as .NET's `TimeSpan` prints it (APIM's gateway is .NET): `HH:MM:SS`,
    /// with `d.` in front past a day.
    pub fn quota_exceeded(renews_in_seconds: u64) -> String {
        let (days, rest) = (renews_in_seconds / 86_400, renews_in_seconds % 86_400);
        let clock = format!(
            "{:02}:{:02}:{:02}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        );
        let span = if days > 0 {
            format!("{days}.{clock}")
        } else {
            clock
        };
        format!("Out of call volume quota. Quota will be replenished in {span}.")
    }

    /// APIM validate-parameters' public message for the `name` parameter.
    pub fn invalid_greeting_name() -> String {
        format!(
            "The value of the query parameter {} does not conform to the definition.",
            super::greeting_name::PARAMETER
        )
    }

    pub fn ip_denied(ip: &str) -> String {
        format!("Caller IP address {ip} is not allowed. Access denied.")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_apim_field_names() {
        let json = serde_json::to_value(ApiError::unauthorized()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."})
        );
    }

    #[test]
    fn rate_limit_message_matches_apim() {
        assert_eq!(
            ApiError::rate_limited(42).message,
            "Rate limit is exceeded. Try again in 42 seconds."
        );
    }

    #[test]
    fn quota_message_matches_apim() {
        assert_eq!(
            messages::quota_exceeded(3_599),
            "Out of call volume quota. Quota will be replenished in 00:59:59."
        );
        assert_eq!(
            messages::quota_exceeded(86_400 + 3_661),
            "Out of call volume quota. Quota will be replenished in 1.01:01:01."
        );
    }

    #[test]
    fn greeting_names_are_letters_digits_space_hyphen_apostrophe() {
        use greeting_name::is_valid;
        for good in ["Ada", "Mary-Jane O'Neil", "R2D2", &"a".repeat(64)] {
            assert!(is_valid(good), "{good}");
        }
        for bad in ["", "Ada!", "<b>", "Zoë", "tab\there", &"a".repeat(65)] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn hello_round_trips_and_omits_missing_name() {
        let hello = HelloResponse {
            message: "Hello World, time and date are 2026-11-23 12:00:00".into(),
            caller: Caller {
                name: None,
                subject: "app".into(),
                scopes: vec![],
                roles: vec!["access:test-api".into()],
            },
            time: "2026-11-23T12:00:00Z".into(),
        };
        let text = serde_json::to_string(&hello).unwrap();
        assert!(!text.contains("\"name\""));
        assert_eq!(serde_json::from_str::<HelloResponse>(&text).unwrap(), hello);
    }
}
