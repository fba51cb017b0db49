//! W3C trace context across gateway → function (both logs name the trace id) and the
//! Prometheus endpoint of the admin port, scraped after real calls.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::{Arc, Mutex, OnceLock};
use testkit::TestIssuer;

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Every log line of this test binary (gateway and function run in process).
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("info")
            .with_writer(move || LogSink(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
    .clone()
}

#[tokio::test]
async fn one_trace_id_is_in_the_gateways_and_the_functions_log() {
    let log = captured_log();
    let issuer = TestIssuer::start().await;
    let (hello_url, _stop) = start_hello(&issuer).await;
    let gw = start_gateway(config_for(&issuer, &hello_url)).await;
    let response = client()
        .get(gw.hello_url())
        .bearer_auth(token(&issuer, "traced-user"))
        .header("traceparent", INCOMING)
        .header("x-request-id", "trace-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let gateway_line = text
        .lines()
        .find(|l| l.contains("gateway::access") && l.contains("trace-req-1"))
        .unwrap_or_else(|| panic!("no access line in\n{text}"));
    assert!(
        gateway_line.contains(&format!("trace_id=\"{TRACE_ID}\"")),
        "{gateway_line}"
    );
    let function_line = text
        .lines()
        .find(|l| l.contains("hello::access") && l.contains("request_id=\"trace-req-1\""))
        .unwrap_or_else(|| panic!("no function line in\n{text}"));
    assert!(
        function_line.contains(&format!("trace_id=\"{TRACE_ID}\"")),
        "{function_line}"
    );
}

#[tokio::test]
async fn traceparent_is_continued_when_valid_and_started_when_not() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let token = token(&issuer, "alice");
    let seen = |headers: &[(&str, &str)]| {
        let mut request = client().get(gw.hello_url()).bearer_auth(&token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move {
            let (status, _, body) = read(request.send().await.unwrap()).await;
            assert_eq!(status, 200, "{body}");
            json_body(&body)["headers"].clone()
        }
    };

    let continued = seen(&[
        ("traceparent", INCOMING),
        ("tracestate", "congo=t61rcWkgMzE"),
    ])
    .await;
    let sent =
        shared::trace_context::TraceParent::parse(continued["traceparent"].as_str().unwrap())
            .unwrap();
    assert_eq!(sent.trace_id_hex(), TRACE_ID);
    assert_ne!(
        sent.parent_id,
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        "the gateway is a span of its own"
    );
    assert_eq!(sent.flags, 1);
    assert_eq!(continued["tracestate"], "congo=t61rcWkgMzE");

    for malformed in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ] {
        let started = seen(&[
            ("traceparent", malformed),
            ("tracestate", "congo=t61rcWkgMzE"),
        ])
        .await;
        let sent =
            shared::trace_context::TraceParent::parse(started["traceparent"].as_str().unwrap())
                .unwrap();
        assert_ne!(sent.trace_id_hex(), TRACE_ID);
        assert!(
            started.get("tracestate").is_none(),
            "orphaned tracestate forwarded"
        );
    }
    let first = seen(&[]).await;
    let second = seen(&[]).await;
    assert_ne!(first["traceparent"], second["traceparent"]);
    assert!(
        shared::trace_context::TraceParent::parse(first["traceparent"].as_str().unwrap()).is_some()
    );
}

/// The value of the sample `name` exactly, from Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_on_the_admin_port_count_calls_by_status_and_outcome() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let gateway = gw.gateway.clone();
    let admin = testkit::InProcessServer::start_unready(|listener, shutdown| async move {
        gateway::admin::serve(&gateway, listener, shutdown).await
    })
    .await;
    let admin_url = admin.url.clone();
    let token = token(&issuer, "alice");
    for _ in 0..3 {
        let r = client()
            .get(gw.hello_url())
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..2 {
        let r = client()
            .get(gw.hello_url())
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = client()
        .request(reqwest::Method::OPTIONS, gw.hello_url())
        .header("origin", SPA_ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{}/nowhere", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let response = client()
        .get(format!("{admin_url}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for (name, expected) in [
        (
            "gateway_requests_total{status=\"200\",outcome=\"forwarded\"}",
            3.0,
        ),
        (
            "gateway_requests_total{status=\"401\",outcome=\"jwt_refused\"}",
            2.0,
        ),
        (
            "gateway_requests_total{status=\"200\",outcome=\"cors_preflight\"}",
            1.0,
        ),
        (
            "gateway_requests_total{status=\"404\",outcome=\"not_found\"}",
            1.0,
        ),
        (
            "gateway_request_duration_seconds_count{outcome=\"forwarded\"}",
            3.0,
        ),
        (
            "gateway_request_duration_seconds_bucket{outcome=\"forwarded\",le=\"+Inf\"}",
            3.0,
        ),
        (
            "gateway_request_duration_seconds_bucket{outcome=\"jwt_refused\",le=\"+Inf\"}",
            2.0,
        ),
    ] {
        assert_eq!(sample(&text, name), Some(expected), "{name} in\n{text}");
    }
    let sum = sample(
        &text,
        "gateway_request_duration_seconds_sum{outcome=\"forwarded\"}",
    )
    .unwrap();
    assert!(sum > 0.0 && sum < 30.0, "{sum}");
    // Buckets never decrease.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("gateway_request_duration_seconds_bucket{outcome=\"forwarded\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        buckets.len() > 5 && buckets.windows(2).all(|w| w[0] <= w[1]),
        "{buckets:?}"
    );

    // The admin routes are not on the API port.
    let r = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// The admin port binds 127.0.0.1 whatever `GATEWAY_BIND_ADDRESS` says: with the API on every
/// address, 127.0.0.2 reaches the API but not `/metrics`.
#[tokio::test]
async fn the_admin_port_listens_on_127_0_0_1_only() {
    let issuer = TestIssuer::start().await;
    let port = testkit::free_port();
    let admin_port = testkit::free_port();
    let mut env: Vec<(&'static str, String)> = env_for(&[&issuer], "http://127.0.0.1:7071")
        .into_iter()
        .collect();
    env.extend([
        ("GATEWAY_BIND_ADDRESS", "0.0.0.0".to_owned()),
        ("GATEWAY_PORT", port.to_string()),
        ("GATEWAY_ADMIN_PORT", admin_port.to_string()),
    ]);
    let server = testkit::ChildServer::start(
        env!("CARGO_BIN_EXE_gateway"),
        env,
        &format!("http://127.0.0.1:{admin_port}/metrics"),
        std::time::Duration::from_secs(20),
    )
    .await
    .unwrap();
    let api = client()
        .get(format!("http://127.0.0.2:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let admin = client()
        .get(format!("http://127.0.0.2:{admin_port}/metrics"))
        .send()
        .await;
    assert!(
        admin.is_err(),
        "the admin port answered on 127.0.0.2: {admin:?}"
    );
    server.stop().await;
}
