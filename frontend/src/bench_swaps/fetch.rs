//! Only for `scripts/bench` (issue 15, item 3: what each of the design card's packages costs):
//! [`crate::fetch`]'s API with gloo-net's job done by web-sys directly, compiled in its place
//! with the feature `bench-without-gloo-net`. Never deployed.

use crate::openapi::Call;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit};

pub struct Response(web_sys::Response);

impl Response {
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    pub fn ok(&self) -> bool {
        self.0.ok()
    }
}

pub async fn get(url: &str, authorization: Option<&str>) -> Result<Response, String> {
    let headers = Headers::new().map_err(describe)?;
    if let Some(value) = authorization {
        headers.set("Authorization", value).map_err(describe)?;
    }
    send(url, "GET", &headers, None).await
}

pub async fn request(call: &Call, authorization: Option<&str>) -> Result<Response, String> {
    let headers = Headers::new().map_err(describe)?;
    for (name, value) in &call.headers {
        headers.set(name, value).map_err(describe)?;
    }
    if let Some(value) = authorization {
        headers.set("Authorization", value).map_err(describe)?;
    }
    send(&call.target(), &call.method, &headers, None).await
}

pub async fn post_form(url: &str, body: &str) -> Result<Response, String> {
    let headers = Headers::new().map_err(describe)?;
    headers
        .set("Content-Type", "application/x-www-form-urlencoded")
        .map_err(describe)?;
    send(url, "POST", &headers, Some(body)).await
}

async fn send(
    url: &str,
    method: &str,
    headers: &Headers,
    body: Option<&str>,
) -> Result<Response, String> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(url, &init).map_err(describe)?;
    let window = web_sys::window().ok_or_else(|| "no window".to_owned())?;
    let response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(describe)?;
    Ok(Response(response.unchecked_into()))
}

pub fn status_text(response: &Response) -> String {
    response.0.status_text()
}

pub fn headers(response: &Response) -> Vec<(String, String)> {
    let mut all = Vec::new();
    if let Ok(Some(entries)) = js_sys::try_iter(&response.0.headers().entries()) {
        for entry in entries.flatten() {
            let pair = js_sys::Array::from(&entry);
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                all.push((name, value));
            }
        }
    }
    all
}

pub fn header(response: &Response, name: &str) -> Option<String> {
    response.0.headers().get(name).ok().flatten()
}

pub async fn text(response: &Response) -> Result<String, String> {
    let text = JsFuture::from(response.0.text().map_err(describe)?)
        .await
        .map_err(describe)?;
    Ok(text.as_string().unwrap_or_default())
}

fn describe(error: JsValue) -> String {
    let error = js_sys::Error::from(error);
    let mut text = String::from(error.name());
    text.push_str(": ");
    text.push_str(&String::from(error.message()));
    text
}
