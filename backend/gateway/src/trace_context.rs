//! W3C Trace Context at the gateway, API Management's `traceparent` handling: a well-formed
//! incoming `traceparent` is continued (same trace id and flags, `tracestate` kept), anything
//! else starts a new trace (and an orphaned `tracestate` is dropped). Either way the gateway is
//! a new span: the function receives the gateway's own parent id, and the access log and the
//! function's log both name the trace id.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use shared::trace_context::TraceParent;

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The `sampled` flag: a trace the gateway starts is one it logs.
const SAMPLED: u8 = 0x01;

fn random_ids() -> ([u8; 16], [u8; 8]) {
    let trace = uuid::Uuid::new_v4().into_bytes();
    let span = uuid::Uuid::new_v4().into_bytes();
    let mut parent = [0u8; 8];
    parent.copy_from_slice(&span[..8]);
    (trace, parent)
}

/// The trace this call belongs to, as sent on to the function.
fn continue_or_start(request: &Request) -> (TraceParent, bool) {
    let mut values = request.headers().get_all(&TRACEPARENT).iter();
    // Two values is malformed by the spec: start afresh.
    let incoming = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok().and_then(TraceParent::parse),
        _ => None,
    };
    let (trace_id, parent_id) = random_ids();
    match incoming {
        Some(parent) => (
            TraceParent {
                parent_id,
                ..parent
            },
            true,
        ),
        None => (
            TraceParent {
                trace_id,
                parent_id,
                flags: SAMPLED,
            },
            false,
        ),
    }
}

/// Sets the `traceparent` the function gets (and drops an orphaned `tracestate`); the trace goes
/// into the request's extensions for the access log.
pub fn propagate(request: &mut Request) {
    let (trace, continued) = continue_or_start(request);
    let headers = request.headers_mut();
    if !continued {
        headers.remove(&TRACESTATE);
    }
    if let Ok(value) = HeaderValue::from_bytes(&trace.to_bytes()) {
        headers.insert(TRACEPARENT, value);
    }
    request.extensions_mut().insert(trace);
}
