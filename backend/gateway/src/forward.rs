//! The backend call: `GET {backend}/api/hello` with the function key, as APIM forwards to a
//! Function App. The client's own `x-functions-key` or `code` never travels on (only the
//! gateway's key opens the function), nor do its cookies and `x-ms-token-*` headers (EasyAuth's
//! to set), the bearer token does (the function validates it again),
//! and `X-Forwarded-For` gains the caller's address. A request body is never read or sent on:
//! the route is GET.

use crate::config::{Config, FunctionKey};
use crate::error::GatewayError;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::Response;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use shared::{ApiError, HelloResponse};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const FUNCTION_KEY_HEADER: HeaderName = HeaderName::from_static("x-functions-key");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The function's answers are a few hundred bytes; anything far larger is not the function.
const MAX_BACKEND_BODY_BYTES: usize = 1024 * 1024;

/// The function app, reached over a pool of keep-alive connections (HTTPS in Azure, plain HTTP
/// on loopback). hyper's client directly rather than reqwest: this call is the gateway's hot
/// path, and reqwest's per-request URL handling was a visible share of its CPU under load.
pub struct Backend {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    /// `{backend}/api/hello`, parsed once; the caller's query (minus `code`) is appended to it.
    hello_uri: Uri,
    timeout: Duration,
    function_key: FunctionKey,
}

/// Why the backend client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("GATEWAY_BACKEND_URL: {0}")]
    Url(String),
}

impl From<axum::http::uri::InvalidUri> for BackendError {
    fn from(error: axum::http::uri::InvalidUri) -> Self {
        Self::Url(error.to_string())
    }
}

impl Backend {
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.backend_connect_timeout));
        // The system's trust store, as for the JWKS, read on the first https call; no ALPN
        // (hyper-rustls sets it from enable_http1).
        let tls = trust_store::client_config(&[])?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // No proxy support on purpose: an HTTP(S)_PROXY meant for other traffic must not see
        // the function key. No redirects either: the answer is relayed as it is.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .build(https);

        let url = &config.policy.backend_url;
        let hello_path = format!("{}/api/hello", url.path().trim_end_matches('/'));
        let mut base = url.clone();
        base.set_path(&hello_path);
        let hello_uri: Uri = base.as_str().parse()?;
        Ok(Self {
            client,
            hello_uri,
            timeout: config.backend_timeout,
            function_key: config.function_key.clone(),
        })
    }

    fn uri(&self, query: Option<String>) -> Result<Uri, GatewayError> {
        let Some(query) = query else {
            return Ok(self.hello_uri.clone());
        };
        let mut parts = self.hello_uri.clone().into_parts();
        parts.path_and_query = Some(
            PathAndQuery::try_from(format!("{}?{query}", self.hello_uri.path()))
                .map_err(|_| GatewayError::Internal)?,
        );
        Uri::from_parts(parts).map_err(|_| GatewayError::Internal)
    }

    /// One call: the answer's head and whole body, bounded in size and time.
    async fn call(
        &self,
        request: axum::http::Request<Empty<Bytes>>,
    ) -> Result<(axum::http::response::Parts, Bytes), GatewayError> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                tracing::warn!(error = %error_chain(&error), "backend unreachable");
                if timed_out(&error) {
                    GatewayError::BackendTimeout
                } else {
                    GatewayError::BackendUnavailable
                }
            })?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_BACKEND_BODY_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "backend answer unreadable or too large");
                    GatewayError::BackendUnavailable
                })?
                .to_bytes();
            Ok((head, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                tracing::warn!("backend timed out");
                Err(GatewayError::BackendTimeout)
            })
    }
}

/// The error, then each of its causes.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// The error and its causes on one line (hyper's own message is only "client error (Connect)").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    causes(error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// A connect timeout surfaces as an I/O `TimedOut` somewhere in the error's causes.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// Request headers that describe this hop, not the call, or that only the gateway may set.
fn dropped_request_header(name: &HeaderName) -> bool {
    hop_by_hop(name)
        || name == header::HOST
        || name == header::CONTENT_LENGTH
        || name == FUNCTION_KEY_HEADER
        || name == X_FORWARDED_FOR
        || name == crate::subscription::KEY_HEADER
        // EasyAuth's identity headers: the function strips them too, but they have no business
        // leaving the gateway from a client.
        || name.as_str().starts_with("x-ms-client-principal")
        // EasyAuth's token store headers are App Service's to set; and the function never needs
        // the browser's cookies (an IdP's session among them, on a shared host).
        || name.as_str().starts_with("x-ms-token-")
        || name == header::COOKIE
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

/// The query minus `code` (Azure Functions would take it as a function key) and the
/// subscription key (APIM never forwards it).
fn forwarded_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("code")
                && !name.eq_ignore_ascii_case(crate::subscription::KEY_QUERY)
        })
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

/// The headers the function gets: the caller's, minus those of [`dropped_request_header`], with
/// the caller's address appended to `X-Forwarded-For` and the gateway's function key. Edited in
/// place: copying every header into a new map cost more than the few removals.
fn upstream_headers(mut headers: HeaderMap, peer: SocketAddr, key: &FunctionKey) -> HeaderMap {
    let mut chain = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    if !chain.is_empty() {
        chain.push_str(", ");
    }
    // Formatted into the chain: no `String` of its own.
    let _ = write!(chain, "{}", peer.ip());
    remove_where(&mut headers, dropped_request_header);
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(FUNCTION_KEY_HEADER, key.header_value().clone());
    headers
}

