//! What the card header says, and in which colour: the API's answers, network failures and the
//! identity provider's errors, each turned into one sentence of plain text.

use crate::json::Json;
use shared::api::messages;

/// The header's colour; `class()` is the CSS class the e2e suite looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Neutral,
    Success,
    Warning,
    Danger,
}

impl Tone {
    pub fn class(self) -> &'static str {
        match self {
            Self::Neutral => "",
            Self::Success => "status-success",
            Self::Warning => "status-warning",
            Self::Danger => "status-danger",
        }
    }

    /// The card header's whole `class` attribute (static strings: no formatting in the wasm).
    pub fn header_class(self) -> &'static str {
        match self {
            Self::Neutral => "card-header",
            Self::Success => "card-header status-success",
            Self::Warning => "card-header status-warning",
            Self::Danger => "card-header status-danger",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub tone: Tone,
    pub text: String,
}

impl Status {
    pub fn neutral(text: impl Into<String>) -> Self {
        Self {
            tone: Tone::Neutral,
            text: text.into(),
        }
    }

    pub fn danger(text: impl Into<String>) -> Self {
        Self {
            tone: Tone::Danger,
            text: text.into(),
        }
    }
}

pub const SIGNED_OUT: &str = "Please sign in to continue";
pub const CALLING: &str = "Calling backend ...";
pub const SIGNED_OUT_ELSEWHERE: &str = "You signed out in another tab. Please sign in to continue";
pub const PROFILE_SIGNED_OUT: &str = "Please sign in to see your profile";

pub fn welcome(name: &str) -> Status {
    Status::neutral(format!("Welcome, {name}"))
}

/// A 2xx from the API: the `message` of a JSON `shared::HelloResponse`, else the body as text
/// (the seed's function answers `text/plain`).
pub fn api_success(content_type: Option<&str>, body: &str) -> Status {
    let is_json = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    let text = is_json
        .then(|| Some(Json::parse(body)?.string("message").ok()?.to_owned()))
        .flatten()
        .unwrap_or_else(|| body.trim().to_owned());
    Status {
        tone: Tone::Success,
        text,
    }
}

/// An HTTP error from the gateway or the function: `Error: {status} {message}` with APIM's
/// `message`; without an APIM body, a 429 still reads as APIM's rate-limit sentence.
pub fn api_failure(status: u16, retry_after: Option<&str>, body: &str) -> Status {
    let message = apim_message(body).unwrap_or_else(|| fallback_message(status, retry_after, body));
    Status {
        tone: Tone::Warning,
        text: format!("Error: {status} {message}"),
    }
}

/// The `message` of a `shared::ApiError` body (`{"statusCode": …, "message": …}`).
fn apim_message(body: &str) -> Option<String> {
    let doc = Json::parse(body)?;
    doc.get("statusCode")?.as_u64()?;
    doc.string("message").ok().map(str::to_owned)
}

fn fallback_message(status: u16, retry_after: Option<&str>, body: &str) -> String {
    if status == 429 {
        let seconds = retry_after.and_then(|s| s.trim().parse::<u64>().ok());
        return seconds.map_or_else(
            || "Rate limit is exceeded.".to_owned(),
            messages::rate_limited,
        );
    }
    let body = body.trim();
    if body.is_empty() || body.len() > 200 || body.starts_with('<') {
        reason(status).to_owned()
    } else {
        body.to_owned()
    }
}

/// The request never got an HTTP answer: network down, DNS, or CORS refused by the browser.
pub fn network_failure(detail: &str) -> Status {
    Status::danger(format!("Error: {detail}"))
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Request failed",
    }
}

