//! Every refusal the gateway itself makes, answered as API Management does: JSON
//! `{"statusCode", "message"}` (`shared::ApiError`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::ApiError;
use shared::api::messages;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// validate-jwt failed; the reason is logged, the client gets APIM's one message.
    #[error("unauthorized")]
    Unauthorized,
    /// rate-limit-by-key refused; seconds until a call would be accepted again.
    #[error("rate limit exceeded")]
    RateLimited { retry_after_seconds: u64 },
    /// A product requires a subscription and the call named no key.
    #[error("subscription key missing")]
    SubscriptionKeyMissing,
    /// The key is unknown, or its subscription is not active.
    #[error("subscription key invalid")]
    SubscriptionKeyInvalid,
    /// The subscription's quota is used up; seconds until it renews.
    #[error("quota exceeded")]
    QuotaExceeded { renews_in_seconds: u64 },
    #[error("backend unreachable")]
    BackendUnavailable,
    #[error("backend timed out")]
    BackendTimeout,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal,
    /// ip-filter, check-header (Front Door) or validate-client-certificate refused the caller.
    #[error("forbidden")]
    Forbidden,
    /// limit-concurrency: as many calls as allowed are already in flight.
    #[error("too many concurrent calls")]
    TooManyConcurrent,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::SubscriptionKeyMissing | Self::SubscriptionKeyInvalid => StatusCode::UNAUTHORIZED,
            Self::QuotaExceeded { .. } => StatusCode::FORBIDDEN,
            Self::BackendUnavailable => StatusCode::BAD_GATEWAY,
            Self::BackendTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyConcurrent => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn body(&self) -> ApiError {
        let status = self.status().as_u16();
        match self {
            Self::Unauthorized => ApiError::unauthorized(),
            Self::RateLimited {
                retry_after_seconds,
            } => ApiError::rate_limited(*retry_after_seconds),
            Self::SubscriptionKeyMissing => {
                ApiError::new(status, messages::SUBSCRIPTION_KEY_MISSING)
            }
            Self::SubscriptionKeyInvalid => {
                ApiError::new(status, messages::SUBSCRIPTION_KEY_INVALID)
            }
            Self::QuotaExceeded { renews_in_seconds } => {
                ApiError::new(status, messages::quota_exceeded(*renews_in_seconds))
            }
            Self::BackendUnavailable => ApiError::new(status, "Backend service is unavailable."),
            Self::BackendTimeout => {
                ApiError::new(status, "Backend service did not respond in time.")
            }
            Self::NotFound => ApiError::new(status, "Resource not found."),
            Self::MethodNotAllowed => ApiError::new(status, "Method not allowed."),
            Self::Internal => ApiError::new(status, "Internal server error."),
            Self::Forbidden => ApiError::new(status, "Forbidden"),
            Self::TooManyConcurrent => ApiError::new(
                status,
                "Too many requests are in progress. Try again later.",
            ),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        response.extensions_mut().insert(self.outcome());
        match self {
            Self::RateLimited {
                retry_after_seconds,
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            }
            Self::MethodNotAllowed => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            _ => {}
        }
        response
    }
}
