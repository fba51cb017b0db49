//! Test support: an in-test OpenID issuer, the local stack, free ports, process spawning and
//! readiness waits.
//!
//! - [`TestIssuer`] serves OpenID discovery and a JWKS on a free loopback port, mints B2C-shaped
//!   RS256 tokens, rotates keys, goes down on demand and counts fetches.
//! - [`TestIssuer::attack_tokens`] builds one token per attack class of `platform.md`, so every
//!   validating layer (token-validation, hello, gateway) is tested against the same list.
//! - [`dev_tenant`] names the development tenant of `contract.md` once for every test.
//! - [`Wiring`] says which setting each server of the local stack gets (once: `scripts/dev` and the
//!   hardening suite read it through the `devstack` binary); [`Stack::spawn`] runs the three real
//!   binaries with it.
//! - [`InProcessServer`] runs a server library's `serve(config, listener, shutdown)` in the test.
//! - [`free_port`], [`wait_for_http_ok`] and [`ChildServer`] run real binaries in tests.
//!
//! Everything here panics on set-up failures: it is test code, and a failed set-up must fail the test.

mod attacks;
pub mod dev_tenant;
mod in_process;
mod issuer;
mod process;
mod reply;
mod stack;
pub mod wiring;

pub use attacks::Attack;
pub use dev_tenant::{
    API_CLIENT_ID, API_SCOPE, APP_ROLE, DAEMON_CLIENT_ID, POLICY, SPA_CLIENT_ID, TENANT, TENANT_ID,
};
pub use in_process::{InProcessServer, Shutdown};
pub use issuer::{TestIssuer, now};
pub use process::{
    ChildOutput, ChildServer, free_port, run_command_to_exit, run_to_exit, tail, wait_for_http_ok,
};
pub use reply::json_reply;
pub use stack::{Binaries, Ports, Server, Stack, StackOptions};
pub use wiring::{Environments, Trust, Wiring};
