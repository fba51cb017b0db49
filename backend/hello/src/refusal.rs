//! Every way the function turns a request away, as the Azure component it imitates would.

use std::net::IpAddr;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::ApiError;
use shared::api::messages;
use token_validation::ValidationError;

/// EasyAuth's text for 401/403 answers.
pub const EASYAUTH_DENIED: &str = "You do not have permission to view this directory or page.";

#[derive(Debug)]
pub enum Refusal {
    /// Access restrictions: the peer address is not allow-listed (403, APIM's ip-filter text).
    IpDenied(IpAddr),
    /// The Functions host's answer to a missing or wrong function key: 401, empty body.
    FunctionKey,
    /// Only GET is bound (405 with `Allow: GET`, empty body like the host).
    MethodNotAllowed,
    /// EasyAuth `Return401`, with the RFC 6750 reason.
    Unauthenticated(ValidationError),
    /// EasyAuth `Return403` for no valid token, or a valid token failing the authorization policy.
    Forbidden(Option<ValidationError>),
    /// The IdP's keys were never loaded: nobody can be authenticated yet.
    KeysUnavailable(ValidationError),
    NotFound,
    /// `?name=` outside the API definition's rule (the gateway's validate-parameters text).
    InvalidName,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::IpDenied(ip) => (
                StatusCode::FORBIDDEN,
                Json(ApiError::new(403, messages::ip_denied(&ip.to_string()))),
            )
                .into_response(),
            Refusal::FunctionKey => StatusCode::UNAUTHORIZED.into_response(),
            Refusal::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, HeaderValue::from_static("GET"))],
            )
                .into_response(),
            Refusal::Unauthenticated(why) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, why.www_authenticate())],
                Json(ApiError::new(401, EASYAUTH_DENIED)),
            )
                .into_response(),
            Refusal::Forbidden(why) => {
                let mut response = (
                    StatusCode::FORBIDDEN,
                    Json(ApiError::new(403, EASYAUTH_DENIED)),
                )
                    .into_response();
                if let Some(why) = why {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, why.www_authenticate());
                }
                response
            }
            Refusal::KeysUnavailable(why) => {
                let retry = why.retry_after_seconds().unwrap_or(5);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [
                        (header::RETRY_AFTER, HeaderValue::from(retry)),
                        (header::WWW_AUTHENTICATE, why.www_authenticate()),
                    ],
                    Json(ApiError::new(
                        503,
                        "The identity provider's signing keys are not available yet. Try again later.",
                    )),
                )
                    .into_response()
            }
            Refusal::NotFound => StatusCode::NOT_FOUND.into_response(),
            Refusal::InvalidName => (
                StatusCode::BAD_REQUEST,
                Json(ApiError::new(400, messages::invalid_greeting_name())),
            )
                .into_response(),
        }
    }
}
