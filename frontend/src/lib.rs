//! The SPA: sign in with Authorization Code + PKCE against Azure AD B2C (or the dev IdP, or any
//! OpenID provider), then call the API through the gateway with the access token.
//!
//! The protocol is plain Rust, unit-tested natively (`cargo test -p frontend`): [`pkce`],
//! [`flow`] (authorize URL, redirect checks, token forms) for either [`client`] (the SPA's
//! app registration or the developer console's), [`token`], [`id_token`], [`session`],
//! [`discovery`], [`config`], [`openapi`] (the console's reading of the API's document) and
//! [`status`] (every sentence the page shows), over
//! [`json`] (the browser's `JSON.parse` in the wasm) and [`secret`] (`crypto.getRandomValues`).
//! The browser half — the Leptos page ([`app`], and the developer console, [`console`]) and index.html's static stand-in for it until
//! it is ready ([`shell`]), sessionStorage ([`storage`]), the identity
//! provider's endpoints ([`auth`]), the API call ([`api`]) and the browser's `fetch` ([`fetch`])
//! — exists only on wasm32.

pub mod client;
pub mod config;
pub mod discovery;
pub mod flow;
pub mod id_token;
pub mod json;
pub mod openapi;
pub mod pkce;
pub mod profile;
pub mod secret;
pub mod session;
pub mod status;
pub mod token;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod auth;
#[cfg(target_arch = "wasm32")]
pub mod console;
#[cfg(target_arch = "wasm32")]
pub mod fetch;
#[cfg(target_arch = "wasm32")]
pub mod location;
#[cfg(target_arch = "wasm32")]
pub mod renewal;
#[cfg(target_arch = "wasm32")]
pub mod shell;
#[cfg(target_arch = "wasm32")]
pub mod storage;
#[cfg(target_arch = "wasm32")]
pub mod tabs;
