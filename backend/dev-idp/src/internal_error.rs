//! A failure of the provider itself (store, keys) is answered with a generic page or body, and its
//! detail travels in the response's extensions to the one layer in `router()` that logs it, as
//! axum's error-handling example does: `into_response` stays free of side effects, and every
//! internal error is logged the same way, once.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What failed (`what`) and why (`detail`, never a secret: store and key errors only).
#[derive(Debug, Clone)]
pub struct InternalError {
    pub what: &'static str,
    pub detail: String,
}

impl InternalError {
    pub fn new(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self {
            what,
            detail: detail.to_string(),
        }
    }

    /// A bare 500 carrying the error.
    pub fn response(self) -> Response {
        self.attach(axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }

    /// Puts the error into `response` for [`log`].
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: logs the internal error a handler's response carries.
pub async fn log(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(error) = response.extensions().get::<InternalError>() {
        tracing::error!(detail = %error.detail, "{} failed", error.what);
    }
    response
}
