//! The gateway driven over HTTP as the SPA and attackers would: CORS, validate-jwt, forwarding.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::{Duration, Instant};
use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer};

fn cors_headers(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn vary_has_origin(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("origin"))
        })
}

#[tokio::test]
async fn preflight_is_answered_by_cors_alone() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let client = client();

    // Matched origin: every CORS header, no token needed, nothing else ran.
    let response = client
        .request(reqwest::Method::OPTIONS, gw.hello_url())
        .header("origin", SPA_ORIGIN)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization,x-custom")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(response).await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-allow-methods"], "GET");
    assert_eq!(
        headers["access-control-allow-headers"],
        "authorization,x-custom"
    );
    assert_eq!(headers["access-control-max-age"], "120");
    assert!(vary_has_origin(&headers));
    assert!(
        headers.get("x-ratelimit-remaining-ip").is_none(),
        "rate limit ran on a preflight"
    );
    assert!(headers.get("x-request-id").is_some());

    // The other configured origin is echoed as itself, never `*`.
    let response = client
        .request(reqwest::Method::OPTIONS, gw.hello_url())
        .header("origin", "http://localhost:8080")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );
    assert!(
        response
            .headers()
            .get("access-control-allow-headers")
            .is_none()
    );

    // Unmatched origin: empty 200, no CORS headers.
    for origin in [OTHER_ORIGIN, "http://127.0.0.1:8081", "null"] {
        let response = client
            .request(reqwest::Method::OPTIONS, gw.hello_url())
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        let (status, headers, body) = read(response).await;
        assert_eq!(status, 200, "{origin}");
        assert!(body.is_empty());
        assert_eq!(cors_headers(&headers), Vec::<String>::new(), "{origin}");
    }

    // A method the policy does not allow gets no permission either.
    let response = client
        .request(reqwest::Method::OPTIONS, gw.hello_url())
        .header("origin", SPA_ORIGIN)
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(cors_headers(response.headers()), Vec::<String>::new());
    assert_eq!(backend.hits(), 0, "a preflight reached the backend");
}

