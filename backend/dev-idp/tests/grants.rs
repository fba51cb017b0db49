//! The token endpoint beyond code redemption: refresh rotation and reuse detection, client
//! credentials, RFC 6749 errors, and userinfo.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;

fn refresh(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("client_id", SPA),
        ("refresh_token", rt),
    ]
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reuse_revokes_the_family() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let first = alice_tokens(&idp).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let r = token(&idp, &refresh(&rt1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second = r.json();
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert!(second["scope"].as_str().unwrap().contains(API_SCOPE));
    let jwks = idp.jwks().await;
    let at = verify(
        second["access_token"].as_str().unwrap(),
        &jwks,
        &idp.issuer(),
        API,
    )
    .unwrap();
    assert_eq!(at["scp"], "accessapp");
    // The refreshed ID token carries no nonce (there was no new authorization request).
    let id = verify(
        second["id_token"].as_str().unwrap(),
        &jwks,
        &idp.issuer(),
        SPA,
    )
    .unwrap();
    assert!(id.get("nonce").is_none());
    // The SPA's window is fixed at sign-in: rotation does not extend it.
    assert!(second["refresh_token_expires_in"].as_i64().unwrap() <= 86400);

    // rt2 works once more (rt3), then rt1 is replayed: the whole family dies.
    let rt3 = token(&idp, &refresh(&rt2)).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let replay = token(&idp, &refresh(&rt1)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");
    let r = token(&idp, &refresh(&rt3)).await;
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "the newest token of a revoked family must fail"
    );

    // Another sign-in's family is untouched.
    let other = alice_tokens(&idp).await;
    let r = token(&idp, &refresh(other["refresh_token"].as_str().unwrap())).await;
    assert_eq!(r.status, StatusCode::OK);
    idp.stop().await;
}

#[tokio::test]
async fn refresh_window_is_fixed_and_expiry_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // Times are whole seconds: the margins below hold wherever a second boundary falls.
    cfg.lifetimes.refresh_token_seconds = 3;
    // The browser suite's short-lived access tokens, for silent renewal.
    cfg.lifetimes.access_token_seconds = 60;
    let idp = Idp::start(cfg).await;
    let first = alice_tokens(&idp).await;
    assert_eq!(first["refresh_token_expires_in"], 3);
    assert_eq!(first["expires_in"], 60);
    let at = claims(first["access_token"].as_str().unwrap());
    assert_eq!(
        at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
        60
    );
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = token(&idp, &refresh(&rt)).await.json();
    assert!(second["refresh_token_expires_in"].as_i64().unwrap() <= 2);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = token(&idp, &refresh(second["refresh_token"].as_str().unwrap())).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    idp.stop().await;
}

#[tokio::test]
async fn refresh_checks_client_and_scope_without_burning_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // A second SPA, to present Alice's refresh token as another client.
    let mut other = cfg.spas[0].clone();
    other.client_id = "11111111-2222-4333-8444-555555555555".into();
    other.name = "other-spa".into();
    other.redirect_uris = vec!["http://127.0.0.1:10/".into()];
    other.post_logout_redirect_uris = None;
    cfg.spas.push(other);
    let idp = Idp::start(cfg).await;
    let rt = alice_tokens(&idp).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "11111111-2222-4333-8444-555555555555"),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");

    let mut with_scope = refresh(&rt);
    with_scope.push((
        "scope",
        "openid https://devtenant.onmicrosoft.com/hello-api/admin",
    ));
    let r = token(&idp, &with_scope).await;
    assert_eq!(r.json()["error"], "invalid_scope");

    // Neither attempt consumed the token.
    let mut narrower = refresh(&rt);
    narrower.push(("scope", API_SCOPE));
    let r = token(&idp, &narrower).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["scope"], API_SCOPE);
    assert!(r.json().get("id_token").is_none());

    let r = token(&idp, &refresh("not-a-refresh-token")).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = token(&idp, &[("grant_type", "refresh_token"), ("client_id", SPA)]).await;
    assert_eq!(r.json()["error"], "invalid_request");
    idp.stop().await;
}

#[tokio::test]
async fn client_credentials_with_basic_and_post_carry_roles() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let scope = "https://devtenant.onmicrosoft.com/hello-api/.default";

    let basic = daemon_token(&idp.token_url(), DAEMON_SECRET).await;
    assert_eq!(basic.status(), StatusCode::OK);
    let basic: serde_json::Value = basic.json().await.unwrap();

    let post = token(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON),
            ("client_secret", DAEMON_SECRET),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(post.status, StatusCode::OK, "{}", post.body);

    let jwks = idp.jwks().await;
    for body in [basic, post.json()] {
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none());
        let at = verify(
            body["access_token"].as_str().unwrap(),
            &jwks,
            &idp.issuer(),
            API,
        )
        .unwrap();
        assert_eq!(at["roles"], serde_json::json!(["access:test-api"]));
        assert_eq!(at["azp"], DAEMON);
        assert!(at.get("scp").is_none());
    }

    idp.stop().await;
}

