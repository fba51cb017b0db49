//! The benchmark ceilings, with no key, no token, no rate limit and no CORS anywhere.
//!
//! Alone it is the one-hop ceiling: the same hello response as the function, served by axum, so `scripts/bench` can
//! say how much of the raw server speed the real chain keeps.
//!
//! With `BARE_HELLO_UPSTREAM=http://127.0.0.1:PORT` it is instead a minimal reverse proxy: `GET /api/hello` is
//! forwarded to `{upstream}/api/hello` over a pooled keep-alive HTTP/1.1 client and the answer's status,
//! content type and body are relayed (502 if the upstream cannot be reached). Put in front of a plain bare-hello,
//! it is the bare two-hop chain: the same architecture as gateway → function (two servers, an outbound client, all
//! on the same cores as the load generator) minus all of our work, i.e. the floor the architecture itself sets.
//!
//! Listens on 127.0.0.1 at `BARE_HELLO_PORT` (default 7090). `/healthz` is always answered locally.

// The same allocator as the servers it is compared with, so the ratio measures their work, not malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};

async fn hello() -> String {
    // Same shape and similar work as the function's body (a formatted timestamp), so only auth differs.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("Hello World, time and date are {secs}")
}

struct Proxy {
    client: Client<HttpConnector, Empty<Bytes>>,
    /// `{upstream}/api/hello`, parsed once.
    hello: Uri,
}

impl Proxy {
    /// `None` unless `upstream` is an `http://host:port` URL (an optional trailing `/` aside).
    fn new(upstream: &str) -> Option<Self> {
        let hello: Uri = format!("{}/api/hello", upstream.trim_end_matches('/'))
            .parse()
            .ok()?;
        if hello.scheme_str() != Some("http")
            || hello.authority().is_none()
            || hello.path() != "/api/hello"
        {
            return None;
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // Pooled keep-alive HTTP/1.1 (the only protocol enabled), like the gateway's client.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Some(Self { client, hello })
    }
}

/// `GET /api/hello` in proxy mode: forward, then relay status, content type and the whole body.
async fn forward(State(proxy): State<Arc<Proxy>>) -> Response {
    let request = match Request::get(proxy.hello.clone()).body(Empty::new()) {
        Ok(request) => request,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let Ok(upstream) = proxy.client.request(request).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let (parts, body) = upstream.into_parts();
    // Buffered, as the gateway does, so a broken upstream body is a 502 and not a truncated 200.
    let Ok(body) = body.collect().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::new(Body::from(body.to_bytes()));
    *response.status_mut() = parts.status;
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
}

#[tokio::main]
async fn main() -> ExitCode {
    let port = match std::env::var("BARE_HELLO_PORT") {
        Ok(value) => match value.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("BARE_HELLO_PORT must be a port number, got {value:?}");
                return ExitCode::from(2);
            }
        },
        Err(_) => 7090,
    };
    let hello_route = match std::env::var("BARE_HELLO_UPSTREAM") {
        Ok(value) => match Proxy::new(&value) {
            Some(proxy) => get(forward).with_state(Arc::new(proxy)),
            None => {
                eprintln!("BARE_HELLO_UPSTREAM must be an http://host:port URL, got {value:?}");
                return ExitCode::from(2);
            }
        },
        Err(_) => get(hello),
    };
    let app = Router::new()
        .route("/api/hello", hello_route)
        .route("/healthz", get(|| async { "ok" }));
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot bind 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bare-hello failed: {err}");
            ExitCode::FAILURE
        }
    }
}
