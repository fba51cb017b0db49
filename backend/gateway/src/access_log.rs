//! One line per request: method, path (never the query: `code` or `subscription-key` could
//! carry a key), status, latency, client address, client certificate (thumbprint and subject:
//! public, not secret), subject, subscription (its name, never its key), request id and trace id.
//! Never a header value other than the request id.

use crate::auth::AuthenticatedSubject;
use crate::client_addr::ClientIp;
use crate::subscription::Subscriber;
use crate::tls::ClientCertificate;
use axum::extract::Request;
use axum::response::Response;
use http_serve::logging::{Escaped, Millis, Quoted};
use http_serve::request_id::REQUEST_ID;
use shared::trace_context::TraceParent;
use std::fmt;
use std::time::Instant;

/// What the line needs from the request, kept as it is (reference counts and copies of small
/// values): every field is formatted once, when the line is written, never copied into a
/// `String` on the way.
pub struct RequestFacts {
    started: Instant,
    method: axum::http::Method,
    uri: axum::http::Uri,
    request_id: Option<axum::http::HeaderValue>,
    client: Option<ClientIp>,
    certificate: ClientCertificate,
    trace: Option<TraceParent>,
}

impl RequestFacts {
    /// The facts of a call about to be answered; `None` with the access log filtered out (e.g.
    /// `RUST_LOG=warn`), so nothing is even copied.
    pub fn of(request: &Request) -> Option<Self> {
        if !tracing::enabled!(target: "gateway::access", tracing::Level::INFO) {
            return None;
        }
        Some(Self {
            started: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            request_id: request.headers().get(&REQUEST_ID).cloned(),
            client: request.extensions().get::<ClientIp>().copied(),
            certificate: request
                .extensions()
                .get::<ClientCertificate>()
                .cloned()
                .unwrap_or_default(),
            trace: request.extensions().get::<TraceParent>().copied(),
        })
    }

    /// The call's line, once its answer is known, formatted in one pass straight into the log's
    /// batch ([`http_serve::info_line!`] says why not through the fmt layer).
    pub fn write(&self, response: &Response) {
        http_serve::info_line!(
            "gateway::access",
            Line {
                facts: self,
                response
            }
        );
    }
}

/// The fields of one access line, written straight into the log's buffer.
struct Line<'a> {
    facts: &'a RequestFacts,
    response: &'a Response,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line { facts, response } = self;
        let subscription = response
            .extensions()
            .get::<Subscriber>()
            .map_or("-", |s| &s.subscription);
        let subject = response
            .extensions()
            .get::<AuthenticatedSubject>()
            .map_or("-", AuthenticatedSubject::subject);
        // What the TLS handshake saw: the client certificate's thumbprint and subject (not secret).
        let certificate = facts.certificate.0.as_deref();
        let request_id = facts
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        write!(
            f,
            "method={} path={} status={} latency_ms={} client={} cert_thumbprint={} \
             cert_subject={} subject={} subscription={} request_id={} trace_id={}",
            facts.method,
            Escaped(facts.uri.path()),
            response.status().as_u16(),
            Millis(facts.started.elapsed()),
            Quoted(facts.client.map(|c| c.0)),
            Escaped(certificate.map_or("-", |c| c.thumbprint.as_str())),
            Escaped(certificate.map_or("-", |c| c.subject.as_str())),
            Escaped(subject),
            Escaped(subscription),
            Escaped(request_id),
            Quoted(facts.trace.as_ref().map(TraceParent::trace_id)),
        )
    }
}
