//! What the host does around every call of the function app, whatever answers it: the request id
//! (kept when the caller sent a sane one — the gateway does — made otherwise, and returned), the
//! Functions host's deadline (504 after [`DEADLINE`]) and the access line. One layer: as
//! tower-http's request-id, trace and timeout layers it cost four services, a span per call and
//! a line formatted field by field.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_serve::logging::{Escaped, Millis, Quoted};
use http_serve::request_id;
use shared::trace_context::{TraceId, TraceParent};
use token_validation::Principal;

/// The Functions host's time limit for one invocation, as `functionTimeout` sets it.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Who called, on the response of a call EasyAuth admitted, for the access line.
#[derive(Clone)]
pub struct Caller(pub Arc<Principal>);

/// The layer (`from_fn`) around every route.
pub async fn around(mut request: Request, next: Next) -> Response {
    let id = request_id::assign(&mut request);
    let facts = Facts::of(&request);
    let mut response = match tokio::time::timeout(DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::GATEWAY_TIMEOUT.into_response(),
    };
    if let Some(facts) = facts {
        let line = Line {
            facts: &facts,
            response: &response,
        };
        http_serve::info_line!("hello::access", line);
    }
    request_id::echo(id, &mut response);
    response
}

/// What the line needs from the request: the path only (the query may hold the function key),
/// never a header value other than the request id and the trace id.
struct Facts {
    started: Instant,
    method: Method,
    uri: Uri,
    request_id: axum::http::HeaderValue,
    trace: Option<TraceId>,
}

impl Facts {
    /// `None` with the access log filtered out (e.g. `RUST_LOG=warn`): nothing is even copied.
    fn of(request: &Request) -> Option<Self> {
        if !tracing::enabled!(target: "hello::access", tracing::Level::INFO) {
            return None;
        }
        Some(Self {
            started: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            request_id: request.headers().get(&request_id::REQUEST_ID).cloned()?,
            trace: request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(TraceParent::parse)
                .map(|t| t.trace_id()),
        })
    }
}

/// The line's fields as `name=value`, text `Debug`-quoted and escaped, in one pass.
struct Line<'a> {
    facts: &'a Facts,
    response: &'a Response,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line { facts, response } = self;
        let subject = response
            .extensions()
            .get::<Caller>()
            .map_or("-", |caller| caller.0.subject.as_str());
        write!(
            f,
            "method={} path={} status={} latency_ms={} subject={} request_id={} trace_id={}",
            facts.method,
            Escaped(facts.uri.path()),
            response.status().as_u16(),
            Millis(facts.started.elapsed()),
            Escaped(subject),
            Escaped(facts.request_id.to_str().unwrap_or("-")),
            Quoted(facts.trace),
        )
    }
}
