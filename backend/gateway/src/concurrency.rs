//! API Management's `limit-concurrency` from `GATEWAY_MAX_CONCURRENCY`: at most that many calls
//! are forwarded to the function at once; one more is refused with 429 at once. Never queued:
//! a queue would hold the caller's connection and memory for as long as the backend is slow,
//! which is the overload the limit is there to stop.
//!
//! The permit is held until the backend's whole answer is read (the forward handler buffers it),
//! so "in flight" means exactly the calls occupying the function.

use crate::config::{ConfigError, bad};
use crate::error::GatewayError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub const VAR: &str = "GATEWAY_MAX_CONCURRENCY";
/// The `key` of the rendered policy: one scope for the whole API, as this gateway has.
pub const POLICY_KEY: &str = "hello-api";

pub fn parse(text: &str) -> Result<u32, ConfigError> {
    match text.parse::<u32>() {
        // Semaphore permits are bounded well above this; no real gateway runs more in flight.
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(bad(
            VAR,
            format!("`{text}` is not a whole number from 1 to 1000000"),
        )),
    }
}

pub struct ConcurrencyLimit {
    permits: Arc<Semaphore>,
    max: u32,
}

impl ConcurrencyLimit {
    pub fn new(max: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }
}

pub async fn limit(
    State(limit): State<Arc<ConcurrencyLimit>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = limit.permits.clone().try_acquire_owned() else {
        tracing::info!(max = limit.max, "limit-concurrency: refused");
        return GatewayError::TooManyConcurrent.into_response();
    };
    next.run(request).await
}
