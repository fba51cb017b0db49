//! Issue 17's access policies over HTTP against the running gateway: validate-jwt's
//! required-claims, ip-filter, limit-concurrency, the client address behind trusted proxies, and
//! the Front Door id. Each refusal is APIM's body with CORS headers, and never reaches the backend.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gateway::config::Config;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer};

const FRONT_DOOR_ID: &str = "7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b";

/// A test issuer, an echo backend, and a valid token for `sub`.
async fn fixture(sub: &str) -> (TestIssuer, EchoBackend, String) {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let good = token(&issuer, sub);
    (issuer, backend, good)
}

async fn gateway_with(
    issuer: &TestIssuer,
    backend: &EchoBackend,
    settings: &[(&'static str, &str)],
) -> RunningGateway {
    let mut env = env_for(&[issuer], &backend.url);
    for (var, value) in settings {
        env.insert(var, (*value).to_owned());
    }
    start_gateway(Config::from_source(&env).unwrap()).await
}

/// `GET /api/hello` from the SPA's origin with `token` and extra headers.
async fn call(
    gw: &RunningGateway,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client()
        .get(gw.hello_url())
        .header("origin", SPA_ORIGIN)
        .header("x-test-sleep-ms", "0");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request.send().await.unwrap()).await
}

/// APIM's error with the given status and message, readable by the SPA (CORS on the error).
fn assert_refusal(
    (status, headers, body): &(u16, reqwest::header::HeaderMap, String),
    expected: u16,
    message: &str,
) {
    assert_eq!(*status, expected, "{body}");
    assert_eq!(assert_api_error(*status, headers, body), message);
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
}

fn token_with(issuer: &TestIssuer, scp: &str, roles: Option<Value>) -> String {
    let mut claims = issuer.user_claims("claims-user", API_CLIENT_ID, &[]);
    claims["scp"] = json!(scp);
    if let Some(roles) = roles {
        claims["roles"] = roles;
    }
    issuer.mint(&claims)
}

#[tokio::test]
async fn a_valid_token_lacking_the_required_claims_gets_validate_jwts_401() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = gateway_with(
        &issuer,
        &backend,
        &[(
            "GATEWAY_REQUIRED_CLAIMS",
            "scp=accessapp, roles=access:test-api|admin",
        )],
    )
    .await;
    let unauthorized = shared::api::messages::UNAUTHORIZED;

    // scp is split on spaces; one of the roles is enough (match="any").
    let both = token_with(&issuer, "read accessapp", Some(json!(["admin"])));
    let (status, _, body) = call(&gw, Some(&both), &[]).await;
    assert_eq!(status, 200, "{body}");
    let other_role = token_with(&issuer, "accessapp", Some(json!(["x", "access:test-api"])));
    assert_eq!(call(&gw, Some(&other_role), &[]).await.0, 200);

    for (why, token) in [
        ("no roles", token_with(&issuer, "accessapp", None)),
        (
            "wrong role",
            token_with(&issuer, "accessapp", Some(json!(["reader"]))),
        ),
        (
            "scope missing",
            token_with(&issuer, "read", Some(json!(["admin"]))),
        ),
        // Not a substring match, and not the space-joined string as one value.
        (
            "scope prefix",
            token_with(&issuer, "accessapp2", Some(json!(["admin"]))),
        ),
        (
            "role as a string",
            token_with(&issuer, "accessapp", Some(json!("admin"))),
        ),
    ] {
        let answer = call(&gw, Some(&token), &[]).await;
        assert_eq!(answer.0, 401, "{why}: {}", answer.2);
        assert_refusal(&answer, 401, unauthorized);
    }
    assert_eq!(backend.hits(), 2, "refused calls reached the backend");

    // Without the setting the same token passes: the seed's set-up requires no such claims.
    let plain = gateway_with(&issuer, &backend, &[]).await;
    let no_roles = token_with(&issuer, API_SCOPE, None);
    assert_eq!(call(&plain, Some(&no_roles), &[]).await.0, 200);
}

