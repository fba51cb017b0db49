//! What the gateway does around every call, whatever answers it, outermost first: the request
//! id, the client's address, metrics, the trace context and the access log. One layer whose steps
//! run in that order: as five `from_fn` layers they cost a boxed future and a boxed service each
//! per call, for work that is a few header reads.

use crate::access_log::RequestFacts;
use crate::client_addr::{self, TrustedProxies};
use crate::metrics::{Metrics, Timing};
use crate::trace_context;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_serve::request_id;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the envelope needs of the gateway.
pub struct Envelope {
    pub trusted_proxies: Arc<TrustedProxies>,
    pub metrics: Arc<Metrics>,
}

/// The layer (`from_fn_with_state`) around every route.
pub async fn around(
    State(envelope): State<Arc<Envelope>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request_id::assign(&mut request);
    client_addr::resolve(&envelope.trusted_proxies, peer, &mut request);
    let timing = Timing::start(&request);
    trace_context::propagate(&mut request);
    let logged = RequestFacts::of(&request);

    let mut response = next.run(request).await;

    if let Some(facts) = logged {
        facts.write(&response);
    }
    timing.finish(&envelope.metrics, &response);
    request_id::echo(id, &mut response);
    response
}
