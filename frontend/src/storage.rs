//! sessionStorage, the only place tokens and sign-in secrets live: gone when the tab closes,
//! invisible to other tabs, never sent to a server as a cookie would be.

use crate::flow::PendingSignIn;
use crate::session::Session;
use web_sys::Storage;

const PENDING: &str = "spa.signin.pending";
const SESSION: &str = "spa.session";

fn storage() -> Option<Storage> {
    web_sys::window()?.session_storage().ok()?
}

fn get(key: &str) -> Option<String> {
    storage()?.get_item(key).ok()?
}

fn set(key: &str, value: &str) -> Result<(), String> {
    storage()
        .and_then(|s| s.set_item(key, value).ok())
        .ok_or_else(|| "sessionStorage is not available".to_owned())
}

pub fn save_pending(pending: &PendingSignIn) -> Result<(), String> {
    set(PENDING, &pending.to_json())
}

/// The pending sign-in, removed as it is read: a state and verifier are good for one answer.
pub fn take_pending() -> Option<PendingSignIn> {
    let pending = get(PENDING);
    if let Some(storage) = storage() {
        let _ = storage.remove_item(PENDING);
    }
    PendingSignIn::from_json(&pending?)
}

pub fn load_session() -> Option<Session> {
    Session::from_json(&get(SESSION)?)
}

pub fn save_session(session: &Session) -> Result<(), String> {
    set(SESSION, &session.to_json())
}

/// Sign-out: nothing of the session survives in this tab.
pub fn clear() {
    if let Some(storage) = storage() {
        let _ = storage.clear();
    }
}
