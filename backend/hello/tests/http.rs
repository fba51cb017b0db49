//! The running function over HTTP: each rule of issue 5, and every attack class of platform.md.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{KEY, SECOND_KEY, start};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::{ApiError, HelloResponse};
use testkit::{API_CLIENT_ID, API_SCOPE, APP_ROLE, DAEMON_CLIENT_ID};

#[tokio::test]
async fn healthz_needs_neither_key_nor_token() {
    let f = start(&[]).await;
    let response = f.client.get(f.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn hello_answers_the_seed_message_and_the_caller() {
    let f = start(&[]).await;
    let response = f.hello(&f.user_token()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: HelloResponse = response.json().await.unwrap();
    assert!(
        body.message
            .starts_with("Hello World, time and date are 20"),
        "{}",
        body.message
    );
    assert_eq!(body.caller.name.as_deref(), Some("Alice Example"));
    assert_eq!(body.caller.subject, "user-1");
    assert_eq!(body.caller.scopes, [API_SCOPE]);
    assert!(body.caller.roles.is_empty());
    assert!(
        time::OffsetDateTime::parse(&body.time, &time::format_description::well_known::Rfc3339)
            .is_ok()
    );
}

#[tokio::test]
async fn text_plain_when_the_client_prefers_it() {
    let f = start(&[]).await;
    let response = f
        .client
        .get(f.url("/api/hello"))
        .header("x-functions-key", KEY)
        .header("accept", "text/plain")
        .bearer_auth(f.user_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("Hello World, time and date are "),
        "{text}"
    );
    assert!(!text.contains('{'));
}

#[tokio::test]
async fn name_greets_that_name_and_an_invalid_one_gets_400() {
    let f = start(&[]).await;
    let token = f.user_token();
    let get = |query: &'static str| {
        f.client
            .get(f.url(&format!("/api/hello{query}")))
            .header("x-functions-key", KEY)
            .bearer_auth(&token)
            .send()
    };
    for (query, greeted) in [
        ("?name=Ada", "Ada"),
        ("?name=Mary-Jane+O%27Neil", "Mary-Jane O'Neil"),
        ("?other=1", "World"),
    ] {
        let body: HelloResponse = get(query).await.unwrap().json().await.unwrap();
        assert!(
            body.message
                .starts_with(&format!("Hello {greeted}, time and date are 20")),
            "{query}: {}",
            body.message
        );
    }
    for query in [
        "?name=",
        "?name=Ada!",
        "?name=%3Cb%3E",
        "?name=Ada&name=Bob",
        "?name=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let response = get(query).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: ApiError = response.json().await.unwrap();
        assert_eq!(
            body,
            ApiError::new(
                400,
                "The value of the query parameter name does not conform to the definition."
            )
        );
    }
}

#[tokio::test]
async fn other_methods_get_405_with_allow_get() {
    let f = start(&[]).await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        let response = f
            .client
            .request(method.parse().unwrap(), f.url("/api/hello"))
            .header("x-functions-key", KEY)
            .bearer_auth(f.user_token())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()["allow"], "GET", "{method}");
    }
}

