//! Shared by the gateway's integration tests: an in-process gateway on 127.0.0.1:0, an echo
//! backend standing in for the function, and a Redis server.
#![allow(clippy::unwrap_used, dead_code)]

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use gateway::Gateway;
use gateway::config::Config;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::{API_CLIENT_ID, API_SCOPE, ChildOutput, ChildServer, InProcessServer, TestIssuer};
use tokio::net::TcpListener;

/// The key the gateway sends upstream in these tests; no response may ever contain it.
pub const FUNCTION_KEY: &str = "gw-test-function-key-6f1d2c9a8b7e";
pub const SPA_ORIGIN: &str = "http://127.0.0.1:8080";
pub const OTHER_ORIGIN: &str = "https://evil.example";

/// The settings `scripts/dev` would give, pointed at `issuers` and `backend_url`.
pub fn env_for(issuers: &[&TestIssuer], backend_url: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("GATEWAY_BACKEND_URL", backend_url.to_owned()),
        ("GATEWAY_BACKEND_FUNCTION_KEY", FUNCTION_KEY.to_owned()),
        (
            "GATEWAY_ALLOWED_ORIGINS",
            format!("{SPA_ORIGIN},http://localhost:8080"),
        ),
        (
            "GATEWAY_OPENID_CONFIG_URLS",
            issuers
                .iter()
                .map(|i| i.openid_config_url())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("GATEWAY_AUDIENCES", API_CLIENT_ID.to_owned()),
    ])
}

pub fn config_for(issuer: &TestIssuer, backend_url: &str) -> Config {
    Config::from_source(&env_for(&[issuer], backend_url)).unwrap()
}

/// A gateway served in this process; stops when dropped.
pub struct RunningGateway {
    pub url: String,
    pub gateway: Gateway,
    _server: InProcessServer,
}

impl RunningGateway {
    pub fn hello_url(&self) -> String {
        format!("{}/api/hello", self.url)
    }

    /// Waits until the gateway's shared counters are connected to Redis (without Redis: at once).
    pub async fn wait_for_redis(&self) {
        let Some(redis) = self.gateway.redis.clone() else {
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !redis.is_connected() {
            assert!(
                std::time::Instant::now() < deadline,
                "the gateway never connected to Redis"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub async fn start_gateway(config: Config) -> RunningGateway {
    let gateway = Gateway::new(&config).await.unwrap();
    let served = gateway.clone();
    let server =
        InProcessServer::start(|listener, shutdown| gateway::serve(served, listener, shutdown))
            .await;
    RunningGateway {
        url: server.url.clone(),
        gateway,
        _server: server,
    }
}

/// Stands in for the function: answers `GET /api/hello` with what it received, sleeps when
/// asked (`x-test-sleep-ms`), and counts calls. It reports whether the function key was right
/// instead of echoing it, so a response containing the key would be the gateway's fault.
pub struct EchoBackend {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl EchoBackend {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn echo(
    State(hits): State<Arc<AtomicUsize>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> impl IntoResponse {
    hits.fetch_add(1, Ordering::SeqCst);
    let headers: &HeaderMap = request.headers();
    if let Some(ms) = headers
        .get("x-test-sleep-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let keys: Vec<&str> = headers
        .get_all("x-functions-key")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut seen = serde_json::Map::new();
    for (name, value) in headers {
        if name != "x-functions-key" {
            seen.insert(
                name.to_string(),
                Value::String(value.to_str().unwrap_or("<binary>").to_owned()),
            );
        }
    }
    let body = json!({
        "function_key_ok": keys == [FUNCTION_KEY],
        "function_key_count": keys.len(),
        "query": request.uri().query(),
        "headers": seen,
        "peer": peer.ip().to_string(),
    });
    (
        // Backends' own CORS headers must not leak through the gateway's policy.
        [("access-control-allow-origin", "*"), ("x-backend", "echo")],
        Json(body),
    )
}

pub async fn start_echo_backend() -> EchoBackend {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/api/hello", get(echo))
        .with_state(hits.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    EchoBackend { url, hits }
}

/// A URL where nothing listens.
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}", testkit::free_port())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A fresh user access token for `sub`.
pub fn token(issuer: &TestIssuer, sub: &str) -> String {
    issuer.mint(&issuer.user_claims(sub, API_CLIENT_ID, &[API_SCOPE]))
}

/// Status, headers and body text, after checking that the function key appears in neither.
pub async fn read(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, String) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    for (name, value) in &headers {
        assert!(
            !value
                .as_bytes()
                .windows(FUNCTION_KEY.len())
                .any(|w| w == FUNCTION_KEY.as_bytes()),
            "function key leaked in response header {name}"
        );
    }
    assert!(!body.contains(FUNCTION_KEY), "function key leaked in body");
    (status, headers, body)
}

pub fn json_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Asserts APIM's error shape and returns the message.
pub fn assert_api_error(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> String {
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/json",
        "{body}"
    );
    let json = json_body(body);
    assert_eq!(json["statusCode"], status, "{body}");
    assert_eq!(json.as_object().unwrap().len(), 2, "{body}");
    json["message"].as_str().unwrap().to_owned()
}

/// `redis-server` on a free loopback port, without persistence; killed when dropped.
pub struct RedisServer {
    pub url: String,
    child: tokio::process::Child,
}

impl RedisServer {
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGSTOP: the server keeps its connections and answers nothing until [`Self::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }
}

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// `None` (with a loud message) only when the redis-server binary is absent.
pub async fn start_redis() -> Option<RedisServer> {
    if !std::path::Path::new(REDIS_SERVER).exists() {
        eprintln!(
            "\n!!!!! SKIPPED: {REDIS_SERVER} is not installed; the shared-counter tests did not run !!!!!\n"
        );
        return None;
    }
    let port = testkit::free_port();
    let child = tokio::process::Command::new(REDIS_SERVER)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(RedisServer {
        url: format!("redis://127.0.0.1:{port}/"),
        child,
    })
}

/// The real hello function in process, trusting `issuer` and the gateway's function key; it
/// stops when the returned server is dropped.
pub async fn start_hello(issuer: &TestIssuer) -> (String, InProcessServer) {
    let vars = std::collections::HashMap::from([
        ("HELLO_FUNCTION_KEYS", FUNCTION_KEY.to_owned()),
        ("EASYAUTH_OPENID_CONFIG_URL", issuer.openid_config_url()),
        ("EASYAUTH_AUDIENCES", API_CLIENT_ID.to_owned()),
        ("EASYAUTH_UNAUTHENTICATED_ACTION", "Return401".to_owned()),
        ("HELLO_ALLOWED_IPS", "127.0.0.1/32".to_owned()),
    ]);
    let config = hello::Config::from_source(&vars).unwrap();
    let server =
        InProcessServer::start(|listener, shutdown| hello::serve(config, listener, shutdown)).await;
    (server.url.clone(), server)
}

/// The binary at `bin` with exactly `env` (nothing inherited), its output kept for
/// `stop_and_read`; killed when dropped.
pub fn spawn_logged(bin: &str, env: &[(&'static str, String)]) -> ChildServer {
    let mut command = tokio::process::Command::new(bin);
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    ChildServer::spawn(command, bin, ChildOutput::Captured)
}

/// Where a test's own tracing subscriber writes: every line, kept for the test to read.
#[derive(Clone, Default)]
pub struct LogSink(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogSink {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
