//! The SPA's HTTP calls, through gloo-net: GET (config.json, discovery, the API) and the token
//! endpoint's form POST. Errors become the sentence the page puts after "Error: ", e.g.
//! `TypeError: Failed to fetch` (the JavaScript error's name and message).

use crate::openapi::Call;
use gloo_net::http::Request;
pub use gloo_net::http::Response;

/// `GET url`, with `Authorization` when given.
pub async fn get(url: &str, authorization: Option<&str>) -> Result<Response, String> {
    let mut request = Request::get(url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.map_err(describe)
}

/// The console's request: any method, the operation's query and header parameters, and
/// `Authorization` when given. No body: the console fills in parameters only.
pub async fn request(call: &Call, authorization: Option<&str>) -> Result<Response, String> {
    let method = gloo_net::http::Method::from_bytes(call.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", call.method))?;
    let query = call.query.iter().map(|(k, v)| (k.as_str(), v));
    let mut request = Request::get(&call.url).method(method).query(query);
    for (name, value) in &call.headers {
        request = request.header(name, value);
    }
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.map_err(describe)
}

/// `POST url` with an `application/x-www-form-urlencoded` body (the token endpoint).
pub async fn post_form(url: &str, body: &str) -> Result<Response, String> {
    Request::post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .map_err(describe)?
        .send()
        .await
        .map_err(describe)
}

/// `200 OK`'s `OK` (empty over HTTP/2).
pub fn status_text(response: &Response) -> String {
    response.status_text()
}

/// Every response header the browser lets the page read, as (lower-case name, value).
pub fn headers(response: &Response) -> Vec<(String, String)> {
    response.headers().entries().collect()
}

/// A response header the browser lets the page read (CORS-safelisted or exposed).
pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name)
}

fn describe(error: gloo_net::Error) -> String {
    match error {
        gloo_net::Error::JsError(js) => {
            let mut text = js.name;
            text.push_str(": ");
            text.push_str(&js.message);
            text
        }
        other => other.to_string(),
    }
}

/// The body as text; `Err` if the connection broke while it was read.
pub async fn text(response: &Response) -> Result<String, String> {
    response.text().await.map_err(describe)
}
