//! The address bar: where the page is, reading the IdP's answer from it, and leaving it.

use wasm_bindgen::JsValue;

fn location() -> Option<web_sys::Location> {
    web_sys::window().map(|w| w.location())
}

/// `location.search` and `location.hash` (each empty when absent).
pub fn search_and_hash() -> (String, String) {
    location()
        .map(|l| (l.search().unwrap_or_default(), l.hash().unwrap_or_default()))
        .unwrap_or_default()
}

/// The site's root, `{origin}/`: the default redirect URI (the registered one, whichever route
/// the sign-in starts from).
pub fn root_url() -> String {
    let mut url = location().and_then(|l| l.origin().ok()).unwrap_or_default();
    url.push('/');
    url
}

/// `location.pathname`.
pub fn path() -> String {
    location()
        .and_then(|l| l.pathname().ok())
        .unwrap_or_else(|| "/".to_owned())
}

/// Replaces the address (the IdP's `code`, `state` or error) with `path` of this site without a
/// reload, so the code is not left in history or bookmarks and the router starts on `path`.
pub fn clean_to(path: &str) {
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(path));
    }
}

/// Leaves the page for `url` (the IdP's authorize or end-session endpoint).
pub fn navigate(url: &str) -> Result<(), String> {
    location()
        .ok_or_else(|| "no window".to_owned())?
        .assign(url)
        .map_err(|_| "the browser refused to navigate".to_owned())
}

/// Seconds since the epoch, by the browser's clock.
pub fn now() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// A time as the browser's locale writes it, e.g. `12/2/2026, 1:05:00 AM`.
pub fn local_time(seconds: u64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(seconds as f64 * 1000.0));
    String::from(date.to_locale_string("default", &JsValue::UNDEFINED))
}