#[tokio::test]
async fn the_ip_filter_refuses_before_validate_jwt() {
    let (issuer, backend, good) = fixture("ip-user").await;
    for (filter, allowed) in [
        ("allow:10.0.0.0/8,192.0.2.7", false),
        ("allow:127.0.0.0/8", true),
        ("forbid:127.0.0.1", false),
        ("forbid:10.0.0.0/8, ::1", true),
    ] {
        let gw = gateway_with(&issuer, &backend, &[("GATEWAY_IP_FILTER", filter)]).await;
        let answer = call(&gw, Some(&good), &[]).await;
        if allowed {
            assert_eq!(answer.0, 200, "{filter}: {}", answer.2);
            continue;
        }
        assert_refusal(&answer, 403, "Forbidden");
        // Before validate-jwt: no token, or a broken one, is still the filter's 403.
        assert_refusal(&call(&gw, None, &[]).await, 403, "Forbidden");
        assert_refusal(&call(&gw, Some("not.a.jwt"), &[]).await, 403, "Forbidden");
        // A client-written X-Forwarded-For from an untrusted peer does not get it in.
        let spoofed = call(&gw, Some(&good), &[("x-forwarded-for", "10.1.2.3")]).await;
        assert_refusal(&spoofed, 403, "Forbidden");
    }
    assert_eq!(backend.hits(), 2);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_hop() {
    let (issuer, backend, good) = fixture("proxy-user").await;
    // The test client (127.0.0.1) plays Front Door.
    let gw = gateway_with(
        &issuer,
        &backend,
        &[
            ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8"),
            ("GATEWAY_IP_FILTER", "forbid:203.0.113.0/24"),
        ],
    )
    .await;
    let xff = |v: &'static str| [("x-forwarded-for", v)];
    assert_refusal(
        &call(&gw, Some(&good), &xff("203.0.113.5")).await,
        403,
        "Forbidden",
    );
    // What the client wrote itself (left of Front Door's entry) does not count...
    assert_eq!(
        call(&gw, Some(&good), &xff("203.0.113.5, 198.51.100.7"))
            .await
            .0,
        200
    );
    // ...and a refused client cannot hide behind a prepended "good" address or inner proxies.
    assert_refusal(
        &call(
            &gw,
            Some(&good),
            &xff("198.51.100.7, 203.0.113.5, 10.0.0.4"),
        )
        .await,
        403,
        "Forbidden",
    );

    // The per-IP limit counts the client behind the proxy, not the proxy.
    let gw = gateway_with(
        &issuer,
        &backend,
        &[
            ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1"),
            ("GATEWAY_RATE_LIMIT_PER_IP", "2/60"),
        ],
    )
    .await;
    for client_ip in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            let (status, _, body) = call(&gw, Some(&good), &[("x-forwarded-for", client_ip)]).await;
            assert_eq!(status, 200, "{client_ip}: {body}");
        }
        let (status, _, _) = call(&gw, Some(&good), &[("x-forwarded-for", client_ip)]).await;
        assert_eq!(status, 429, "{client_ip}");
    }
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let (issuer, backend, good) = fixture("spoof-user").await;
    // Trusted proxies exist, but the test client (127.0.0.1) is not one of them.
    let gw = gateway_with(
        &issuer,
        &backend,
        &[
            ("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("GATEWAY_RATE_LIMIT_PER_IP", "3/60"),
            ("GATEWAY_IP_FILTER", "forbid:198.51.100.0/24"),
        ],
    )
    .await;
    // A forbidden address claimed in the header does not get the caller refused...
    assert_eq!(
        call(&gw, Some(&good), &[("x-forwarded-for", "198.51.100.9")])
            .await
            .0,
        200
    );
    // ...and a fresh address per call does not buy a fresh per-IP budget.
    for spoof in ["203.0.113.1", "203.0.113.2"] {
        let (status, _, body) = call(&gw, Some(&good), &[("x-forwarded-for", spoof)]).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, _) = call(&gw, Some(&good), &[("x-forwarded-for", "203.0.113.3")]).await;
    assert_eq!(
        status, 429,
        "the spoofed addresses were counted as different clients"
    );
}

#[tokio::test]
async fn without_our_front_door_id_the_call_is_403() {
    let (issuer, backend, good) = fixture("fd-user").await;
    let gw = gateway_with(
        &issuer,
        &backend,
        &[("GATEWAY_FRONT_DOOR_ID", FRONT_DOOR_ID)],
    )
    .await;
    let upper = FRONT_DOOR_ID.to_uppercase();
    for headers in [
        vec![],
        vec![("x-azure-fdid", "00000000-0000-0000-0000-000000000000")],
        vec![("x-azure-fdid", upper.as_str())],
        vec![("x-azure-fdid", &FRONT_DOOR_ID[..20])],
        vec![("x-azure-fdid", "other"), ("x-azure-fdid", FRONT_DOOR_ID)],
    ] {
        let answer = call(&gw, Some(&good), &headers).await;
        assert_refusal(&answer, 403, "Forbidden");
    }
    // Checked before validate-jwt, like ip-filter.
    assert_refusal(&call(&gw, None, &[]).await, 403, "Forbidden");
    assert_eq!(backend.hits(), 0);
    let (status, _, body) = call(&gw, Some(&good), &[("x-azure-fdid", FRONT_DOOR_ID)]).await;
    assert_eq!(status, 200, "{body}");
    // The id is not a credential: without a token it is still validate-jwt's 401.
    assert_eq!(
        call(&gw, None, &[("x-azure-fdid", FRONT_DOOR_ID)]).await.0,
        401
    );
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_429_at_once_never_queued() {
    let (issuer, backend, good) = fixture("busy-user").await;
    let gw = gateway_with(&issuer, &backend, &[("GATEWAY_MAX_CONCURRENCY", "2")]).await;
    let slow = |gw: &RunningGateway| {
        let request = client()
            .get(gw.hello_url())
            .bearer_auth(&good)
            .header("x-test-sleep-ms", "1500")
            .send();
        tokio::spawn(async move { request.await.unwrap().status().as_u16() })
    };
    let in_flight = [slow(&gw), slow(&gw)];
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.hits() < 2 {
        assert!(
            Instant::now() < deadline,
            "the slow calls never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let refused = call(&gw, Some(&good), &[]).await;
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "waited {:?}: queued instead of refused",
        started.elapsed()
    );
    assert_refusal(
        &refused,
        429,
        "Too many requests are in progress. Try again later.",
    );
    assert_eq!(backend.hits(), 2);
    for call in in_flight {
        assert_eq!(call.await.unwrap(), 200);
    }
    // The permits came back.
    assert_eq!(call(&gw, Some(&good), &[]).await.0, 200);
}
