//! rate-limit-by-key over HTTP: per subject, per IP, shared through Redis, and without Redis.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gateway::config::RateLimit;
use std::time::{Duration, Instant};
use testkit::TestIssuer;

async fn call(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    read(
        client
            .get(url)
            .header("origin", SPA_ORIGIN)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Redis, an issuer, the echo backend and a gateway configuration counting on that Redis;
/// `None` without redis-server (`start_redis` says so loudly).
async fn on_redis() -> Option<(
    RedisServer,
    TestIssuer,
    EchoBackend,
    gateway::config::Config,
)> {
    let redis = start_redis().await?;
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let mut config = config_for(&issuer, &backend.url);
    config.redis_url = Some(redis.url.clone());
    Some((redis, issuer, backend, config))
}

/// Asserts APIM's 429 and returns its Retry-After.
fn assert_429(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> u64 {
    assert_eq!(status, 429, "{body}");
    let message = assert_api_error(status, headers, body);
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(
        message,
        format!("Rate limit is exceeded. Try again in {retry_after} seconds.")
    );
    retry_after
}

#[tokio::test]
async fn the_16th_call_in_60_seconds_for_one_subject_is_429_while_others_continue() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let client = client();
    let alice = token(&issuer, "alice-oid");
    // A second token for the same subject shares the budget: the key is `sub`, not the token.
    let alice_again = token(&issuer, "alice-oid");
    let bob = token(&issuer, "bob-oid");

    let started = Instant::now();
    for n in 1..=15u32 {
        let t = if n % 2 == 0 { &alice } else { &alice_again };
        let (status, headers, body) = call(&client, &gw.hello_url(), t).await;
        assert_eq!(status, 200, "call {n}: {body}");
        assert_eq!(headers["x-ratelimit-limit-subject"], "15");
        assert_eq!(
            headers["x-ratelimit-remaining-subject"],
            (15 - n).to_string().as_str()
        );
    }
    let (status, headers, body) = call(&client, &gw.hello_url(), &alice).await;
    let retry_after = assert_429(status, &headers, &body);
    let elapsed = started.elapsed().as_secs();
    assert!(
        retry_after <= 60 && retry_after + elapsed + 1 >= 60,
        "Retry-After {retry_after} after {elapsed}s"
    );
    assert_eq!(headers["x-ratelimit-remaining-subject"], "0");
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(backend.hits(), 15);

    // Another subject from the same IP is unaffected.
    let (status, headers, _) = call(&client, &gw.hello_url(), &bob).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-ratelimit-remaining-subject"], "14");
    // And Alice stays refused.
    let (status, headers, body) = call(&client, &gw.hello_url(), &alice).await;
    assert!(assert_429(status, &headers, &body) <= retry_after);
}

#[tokio::test]
async fn the_window_slides() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let mut config = config_for(&issuer, &backend.url);
    config.policy.per_subject = RateLimit::new(2, 2);
    let gw = start_gateway(config).await;
    let client = client();
    let t = token(&issuer, "slider");
    assert_eq!(call(&client, &gw.hello_url(), &t).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call(&client, &gw.hello_url(), &t).await.0, 200);
    let (status, headers, body) = call(&client, &gw.hello_url(), &t).await;
    assert_eq!(assert_429(status, &headers, &body), 1);
    // The first call leaves the window about 2 s after it was made; the second one is still in.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(call(&client, &gw.hello_url(), &t).await.0, 200);
    assert_eq!(call(&client, &gw.hello_url(), &t).await.0, 429);
}

#[tokio::test]
async fn the_ip_limit_counts_the_socket_peer_across_subjects() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let mut config = config_for(&issuer, &backend.url);
    config.policy.per_ip = RateLimit::new(5, 60);
    let gw = start_gateway(config).await;
    let client = client();

    for n in 1..=5u32 {
        let (status, headers, body) = call(
            &client,
            &gw.hello_url(),
            &token(&issuer, &format!("ip-user-{n}")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["x-ratelimit-limit-ip"], "5");
        assert_eq!(
            headers["x-ratelimit-remaining-ip"],
            (5 - n).to_string().as_str()
        );
    }
    // A fresh subject does not help, nor does a forged X-Forwarded-For.
    let response = client
        .get(gw.hello_url())
        .bearer_auth(token(&issuer, "ip-user-new"))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(response).await;
    let retry_after = assert_429(status, &headers, &body);
    assert!((58..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(backend.hits(), 5);

    // Another client address (127.0.0.2 is loopback too) has its own budget.
    let other_ip = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let (status, headers, body) =
        call(&other_ip, &gw.hello_url(), &token(&issuer, "ip-user-new")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-ratelimit-remaining-ip"], "4");
    assert_eq!(json_body(&body)["headers"]["x-forwarded-for"], "127.0.0.2");
}

#[tokio::test]
async fn two_gateways_on_one_redis_share_a_subjects_budget() {
    let Some((_redis, issuer, _backend, config)) = on_redis().await else {
        return;
    };
    let first = start_gateway(config.clone()).await;
    let second = start_gateway(config).await;
    first.wait_for_redis().await;
    second.wait_for_redis().await;
    let client = client();
    let carol = token(&issuer, "carol-oid");

    // 15 calls spread over both instances; neither alone saw more than 8.
    for n in 1..=15u32 {
        let gw = if n % 2 == 0 { &first } else { &second };
        let (status, headers, body) = call(&client, &gw.hello_url(), &carol).await;
        assert_eq!(status, 200, "call {n}: {body}");
        assert_eq!(
            headers["x-ratelimit-remaining-subject"],
            (15 - n).to_string().as_str(),
            "call {n}"
        );
    }
    for gw in [&first, &second] {
        let (status, headers, body) = call(&client, &gw.hello_url(), &carol).await;
        let retry_after = assert_429(status, &headers, &body);
        assert!((55..=60).contains(&retry_after), "{retry_after}");
    }
    // Another subject, on either instance, still has its own budget.
    let dave = token(&issuer, "dave-oid");
    assert_eq!(call(&client, &first.hello_url(), &dave).await.0, 200);
    let (status, headers, _) = call(&client, &second.hello_url(), &dave).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-ratelimit-remaining-subject"], "13");
    // The IP budget is shared too: 19 calls so far from 127.0.0.1.
    assert_eq!(headers["x-ratelimit-remaining-ip"], "281");

    // Exactly 15, even when 40 calls race over both instances at once.
    assert_eq!(
        concurrent_burst(&[&first, &second], &token(&issuer, "racer")).await,
        (15, 25)
    );
}

/// Fires 40 calls at once, spread over `gateways`; returns (accepted, refused).
async fn concurrent_burst(gateways: &[&RunningGateway], token: &str) -> (usize, usize) {
    let client = client();
    let calls = (0..40).map(|n| {
        let request = client
            .get(gateways[n % gateways.len()].hello_url())
            .bearer_auth(token)
            .send();
        async move { request.await.unwrap().status().as_u16() }
    });
    let statuses: Vec<u16> = futures_join_all(calls).await;
    let accepted = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(accepted + refused, 40, "{statuses:?}");
    (accepted, refused)
}

/// `join_all` without another dependency: one task per future.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<u16>
where
    F: std::future::Future<Output = u16> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn concurrent_calls_in_memory_are_counted_exactly() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    assert_eq!(
        concurrent_burst(&[&gw], &token(&issuer, "racer")).await,
        (15, 25)
    );
    assert_eq!(backend.hits(), 15);
}

#[tokio::test]
async fn with_redis_unreachable_the_gateway_serves_and_limits_locally() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let mut config = config_for(&issuer, &backend.url);
    // Nothing listens there: the gateway must start anyway.
    config.redis_url = Some(format!("redis://127.0.0.1:{}/", testkit::free_port()));
    let gw = start_gateway(config).await;
    let client = client();
    let erin = token(&issuer, "erin-oid");
    for n in 1..=15 {
        let started = Instant::now();
        let (status, _, body) = call(&client, &gw.hello_url(), &erin).await;
        assert_eq!(status, 200, "call {n}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "call {n} stalled on Redis"
        );
    }
    let (status, headers, body) = call(&client, &gw.hello_url(), &erin).await;
    assert_429(status, &headers, &body);
    assert!(!gw.gateway.redis.clone().unwrap().is_connected());
}

#[tokio::test]
async fn when_redis_dies_mid_run_calls_continue_on_local_counters() {
    let Some((redis, issuer, _backend, config)) = on_redis().await else {
        return;
    };
    let gw = start_gateway(config).await;
    gw.wait_for_redis().await;
    let client = client();
    let frank = token(&issuer, "frank-oid");
    for _ in 0..5 {
        assert_eq!(call(&client, &gw.hello_url(), &frank).await.0, 200);
    }
    redis.kill().await;
    // Local counters take over (they start from this instance's own count: none were kept
    // while Redis answered), so the budget is enforced again, never refused wholesale.
    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let (status, headers, body) = call(&client, &gw.hello_url(), &frank).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        match status {
            200 => accepted += 1,
            429 => {
                assert_429(status, &headers, &body);
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((accepted, refused), (15, 5));
}

/// APIM runs the two policies one after the other: a call the IP limit refuses never reaches the
/// subject's counter, one the subject limit refuses has counted for the IP. In memory and in Redis
/// (where both are one script).
#[tokio::test]
async fn a_call_refused_by_the_ip_limit_is_not_counted_for_its_subject() {
    let redis = start_redis().await;
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let other_ip = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    for redis_url in [None, redis.as_ref().map(|r| r.url.clone())] {
        let shared = redis_url.is_some();
        let mut config = config_for(&issuer, &backend.url);
        config.policy.per_ip = RateLimit::new(3, 60);
        config.policy.per_subject = RateLimit::new(15, 60);
        config.redis_url = redis_url;
        let gw = start_gateway(config).await;
        gw.wait_for_redis().await;
        let erin = token(&issuer, &format!("erin-{shared}"));
        for _ in 0..3 {
            assert_eq!(call(&client(), &gw.hello_url(), &erin).await.0, 200);
        }
        let (status, headers, body) = call(&client(), &gw.hello_url(), &erin).await;
        assert_429(status, &headers, &body);
        assert_eq!(headers["x-ratelimit-remaining-ip"], "0");
        assert!(
            headers.get("x-ratelimit-remaining-subject").is_none(),
            "the subject's policy never ran (redis: {shared})"
        );
        // From another address: 3 calls counted for erin, not 4.
        let (status, headers, body) = call(&other_ip, &gw.hello_url(), &erin).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            headers["x-ratelimit-remaining-subject"], "11",
            "redis: {shared}"
        );
    }
}

/// A Redis that stops answering while calls pour in: the batch's queue fills, the calls beyond
/// it are counted locally at once, and the full queue is said once, not once per call (a flood
/// must not turn into a flood of log lines).
#[tokio::test]
async fn a_full_redis_queue_is_reported_once_not_once_per_call() {
    use gateway::rate_limit::{Limiter, RedisCounters};
    let Some(redis) = start_redis().await else {
        return;
    };
    let lines = LogSink::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime: every task (the batch's included) logs through this subscriber.
    let _log = tracing::subscriber::set_default(subscriber);
    let counters = RedisCounters::connect(&redis.url).unwrap();
    while !counters.is_connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let limiter = std::sync::Arc::new(Limiter::<String>::new(
        "subject",
        RateLimit::new(1_000_000, 60),
        10_000,
        Some(counters),
        ("x-remaining", "x-limit"),
    ));
    redis.pause();
    let calls: Vec<_> = (0..6_000)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.check(&format!("subject-{i}")).await.allowed })
        })
        .collect();
    let mut allowed = 0;
    for call in calls {
        allowed += usize::from(call.await.unwrap());
    }
    redis.resume();
    assert_eq!(
        allowed, 6_000,
        "every call is decided, locally when Redis is stuck"
    );
    let log = lines.text();
    let busy = log.matches("too many checks waiting").count();
    assert_eq!(busy, 1, "{busy} lines said the queue was full");
}