/// Removes every header whose name `drop` matches (all its values).
fn remove_where(headers: &mut HeaderMap, drop: fn(&HeaderName) -> bool) {
    let doomed: Vec<HeaderName> = headers.keys().filter(|name| drop(name)).cloned().collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// `GET /api/hello`: forward, and relay the function's answer. The attribute is this operation's
/// entry in the API's OpenAPI document ([`crate::openapi`]): every status the chain can answer.
#[utoipa::path(
    get,
    path = "/hello",
    operation_id = "hello",
    tag = "hello",
    summary = "The seed function's greeting, and who called",
    params(
        ("name" = Option<String>, Query,
            description = "Whom to greet instead of `World`: 1 to 64 ASCII letters, digits, spaces, `-` or `'`.",
            min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9 '-]+$"),
    ),
    responses(
        (status = 200, description = "The greeting (JSON, or text when `Accept` prefers `text/plain`)",
            content((HelloResponse = "application/json"), (String = "text/plain"))),
        (status = 400, description = "A parameter, header or body the definition does not allow", body = ApiError),
        (status = 401, description = "No valid access token (validate-jwt), or no valid subscription key", body = ApiError),
        (status = 403, description = "IP filter, Front Door id, client certificate, quota, or the function's authorization policy", body = ApiError),
        (status = 404, description = "Not found", body = ApiError),
        (status = 405, description = "Only GET is bound", body = ApiError),
        (status = 408, description = "The request did not arrive in time", body = ApiError),
        (status = 429, description = "A rate limit or the concurrency limit", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds until a call would be accepted"))),
        (status = 500, description = "Internal error", body = ApiError),
        (status = 502, description = "The function is unreachable, or answered outside this definition", body = ApiError),
        (status = 503, description = "The function cannot authenticate callers yet", body = ApiError),
        (status = 504, description = "The function did not answer in time", body = ApiError),
    ),
)]
pub async fn hello(
    State(backend): State<Arc<Backend>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, GatewayError> {
    let (parts, _) = request.into_parts();
    let mut upstream = axum::http::Request::new(Empty::new());
    *upstream.uri_mut() = backend.uri(forwarded_query(parts.uri.query()))?;
    *upstream.headers_mut() = upstream_headers(parts.headers, peer, &backend.function_key);
    let (mut head, body) = backend.call(upstream).await?;

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = head.status;
    remove_where(&mut head.headers, dropped_response_header);
    *response.headers_mut() = head.headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn backend(url: &str) -> Backend {
        let env = std::collections::HashMap::from([
            ("GATEWAY_BACKEND_URL", url.to_owned()),
            ("GATEWAY_BACKEND_FUNCTION_KEY", "k3y".to_owned()),
            (
                "GATEWAY_OPENID_CONFIG_URLS",
                "http://127.0.0.1:7010/a/.well-known/openid-configuration".to_owned(),
            ),
            ("GATEWAY_AUDIENCES", "api".to_owned()),
            (
                "GATEWAY_ALLOWED_ORIGINS",
                "http://127.0.0.1:8080".to_owned(),
            ),
        ]);
        Backend::new(&Config::from_source(&env).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn backend_urls_keep_their_scheme_host_and_base_path() {
        let azure = backend("https://fn-hello.azurewebsites.net/");
        assert_eq!(
            azure.uri(None).unwrap(),
            "https://fn-hello.azurewebsites.net/api/hello"
        );
        let prefixed = backend("http://127.0.0.1:7071/base");
        assert_eq!(
            prefixed.uri(Some("a=1".into())).unwrap(),
            "http://127.0.0.1:7071/base/api/hello?a=1"
        );
    }

    #[test]
    fn code_is_dropped_from_the_query_and_the_rest_kept() {
        assert_eq!(forwarded_query(Some("code=stolen")), None);
        assert_eq!(
            forwarded_query(Some("a=1&CODE=x&b=two+words")).as_deref(),
            Some("a=1&b=two+words")
        );
        assert_eq!(forwarded_query(None), None);
        assert_eq!(
            forwarded_query(Some("Subscription-Key=k&a=1&subscription-key=k")).as_deref(),
            Some("a=1")
        );
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
        incoming.insert(
            "Ocp-Apim-Subscription-Key",
            HeaderValue::from_static("subscription-key-123456"),
        );
        let key = FunctionKey::new("gateway-key").unwrap();
        let out = upstream_headers(incoming, "127.0.0.7:5000".parse().unwrap(), &key);
        assert_eq!(out.get(FUNCTION_KEY_HEADER).unwrap(), "gateway-key");
        assert_eq!(out.get_all(FUNCTION_KEY_HEADER).iter().count(), 1);
        assert_eq!(out.get(header::AUTHORIZATION).unwrap(), "Bearer t");
        assert_eq!(out.get(X_FORWARDED_FOR).unwrap(), "203.0.113.9, 127.0.0.7");
        assert!(out.get("x-ms-client-principal-id").is_none());
        assert!(out.get(header::CONNECTION).is_none());
        assert!(out.get(crate::subscription::KEY_HEADER).is_none());
    }
}
