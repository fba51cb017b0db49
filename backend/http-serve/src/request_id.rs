//! `x-request-id`: kept when the caller sent a sane one, generated otherwise; sent on (the
//! gateway's to the function) and returned to the client, so one id follows a call through the
//! gateway's and the function's logs.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Short and plain, or it is replaced: the id ends up in logs and must not be a payload.
fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The call's id, set on the request (the backend gets it); [`echo`] returns it to the client.
pub fn assign(request: &mut Request) -> HeaderValue {
    let id = match request.headers().get(&REQUEST_ID) {
        Some(value) if acceptable(value) => value.clone(),
        _ => {
            let generated = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string());
            match generated {
                Ok(value) => value,
                Err(_) => HeaderValue::from_static("unavailable"),
            }
        }
    };
    request.headers_mut().insert(REQUEST_ID, id.clone());
    id
}

pub fn echo(id: HeaderValue, response: &mut Response) {
    response.headers_mut().insert(REQUEST_ID, id);
}
