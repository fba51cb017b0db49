//! sessionStorage (through gloo-storage), the only place tokens and sign-in secrets live: gone
//! when the tab closes, invisible to other tabs, never sent to a server as a cookie would be.
//! Values are stored as JSON objects (serde), so a tampered or foreign entry reads as absent.

#[cfg(feature = "bench-without-gloo-storage")]
use crate::bench_storage::SessionStorage;
use crate::flow::PendingSignIn;
use crate::session::Session;
#[cfg(not(feature = "bench-without-gloo-storage"))]
use gloo_storage::{SessionStorage, Storage};

const PENDING: &str = "spa.signin.pending";
const SESSION: &str = "spa.session";
const SILENT_TRIED: &str = "spa.signin.silent";

/// gloo-storage throws when the browser denies sessionStorage (privacy settings, sandboxed
/// frames): every access asks first, and such a page simply has no session.
fn available() -> bool {
    web_sys::window()
        .and_then(|w| w.session_storage().ok().flatten())
        .is_some()
}

pub fn save_pending(pending: &PendingSignIn) -> Result<(), String> {
    if !available() {
        return Err("sessionStorage is not available".to_owned());
    }
    SessionStorage::set(PENDING, pending).map_err(|e| e.to_string())
}

/// The pending sign-in, removed as it is read: a state and verifier are good for one answer.
pub fn take_pending() -> Option<PendingSignIn> {
    if !available() {
        return None;
    }
    let pending = SessionStorage::get(PENDING).ok();
    SessionStorage::delete(PENDING);
    pending
}

pub fn load_session() -> Option<Session> {
    available().then(|| SessionStorage::get(SESSION).ok())?
}

pub fn save_session(session: &Session) -> Result<(), String> {
    if !available() {
        return Err("sessionStorage is not available".to_owned());
    }
    SessionStorage::set(SESSION, session).map_err(|e| e.to_string())
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
