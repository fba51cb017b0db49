//! Products and subscription keys (`GATEWAY_PRODUCTS`) driven over HTTP: APIM's 401s, the
//! per-subscription rate limit and quota, usage on the admin port, Redis sharing, SIGHUP.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gateway::config::Config;
use std::io::{Read, Write};
use std::time::Duration;
use testkit::TestIssuer;

const DEV_KEY: &str = "contoso-dev-primary-0001";
const DEV_KEY_2: &str = "contoso-dev-secondary-02";
const OTHER_KEY: &str = "fabrikam-primary-key-0003";
const SUSPENDED_KEY: &str = "suspended-primary-key-04";

const MISSING: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
const INVALID: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

/// `tests/products.toml` with the product's `rate_limit` and `quota` set.
fn products(rate_limit: &str, quota: &str) -> String {
    include_str!("products.toml")
        .replace(
            "rate_limit = \"100/60\"",
            &format!("rate_limit = \"{rate_limit}\""),
        )
        .replace("quota = \"10000/86400\"", &format!("quota = \"{quota}\""))
}

/// A file that lives as long as the test.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(text: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("gateway-products-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn config_with(
    issuer: &TestIssuer,
    backend: &str,
    file: &TempFile,
    extra: &[(&'static str, String)],
) -> Config {
    let mut env = env_for(&[issuer], backend);
    env.insert("GATEWAY_PRODUCTS", file.path());
    env.extend(extra.iter().cloned());
    Config::from_source(&env).unwrap()
}

/// An issuer, the echo backend and an in-process gateway with `products(rate_limit, quota)`,
/// whose file lives as long as the last.
async fn set_up(
    rate_limit: &str,
    quota: &str,
) -> (TestIssuer, EchoBackend, RunningGateway, TempFile) {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let file = TempFile::new(&products(rate_limit, quota));
    let gw = start_gateway(config_with(&issuer, &backend.url, &file, &[])).await;
    (issuer, backend, gw, file)
}

/// The real binary with exactly `env` and `args`, to its exit.
async fn run_binary(args: &[&str], env: &[(&'static str, String)]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap()
}

async fn call(
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client().get(url).header("origin", SPA_ORIGIN);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request.send().await.unwrap()).await
}

/// APIM's error body, with the CORS headers every error carries.
fn assert_refusal(answer: &(u16, reqwest::header::HeaderMap, String), status: u16) -> String {
    let (got, headers, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_api_error(status, headers, body)
}

#[tokio::test]
async fn missing_unknown_and_suspended_keys_are_refused_before_validate_jwt() {
    let (issuer, backend, gw, _file) = set_up("100/60", "1000/3600").await;
    let token = token(&issuer, "alice");
    let url = gw.hello_url();

    let missing = call(&url, Some(&token), &[]).await;
    assert_eq!(assert_refusal(&missing, 401), MISSING);
    // The key in spellings APIM does not read is no key at all.
    for (name, value) in [
        ("subscription-key", DEV_KEY),
        ("x-subscription-key", DEV_KEY),
        ("ocp-apim-key", DEV_KEY),
        (
            "cookie",
            "Ocp-Apim-Subscription-Key=contoso-dev-primary-0001",
        ),
    ] {
        let answer = call(&url, Some(&token), &[(name, value)]).await;
        assert_eq!(assert_refusal(&answer, 401), MISSING, "key in {name}");
    }
    for query in [
        "ocp-apim-subscription-key",
        "subscription_key",
        "subscriptionkey",
        "key",
    ] {
        let answer = call(&format!("{url}?{query}={DEV_KEY}"), Some(&token), &[]).await;
        assert_eq!(assert_refusal(&answer, 401), MISSING, "key in ?{query}");
    }

    for key in [
        "not-a-key-of-anyone-0000",
        SUSPENDED_KEY,
        &DEV_KEY[..DEV_KEY.len() - 1],
        "",
    ] {
        let answer = call(&url, Some(&token), &[("Ocp-Apim-Subscription-Key", key)]).await;
        assert_eq!(assert_refusal(&answer, 401), INVALID, "key {key:?}");
        let answer = call(&format!("{url}?subscription-key={key}x"), Some(&token), &[]).await;
        assert_eq!(assert_refusal(&answer, 401), INVALID, "query key {key:?}");
    }
    // Two different keys in one call are not a choice the gateway makes.
    let request = client()
        .get(&url)
        .bearer_auth(&token)
        .header("Ocp-Apim-Subscription-Key", DEV_KEY)
        .header("Ocp-Apim-Subscription-Key", OTHER_KEY);
    let (status, _, body) = read(request.send().await.unwrap()).await;
    assert_eq!(
        (status, json_body(&body)["message"].as_str()),
        (401, Some(INVALID))
    );

    // The subscription check runs before validate-jwt: no token gets the subscription message…
    let answer = call(&url, None, &[]).await;
    assert_eq!(assert_refusal(&answer, 401), MISSING);
    // …and a valid key without a token gets validate-jwt's.
    let answer = call(&url, None, &[("Ocp-Apim-Subscription-Key", DEV_KEY)]).await;
    assert_eq!(
        assert_refusal(&answer, 401),
        "Unauthorized. Access token is missing or invalid."
    );
    assert_eq!(backend.hits(), 0, "a refused call reached the function");
}

#[tokio::test]
async fn either_key_works_and_neither_reaches_the_function() {
    let (issuer, backend, gw, _file) = set_up("100/60", "1000/3600").await;
    let token = token(&issuer, "alice");

    let (status, headers, body) = call(
        &gw.hello_url(),
        Some(&token),
        &[("Ocp-Apim-Subscription-Key", DEV_KEY)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-ratelimit-limit-subscription"], "100");
    assert_eq!(headers["x-ratelimit-remaining-subscription"], "99");
    let seen = json_body(&body);
    assert!(seen["headers"].get("ocp-apim-subscription-key").is_none());

    let (status, headers, body) = call(
        &format!("{}?a=1&subscription-key={DEV_KEY_2}", gw.hello_url()),
        Some(&token),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Both keys are one subscription: one budget.
    assert_eq!(headers["x-ratelimit-remaining-subscription"], "98");
    let seen = json_body(&body);
    assert_eq!(seen["query"], "a=1");
    assert!(!body.contains(DEV_KEY_2));
    assert_eq!(backend.hits(), 2);
}

#[tokio::test]
async fn without_products_a_key_is_not_needed_and_still_not_forwarded() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let token = token(&issuer, "alice");
    let (status, headers, body) = call(
        &format!("{}?subscription-key={DEV_KEY}", gw.hello_url()),
        Some(&token),
        &[("Ocp-Apim-Subscription-Key", DEV_KEY)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("x-ratelimit-limit-subscription").is_none());
    assert!(!body.contains(DEV_KEY), "{body}");
}

#[tokio::test]
async fn an_open_product_lets_calls_without_a_key_through_but_checks_a_key_that_is_sent() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let file = TempFile::new(&products("100/60", "1000/3600").replace(
        "name = \"unlimited\"\n",
        "name = \"unlimited\"\nsubscription_required = false\n",
    ));
    let gw = start_gateway(config_with(&issuer, &backend.url, &file, &[])).await;
    let token = token(&issuer, "alice");
    let (status, _, body) = call(&gw.hello_url(), Some(&token), &[]).await;
    assert_eq!(status, 200, "{body}");
    let answer = call(
        &gw.hello_url(),
        Some(&token),
        &[("Ocp-Apim-Subscription-Key", SUSPENDED_KEY)],
    )
    .await;
    assert_eq!(assert_refusal(&answer, 401), INVALID);
}

#[tokio::test]
async fn the_rate_limit_is_per_subscription_with_retry_after() {
    let (issuer, backend, gw, _file) = set_up("3/60", "1000/3600").await;
    // Different users on one subscription share its budget.
    for (n, user) in ["alice", "bob", "carol"].iter().enumerate() {
        let (status, headers, body) = call(
            &gw.hello_url(),
            Some(&token(&issuer, user)),
            &[("Ocp-Apim-Subscription-Key", DEV_KEY)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            headers["x-ratelimit-remaining-subscription"],
            (2 - n).to_string().as_str()
        );
    }
    let refused = call(
        &gw.hello_url(),
        Some(&token(&issuer, "dave")),
        &[("Ocp-Apim-Subscription-Key", DEV_KEY_2)],
    )
    .await;
    let message = assert_refusal(&refused, 429);
    let retry_after: u64 = refused.1["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((58..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        message,
        format!("Rate limit is exceeded. Try again in {retry_after} seconds.")
    );
    let metrics = gw.gateway.metrics.render();
    assert!(
        metrics.contains(
            "gateway_requests_total{status=\"429\",outcome=\"rate_limited_subscription\"} 1"
        ),
        "{metrics}"
    );
    // Another subscription of the same product has its own budget.
    let (status, _, body) = call(
        &gw.hello_url(),
        Some(&token(&issuer, "dave")),
        &[("Ocp-Apim-Subscription-Key", OTHER_KEY)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(backend.hits(), 4);
}

/// `HH:MM:SS` as seconds.
fn clock_seconds(message: &str) -> u64 {
    let clock = message
        .strip_prefix("Out of call volume quota. Quota will be replenished in ")
        .and_then(|rest| rest.strip_suffix('.'))
        .unwrap_or_else(|| panic!("not APIM's quota message: {message}"));
    let parts: Vec<u64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
    assert!(clock.len() == 8 && parts.len() == 3, "{clock}");
    parts[0] * 3600 + parts[1] * 60 + parts[2]
}

#[tokio::test]
async fn the_quota_refuses_with_403_and_when_it_renews() {
    let (issuer, backend, gw, _file) = set_up("100/60", "2/7200").await;
    let token = token(&issuer, "alice");
    let key = [("Ocp-Apim-Subscription-Key", DEV_KEY)];
    for _ in 0..2 {
        assert_eq!(call(&gw.hello_url(), Some(&token), &key).await.0, 200);
    }
    let refused = call(&gw.hello_url(), Some(&token), &key).await;
    let seconds = clock_seconds(&assert_refusal(&refused, 403));
    assert!((7190..=7200).contains(&seconds), "{seconds}");
    let metrics = gw.gateway.metrics.render();
    assert!(
        metrics.contains("gateway_requests_total{status=\"403\",outcome=\"quota_exceeded\"} 1"),
        "{metrics}"
    );
    assert_eq!(backend.hits(), 2);
    let other = [("Ocp-Apim-Subscription-Key", OTHER_KEY)];
    assert_eq!(call(&gw.hello_url(), Some(&token), &other).await.0, 200);

    // Billing counts the calls that went through, per subscription.
    let usage = gw.gateway.subscriptions.as_ref().unwrap().usage();
    let counts: Vec<(&str, u64)> = usage
        .iter()
        .map(|r| (r.subscription.as_str(), r.calls))
        .collect();
    assert_eq!(counts, [("contoso-dev", 2), ("fabrikam", 1)]);
}

#[tokio::test]
async fn a_quota_on_redis_is_shared_by_two_gateways_and_usage_reads_from_redis() {
    let Some(redis) = start_redis().await else {
        return;
    };
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let file = TempFile::new(&products("100/60", "3/3600"));
    let redis_env = [("GATEWAY_REDIS_URL", redis.url.clone())];
    let first = start_gateway(config_with(&issuer, &backend.url, &file, &redis_env)).await;
    let second = start_gateway(config_with(&issuer, &backend.url, &file, &redis_env)).await;
    first.wait_for_redis().await;
    second.wait_for_redis().await;
    let token = token(&issuer, "alice");
    let key = [("Ocp-Apim-Subscription-Key", DEV_KEY)];
    let mut statuses = Vec::new();
    for gw in [&first, &second, &first, &second] {
        statuses.push(call(&gw.hello_url(), Some(&token), &key).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 403]);

    let rows = gateway::quota::shared_usage(&redis.url).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].product.as_str(),
            rows[0].subscription.as_str(),
            rows[0].calls
        ),
        ("unlimited", "contoso-dev", 3)
    );
    // `gateway usage` reads the same counts, every instance's, from Redis.
    let mut env: Vec<(&'static str, String)> =
        env_for(&[&issuer], &backend.url).into_iter().collect();
    env.push(("GATEWAY_REDIS_URL", redis.url.clone()));
    let output = run_binary(&["usage"], &env).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "product\tsubscription\tcalls\nunlimited\tcontoso-dev\t3\n"
    );
    redis.kill().await;
}

/// The real binary: `/usage` on the admin port and `gateway usage`, then SIGHUP swaps the keys
/// while a keep-alive connection stays open and the quota counts carry over. Multi-threaded: the
/// raw connection blocks while the echo backend and issuer of this runtime answer the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_usage_and_rereads_the_file_on_sighup() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let file = TempFile::new(&products("100/60", "3/3600"));
    let port = testkit::free_port();
    let admin_port = testkit::free_port();
    let mut env: Vec<(&'static str, String)> =
        env_for(&[&issuer], &backend.url).into_iter().collect();
    env.extend([
        ("GATEWAY_PRODUCTS", file.path()),
        ("GATEWAY_PORT", port.to_string()),
        ("GATEWAY_ADMIN_PORT", admin_port.to_string()),
    ]);
    let server = testkit::ChildServer::start(
        env!("CARGO_BIN_EXE_gateway"),
        env.clone(),
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let token = token(&issuer, "alice");
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(raw_call(&mut connection, &token, DEV_KEY), 200);
    assert_eq!(raw_call(&mut connection, &token, DEV_KEY), 200);

    let usage =
        testkit::json_reply(client().get(format!("http://127.0.0.1:{admin_port}/usage"))).await;
    assert_eq!(
        usage,
        serde_json::json!({"usage": [{"product": "unlimited", "subscription": "contoso-dev", "calls": 2}]})
    );
    let usage_run = run_binary(&["usage"], &env).await;
    assert!(usage_run.status.success());
    assert_eq!(
        String::from_utf8(usage_run.stdout).unwrap(),
        "product\tsubscription\tcalls\nunlimited\tcontoso-dev\t2\n"
    );

    // Rotate: the primary key is replaced, the secondary stays.
    let rotated = products("100/60", "3/3600").replace(DEV_KEY, "contoso-dev-rotated-0007");
    std::fs::write(&file.0, rotated).unwrap();
    assert!(server.signal("HUP").await);
    // Polled with the new key: its 401s are not counted, so the quota stays at two calls.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while raw_call(&mut connection, &token, "contoso-dev-rotated-0007") == 401 {
        assert!(std::time::Instant::now() < deadline, "SIGHUP not acted on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // That was the third call on the same connection; the old key is gone, and the quota
    // remembers all three.
    assert_eq!(raw_call(&mut connection, &token, DEV_KEY), 401);
    assert_eq!(raw_call(&mut connection, &token, DEV_KEY_2), 403);

    // A broken file is refused and the current products stay.
    std::fs::write(&file.0, "[[product]]\nname = 'x y'\n").unwrap();
    assert!(server.signal("HUP").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(raw_call(&mut connection, &token, OTHER_KEY), 200);
    server.stop().await;
}

/// One keep-alive HTTP/1.1 call on `connection`; the status.
fn raw_call(connection: &mut std::net::TcpStream, token: &str, key: &str) -> u16 {
    write!(
        connection,
        "GET /api/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nOcp-Apim-Subscription-Key: {key}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(connection.read(&mut byte).unwrap(), 1, "connection closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; length];
    connection.read_exact(&mut body).unwrap();
    head[9..12].parse().unwrap()
}

#[tokio::test]
async fn render_apim_policy_gives_each_product_its_rate_limit_and_quota() {
    let issuer = TestIssuer::start().await;
    let file = TempFile::new(&products("100/60", "10000/86400"));
    let mut env: Vec<(&'static str, String)> = env_for(&[&issuer], "http://127.0.0.1:7071")
        .into_iter()
        .collect();
    env.push(("GATEWAY_PRODUCTS", file.path()));
    let output = run_binary(&["render-apim-policy", "--product", "unlimited"], &env).await;
    assert!(output.status.success());
    let xml = String::from_utf8(output.stdout).unwrap();
    assert!(!xml.contains(DEV_KEY), "a key was rendered");
    let document = roxmltree::Document::parse(&xml).unwrap();
    let inbound = document
        .descendants()
        .find(|n| n.has_tag_name("inbound"))
        .unwrap();
    let elements: Vec<_> = inbound.children().filter(|n| n.is_element()).collect();
    let names: Vec<&str> = elements.iter().map(|n| n.tag_name().name()).collect();
    assert_eq!(names, ["base", "rate-limit", "quota"]);
    let rate_limit = elements[1];
    assert_eq!(rate_limit.attribute("calls"), Some("100"));
    assert_eq!(rate_limit.attribute("renewal-period"), Some("60"));
    assert_eq!(
        rate_limit.attribute("remaining-calls-header-name"),
        Some("x-ratelimit-remaining-subscription")
    );
    let quota = elements[2];
    assert_eq!(quota.attribute("calls"), Some("10000"));
    assert_eq!(quota.attribute("renewal-period"), Some("86400"));
    assert!(xml.contains("subscription required = true"));

    let output = run_binary(&["render-apim-policy", "--product", "premium"], &env).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("GATEWAY_PRODUCTS lists no product `premium`"),
        "{stderr}"
    );

    // A bad products file stops the server at start with one line naming the setting.
    std::fs::write(
        &file.0,
        "[[product]]\nname = \"unlimited\"\nquota = \"5 per day\"\n",
    )
    .unwrap();
    let output = run_binary(&[], &env).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("gateway: bad setting GATEWAY_PRODUCTS: "),
        "{stderr}"
    );
    assert!(stderr.contains("quota"), "{stderr}");
}
