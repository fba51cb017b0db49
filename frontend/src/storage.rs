//! sessionStorage (through gloo-storage), the only place tokens and sign-in secrets live: gone
//! when the tab closes, invisible to other tabs, never sent to a server as a cookie would be.
//! Values are stored as JSON objects (serde), so a tampered or foreign entry reads as absent.
//! Each client (the SPA, the developer console) keeps its sign-in and session under its own
//! [`Keys`].

use crate::client::Keys;
use crate::flow::PendingSignIn;
use crate::session::Session;
use gloo_storage::{SessionStorage, Storage};
use serde::Serialize;
use serde::de::DeserializeOwned;

const SILENT_TRIED: &str = "spa.signin.silent";

/// gloo-storage throws when the browser denies sessionStorage (privacy settings, sandboxed
/// frames): every access asks first, and such a page simply has no session.
fn available() -> bool {
    web_sys::window()
        .and_then(|w| w.session_storage().ok().flatten())
        .is_some()
}

pub fn save_pending(keys: Keys, pending: &PendingSignIn) -> Result<(), String> {
    save(keys.pending, pending)
}

/// The pending sign-in, removed as it is read: a state and verifier are good for one answer.
pub fn take_pending(keys: Keys) -> Option<PendingSignIn> {
    take(keys.pending)
}

pub fn load_session(keys: Keys) -> Option<Session> {
    available().then(|| SessionStorage::get(keys.session).ok())?
}

pub fn save_session(keys: Keys, session: &Session) -> Result<(), String> {
    save(keys.session, session)
}

/// Any value of the page's own under `key` (the console's unsent request, say).
pub fn save<T: Serialize>(key: &str, value: &T) -> Result<(), String> {
    if !available() {
        return Err("sessionStorage is not available".to_owned());
    }
    SessionStorage::set(key, value).map_err(|e| e.to_string())
}

/// The value under `key`, removed as it is read.
pub fn take<T: DeserializeOwned>(key: &str) -> Option<T> {
    if !available() {
        return None;
    }
    let value = SessionStorage::get(key).ok();
    SessionStorage::delete(key);
    value
}

/// Sign-out: nothing of the session survives in this tab.
pub fn clear() {
    if available() {
        SessionStorage::clear();
    }
}

/// Whether this tab already tried a silent sign-in (another tab said it was signed in): a
/// refusal must not start another, or the tab would loop through the identity provider.
pub fn silent_sign_in_tried() -> bool {
    available() && SessionStorage::get::<bool>(SILENT_TRIED).unwrap_or(false)
}

pub fn mark_silent_sign_in_tried() {
    if available() {
        let _ = SessionStorage::set(SILENT_TRIED, true);
    }
}