/// The identity provider's `error`/`error_description` on the redirect URI, in plain words.
/// B2C puts its `AADB2Cnnnnn` code at the start of the description.
pub fn idp_error_text(error: &str, description: Option<&str>) -> String {
    let description = description.unwrap_or_default().trim();
    let code = description.split(':').next().unwrap_or_default().trim();
    match code {
        "AADB2C90118" => {
            "You chose \"Forgot your password?\". Password reset is not offered by this app; \
                          please contact your administrator, or sign in again."
                .to_owned()
        }
        "AADB2C90091" => {
            "Sign-in was cancelled. You can sign in again whenever you are ready.".to_owned()
        }
        _ if error == "access_denied" && description.is_empty() => {
            "Sign-in was refused by the identity provider. Please try again.".to_owned()
        }
        _ if description.is_empty() => format!("Sign-in failed ({error}). Please try again."),
        _ => format!("Sign-in failed: {description}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_json_shows_its_message_and_text_shows_as_is() {
        let body = r#"{"message":"Hello World, time and date are 23/11/2026 12:00:00","caller":{"subject":"s"},"time":"2026-11-23T12:00:00Z"}"#;
        let status = api_success(Some("application/json; charset=utf-8"), body);
        assert_eq!(status.tone, Tone::Success);
        assert_eq!(
            status.text,
            "Hello World, time and date are 23/11/2026 12:00:00"
        );
        let text = api_success(Some("text/plain"), "Hello World, time and date are now\n");
        assert_eq!(text.text, "Hello World, time and date are now");
        // Markup stays text: the view never renders it as HTML.
        assert_eq!(api_success(None, "<b>hi</b>").text, "<b>hi</b>");
    }

    #[test]
    fn apim_errors_read_error_status_message() {
        let unauthorized = api_failure(
            401,
            None,
            r#"{"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}"#,
        );
        assert_eq!(unauthorized.tone, Tone::Warning);
        assert_eq!(
            unauthorized.text,
            "Error: 401 Unauthorized. Access token is missing or invalid."
        );
        let limited = api_failure(
            429,
            Some("42"),
            r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 42 seconds."}"#,
        );
        assert_eq!(
            limited.text,
            "Error: 429 Rate limit is exceeded. Try again in 42 seconds."
        );
        assert_eq!(limited.tone.class(), "status-warning");
        for tone in [Tone::Neutral, Tone::Success, Tone::Warning, Tone::Danger] {
            let classes: Vec<&str> = tone.header_class().split(' ').collect();
            assert_eq!(classes[0], "card-header");
            assert_eq!(classes.get(1).copied().unwrap_or(""), tone.class());
        }
    }

    #[test]
    fn errors_without_an_apim_body_still_say_something_useful() {
        assert_eq!(
            api_failure(429, Some("17"), "").text,
            "Error: 429 Rate limit is exceeded. Try again in 17 seconds."
        );
        assert_eq!(
            api_failure(502, None, "<html>bad</html>").text,
            "Error: 502 Bad Gateway"
        );
        assert_eq!(
            api_failure(403, None, "Forbidden by policy").text,
            "Error: 403 Forbidden by policy"
        );
    }

    #[test]
    fn network_failures_are_red() {
        let status = network_failure("TypeError: Failed to fetch");
        assert_eq!(status.tone.class(), "status-danger");
        assert_eq!(status.text, "Error: TypeError: Failed to fetch");
    }

    #[test]
    fn b2c_errors_become_plain_words() {
        let forgot = idp_error_text(
            "access_denied",
            Some("AADB2C90118: The user has forgotten their password.\r\nCorrelation ID: 1"),
        );
        assert!(forgot.contains("Forgot your password"), "{forgot}");
        let cancelled = idp_error_text(
            "access_denied",
            Some("AADB2C90091: The user has cancelled entering self-asserted information."),
        );
        assert!(
            cancelled.starts_with("Sign-in was cancelled."),
            "{cancelled}"
        );
        assert_eq!(
            idp_error_text("server_error", Some("AADB2C90037: An error occurred")),
            "Sign-in failed: AADB2C90037: An error occurred"
        );
        assert_eq!(
            idp_error_text("invalid_request", None),
            "Sign-in failed (invalid_request). Please try again."
        );
    }
}
