//! The protected API the daemon calls with its token (seed 004: `GET …/testdata`; here the
//! gateway's `/api/hello`).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use oauth2::AccessToken;
use url::Url;

use crate::failure::{Failure, one_line};
use crate::outbound;

/// A 2xx answer, passed on as it came.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Vec<u8>,
}

pub struct Api {
    http: reqwest::Client,
    url: Url,
    timeout: Duration,
}

impl Api {
    pub fn new(url: Url, http: reqwest::Client, timeout: Duration) -> Self {
        Self { http, url, timeout }
    }

    pub async fn call(&self, token: &AccessToken) -> Result<Answer, Failure> {
        let unreachable = |why| Failure::ApiUnreachable {
            url: self.url.to_string(),
            why,
        };
        let response = self
            .http
            .get(self.url.clone())
            .bearer_auth(token.secret())
            .send()
            .await
            .map_err(|e| unreachable(outbound::Transport::of(&e, self.timeout)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = outbound::body(response, self.timeout)
            .await
            .map_err(unreachable)?;
        if status.is_success() {
            return Ok(Answer {
                status,
                content_type: headers.get(header::CONTENT_TYPE).cloned(),
                body,
            });
        }
        let message = message(&body);
        Err(match status {
            StatusCode::UNAUTHORIZED => Failure::ApiUnauthorized { message },
            StatusCode::FORBIDDEN => Failure::ApiForbidden { message },
            StatusCode::TOO_MANY_REQUESTS => Failure::ApiRateLimited {
                retry_after: headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
                message,
            },
            other => Failure::ApiStatus {
                status: other.as_u16(),
                message,
            },
        })
    }
}

/// The `message` of API Management's `{"statusCode","message"}` body, else the body's text.
fn message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<shared::ApiError>(&text)
        .map(|e| e.message)
        .unwrap_or_else(|_| text.into_owned());
    match one_line(&message) {
        empty if empty.is_empty() => "(empty body)".to_owned(),
        line => line,
    }
}
