//! Types that cross the wire between the browser and the backend.
//!
//! Everything here compiles for both `wasm32-unknown-unknown` (the SPA) and native targets
//! (gateway, hello function, dev identity provider), so the two sides cannot drift apart:
//! a field renamed here is renamed everywhere at compile time.

pub mod api;
pub mod spa_config;
pub mod trace_context;

pub use api::{ApiError, Caller, HelloResponse};
pub use spa_config::{ConsoleConfig, SpaConfig, SpaConfigError, UserFlows};
