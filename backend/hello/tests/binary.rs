//! The real `hello` binary: start-up, first answer, and bad settings.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use testkit::{API_CLIENT_ID, API_SCOPE, ChildServer, TestIssuer, free_port, run_to_exit};

const BIN: &str = env!("CARGO_BIN_EXE_hello");
const KEY: &str = "binary-test-key-0123456789abcdef";

#[tokio::test]
async fn starts_fast_and_answers_hello() {
    let issuer = TestIssuer::start().await;
    let started = Instant::now();
    let (_server, port) = start(&issuer, ("HELLO_ALLOWED_IPS", "127.0.0.1/32")).await;
    let ready = started.elapsed();
    println!("hello binary ready after {ready:?}");
    assert!(ready < Duration::from_secs(3));
    let body: shared::HelloResponse = hello(&issuer, port).await.json().await.unwrap();
    assert_eq!(body.caller.subject, "user-1");
}

/// The binary with the settings every test here needs plus `extra`, ready on a free port.
async fn start(issuer: &TestIssuer, extra: (&'static str, &str)) -> (ChildServer, u16) {
    let port = free_port();
    let server = ChildServer::start(
        BIN,
        [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("HELLO_FUNCTION_KEYS", KEY.to_string()),
            ("EASYAUTH_OPENID_CONFIG_URL", issuer.openid_config_url()),
            ("EASYAUTH_AUDIENCES", API_CLIENT_ID.to_string()),
            (extra.0, extra.1.to_string()),
        ],
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    (server, port)
}

/// `GET /api/hello` with the key and a valid user token; asserts the 200.
async fn hello(issuer: &TestIssuer, port: u16) -> reqwest::Response {
    let token = issuer.mint(&issuer.user_claims("user-1", API_CLIENT_ID, &[API_SCOPE]));
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/hello?code={KEY}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// `HELLO_WORKER_THREADS` gives the function more than the default one thread.
#[tokio::test]
async fn serves_on_the_worker_threads_it_is_given() {
    let issuer = TestIssuer::start().await;
    let (server, port) = start(&issuer, ("HELLO_WORKER_THREADS", "3")).await;
    let pid = server.id().unwrap();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    // The main thread blocks on the runtime; three workers run its tasks.
    assert!(threads >= 4, "{threads} threads");
    hello(&issuer, port).await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_setting_exits_2_with_one_line_naming_it() {
    for (variable, value) in [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "not-a-port"),
        ("HELLO_FUNCTION_KEYS", ""),
        ("EASYAUTH_UNAUTHENTICATED_ACTION", "Maybe"),
        ("HELLO_ALLOWED_IPS", "10.0.0.0/99"),
        ("RUST_LOG", "hello=notalevel"),
        ("HELLO_WORKER_THREADS", "0"),
    ] {
        let mut env = vec![
            ("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string()),
            ("HELLO_FUNCTION_KEYS", KEY.to_string()),
            (
                "EASYAUTH_OPENID_CONFIG_URL",
                "http://127.0.0.1:9/.well-known/openid-configuration".to_string(),
            ),
            ("EASYAUTH_AUDIENCES", API_CLIENT_ID.to_string()),
        ];
        env.retain(|(k, _)| *k != variable);
        env.push((variable, value.to_string()));
        let output = run_to_exit(BIN, env, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}

#[tokio::test]
async fn a_missing_required_setting_is_named() {
    let output = run_to_exit(
        BIN,
        [
            ("HELLO_FUNCTION_KEYS", KEY),
            ("EASYAUTH_AUDIENCES", API_CLIENT_ID),
            ("EASYAUTH_OPENID_CONFIG_URL", ""),
        ],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("EASYAUTH_OPENID_CONFIG_URL"));
}

/// Not UTF-8 is not "unset": the old reading (`env::var(..).ok()`) started without the allow-list.
#[cfg(unix)]
#[tokio::test]
async fn a_setting_that_is_not_utf8_stops_the_start_naming_it() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let port = free_port().to_string();
    let output = run_to_exit(
        BIN,
        [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", OsString::from(port)),
            ("HELLO_FUNCTION_KEYS", KEY.into()),
            (
                "EASYAUTH_OPENID_CONFIG_URL",
                "http://127.0.0.1:9/.well-known/openid-configuration".into(),
            ),
            ("EASYAUTH_AUDIENCES", API_CLIENT_ID.into()),
            (
                "HELLO_ALLOWED_IPS",
                OsString::from_vec(b"10.0.0.0/8\xff".to_vec()),
            ),
        ],
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("HELLO_ALLOWED_IPS"), "{stderr}");
}
