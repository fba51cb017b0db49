//! The dev IdP's HTTP endpoints that parse forms and query strings, driven through its real router (no network):
//! arbitrary query strings and bodies must get an answer below 500, never a panic.
//!
//! Input layout: the first byte picks the endpoint, the rest up to the first newline is the query string, and
//! everything after it is the request body (sent as a urlencoded form).
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use dev_idp::config::Config;
use dev_idp::{AppState, router};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ENDPOINTS: &[(Method, &str)] = &[
    (
        Method::POST,
        "/devtenant.onmicrosoft.com/B2C_1_signupsignin/oauth2/v2.0/token",
    ),
    (Method::POST, "/devtenant.onmicrosoft.com/oauth2/v2.0/token"),
    (
        Method::GET,
        "/devtenant.onmicrosoft.com/B2C_1_signupsignin/oauth2/v2.0/authorize",
    ),
    (
        Method::POST,
        "/devtenant.onmicrosoft.com/B2C_1_signupsignin/oauth2/v2.0/authorize",
    ),
    (
        Method::POST,
        "/devtenant.onmicrosoft.com/B2C_1_signupsignin/oauth2/v2.0/authorize/signup",
    ),
    (
        Method::GET,
        "/devtenant.onmicrosoft.com/v2.0/.well-known/openid-configuration",
    ),
    (
        Method::GET,
        "/devtenant.onmicrosoft.com/discovery/v2.0/keys",
    ),
    (
        Method::GET,
        "/devtenant.onmicrosoft.com/B2C_1_signupsignin/oauth2/v2.0/logout",
    ),
    (
        Method::GET,
        "/devtenant.onmicrosoft.com/B2C_1_signupsignin/openid/v2.0/userinfo",
    ),
    (
        Method::GET,
        "/devtenant.onmicrosoft.com/B2C_1_passwordreset/oauth2/v2.0/authorize",
    ),
    (
        Method::POST,
        "/devtenant.onmicrosoft.com/B2C_1_passwordreset/oauth2/v2.0/authorize/reset/send",
    ),
    (
        Method::POST,
        "/devtenant.onmicrosoft.com/B2C_1_passwordreset/oauth2/v2.0/authorize/reset/verify",
    ),
    (
        Method::POST,
        "/devtenant.onmicrosoft.com/B2C_1_passwordreset/oauth2/v2.0/authorize/reset/password",
    ),
    (
        Method::GET,
        "/devtenant.onmicrosoft.com/B2C_1_profileedit/oauth2/v2.0/authorize",
    ),
    (
        Method::POST,
        "/devtenant.onmicrosoft.com/B2C_1_profileedit/oauth2/v2.0/authorize/profile",
    ),
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Router,
    _data: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let data = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config::builtin().expect("built-in configuration");
        config.data_dir = data.path().to_path_buf();
        let state =
            AppState::new(config, SocketAddr::from(([127, 0, 0, 1], 7010))).expect("dev IdP state");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Fixture {
            runtime,
            app: router(Arc::new(state)),
            _data: data,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (method, path) = &ENDPOINTS[usize::from(pick) % ENDPOINTS.len()];
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    // Only what hyper would accept as a request target reaches the router; other bytes never get this far.
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let uri = if query.is_empty() {
        (*path).to_owned()
    } else {
        format!("{path}?{query}")
    };
    let Ok(request) = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let f = fixture();
    let response = f.runtime.block_on(f.app.clone().oneshot(request));
    let Ok(response) = response;
    assert!(
        !response.status().is_server_error(),
        "{method} {path} answered {} to a malformed request",
        response.status()
    );
});
