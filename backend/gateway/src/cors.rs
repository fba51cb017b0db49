//! API Management's `cors` policy with the seed's settings: listed origins, credentials allowed,
//! method GET, any requested header, preflight cached 120 s, every response header exposed.
//!
//! A preflight is answered here and goes no further (no JWT check, no rate limit), as in APIM.
//! An origin that is not listed gets no CORS headers at all: an empty 200 to its preflight, and
//! actual requests pass through untouched so the browser, not the gateway, blocks the page.
//! Actual responses of every status get the headers, so the SPA can read 401/429/5xx bodies.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `preflight-result-max-age` in the seed.
pub const PREFLIGHT_MAX_AGE_SECONDS: u32 = 120;
/// `allowed-methods` in the seed.
pub const ALLOWED_METHODS: &[Method] = &[Method::GET];

#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// `origins` as config.rs normalised them (`scheme://host[:port]`).
    pub fn new(origins: Vec<String>) -> Self {
        Self { origins }
    }

    /// The request's `Origin` when it is listed. Scheme and host compare case-insensitively, as
    /// origins do; anything else must match exactly.
    fn matched_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }

    fn preflight(&self, headers: &HeaderMap) -> Response {
        let mut response = StatusCode::OK.into_response();
        let out = response.headers_mut();
        out.append(header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = self.matched_origin(headers) else {
            return response;
        };
        let method_allowed = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| ALLOWED_METHODS.contains(&m));
        if !method_allowed {
            // Like an unlisted origin: the browser sees no permission and refuses the call.
            return response;
        }
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        let methods = ALLOWED_METHODS
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(methods) = HeaderValue::from_str(&methods) {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        // `allowed-headers` is `*`: with credentials a literal `*` would not count, so echo the
        // headers the browser asked for (APIM does the same).
        if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(PREFLIGHT_MAX_AGE_SECONDS),
        );
        response
    }

    fn decorate(&self, origin: Option<HeaderValue>, response: &mut Response) {
        let out = response.headers_mut();
        out.append(header::VARY, HeaderValue::from_static("Origin"));
        // Only this policy speaks CORS for the API; whatever the backend said is dropped.
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            out.remove(name);
        }
        if let Some(origin) = origin {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            // `expose-headers` is `*` in the seed.
            out.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("*"),
            );
        }
    }
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The `cors` policy as middleware: outermost of the API pipeline.
pub async fn apply(
    State(policy): State<Arc<CorsPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if is_preflight(&request) {
        return policy.preflight(request.headers());
    }
    let origin = policy.matched_origin(request.headers());
    let mut response = next.run(request).await;
    policy.decorate(origin, &mut response);
    response
}