#[tokio::test]
async fn actual_responses_carry_cors_for_listed_origins_only_errors_included() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let mut config = config_for(&issuer, &backend.url);
    config.policy.per_subject = gateway::config::RateLimit::new(1, 60);
    let gw = start_gateway(config).await;
    let client = client();
    let bearer = format!("Bearer {}", token(&issuer, "cors-user"));

    let get = |origin: &'static str, auth: Option<String>| {
        let mut request = client.get(gw.hello_url()).header("origin", origin);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };

    // 200 from a listed origin; the backend's own `*` is replaced by the policy's answer.
    let (status, headers, _) = read(get(SPA_ORIGIN, Some(bearer.clone())).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-expose-headers"], "*");
    assert_eq!(headers["x-backend"], "echo");
    assert!(vary_has_origin(&headers));

    // 429 (the subject's one call is used) still readable by the SPA.
    let (status, headers, _) = read(get(SPA_ORIGIN, Some(bearer.clone())).await.unwrap()).await;
    assert_eq!(status, 429);
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(headers["access-control-expose-headers"], "*");

    // 401.
    let (status, headers, _) = read(get(SPA_ORIGIN, None).await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");

    // Unlisted origin: the call passes through (the browser blocks it), without CORS headers,
    // not even the backend's.
    let other_bearer = format!("Bearer {}", token(&issuer, "cors-user-2"));
    let (status, headers, _) = read(get(OTHER_ORIGIN, Some(other_bearer)).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(cors_headers(&headers), Vec::<String>::new());
    let (status, headers, _) = read(get(OTHER_ORIGIN, None).await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(cors_headers(&headers), Vec::<String>::new());
}

#[tokio::test]
async fn backend_errors_are_502_and_504_with_cors_and_apim_shape() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let client = client();

    // Nothing listening: 502.
    let gw = start_gateway(config_for(&issuer, &dead_url())).await;
    let (status, headers, body) = read(
        client
            .get(gw.hello_url())
            .header("origin", SPA_ORIGIN)
            .bearer_auth(token(&issuer, "u-502"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_api_error(status, &headers, &body);
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);

    // A backend slower than the timeout: 504, and promptly.
    let mut config = config_for(&issuer, &backend.url);
    config.backend_timeout = Duration::from_millis(300);
    let gw = start_gateway(config).await;
    let started = Instant::now();
    let (status, headers, body) = read(
        client
            .get(gw.hello_url())
            .header("origin", SPA_ORIGIN)
            .header("x-test-sleep-ms", "3000")
            .bearer_auth(token(&issuer, "u-504"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_api_error(status, &headers, &body);
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);

    // The same gateway still serves a quick answer.
    let response = client
        .get(gw.hello_url())
        .bearer_auth(token(&issuer, "u-504"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn forwarding_sets_the_key_drops_the_clients_and_keeps_the_bearer() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let client = client();
    let access_token = token(&issuer, "forward-user");

    let response = client
        .get(format!("{}?code=client-code&keep=yes", gw.hello_url()))
        .bearer_auth(&access_token)
        .header("x-functions-key", "client-supplied-key")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-request-id", "req-abc-123")
        .header("x-ms-client-principal-id", "forged")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(response).await;
    assert_eq!(status, 200, "{body}");
    let seen = json_body(&body);
    assert_eq!(seen["function_key_ok"], true, "{body}");
    assert_eq!(seen["function_key_count"], 1);
    assert_eq!(seen["query"], "keep=yes");
    let upstream = &seen["headers"];
    assert_eq!(upstream["authorization"], format!("Bearer {access_token}"));
    assert_eq!(upstream["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(upstream["x-request-id"], "req-abc-123");
    assert!(upstream.get("x-ms-client-principal-id").is_none());
    assert_eq!(headers["x-request-id"], "req-abc-123");
    assert!(!body.contains("client-supplied-key"));

    // No id (or an unusable one): one is generated, the same upstream and back.
    let response = client
        .get(gw.hello_url())
        .bearer_auth(&access_token)
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(response).await;
    assert_eq!(status, 200);
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(json_body(&body)["headers"]["x-request-id"], id);
    assert_eq!(json_body(&body)["headers"]["x-forwarded-for"], "127.0.0.1");
}

/// The browser's cookies (the function never needs them) and EasyAuth's own `x-ms-token-*`
/// headers (only App Service may set them) do not travel past the gateway.
#[tokio::test]
async fn client_cookies_and_x_ms_token_headers_never_reach_the_function() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let response = client()
        .get(gw.hello_url())
        .bearer_auth(token(&issuer, "cookie-user"))
        .header("cookie", "devidp_session=stolen; other=1")
        .header("x-ms-token-aad-access-token", "forged")
        .header("X-MS-TOKEN-AAD-ID-TOKEN", "forged")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!(status, 200, "{body}");
    let upstream = json_body(&body)["headers"].clone();
    assert_eq!(upstream["x-custom"], "kept", "{body}");
    for dropped in [
        "cookie",
        "x-ms-token-aad-access-token",
        "x-ms-token-aad-id-token",
    ] {
        assert!(
            upstream.get(dropped).is_none(),
            "{dropped} forwarded: {body}"
        );
    }
}

#[tokio::test]
async fn only_the_api_route_and_healthz_are_served() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let client = client();
    let bearer = token(&issuer, "route-user");
    for path in [
        "/",
        "/api",
        "/api/hello/x",
        "/api/other",
        "/.auth/me",
        "/admin",
    ] {
        let (status, headers, body) = read(
            client
                .get(format!("{}{path}", gw.url))
                .bearer_auth(&bearer)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{path}");
        assert_api_error(status, &headers, &body);
    }
    let (status, _, body) = read(
        client
            .post(gw.hello_url())
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(backend.hits(), 0);
    let response = client
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn every_token_attack_is_refused_with_apims_401() {
    let issuer = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let client = client();

    // The gateway works at all (and has the keys), so each refusal below is about the token.
    let response = client
        .get(gw.hello_url())
        .bearer_auth(token(&issuer, "legit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let hits_before = backend.hits();

    let mut requests: Vec<(String, reqwest::RequestBuilder)> = issuer
        .attack_tokens(API_CLIENT_ID)
        .into_iter()
        .map(|attack| {
            (
                attack.name.to_owned(),
                client.get(gw.hello_url()).bearer_auth(attack.token),
            )
        })
        .collect();
    let valid = token(&issuer, "legit");
    for (name, header) in [
        ("no Authorization", None),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("Basic scheme", Some(format!("Basic {valid}"))),
        ("token without scheme", Some(valid.clone())),
        (
            "two bearer tokens",
            Some(format!("Bearer {valid}, Bearer {valid}")),
        ),
    ] {
        let mut request = client.get(gw.hello_url());
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        requests.push((name.to_owned(), request));
    }
    assert!(requests.len() > 30);
    for (name, request) in requests {
        let (status, headers, body) = read(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(
            json_body(&body),
            serde_json::json!({"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."}),
            "{name}"
        );
        assert_eq!(headers["content-type"], "application/json", "{name}");
    }
    assert_eq!(
        backend.hits(),
        hits_before,
        "a refused token reached the backend"
    );
    assert_eq!(
        issuer.attacker_fetches(),
        0,
        "the attacker's jku/x5u was fetched"
    );
}

#[tokio::test]
async fn several_openid_configs_and_audiences_are_accepted_at_once() {
    // Seed 001's migration case: two issuers side by side, two audiences.
    let b2clogin = TestIssuer::start().await;
    let legacy = TestIssuer::start().await;
    // Both issuers publish kid `key-1` (with different keys): a kid is not unique across IdPs.
    let stranger = TestIssuer::start().await;
    let backend = start_echo_backend().await;
    let mut env = env_for(&[&b2clogin, &legacy], &backend.url);
    env.insert(
        "GATEWAY_AUDIENCES",
        format!("{API_CLIENT_ID},11112222-bbbb-3333-cccc-4444dddd5555"),
    );
    let gw = start_gateway(gateway::config::Config::from_source(&env).unwrap()).await;
    let client = client();
    let call = |token: String| client.get(gw.hello_url()).bearer_auth(token).send();

    for issuer in [&b2clogin, &legacy] {
        for audience in [API_CLIENT_ID, "11112222-bbbb-3333-cccc-4444dddd5555"] {
            let token = issuer.mint(&issuer.user_claims("multi", audience, &[API_SCOPE]));
            assert_eq!(call(token).await.unwrap().status(), 200, "{audience}");
        }
    }
    let foreign = stranger.mint(&stranger.user_claims("multi", API_CLIENT_ID, &[API_SCOPE]));
    assert_eq!(call(foreign).await.unwrap().status(), 401);

    // With GATEWAY_ISSUERS set, only the listed issuers count.
    env.insert("GATEWAY_ISSUERS", b2clogin.issuer().to_owned());
    let restricted = start_gateway(gateway::config::Config::from_source(&env).unwrap()).await;
    let b2c_token = b2clogin.mint(&b2clogin.user_claims("multi", API_CLIENT_ID, &[API_SCOPE]));
    let legacy_token = legacy.mint(&legacy.user_claims("multi", API_CLIENT_ID, &[API_SCOPE]));
    let status = |t: String| {
        let c = client.clone();
        let url = restricted.hello_url();
        async move { c.get(url).bearer_auth(t).send().await.unwrap().status() }
    };
    assert_eq!(status(b2c_token).await, 200);
    assert_eq!(status(legacy_token).await, 401);
}

#[tokio::test]
async fn an_unreachable_identity_provider_means_401_not_500() {
    let issuer = TestIssuer::start().await;
    issuer.set_down(true);
    let backend = start_echo_backend().await;
    let gw = start_gateway(config_for(&issuer, &backend.url)).await;
    let (status, headers, body) = read(
        client()
            .get(gw.hello_url())
            .header("origin", SPA_ORIGIN)
            .bearer_auth(token(&issuer, "while-down"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        assert_api_error(status, &headers, &body),
        shared::api::messages::UNAUTHORIZED
    );
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(backend.hits(), 0);
}
