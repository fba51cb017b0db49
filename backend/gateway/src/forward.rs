//! The backend call: `GET {backend}/api/hello` with the function key, as APIM forwards to a
//! Function App. The client's own `x-functions-key` or `code` never travels on (only the
//! gateway's key opens the function), the bearer token does (the function validates it again),
//! and `X-Forwarded-For` gains the caller's address. A request body is never read or sent on:
//! the route is GET.

use crate::config::{Config, FunctionKey};
use crate::error::GatewayError;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;

pub const FUNCTION_KEY_HEADER: HeaderName = HeaderName::from_static("x-functions-key");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The function's answers are a few hundred bytes; anything far larger is not the function.
const MAX_BACKEND_BODY_BYTES: usize = 1024 * 1024;

pub struct Backend {
    client: reqwest::Client,
    /// Parsed once: parsing per request (host normalisation included) was a visible share of
    /// the gateway's CPU under load.
    hello_url: reqwest::Url,
    function_key: FunctionKey,
}

impl Backend {
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.backend_connect_timeout)
            .timeout(config.backend_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            // The backend is addressed directly; an HTTP(S)_PROXY meant for other traffic must
            // not see the function key.
            .no_proxy()
            .build()?;
        let mut hello_url = config.policy.backend_url.clone();
        let path = format!("{}/api/hello", hello_url.path().trim_end_matches('/'));
        hello_url.set_path(&path);
        Ok(Self {
            client,
            hello_url,
            function_key: config.function_key.clone(),
        })
    }
}

/// Request headers that describe this hop, not the call, or that only the gateway may set.
fn dropped_request_header(name: &HeaderName) -> bool {
    hop_by_hop(name)
        || name == header::HOST
        || name == header::CONTENT_LENGTH
        || name == FUNCTION_KEY_HEADER
        || name == X_FORWARDED_FOR
        // EasyAuth's identity headers: the function strips them too, but they have no business
        // leaving the gateway from a client.
        || name.as_str().starts_with("x-ms-client-principal")
}

/// Response headers the backend does not get to pass on: this hop's, and CORS (the gateway's
/// policy alone answers it).
fn dropped_response_header(name: &HeaderName) -> bool {
    hop_by_hop(name)
        || name == header::CONTENT_LENGTH
        || name == FUNCTION_KEY_HEADER
        || name.as_str().starts_with("access-control-")
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The query minus `code` (Azure Functions would take it as a function key).
fn forwarded_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| !name.eq_ignore_ascii_case("code"))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        return None;
    }
    Some(
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .finish(),
    )
}

fn upstream_headers(incoming: &HeaderMap, peer: SocketAddr, key: &FunctionKey) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(incoming.len() + 2);
    for (name, value) in incoming {
        if !dropped_request_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let previous: Vec<&str> = incoming
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut chain = previous.join(", ");
    if !chain.is_empty() {
        chain.push_str(", ");
    }
    chain.push_str(&peer.ip().to_string());
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(FUNCTION_KEY_HEADER, key.header_value().clone());
    headers
}

fn classify(error: &reqwest::Error) -> GatewayError {
    if error.is_timeout() {
        tracing::warn!(%error, "backend timed out");
        GatewayError::BackendTimeout
    } else {
        tracing::warn!(%error, "backend unreachable");
        GatewayError::BackendUnavailable
    }
}

/// `GET /api/hello`: forward, and relay the function's answer.
pub async fn hello(
    State(backend): State<Arc<Backend>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, GatewayError> {
    let mut url = backend.hello_url.clone();
    url.set_query(forwarded_query(request.uri().query()).as_deref());
    let headers = upstream_headers(request.headers(), peer, &backend.function_key);
    let mut upstream = backend
        .client
        .get(url)
        .headers(headers)
        .send()
        .await
        .map_err(|e| classify(&e))?;

    let mut body = Vec::new();
    while let Some(chunk) = upstream.chunk().await.map_err(|e| classify(&e))? {
        if body.len() + chunk.len() > MAX_BACKEND_BODY_BYTES {
            tracing::warn!("backend answer too large");
            return Err(GatewayError::BackendUnavailable);
        }
        body.extend_from_slice(&chunk);
    }

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = upstream.status();
    let out = response.headers_mut();
    for (name, value) in upstream.headers() {
        if !dropped_response_header(name) {
            out.append(name.clone(), value.clone());
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn code_is_dropped_from_the_query_and_the_rest_kept() {
        assert_eq!(forwarded_query(Some("code=stolen")), None);
        assert_eq!(
            forwarded_query(Some("a=1&CODE=x&b=two+words")).as_deref(),
            Some("a=1&b=two+words")
        );
        assert_eq!(forwarded_query(None), None);
    }

    #[test]
    fn upstream_headers_replace_the_key_and_extend_forwarded_for() {
        let mut incoming = HeaderMap::new();
        incoming.insert(FUNCTION_KEY_HEADER, HeaderValue::from_static("client-key"));
        incoming.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        incoming.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        incoming.insert(
            "x-ms-client-principal-id",
            HeaderValue::from_static("forged"),
        );
        incoming.insert(header::CONNECTION, HeaderValue::from_static("close"));
        let key = FunctionKey::new("gateway-key").unwrap();
        let out = upstream_headers(&incoming, "127.0.0.7:5000".parse().unwrap(), &key);
        assert_eq!(out.get(FUNCTION_KEY_HEADER).unwrap(), "gateway-key");
        assert_eq!(out.get_all(FUNCTION_KEY_HEADER).iter().count(), 1);
        assert_eq!(out.get(header::AUTHORIZATION).unwrap(), "Bearer t");
        assert_eq!(out.get(X_FORWARDED_FOR).unwrap(), "203.0.113.9, 127.0.0.7");
        assert!(out.get("x-ms-client-principal-id").is_none());
        assert!(out.get(header::CONNECTION).is_none());
    }
}