#[tokio::test]
async fn function_key_by_header_or_code_any_of_several() {
    let f = start(&[]).await;
    let token = f.user_token();
    let get = |query: Option<&str>, header: Option<&str>| {
        let mut request = f.client.get(f.url("/api/hello")).bearer_auth(&token);
        if let Some(code) = query {
            request = request.query(&[("code", code)]);
        }
        if let Some(key) = header {
            request = request.header("x-functions-key", key);
        }
        request.send()
    };
    assert_eq!(get(None, Some(KEY)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get(None, Some(SECOND_KEY)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(get(Some(KEY), None).await.unwrap().status(), StatusCode::OK);
    for (query, header) in [
        (None, None),
        (None, Some("wrong-key-0123456789abcdef")),
        (Some("wrong"), None),
        (None, Some("")),
        (Some(""), None),
        (None, Some(&KEY[..KEY.len() - 1])),
        // The header wins over `code`, as in the Functions host.
        (Some(KEY), Some("wrong-key-0123456789abcdef")),
    ] {
        let response = get(query, header).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{query:?} {header:?}"
        );
        assert!(
            response.text().await.unwrap().is_empty(),
            "the host answers 401 with no body"
        );
    }
}

#[tokio::test]
async fn the_key_is_checked_before_the_token() {
    let f = start(&[("EASYAUTH_UNAUTHENTICATED_ACTION", "Return401")]).await;
    let response = f.client.get(f.url("/api/hello")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers().get("www-authenticate").is_none(),
        "key refusal, not EasyAuth's"
    );
}

#[tokio::test]
async fn allow_listed_loopback_passes() {
    let f = start(&[("HELLO_ALLOWED_IPS", "10.0.0.0/8, 127.0.0.1/32")]).await;
    assert_eq!(f.hello(&f.user_token()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn other_ips_get_403_and_forwarding_headers_cannot_bypass_it() {
    let f = start(&[("HELLO_ALLOWED_IPS", "10.0.0.0/8")]).await;
    for (name, value) in [
        ("x-forwarded-for", "10.1.2.3"),
        ("x-real-ip", "10.1.2.3"),
        ("forwarded", "for=10.1.2.3"),
        ("x-client-ip", "10.1.2.3"),
        ("x-azure-clientip", "10.1.2.3"),
    ] {
        let response = f
            .client
            .get(f.url("/api/hello"))
            .header("x-functions-key", KEY)
            .header(name, value)
            .bearer_auth(f.user_token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
        let body: ApiError = response.json().await.unwrap();
        assert_eq!(
            body,
            ApiError::new(
                403,
                "Caller IP address 127.0.0.1 is not allowed. Access denied."
            )
        );
    }
    let health = f.client.get(f.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::FORBIDDEN,
        "the restriction covers every path"
    );
}

#[tokio::test]
async fn redirect_to_login_page_is_the_default_unauthenticated_action() {
    let f = start(&[]).await;
    let response = f
        .client
        .get(f.url(&format!("/api/hello?code={KEY}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&f.issuer.authorization_endpoint()),
        "{location}"
    );
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], API_CLIENT_ID);
    // No client secret: the implicit flow, as EasyAuth without one (tests/login_session.rs).
    assert_eq!(query["response_type"], "id_token");
    assert_eq!(query["response_mode"], "form_post");
    assert_eq!(
        query["redirect_uri"],
        format!("{}/.auth/login/aad/callback", f.base)
    );
    assert!(query["scope"].contains("openid"));
    assert!(query["state"].len() >= 32 && query["nonce"].len() >= 32);
    assert!(
        !location.as_str().contains(KEY),
        "the function key must not travel to the IdP"
    );

    // An invalid token is no authentication at all: same redirect.
    let invalid = f.hello("not-a-jwt").await;
    assert_eq!(invalid.status(), StatusCode::FOUND);
    // Script requests get 401 instead of a redirect they cannot follow.
    let xhr = f
        .client
        .get(f.url("/api/hello"))
        .header("x-functions-key", KEY)
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(xhr.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn return401_carries_an_rfc6750_challenge() {
    let f = start(&[("EASYAUTH_UNAUTHENTICATED_ACTION", "Return401")]).await;
    let none = f.hello_without_token().await;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let mut claims = f.issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    claims["exp"] = json!(testkit::now() - 3600);
    let expired = f.hello(&f.issuer.mint(&claims)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        expired.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\", error_description=\"The token has expired\""
    );
}

#[tokio::test]
async fn the_login_redirect_waits_for_metadata_still_loading_right_after_start() {
    // Regression: the first callers after a start got 401 (no authorize URL known yet).
    let issuer = testkit::TestIssuer::start().await;
    issuer.set_delay(Duration::from_millis(500));
    let config = common::settings(&issuer, &[]);
    let f = common::start_unready(issuer, config).await;
    let response = f.hello_without_token().await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&f.issuer.authorization_endpoint()),
        "{location}"
    );
}

#[tokio::test]
async fn return403_refuses_unauthenticated_callers() {
    let f = start(&[("EASYAUTH_UNAUTHENTICATED_ACTION", "Return403")]).await;
    assert_eq!(f.hello("not-a-jwt").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(f.hello(&f.user_token()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_attack_class_is_refused_under_each_action_never_500() {
    for (action, expected) in [
        ("Return401", StatusCode::UNAUTHORIZED),
        ("Return403", StatusCode::FORBIDDEN),
        ("RedirectToLoginPage", StatusCode::FOUND),
    ] {
        let f = start(&[("EASYAUTH_UNAUTHENTICATED_ACTION", action)]).await;
        for attack in f.issuer.attack_tokens(API_CLIENT_ID) {
            let response = f.hello(&attack.token).await;
            assert_eq!(response.status(), expected, "{action}: {}", attack.name);
        }
        assert_eq!(f.issuer.attacker_fetches(), 0);
        assert_eq!(
            f.hello(&f.user_token()).await.status(),
            StatusCode::OK,
            "{action}"
        );
    }
}

#[tokio::test]
async fn required_scopes_and_roles_seed_004() {
    let f = start(&[
        ("EASYAUTH_REQUIRED_SCOPES", API_SCOPE),
        ("EASYAUTH_REQUIRED_ROLES", APP_ROLE),
    ])
    .await;
    let app = |roles: &[&str]| {
        f.issuer
            .mint(&f.issuer.app_claims(DAEMON_CLIENT_ID, API_CLIENT_ID, roles))
    };
    let without_role = f.hello(&app(&[])).await;
    assert_eq!(without_role.status(), StatusCode::FORBIDDEN);
    assert!(
        without_role.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(
        f.hello(&app(&["other-role"])).await.status(),
        StatusCode::FORBIDDEN
    );
    let with_role = f.hello(&app(&[APP_ROLE])).await;
    assert_eq!(with_role.status(), StatusCode::OK);
    let body: HelloResponse = with_role.json().await.unwrap();
    assert_eq!(body.caller.subject, DAEMON_CLIENT_ID);
    assert_eq!(body.caller.roles, [APP_ROLE]);
    assert_eq!(body.caller.name, None);

    assert_eq!(f.hello(&f.user_token()).await.status(), StatusCode::OK);
    let no_scope = f
        .issuer
        .mint(&f.issuer.user_claims("u", API_CLIENT_ID, &["read"]));
    assert_eq!(f.hello(&no_scope).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn forged_identity_headers_are_replaced_by_easyauths() {
    let f = start(&[]).await;
    let forged = STANDARD.encode(
        json!({"auth_typ": "aad", "claims": [{"typ": "name", "val": "Mallory"}, {"typ": "sub", "val": "admin"}], "name_typ": "name", "role_typ": "roles"}).to_string(),
    );
    let response = f
        .client
        .get(f.url("/api/hello"))
        .header("x-functions-key", KEY)
        .header("X-MS-CLIENT-PRINCIPAL", forged)
        .header("X-MS-CLIENT-PRINCIPAL-NAME", "Mallory")
        .header("X-MS-CLIENT-PRINCIPAL-ID", "admin")
        .bearer_auth(f.user_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: HelloResponse = response.json().await.unwrap();
    assert_eq!(body.caller.name.as_deref(), Some("Alice Example"));
    assert_eq!(body.caller.subject, "user-1");
}

#[tokio::test]
async fn auth_me_returns_the_identity_in_easyauth_shape() {
    let f = start(&[]).await;
    let token = f.user_token();
    let response = f
        .client
        .get(f.url("/.auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let me = &body[0];
    assert_eq!(me["access_token"], token);
    assert_eq!(me["provider_name"], "aad");
    assert_eq!(me["user_id"], "Alice Example");
    assert_eq!(me["id_token"], "");
    assert!(me["expires_on"].as_str().unwrap().ends_with('Z'));
    let claims = me["user_claims"].as_array().unwrap();
    assert!(claims.contains(&json!({"typ": "sub", "val": "user-1"})));
    assert!(claims.contains(&json!({"typ": "emails", "val": "alice@example.com"})));

    let anonymous = f.client.get(f.url("/.auth/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn request_ids_are_made_or_propagated() {
    let f = start(&[]).await;
    let made = f.hello(&f.user_token()).await;
    assert_eq!(made.headers()["x-request-id"].to_str().unwrap().len(), 36);
    let given = f
        .client
        .get(f.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn key_rotation_at_the_issuer() {
    let issuer = testkit::TestIssuer::start().await;
    let mut config = common::settings(&issuer, &[]);
    config.min_key_refetch_interval = Duration::from_millis(200);
    let f = common::start_with(issuer, config).await;
    let old = f.user_token();
    assert_eq!(f.hello(&old).await.status(), StatusCode::OK);
    f.issuer.rotate_key().await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let new = f.user_token();
    assert_eq!(
        f.hello(&new).await.status(),
        StatusCode::OK,
        "new kid after a refetch"
    );
    assert_eq!(
        f.hello(&old).await.status(),
        StatusCode::OK,
        "old key still published"
    );
}

#[tokio::test]
async fn issuer_outage_keeps_cached_keys_working() {
    let f = start(&[]).await;
    f.issuer.set_down(true);
    assert_eq!(f.hello(&f.user_token()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn keys_never_loaded_refuse_with_503_never_200_or_500() {
    let issuer = testkit::TestIssuer::start().await;
    issuer.set_down(true);
    let config = common::settings(&issuer, &[]);
    let f = common::start_with(issuer, config).await;
    let response = f.hello(&f.user_token()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    for attack in f.issuer.attack_tokens(API_CLIENT_ID) {
        let status = f.hello(&attack.token).await.status();
        assert!(
            status != StatusCode::OK && !status.is_server_error()
                || status == StatusCode::SERVICE_UNAVAILABLE,
            "{}: {status}",
            attack.name
        );
    }
    // No token at all is still the unauthenticated action.
    let anonymous = f.hello_without_token().await;
    assert!(matches!(
        anonymous.status(),
        StatusCode::FOUND | StatusCode::UNAUTHORIZED
    ));
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let f = start(&[]).await;
    let response = f.client.get(f.url("/api/other")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forged_kids_over_http_cause_at_most_one_jwks_refetch() {
    let issuer = testkit::TestIssuer::start().await;
    let mut config = common::settings(&issuer, &[("EASYAUTH_UNAUTHENTICATED_ACTION", "Return401")]);
    config.min_key_refetch_interval = Duration::from_secs(2);
    let f = common::start_with(issuer, config).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = f.issuer.jwks_fetches();
    let claims = f.issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let token = f.issuer.mint_with_header(
            &json!({"alg": "RS256", "kid": format!("forged-{i}")}),
            &claims,
        );
        let request = f
            .client
            .get(f.url("/api/hello"))
            .header("x-functions-key", KEY)
            .bearer_auth(token);
        tasks.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(f.issuer.jwks_fetches() - before, 1);
}
