//! The browser's `fetch`, directly: gloo-net's wrapper linked serde_json's error formatting into
//! the wasm (its error type carries a `serde_json::Error`), and the SPA needs only GET, a form
//! POST, the status, two headers and the body as text.

use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestInit};

/// An HTTP answer (any status); `Err` from [`get`]/[`post_form`] means there was none.
pub struct Response(web_sys::Response);

impl Response {
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// 2xx.
    pub fn ok(&self) -> bool {
        self.0.ok()
    }

    /// A response header the browser lets the page read (CORS-safelisted or exposed).
    pub fn header(&self, name: &str) -> Option<String> {
        self.0.headers().get(name).ok().flatten()
    }

    pub async fn text(self) -> Result<String, String> {
        let text = await_promise(self.0.text()).await?;
        Ok(text.as_string().unwrap_or_default())
    }
}

/// `GET url`, with `Authorization` when given.
pub async fn get(url: &str, authorization: Option<&str>) -> Result<Response, String> {
    let headers = Headers::new().map_err(|e| describe(&e))?;
    if let Some(value) = authorization {
        headers
            .set("Authorization", value)
            .map_err(|e| describe(&e))?;
    }
    send(url, "GET", &headers, None).await
}

/// `POST url` with an `application/x-www-form-urlencoded` body (the token endpoint).
pub async fn post_form(url: &str, body: &str) -> Result<Response, String> {
    let headers = Headers::new().map_err(|e| describe(&e))?;
    headers
        .set("Content-Type", "application/x-www-form-urlencoded")
        .map_err(|e| describe(&e))?;
    send(url, "POST", &headers, Some(body)).await
}

async fn send(
    url: &str,
    method: &str,
    headers: &Headers,
    body: Option<&str>,
) -> Result<Response, String> {
    let window = web_sys::window().ok_or_else(|| "no window".to_owned())?;
    let init = RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    let response = await_promise(Ok(window.fetch_with_str_and_init(url, &init))).await?;
    response
        .dyn_into::<web_sys::Response>()
        .map(Response)
        .map_err(|e| describe(&e))
}

async fn await_promise(promise: Result<Promise, JsValue>) -> Result<JsValue, String> {
    match promise {
        Ok(promise) => JsFuture::from(promise).await.map_err(|e| describe(&e)),
        Err(e) => Err(describe(&e)),
    }
}

/// `TypeError: Failed to fetch` — the name and message of a JavaScript error, as the console
/// (and gloo-net before) shows it; the page puts it after "Error: ".
fn describe(error: &JsValue) -> String {
    match error.dyn_ref::<js_sys::Error>() {
        Some(error) => {
            let mut text = String::from(error.name());
            text.push_str(": ");
            text.push_str(&String::from(error.message()));
            text
        }
        None => error
            .as_string()
            .unwrap_or_else(|| "the request failed".to_owned()),
    }
}
