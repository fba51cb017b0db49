//! The SPA (skeleton; see issue 7).
use leptos::prelude::*;

fn main() {
    mount_to_body(|| view! { <p>"Please sign in to continue"</p> });
}
