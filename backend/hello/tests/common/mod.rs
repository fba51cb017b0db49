//! Runs the function in process on 127.0.0.1:0 against an in-test issuer.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use hello::{AppState, Config};
use testkit::{API_CLIENT_ID, API_SCOPE, InProcessServer, TestIssuer};

pub const KEY: &str = "test-function-key-0123456789abcdef";
pub const SECOND_KEY: &str = "second-function-key-0123456789abc";

pub struct Function {
    pub issuer: TestIssuer,
    pub base: String,
    pub client: reqwest::Client,
    pub state: std::sync::Arc<AppState>,
    _server: InProcessServer,
}

/// Settings as the environment would give them, on top of working defaults for `issuer`.
pub fn settings(issuer: &TestIssuer, extra: &[(&'static str, &str)]) -> Config {
    let mut vars: HashMap<&'static str, String> = HashMap::from([
        ("HELLO_FUNCTION_KEYS", format!("{KEY},{SECOND_KEY}")),
        ("EASYAUTH_OPENID_CONFIG_URL", issuer.openid_config_url()),
        ("EASYAUTH_AUDIENCES", API_CLIENT_ID.into()),
    ]);
    for (k, v) in extra {
        vars.insert(k, (*v).into());
    }
    Config::from_source(&vars).unwrap()
}

pub async fn start(extra: &[(&'static str, &str)]) -> Function {
    let issuer = TestIssuer::start().await;
    let config = settings(&issuer, extra);
    start_with(issuer, config).await
}

pub async fn start_with(issuer: TestIssuer, config: Config) -> Function {
    let function = start_unready(issuer, config).await;
    function
        .state
        .validator
        .wait_for_first_fetch(Duration::from_secs(10))
        .await;
    function
}

/// Serving, without waiting for the IdP's metadata and keys (as right after a real start).
pub async fn start_unready(issuer: TestIssuer, config: Config) -> Function {
    let state = AppState::new(config).await;
    let served = state.clone();
    let server = InProcessServer::start_unready(|listener, shutdown| {
        hello::serve_state(served, listener, shutdown)
    })
    .await;
    Function {
        issuer,
        base: server.url.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        _server: server,
    }
}

impl Function {
    pub fn user_token(&self) -> String {
        self.issuer.mint(
            &self
                .issuer
                .user_claims("user-1", API_CLIENT_ID, &[API_SCOPE]),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET /api/hello with the key header and no token.
    pub async fn hello_without_token(&self) -> reqwest::Response {
        self.client
            .get(self.url("/api/hello"))
            .header("x-functions-key", KEY)
            .send()
            .await
            .unwrap()
    }

    /// GET /api/hello with the key header and the token.
    pub async fn hello(&self, token: &str) -> reqwest::Response {
        self.client
            .get(self.url("/api/hello"))
            .header("x-functions-key", KEY)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}
