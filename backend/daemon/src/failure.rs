//! Every way a call can fail, named for the one who has to fix it.
//!
//! `Display` is the line `daemon call` prints (it names the URL that failed, for the operator);
//! as a response ([`IntoResponse`]) the custom handler's caller gets the status and a message
//! without internal URLs.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::ApiError;

use crate::outbound::Transport;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot reach the identity provider at {url}: {why}")]
    IdpUnreachable { url: String, why: Transport },
    /// `invalid_client` / `unauthorized_client`: wrong id or secret, or a secret that expired.
    #[error(
        "the identity provider refused the client credentials ({code}): check DAEMON_CLIENT_ID and DAEMON_CLIENT_SECRET"
    )]
    BadCredentials { code: String },
    #[error("the identity provider refused the token request ({code}): {description}")]
    TokenRefused { code: String, description: String },
    #[error("the identity provider's answer is not a token response: {0}")]
    IdpAnswer(String),
    #[error("cannot reach the API at {url}: {why}")]
    ApiUnreachable { url: String, why: Transport },
    #[error("the API refused the token (401 Unauthorized): {message}")]
    ApiUnauthorized { message: String },
    #[error("the API refused the call (403 Forbidden): {message}")]
    ApiForbidden { message: String },
    #[error("the API's rate limit is exceeded (429 Too Many Requests){}: {message}", retry_text(*.retry_after))]
    ApiRateLimited {
        retry_after: Option<u64>,
        message: String,
    },
    #[error("the API answered {status}: {message}")]
    ApiStatus { status: u16, message: String },
    /// The custom handler's bound on calls in flight.
    #[error("too many calls in flight")]
    Busy,
}

fn retry_text(retry_after: Option<u64>) -> String {
    retry_after
        .map(|s| format!(", retry in {s} s"))
        .unwrap_or_default()
}

/// Text from a remote party, made fit for one log line: no control characters, bounded length.
pub fn one_line(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CHARS)
        .collect();
    if text.chars().count() > MAX_CHARS {
        line.push('…');
    }
    line.trim().to_owned()
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Failure::IdpUnreachable { .. }
            | Failure::BadCredentials { .. }
            | Failure::TokenRefused { .. }
            | Failure::IdpAnswer(_) => (
                StatusCode::BAD_GATEWAY,
                "The daemon could not obtain its access token.".to_owned(),
            ),
            Failure::ApiUnreachable { .. } => (
                StatusCode::BAD_GATEWAY,
                "The daemon could not reach the API.".to_owned(),
            ),
            // The caller may back off as the API asked; the other refusals are the daemon's
            // (its registration, its roles), not the caller's, hence 502.
            Failure::ApiRateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, self.to_string()),
            Failure::ApiUnauthorized { .. }
            | Failure::ApiForbidden { .. }
            | Failure::ApiStatus { .. } => (StatusCode::BAD_GATEWAY, self.to_string()),
            Failure::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many calls in flight. Try again in 1 seconds.".to_owned(),
            ),
        };
        let mut response = (status, Json(ApiError::new(status.as_u16(), message))).into_response();
        let retry = match self {
            Failure::ApiRateLimited { retry_after, .. } => retry_after,
            Failure::Busy => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_text_becomes_one_bounded_line() {
        assert_eq!(one_line(" a\r\nb\tc "), "a  b c");
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).chars().count(), 201);
    }

    #[test]
    fn lines_name_what_failed() {
        let limited = Failure::ApiRateLimited {
            retry_after: Some(42),
            message: "Rate limit is exceeded. Try again in 42 seconds.".into(),
        };
        assert_eq!(
            limited.to_string(),
            "the API's rate limit is exceeded (429 Too Many Requests), retry in 42 s: Rate limit is exceeded. Try again in 42 seconds."
        );
        let response = limited.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let response = Failure::BadCredentials {
            code: "invalid_client".into(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }
}
