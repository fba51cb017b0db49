//! Runs the function in process on 127.0.0.1:0 against an in-test issuer.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hello::{AppState, Config};
use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer};

pub const KEY: &str = "test-function-key-0123456789abcdef";
pub const SECOND_KEY: &str = "second-function-key-0123456789abc";

pub struct Function {
    pub issuer: TestIssuer,
    pub base: String,
    pub client: reqwest::Client,
    pub state: std::sync::Arc<AppState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Function {
    fn drop(&mut self) {
        self.server.abort();
    }
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(config).await;
    let app = hello::router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Function {
        issuer,
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        server,
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
