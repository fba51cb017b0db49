//! The real `daemon` binary, as the Functions host runs it (no arguments, port in
//! `FUNCTIONS_CUSTOMHANDLER_PORT`), against an in-test token endpoint that counts its requests
//! and an in-test API that says which token it got: the token cache, its renewal, its reset on
//! the API's 401, the in-flight bound, and start-up refusals. Seed 004's whole chain (dev-idp,
//! gateway, hello) is in `backend/e2e/tests/daemon.rs`.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use testkit::{ChildServer, free_port, run_command_to_exit};

const BIN: &str = env!("CARGO_BIN_EXE_daemon");
const SECRET: &str = "handler-test-secret-0123456789";

/// The stand-ins: a token endpoint issuing `token-1`, `token-2`, … valid for `lifetime`, and an
/// API that refuses the tokens in `refused` (401) and answers `called with token-N` otherwise.
struct Remote {
    issued: AtomicU64,
    lifetime: u64,
    refused: Vec<String>,
    api_delay: Duration,
}

async fn token_endpoint(
    State(remote): State<Arc<Remote>>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    // client_secret_basic, as the oauth2 crate sends it by default.
    let basic = headers["authorization"].to_str().unwrap().to_owned();
    assert!(basic.starts_with("Basic "), "{basic}");
    assert!(body.contains("grant_type=client_credentials"), "{body}");
    assert!(
        body.contains("scope=api%3A%2F%2Fhello%2F.default"),
        "{body}"
    );
    let n = remote.issued.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(serde_json::json!({
        "access_token": format!("token-{n}"),
        "token_type": "Bearer",
        "expires_in": remote.lifetime,
        "ext_expires_in": remote.lifetime,
    }))
}

async fn api(State(remote): State<Arc<Remote>>, headers: HeaderMap) -> impl IntoResponse {
    tokio::time::sleep(remote.api_delay).await;
    let token = headers["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    if remote.refused.contains(&token) {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}"#,
        )
            .into_response();
    }
    format!("called with {token}").into_response()
}

struct Stack {
    remote: Arc<Remote>,
    base: String,
    _daemon: ChildServer,
}

async fn start(lifetime: u64, refused: &[&str], api_delay: Duration) -> Stack {
    let remote = Arc::new(Remote {
        issued: AtomicU64::new(0),
        lifetime,
        refused: refused.iter().map(|s| s.to_string()).collect(),
        api_delay,
    });
    let app = Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token_endpoint))
        .route("/api/hello", get(api))
        .with_state(remote.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let daemon = ChildServer::start(
        BIN,
        [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            (
                "DAEMON_TOKEN_URL",
                format!("{remote_url}/tenant/oauth2/v2.0/token"),
            ),
            ("DAEMON_CLIENT_ID", "daemon-app".to_owned()),
            ("DAEMON_CLIENT_SECRET", SECRET.to_owned()),
            ("DAEMON_SCOPE", "api://hello/.default".to_owned()),
            ("DAEMON_API_URL", format!("{remote_url}/api/hello")),
        ],
        &format!("{base}/healthz"),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    Stack {
        remote,
        base,
        _daemon: daemon,
    }
}

async fn call_hello(base: &str) -> (StatusCode, String) {
    let r = reqwest::get(format!("{base}/api/call-hello"))
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn one_token_serves_every_call_until_shortly_before_it_expires() {
    let stack = start(3600, &[], Duration::ZERO).await;
    for _ in 0..3 {
        assert_eq!(
            call_hello(&stack.base).await,
            (StatusCode::OK, "called with token-1".to_owned())
        );
    }
    assert_eq!(stack.remote.issued.load(Ordering::SeqCst), 1);

    // A 2 s token is renewed at half-life: after 1 s the next call asks for a new one.
    let short = start(2, &[], Duration::ZERO).await;
    assert_eq!(call_hello(&short.base).await.1, "called with token-1");
    assert_eq!(call_hello(&short.base).await.1, "called with token-1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call_hello(&short.base).await.1, "called with token-2");
    assert_eq!(short.remote.issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_the_api_refuses_is_dropped_and_the_next_call_gets_a_new_one() {
    let stack = start(3600, &["token-1"], Duration::ZERO).await;
    let (status, body) = call_hello(&stack.base).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["statusCode"], 502);
    assert_eq!(
        body["message"],
        "the API refused the token (401 Unauthorized): Unauthorized. Access token is missing or invalid."
    );
    assert_eq!(
        call_hello(&stack.base).await,
        (StatusCode::OK, "called with token-2".to_owned())
    );
    assert_eq!(stack.remote.issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn calls_in_flight_are_bounded_and_the_rest_get_503_at_once() {
    let stack = start(3600, &[], Duration::from_millis(1500)).await;
    let calls = (0..daemon::MAX_CALLS_IN_FLIGHT + 8).map(|_| {
        let url = format!("{}/api/call-hello", stack.base);
        tokio::spawn(async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status(), r.headers().get("retry-after").cloned())
        })
    });
    let mut statuses: HashMap<StatusCode, usize> = HashMap::new();
    for call in calls.collect::<Vec<_>>() {
        let (status, retry_after) = call.await.unwrap();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(retry_after.unwrap(), "1");
        }
        *statuses.entry(status).or_default() += 1;
    }
    assert_eq!(
        statuses[&StatusCode::OK],
        daemon::MAX_CALLS_IN_FLIGHT,
        "{statuses:?}"
    );
    assert_eq!(
        statuses[&StatusCode::SERVICE_UNAVAILABLE],
        8,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn only_get_on_the_function_and_404_elsewhere() {
    let stack = start(3600, &[], Duration::ZERO).await;
    let client = reqwest::Client::new();
    let post = client
        .post(format!("{}/api/call-hello", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let other = client
        .get(format!("{}/api/hello", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(stack.remote.issued.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_bad_setting_stops_it_with_one_line_naming_the_variable() {
    let good = [
        ("DAEMON_TOKEN_URL", "http://127.0.0.1:9/token"),
        ("DAEMON_CLIENT_ID", "daemon-app"),
        ("DAEMON_CLIENT_SECRET", SECRET),
        ("DAEMON_SCOPE", "api://hello/.default"),
        ("DAEMON_API_URL", "http://127.0.0.1:9/api/hello"),
    ];
    for (var, value) in [
        ("DAEMON_SCOPE", "api://hello/accessapp"),
        ("DAEMON_TOKEN_URL", "not a url"),
        ("DAEMON_CLIENT_SECRET", ""),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "port"),
    ] {
        let mut env: HashMap<&str, &str> = good.into_iter().collect();
        env.insert(var, value);
        for args in [&[][..], &["call"][..]] {
            let output = run_to_exit_with(args, &env).await;
            assert_eq!(output.status.code(), Some(2), "{var}={value} {args:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with(&format!("daemon: invalid setting {var}: ")),
                "{stderr}"
            );
            assert!(!stderr.contains(SECRET));
        }
    }
    let env: HashMap<&str, &str> = good.into_iter().collect();
    let output = run_to_exit_with(&["fetch"], &env).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .starts_with("daemon: usage: daemon [call]")
    );
}

/// The binary with exactly `env` (nothing inherited), until it exits.
async fn run_to_exit_with(args: &[&str], env: &HashMap<&str, &str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(BIN);
    command.args(args).env_clear().envs(env);
    run_command_to_exit(command, Duration::from_secs(20))
        .await
        .unwrap()
}
