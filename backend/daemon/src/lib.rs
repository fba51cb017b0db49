//! Seed 004's app-to-app caller: an application without a user obtains an access token with the
//! client credentials grant and calls the protected API with it.
//!
//! A call is: the app token ([`credentials`], the oauth2 crate against the tenant's token
//! endpoint, cached until shortly before it expires) → `GET DAEMON_API_URL` with
//! `Authorization: Bearer` ([`api`]) → the API's answer, or a [`Failure`] naming what failed.
//!
//! Two ways to run it (`main.rs`): `daemon call` makes one call and prints the answer;
//! `daemon` alone serves as an Azure Functions custom handler, seed 004's Function App, with
//! `GET /api/call-hello` making the call for whoever asks and `GET /healthz`.

pub mod api;
pub mod config;
pub mod credentials;
pub mod failure;
pub mod outbound;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::trace::TraceLayer;

pub use api::Answer;
pub use config::{Config, ConfigError};
pub use failure::Failure;

use api::Api;
use credentials::AppTokens;

/// Calls in flight at once through the custom handler; more get 503 at once. Each holds an
/// outbound connection for up to the HTTP timeout, so this bounds what callers can make it hold.
pub const MAX_CALLS_IN_FLIGHT: usize = 32;

pub struct Daemon {
    tokens: AppTokens,
    api: Api,
    in_flight: Semaphore,
}

impl Daemon {
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let http = outbound::client(config.http_timeout)?;
        Ok(Self {
            tokens: AppTokens::new(config, http.clone()),
            api: Api::new(config.api_url.clone(), http, config.http_timeout),
            in_flight: Semaphore::new(MAX_CALLS_IN_FLIGHT),
        })
    }

    /// One call of the API with the app token.
    pub async fn call(&self) -> Result<Answer, Failure> {
        let token = self.tokens.token().await?;
        let answer = self.api.call(&token).await;
        if matches!(answer, Err(Failure::ApiUnauthorized { .. })) {
            self.tokens.forget().await;
        }
        answer
    }
}

/// `GET /api/call-hello`: the API's answer as it came, or the failure.
async fn call_hello(State(daemon): State<Arc<Daemon>>) -> Response {
    let Ok(_permit) = daemon.in_flight.try_acquire() else {
        return Failure::Busy.into_response();
    };
    match daemon.call().await {
        Ok(answer) => {
            let mut response = (answer.status, answer.body).into_response();
            if let Some(content_type) = answer.content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
        Err(failure) => {
            tracing::warn!(%failure, "call of the API failed");
            failure.into_response()
        }
    }
}

/// The custom handler's routes: the function, the readiness probe, 404 for the rest.
pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/api/call-hello", get(call_hello))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(
            // The path only: a query string could carry a function key.
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::info_span!("request", method = %request.method(), path = request.uri().path())
            }),
        )
        .with_state(daemon)
}

/// Serves the custom handler until `shutdown` completes.
pub async fn serve(
    daemon: Daemon,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http_serve::serve(listener, router(Arc::new(daemon)), shutdown).await
}
