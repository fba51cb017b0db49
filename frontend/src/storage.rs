//! sessionStorage, the only place tokens and sign-in secrets live: gone when the tab closes,
//! invisible to other tabs, never sent to a server as a cookie would be.

use crate::flow::PendingSignIn;
use crate::session::Session;
use gloo_storage::{SessionStorage, Storage};

const PENDING: &str = "spa.signin.pending";
const SESSION: &str = "spa.session";

pub fn save_pending(pending: &PendingSignIn) -> Result<(), String> {
    SessionStorage::set(PENDING, pending).map_err(|e| format!("sessionStorage: {e}"))
}

/// The pending sign-in, removed as it is read: a state and verifier are good for one answer.
pub fn take_pending() -> Option<PendingSignIn> {
    let pending = SessionStorage::get(PENDING).ok();
    SessionStorage::delete(PENDING);
    pending
}

pub fn load_session() -> Option<Session> {
    SessionStorage::get(SESSION).ok()
}

pub fn save_session(session: &Session) -> Result<(), String> {
    SessionStorage::set(SESSION, session).map_err(|e| format!("sessionStorage: {e}"))
}

/// Sign-out: nothing of the session survives in this tab.
pub fn clear() {
    SessionStorage::clear();
}
