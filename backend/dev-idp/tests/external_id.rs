//! Entra External ID's shape of the same provider: tenant-level metadata, authorize, token and
//! logout with no policy in any path, `api://{api client id}/…` scopes, the user flow chosen by
//! the app (a `?p=` still names one), and v2 tokens under the tenant issuer — driven over HTTP
//! the way the SPA and a browser use them.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// External ID's scope form of the built-in API's `accessapp`.
fn api_scope() -> String {
    format!("api://{API}/accessapp")
}

fn tenant_base(idp: &Idp) -> String {
    format!("{}/{TENANT_ID}", idp.base)
}

async fn metadata(idp: &Idp) -> Value {
    let url = format!("{}/v2.0/.well-known/openid-configuration", tenant_base(idp));
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// `endpoint` (the tenant-level authorize URL) with the SPA's request; `extra` replaces or adds.
fn request(endpoint: &str, extra: &[(&str, &str)]) -> String {
    let scope = format!("openid offline_access {}", api_scope());
    let params: Vec<(&str, &str)> = vec![
        ("client_id", SPA),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", &scope),
        ("state", "state-ext"),
        ("nonce", "nonce-ext"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    with_params(endpoint, params, extra)
}

/// Signs Alice in at `authorize_url` and returns the code the app receives.
async fn alice_code(browser: &mut Browser, idp: &Idp, authorize_url: &str) -> String {
    let redirect = browser
        .sign_in(idp, authorize_url, ALICE, ALICE_PASSWORD)
        .await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER, "{}", redirect.body);
    let params = response_params(&redirect.location(), false);
    assert_eq!(params["state"], "state-ext");
    params["code"].clone()
}

#[tokio::test]
async fn sign_in_at_the_tenant_level_gets_v2_tokens_under_the_tenant_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let base = tenant_base(&idp);
    let issuer = format!("{base}/v2.0");

    // The metadata names no policy anywhere: ciamlogin.com's shape.
    let doc = metadata(&idp).await;
    assert_eq!(doc["issuer"], issuer);
    for (field, path) in [
        ("authorization_endpoint", "/oauth2/v2.0/authorize"),
        ("token_endpoint", "/oauth2/v2.0/token"),
        ("end_session_endpoint", "/oauth2/v2.0/logout"),
        ("jwks_uri", "/discovery/v2.0/keys"),
    ] {
        assert_eq!(doc[field], format!("{base}{path}"), "{field}");
    }
    let jwks: Value = reqwest::get(doc["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let mut browser = Browser::new();
    let authorize = request(doc["authorization_endpoint"].as_str().unwrap(), &[]);
    let code = alice_code(&mut browser, &idp, &authorize).await;
    let token_endpoint = doc["token_endpoint"].as_str().unwrap();
    let r = redeem_at(token_endpoint, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = r.json();
    // Granted as requested: clients cache tokens under these spellings.
    assert_eq!(
        body["scope"],
        format!("openid offline_access {}", api_scope())
    );

    let access = verify(body["access_token"].as_str().unwrap(), &jwks, &issuer, API).unwrap();
    assert_eq!(access["ver"], "2.0");
    assert_eq!(access["scp"], "accessapp");
    assert_eq!(access["azp"], SPA);
    assert_eq!(access["tid"], TENANT_ID);
    assert_eq!(access["name"], "Alice Example");
    assert!(
        access.get("tfp").is_none(),
        "External ID names no user flow"
    );
    // Not a B2C token: the user flow's issuer (trailing slash) does not accept it.
    assert!(
        verify(
            body["access_token"].as_str().unwrap(),
            &jwks,
            &idp.issuer(),
            API
        )
        .is_err()
    );

    let id = verify(body["id_token"].as_str().unwrap(), &jwks, &issuer, SPA).unwrap();
    assert_eq!(id["nonce"], "nonce-ext");
    assert_eq!(id["ver"], "2.0");

    // Renewal at the same endpoint stays in the same shape.
    let r = post_form(
        token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", SPA),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let renewed = r.json();
    verify(
        renewed["access_token"].as_str().unwrap(),
        &jwks,
        &issuer,
        API,
    )
    .unwrap();

    // The SSO session answers a silent request at the tenant-level endpoint too.
    let silent = browser
        .get(&request(
            doc["authorization_endpoint"].as_str().unwrap(),
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(silent.status, StatusCode::FOUND, "{}", silent.body);
    assert!(response_params(&silent.location(), false).contains_key("code"));

    idp.stop().await;
}

/// External ID runs the user flow an app is linked to; a `?p=` still selects a B2C user flow,
/// at the authorize and the token endpoint alike (then with B2C's tokens).
#[tokio::test]
async fn the_app_chooses_the_user_flow_and_p_still_selects_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.tenant
        .policies
        .push(dev_idp::config::UserFlow::SignUpSignIn(
            "B2C_1_external".into(),
        ));
    cfg.spas[0].user_flow = Some("B2C_1_external".into());
    let idp = Idp::start(cfg).await;
    let base = tenant_base(&idp);
    let authorize = format!("{base}/oauth2/v2.0/authorize");
    let jwks = idp.jwks().await;

    // The linked flow's pages, though the path names none.
    let mut browser = Browser::new();
    let page = browser.get(&request(&authorize, &[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        Form::parse(&page.body).action.contains("/b2c_1_external/"),
        "{}",
        Form::parse(&page.body).action
    );
    let code = alice_code(&mut browser, &idp, &request(&authorize, &[])).await;
    // Redeemed in B2C's query form of that flow: its B2C token names it in `tfp`.
    let r = redeem_at(&format!("{base}/oauth2/v2.0/token?p=B2C_1_external"), &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = verify(
        r.json()["access_token"].as_str().unwrap(),
        &jwks,
        &idp.issuer(),
        API,
    )
    .unwrap();
    assert_eq!(access["tfp"], "B2C_1_external");
    assert_eq!(access["ver"], "1.0");

    // `?p=` overrides the link; the code is that flow's and no other's.
    let mut browser = Browser::new();
    let chosen = request(&authorize, &[("p", "b2c_1_signupsignin")]);
    let code = alice_code(&mut browser, &idp, &chosen).await;
    let wrong = redeem_at(&format!("{base}/oauth2/v2.0/token?p=B2C_1_external"), &code).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(wrong.body.contains("another user flow"), "{}", wrong.body);

    // With the SSO session, `?p=` of the profile-edit flow shows its page, not a code.
    let profile = browser
        .get(&request(&authorize, &[("p", PROFILE_EDIT)]))
        .await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    assert!(profile.body.contains("displayName"), "{}", profile.body);

    idp.stop().await;
}

#[tokio::test]
async fn bad_tenant_level_requests_are_refused_with_a_page_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let base = tenant_base(&idp);
    let authorize = format!("{base}/oauth2/v2.0/authorize");
    let mut browser = Browser::new();

    // Refusals shown as a page: nothing goes to an unverified redirect URI.
    let other_tenant = format!(
        "{}/0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/oauth2/v2.0/authorize",
        idp.base
    );
    for (url, status, text) in [
        (
            request(&other_tenant, &[]),
            StatusCode::BAD_REQUEST,
            "AADSTS90002",
        ),
        (
            request(&authorize, &[("p", "B2C_1_nope")]),
            StatusCode::NOT_FOUND,
            "AADB2C90008",
        ),
        (
            request(
                &authorize,
                &[("client_id", "0b1c2d3e-0000-0000-0000-9f0a1b2c3d4e")],
            ),
            StatusCode::BAD_REQUEST,
            "AADB2C90117",
        ),
        (
            request(&authorize, &[("redirect_uri", "https://evil.example/")]),
            StatusCode::BAD_REQUEST,
            "AADB2C90006",
        ),
    ] {
        let r = browser.get(&url).await;
        assert_eq!(r.status, status, "{url}: {}", r.body);
        assert!(r.headers.get("location").is_none(), "{url}");
        assert!(r.body.contains(text), "{url}: {}", r.body);
    }

    // An `api://` scope of another app, or one the app holds no permission for: invalid_scope.
    for scope in [
        "openid api://0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/accessapp".to_owned(),
        format!("openid api://{API}/admin"),
    ] {
        let r = browser
            .get(&request(&authorize, &[("scope", &scope)]))
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "{scope}: {}", r.body);
        assert_eq!(
            response_params(&r.location(), false)["error"],
            "invalid_scope",
            "{scope}"
        );
    }

    // The token endpoint's `?p=` must name a user flow.
    let r = redeem_at(&format!("{base}/oauth2/v2.0/token?p=B2C_1_nope"), "x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_request");

    idp.stop().await;
}

#[tokio::test]
async fn tenant_level_logout_ends_the_session_and_returns_only_to_registered_uris() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let base = tenant_base(&idp);
    let authorize = format!("{base}/oauth2/v2.0/authorize");
    let mut browser = Browser::new();
    alice_code(&mut browser, &idp, &request(&authorize, &[])).await;
    assert!(browser.cookies.contains_key("devidp_session"));

    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("post_logout_redirect_uri", REDIRECT), ("state", "bye")])
        .finish();
    let r = browser
        .get(&format!("{base}/oauth2/v2.0/logout?{query}"))
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(response_params(&r.location(), false)["state"], "bye");
    assert!(!browser.cookies.contains_key("devidp_session"));
    // Signed out: a silent request now needs a sign-in.
    let silent = browser
        .get(&request(&authorize, &[("prompt", "none")]))
        .await;
    assert_eq!(
        response_params(&silent.location(), false)["error"],
        "login_required"
    );

    let r = browser
        .get(&format!(
            "{base}/oauth2/v2.0/logout?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get("location").is_none());
    for unknown in [
        format!(
            "{}/0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/oauth2/v2.0/logout",
            idp.base
        ),
        format!("{base}/oauth2/v2.0/logout?p=B2C_1_nope"),
    ] {
        assert_eq!(
            browser.get(&unknown).await.status,
            StatusCode::NOT_FOUND,
            "{unknown}"
        );
    }

    idp.stop().await;
}
