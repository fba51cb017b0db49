//! The single sign-on session: an opaque random id in an HttpOnly cookie, stored hashed.

use axum::http::{HeaderMap, HeaderValue};
use http_serve::cookie;

use crate::store::Session;
use crate::{AppState, now, random_token, secret_hash};

pub const COOKIE: &str = "devidp_session";

/// A `Set-Cookie` value; `max_age` of 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    // Names are constants and values base64url, so this cannot fail; an empty value is harmless.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The signed-in session carried by the request's cookie, if still valid.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, crate::store::StoreError> {
    let Some(id) = cookie::value(headers, COOKIE) else {
        return Ok(None);
    };
    let hash = secret_hash(id);
    state.store.run(move |s| s.session(&hash, now())).await
}

/// Starts a session for `user_id`; returns the `Set-Cookie` header to send.
pub async fn start(
    state: &AppState,
    user_id: &str,
) -> Result<(Session, HeaderValue), crate::store::StoreError> {
    let id = random_token();
    let lifetime = state.config.lifetimes.session_seconds;
    let session = Session {
        user_id: user_id.to_owned(),
        auth_time: now(),
    };
    let (hash, stored) = (secret_hash(&id), session.clone());
    state
        .store
        .run(move |s| s.create_session(&hash, &stored, now() + lifetime as i64))
        .await?;
    Ok((
        session,
        set_cookie(COOKIE, &id, lifetime, state.secure_cookies),
    ))
}

/// Ends the request's session; returns the `Set-Cookie` header that clears the cookie.
pub async fn end(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<HeaderValue, crate::store::StoreError> {
    if let Some(id) = cookie::value(headers, COOKIE) {
        let hash = secret_hash(id);
        state.store.run(move |s| s.delete_session(&hash)).await?;
    }
    Ok(set_cookie(COOKIE, "", 0, state.secure_cookies))
}
