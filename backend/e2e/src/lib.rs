//! End-to-end tests and the deployment's one Rust tool.
//!
//! - `tests/browser.rs`: the seed's scenario in headless Chromium (chromedriver + fantoccini)
//!   against the whole stack on free loopback ports — the release `dist/` served as the static
//!   site, the dev IdP, the hello function and the gateway. Needs `trunk build --release` first.
//! - `tests/static_site.rs`: `deploy/static-site` against Azurite (`npm install` at the root).
//! - `tests/function_app.rs`: `deploy/function-app`'s zip, started as the Functions host does.
//! - `src/bin/spa-config.rs`: writes and validates `config.json` for `deploy/static-site`.
//!
//! The tests build the server binaries they start (`cargo build -p <name>` with the test's own
//! profile; a no-op when they are fresh) and leave logs, and on failure screenshots and the
//! browser console, in `test-output/`.
