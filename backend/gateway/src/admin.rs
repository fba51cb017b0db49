//! The admin port (`GATEWAY_ADMIN_PORT`): `/usage` for billing and `/metrics` for Prometheus.
//!
//! It listens on 127.0.0.1 only, whatever `GATEWAY_BIND_ADDRESS` says: these answers name the
//! subscriptions and their traffic, which callers of the API have no business seeing.

use crate::Gateway;
use crate::quota::UsageRow;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use tokio::net::TcpListener;

/// `GET /usage`: this instance's calls per subscription (Redis holds every instance's).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub usage: Vec<UsageRow>,
}

async fn usage(State(gateway): State<Gateway>) -> Json<Usage> {
    let usage = gateway
        .subscriptions
        .as_ref()
        .map(|s| s.usage())
        .unwrap_or_default();
    Json(Usage { usage })
}

async fn metrics(State(gateway): State<Gateway>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        gateway.metrics.render(),
    )
}

pub fn router(gateway: &Gateway) -> Router {
    Router::new()
        .route("/usage", get(usage))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(gateway.clone())
}

/// Serves the admin routes on `listener` (bound to loopback by `main`) until `shutdown`.
pub async fn serve(
    gateway: &Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http_serve::serve(listener, router(gateway), shutdown).await
}

/// `gateway usage` without Redis: asks the running instance's admin port.
pub async fn fetch_usage(port: u16) -> Result<Vec<UsageRow>, String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<axum::body::Bytes>>();
    let uri: axum::http::Uri = format!("http://127.0.0.1:{port}/usage")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let ask = async {
        let response = client.get(uri).await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("the admin port answered {}", response.status()));
        }
        let body = http_body_util::Limited::new(response.into_body(), 16 * 1024 * 1024)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        serde_json::from_slice::<Usage>(&body)
            .map(|u| u.usage)
            .map_err(|e| format!("not a usage answer: {e}"))
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), ask)
        .await
        .map_err(|_| "the admin port did not answer within 10 s".to_owned())?
}