/// Seed 004's token comes from the tenant's Entra endpoint, not a user flow's: v2 claims under
/// the tenant-level issuer `{base}/{tenant id}/v2.0` (no trailing slash), whose metadata sits
/// at `/{tenant id}/v2.0/.well-known/openid-configuration`, as login.microsoftonline.com's does.
#[tokio::test]
async fn the_tenant_endpoint_issues_entra_app_tokens_its_metadata_describes() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let tenant_issuer = format!("{}/{TENANT_ID}/v2.0", idp.base);

    let metadata_url = format!("{tenant_issuer}/.well-known/openid-configuration");
    let (status, metadata) = get_json(&metadata_url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metadata["issuer"], tenant_issuer);
    let token_endpoint = format!("{}/{TENANT_ID}/oauth2/v2.0/token", idp.base);
    assert_eq!(metadata["token_endpoint"], token_endpoint);
    // The tenant's domain names the same tenant; `?p=` still selects a user flow (B2C's form).
    let domain_form = format!(
        "{}/devtenant.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        idp.base
    );
    assert_eq!(
        get_json(&domain_form).await,
        (StatusCode::OK, metadata.clone())
    );
    let (_, by_query) = get_json(&format!("{metadata_url}?p=B2C_1_signupsignin")).await;
    assert_eq!(by_query["issuer"], idp.issuer());
    let (status, unknown) = get_json(&format!(
        "{}/othertenant.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        idp.base
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown["error"], "invalid_tenant");

    let (_, jwks) = get_json(metadata["jwks_uri"].as_str().unwrap()).await;
    // The API may also be named by its client id.
    for scope in [
        "https://devtenant.onmicrosoft.com/hello-api/.default".to_owned(),
        format!("{API}/.default"),
    ] {
        let r = post_basic(
            &token_endpoint,
            DAEMON_SECRET,
            &[("grant_type", "client_credentials"), ("scope", &scope)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{scope}");
        let body: serde_json::Value = r.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let at = verify(token, &jwks, &tenant_issuer, API).unwrap();
        assert_eq!(at["ver"], "2.0");
        assert_eq!(at["tid"], TENANT_ID);
        assert_eq!(at["roles"], serde_json::json!(["access:test-api"]));
        // Not valid under the user flow's (B2C) issuer.
        assert!(verify(token, &jwks, &idp.issuer(), API).is_err());
    }
    idp.stop().await;
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let client = reqwest::Client::new();
    let scope = "https://devtenant.onmicrosoft.com/hello-api/.default";

    // Wrong secret via Basic: 401 with a Basic challenge.
    let r = daemon_token(&idp.token_url(), "wrong-secret").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_client"
    );

    // Both methods at once.
    let r = post_basic(
        &idp.token_url(),
        DAEMON_SECRET,
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_secret", DAEMON_SECRET),
        ],
    )
    .await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );

    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DAEMON),
                ("client_secret", "nope"),
                ("scope", scope),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "unknown"),
                ("client_secret", DAEMON_SECRET),
                ("scope", scope),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DAEMON),
                ("scope", scope),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "unknown"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", SPA),
                ("scope", scope),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DAEMON),
                ("client_secret", DAEMON_SECRET),
                ("scope", API_SCOPE),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DAEMON),
                ("client_secret", DAEMON_SECRET),
                ("scope", "https://other.example/api/.default"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DAEMON),
                ("client_secret", DAEMON_SECRET),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "password"), ("client_id", SPA)],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", SPA)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token"),
                ("client_id", SPA),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", DAEMON),
                ("client_secret", DAEMON_SECRET),
                ("refresh_token", "x"),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
    ];
    for (fields, status, error) in cases {
        let r = token(&idp, &fields).await;
        assert_eq!(r.status, status, "{fields:?}: {}", r.body);
        let body = r.json();
        assert_eq!(body["error"], error, "{fields:?}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }

    // Not a form body.
    let r = client
        .post(idp.token_url())
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );

    // Unknown user flow.
    let r = client
        .post(idp.token_url().replace("b2c_1_signupsignin", "b2c_1_other"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    idp.stop().await;
}

#[tokio::test]
async fn userinfo_answers_for_valid_access_tokens_only() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let tokens = alice_tokens(&idp).await;
    let url = format!("{}/openid/v2.0/userinfo", idp.policy_url());
    let client = reqwest::Client::new();

    let r = client
        .get(&url)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: serde_json::Value = r.json().await.unwrap();
    assert_eq!(info["name"], "Alice Example");
    assert_eq!(info["emails"][0], ALICE);

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = client
        .get(&url)
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A tampered token (claims changed, signature kept).
    let at = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = at.split('.').collect();
    let forged = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    let r = client.get(&url).bearer_auth(forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    idp.stop().await;
}

#[tokio::test]
async fn userinfo_takes_the_bearer_scheme_in_any_case_and_refuses_the_rest_alike() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let tokens = alice_tokens(&idp).await;
    let token = tokens["access_token"].as_str().unwrap();
    let url = format!("{}/openid/v2.0/userinfo", idp.policy_url());
    let client = reqwest::Client::new();
    let get = |authorization: Vec<String>| {
        let mut request = client.get(&url);
        for value in authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };

    // RFC 7235 §2.1: the scheme is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = get(vec![format!("{scheme} {token}")]).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{scheme}");
        let info: serde_json::Value = r.json().await.unwrap();
        assert_eq!(info["emails"][0], ALICE, "{scheme}");
    }

    // No token, another scheme, the scheme alone, or two credentials: one answer.
    let challenge = |r: &reqwest::Response| r.headers()["www-authenticate"].clone();
    let none = get(vec![]).await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let expected = challenge(&none);
    assert!(
        expected
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\""),
        "{expected:?}"
    );
    for authorization in [
        vec![format!("Basic {token}")],
        vec![format!("Bearer{token}")],
        vec!["Bearer".to_owned()],
        vec!["Bearer   ".to_owned()],
        vec![format!("Bearer {token}"), format!("Bearer {token}")],
    ] {
        let r = get(authorization.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(challenge(&r), expected, "{authorization:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{authorization:?}");
    }
    idp.stop().await;
}
