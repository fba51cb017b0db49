//! The daemon's one HTTP client, for the token endpoint and the API alike.
//!
//! The oauth2 crate's own reqwest support is for reqwest 0.12; the workspace uses 0.13, so the
//! crate gets this client through its `AsyncHttpClient` hook ([`TokenHttp`]) instead of a second
//! reqwest. Redirects are not followed (the oauth2 crate asks for that: a
//! token request must not be replayed elsewhere) and every body read is bounded.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Token responses and the API's answers are a few KiB; more is refused, not buffered.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a request got no (usable) answer.
#[derive(Debug, thiserror::Error)]
pub enum Transport {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Connect(String),
    #[error("the answer is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Other(String),
}

impl Transport {
    pub fn of(error: &reqwest::Error, timeout: Duration) -> Self {
        if error.is_timeout() {
            return Self::Timeout(timeout);
        }
        // reqwest's own text repeats the URL; the innermost cause says what happened
        // ("Connection refused (os error 111)").
        let mut cause: &dyn std::error::Error = error;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let text = cause.to_string();
        if error.is_connect() {
            Self::Connect(text)
        } else {
            Self::Other(text)
        }
    }
}

/// Builds the client every outbound request uses.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    trust_store::reqwest_builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Reads at most [`MAX_BODY_BYTES`] of `response`'s body.
pub async fn body(
    mut response: reqwest::Response,
    timeout: Duration,
) -> Result<Vec<u8>, Transport> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(Transport::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Transport::of(&e, timeout))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Transport::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The oauth2 crate's HTTP client: the shared reqwest client. A named type with a boxed `Send`
/// future, because a closure's borrowed future is not `Send` for every lifetime the crate asks.
#[derive(Clone)]
pub struct TokenHttp {
    pub client: reqwest::Client,
    pub timeout: Duration,
}

impl<'c> AsyncHttpClient<'c> for TokenHttp {
    type Error = Transport;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Transport>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(exchange(&self.client, self.timeout, request))
    }
}

/// One oauth2-crate request over `client`.
async fn exchange(
    client: &reqwest::Client,
    timeout: Duration,
    request: HttpRequest,
) -> Result<HttpResponse, Transport> {
    let (parts, request_body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(request_body)
        .send()
        .await
        .map_err(|e| Transport::of(&e, timeout))?;
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = body(response, timeout).await?;
    builder
        .body(body)
        .map_err(|e| Transport::Other(e.to_string()))
}
