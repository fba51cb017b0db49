//! The SPA's other open tabs, over a `BroadcastChannel` of this origin: sign-out reaches every
//! tab, and a new tab learns that one is signed in (and then signs in silently through the
//! identity provider's own session). Only the words below cross the channel, never a token:
//! each tab's tokens stay in its own sessionStorage.

use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use web_sys::{BroadcastChannel, MessageEvent};

const CHANNEL: &str = "spa.session";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// A tab signed out: every tab drops its session.
    SignedOut,
    /// A new tab without a session asks whether any tab is signed in.
    Anyone,
    /// The answer of a signed-in tab.
    SignedIn,
}

impl Message {
    fn word(self) -> &'static str {
        match self {
            Self::SignedOut => "signed-out",
            Self::Anyone => "anyone-signed-in?",
            Self::SignedIn => "signed-in",
        }
    }

    fn from_word(word: &str) -> Option<Self> {
        [Self::SignedOut, Self::Anyone, Self::SignedIn]
            .into_iter()
            .find(|m| m.word() == word)
    }
}

thread_local! {
    static OPEN: RefCell<Option<BroadcastChannel>> = const { RefCell::new(None) };
}

/// Joins the channel; `handler` gets every message another tab sends. Without BroadcastChannel
/// (very old browsers) tabs simply stay independent.
pub fn listen(handler: impl Fn(Message) + 'static) {
    let Ok(channel) = BroadcastChannel::new(CHANNEL) else {
        return;
    };
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(message) = event
            .data()
            .as_string()
            .and_then(|w| Message::from_word(&w))
        {
            handler(message);
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // One listener for the page's lifetime.
    on_message.forget();
    OPEN.set(Some(channel));
}

/// Sends `message` to every other tab of the SPA.
pub fn tell(message: Message) {
    OPEN.with_borrow(|channel| {
        if let Some(channel) = channel {
            let _ = channel.post_message(&JsValue::from_str(message.word()));
        }
    });
}
