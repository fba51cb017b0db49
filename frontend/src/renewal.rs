//! One renewal at a time. B2C rotates the refresh token on every use, and redeeming a used one
//! revokes the whole family (the user is signed out everywhere): two renewals must never both
//! send the same refresh token.
//!
//! Within the tab, the renewal timer and a 401-triggered retry share the renewal in flight:
//! later callers await the same promise and read the session it stored.
//!
//! Across tabs, sharing a refresh token is the hazard, not timing: a tab opened from this one
//! (the browser's "Duplicate", or `window.open`) starts with a copy of this tab's sessionStorage,
//! and from then on each tab only sees its own. Taking turns would not help: the second tab
//! would still redeem the token the first had already rotated. So a tab holds its session's
//! refresh-token family under a Web Lock (`navigator.locks`) for as long as the page lives, and
//! a tab that finds the lock of its copied session held drops the copy and signs in on its own
//! (a family of its own). Without Web Locks, tabs are not told apart.

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

/// The Web Lock on a refresh-token family, followed by the sign-in's nonce: a sign-in starts a
/// family, renewals keep its nonce. Not a secret from this origin, the only one that sees
/// lock names: its scripts can read sessionStorage as well.
const FAMILY: &str = "spa.family.";

thread_local! {
    /// The renewal in flight, by number (so only the one that finishes clears it).
    static IN_FLIGHT: RefCell<Option<(u64, Promise)>> = const { RefCell::new(None) };
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, options, callback)`: runs the callback with the lock (or,
    /// with `ifAvailable`, with `null` when another holder has it) and holds the lock until the
    /// promise the callback returns settles.
    #[wasm_bindgen(catch, js_namespace = ["navigator", "locks"], js_name = request)]
    fn request_lock(name: &str, options: &JsValue, callback: &JsValue) -> Result<Promise, JsValue>;
}

/// Takes the lock on `session`'s refresh-token family for the rest of this page's life. `false`
/// when another tab holds it: this tab's session is a copy of that tab's, whose refresh token
/// only that tab may redeem. `true` without Web Locks.
pub async fn hold_family(session: &Session) -> bool {
    let mut name = String::from(FAMILY);
    name.push_str(&session.nonce);
    let answer = Rc::new(RefCell::new(None::<js_sys::Function>));
    let told = Promise::new(&mut |resolve, _| {
        answer.replace(Some(resolve));
    });
    let granted = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let held = !lock.is_null();
        if let Some(resolve) = answer.take() {
            let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::from_bool(held));
        }
        // A promise that never settles keeps the lock until the page goes.
        if held {
            Promise::new(&mut |_, _| {}).into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    if request_lock(&name, &options, &granted).is_err() {
        return true;
    }
    JsFuture::from(told)
        .await
        .ok()
        .and_then(|held| held.as_bool())
        .unwrap_or(true)
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
            let promise = run(renewal);
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

/// The renewal as a promise that several callers can await.
fn run<F>(renewal: F) -> Promise
where
    F: Future<Output = Result<Session, SignInError>> + 'static,
{
    future_to_promise(async move {
        match renewal.await {
            Ok(_) => Ok(JsValue::UNDEFINED),
            Err(why) => Err(JsValue::from_str(&why.to_string())),
        }
    })
}
