//! One line per request: method, path (never the query: `code` or `subscription-key` could
//! carry a key), status, latency, client address, client certificate (thumbprint and subject:
//! public, not secret), subject, subscription (its name, never its key), request id and trace id.
//! Never a header value other than the request id.

use crate::auth::AuthenticatedSubject;
use crate::client_addr::ClientIp;
use crate::request_id::REQUEST_ID;
use crate::subscription::Subscriber;
use crate::tls::ClientCertificate;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use shared::trace_context::TraceParent;
use std::time::Instant;

pub async fn record(request: Request, next: Next) -> Response {
    // With the access log filtered out (e.g. RUST_LOG=warn), skip the copies its line would need.
    if !tracing::enabled!(target: "gateway::access", tracing::Level::INFO) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let client = request
        .extensions()
        .get::<ClientIp>()
        .map_or_else(|| "-".to_owned(), |c| c.0.to_string());
    // What the TLS handshake saw: the client certificate's thumbprint and subject (not secret).
    let (cert_thumbprint, cert_subject) = request
        .extensions()
        .get::<ClientCertificate>()
        .and_then(|c| c.0.as_ref())
        .map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |c| (c.thumbprint.clone(), c.subject.clone()),
        );
    let trace_id = request
        .extensions()
        .get::<TraceParent>()
        .map_or_else(|| "-".to_owned(), TraceParent::trace_id_hex);
    let response = next.run(request).await;
    let subscription = response
        .extensions()
        .get::<Subscriber>()
        .map_or("-", |s| &s.subscription);
    let subject = response
        .extensions()
        .get::<AuthenticatedSubject>()
        .map_or("-", |s| s.0.as_str());
    tracing::info!(
        target: "gateway::access",
        %method,
        path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        client,
        cert_thumbprint,
        cert_subject,
        subject,
        subscription,
        request_id,
        trace_id,
    );
    response
}
