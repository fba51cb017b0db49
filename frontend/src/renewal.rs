//! One renewal at a time. B2C rotates the refresh token on every use, and redeeming a used one
//! revokes the whole family (the user is signed out everywhere): the renewal timer and a
//! 401-triggered retry must never both send the same refresh token.
//!
//! Within the tab, a renewal in flight is shared: later callers await the same promise and read
//! the session it stored. Across tabs of this origin (a duplicated tab starts with a copy of
//! this one's sessionStorage), the Web Locks API's `navigator.locks` serialises renewals under
//! one lock name; where the browser has no Web Locks, the in-tab sharing still holds.

use crate::client::SPA_KEYS;
use crate::flow::SignInError;
use crate::session::Session;
use crate::storage;
use js_sys::Promise;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

/// The Web Lock every tab of the origin takes to renew.
const LOCK: &str = "spa.renewal";

thread_local! {
    /// The renewal in flight, by number (so only the one that finishes clears it).
    static IN_FLIGHT: RefCell<Option<(u64, Promise)>> = const { RefCell::new(None) };
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, callback)`: runs the callback when the lock is granted,
    /// holds it until the promise the callback returns settles, and resolves with that promise.
    #[wasm_bindgen(catch, js_namespace = ["navigator", "locks"], js_name = request)]
    fn request_lock(name: &str, callback: &JsValue) -> Result<Promise, JsValue>;
}

/// Runs `renewal` unless one is already in flight in this tab, in which case its outcome is
/// this call's too. `renewal` stores the renewed session; it is read back from sessionStorage.
pub async fn one_at_a_time<F>(renewal: F) -> Result<Session, SignInError>
where
    F: Future<Output = Result<Session, SignInError>> + 'static,
{
    let (number, promise) = match IN_FLIGHT.with_borrow(Clone::clone) {
        Some(in_flight) => in_flight,
        None => {
            let number = NEXT.replace(NEXT.get().wrapping_add(1));
            let promise = under_lock(renewal);
            IN_FLIGHT.set(Some((number, promise.clone())));
            (number, promise)
        }
    };
    let outcome = JsFuture::from(promise).await;
    IN_FLIGHT.with_borrow_mut(|slot| {
        if slot.as_ref().is_some_and(|(n, _)| *n == number) {
            *slot = None;
        }
    });
    match outcome {
        Ok(_) => storage::load_session(SPA_KEYS)
            .ok_or_else(|| SignInError::Token("the renewed session was not kept".to_owned())),
        Err(why) => Err(SignInError::Token(
            why.as_string()
                .unwrap_or_else(|| "the renewal failed".to_owned()),
        )),
    }
}

/// The renewal as a promise that runs once the Web Lock is ours (at once without Web Locks).
fn under_lock<F>(renewal: F) -> Promise
where
    F: Future<Output = Result<Session, SignInError>> + 'static,
{
    let slot = Rc::new(Cell::new(Some(renewal)));
    let granted = {
        let slot = slot.clone();
        Closure::once_into_js(move |_lock: JsValue| run(slot.take()))
    };
    request_lock(LOCK, &granted).unwrap_or_else(|_| run(slot.take()))
}

fn run<F>(renewal: Option<F>) -> Promise
where
    F: Future<Output = Result<Session, SignInError>> + 'static,
{
    future_to_promise(async move {
        let renewal = renewal.ok_or_else(|| JsValue::from_str("the renewal already ran"))?;
        match renewal.await {
            Ok(_) => Ok(JsValue::UNDEFINED),
            Err(why) => Err(JsValue::from_str(&why.to_string())),
        }
    })
}
