//! The API app as EasyAuth's web client: the implicit flow with `form_post` — the ID token for
//! the API's client id, with the nonce, posted to a registered Web redirect URI — and its
//! refusals, driven over HTTP like a browser.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;

const CALLBACK: &str = "http://127.0.0.1:7071/.auth/login/aad/callback";

fn web_request(idp: &Idp, extra: &[(&str, &str)]) -> String {
    let params: Vec<(&str, &str)> = vec![
        ("client_id", API),
        ("redirect_uri", CALLBACK),
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
        ("scope", "openid profile email"),
        ("nonce", "web-nonce-1"),
        ("state", "web-state-1"),
    ];
    let endpoint = format!("{}/oauth2/v2.0/authorize", idp.policy_url());
    with_params(&endpoint, params, extra)
}

fn posted(page: &Response) -> (String, std::collections::HashMap<String, String>) {
    let form = Form::parse(&page.body);
    (form.action, form.hidden.into_iter().collect())
}

#[tokio::test]
async fn a_web_sign_in_posts_an_id_token_with_the_nonce_to_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let jwks = idp.jwks().await;
    let mut browser = Browser::new();
    let page = browser
        .sign_in(&idp, &web_request(&idp, &[]), ALICE, ALICE_PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    let (action, fields) = posted(&page);
    assert_eq!(action, CALLBACK);
    assert_eq!(fields["state"], "web-state-1");
    assert!(!fields.contains_key("code"));
    let id = verify(&fields["id_token"], &jwks, &idp.issuer(), API).unwrap();
    assert_eq!(id["nonce"], "web-nonce-1");
    assert_eq!(id["name"], "Alice Example");
    assert!(id.get("at_hash").is_none(), "no access token to bind");

    // With the SSO session the next web sign-in posts at once, without the form.
    let again = browser
        .get(&web_request(&idp, &[("nonce", "web-nonce-2")]))
        .await;
    let (_, fields) = posted(&again);
    assert_eq!(claims(&fields["id_token"])["nonce"], "web-nonce-2");
    idp.stop().await;
}

#[tokio::test]
async fn bad_web_sign_in_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();

    // An unregistered callback: a page, nothing posted anywhere.
    let r = browser
        .get(&web_request(
            &idp,
            &[(
                "redirect_uri",
                "https://evil.example/.auth/login/aad/callback",
            )],
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("AADB2C90006") && !r.body.contains("<form"),
        "{}",
        r.body
    );

    // The rest goes back to the registered callback, posted with error and state.
    for (extra, error) in [
        (vec![("response_type", "code")], "unsupported_response_type"),
        (vec![("response_mode", "query")], "invalid_request"),
        (vec![("nonce", "")], "invalid_request"),
        (vec![("scope", "profile")], "invalid_scope"),
        (
            vec![("scope", &format!("openid {API_SCOPE}") as &str)],
            "invalid_scope",
        ),
    ] {
        let r = browser.get(&web_request(&idp, &extra)).await;
        assert_eq!(r.status, StatusCode::OK, "{extra:?}: {}", r.body);
        let (action, fields) = posted(&r);
        assert_eq!(action, CALLBACK, "{extra:?}");
        assert_eq!(fields["error"], error, "{extra:?}");
        assert_eq!(fields["state"], "web-state-1");
        assert!(!fields.contains_key("id_token"));
    }

    // The SPA may not ask for form_post: its tokens never leave by a posted form.
    let r = browser
        .get(&idp.authorize_url(&[("response_mode", "form_post")]))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        response_params(&r.location(), false)["error"],
        "invalid_request"
    );
    idp.stop().await;
}

/// Begun at External ID's tenant-level authorize endpoint, the web sign-in's ID token carries
/// the tenant issuer (v2), so a function trusting only that metadata accepts it.
#[tokio::test]
async fn a_web_sign_in_at_the_tenant_level_gets_the_tenant_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let jwks = idp.jwks().await;
    let tenant_endpoint = format!("{}/{TENANT_ID}/oauth2/v2.0/authorize", idp.base);
    let url = web_request(&idp, &[]).replace(
        &format!("{}/oauth2/v2.0/authorize", idp.policy_url()),
        &tenant_endpoint,
    );
    let mut browser = Browser::new();
    let page = browser.sign_in(&idp, &url, ALICE, ALICE_PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (action, fields) = posted(&page);
    assert_eq!(action, CALLBACK);
    let tenant_issuer = format!("{}/{TENANT_ID}/v2.0", idp.base);
    let id = verify(&fields["id_token"], &jwks, &tenant_issuer, API).unwrap();
    assert_eq!(id["ver"], "2.0");
    assert_eq!(id["nonce"], "web-nonce-1");
    assert!(verify(&fields["id_token"], &jwks, &idp.issuer(), API).is_err());
    idp.stop().await;
}

const WEB_SECRET: &str = "dev-easyauth-secret";

fn redeem_fields<'a>(code: &'a str, secret: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("client_id", API),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(secret) = secret {
        fields.push(("client_secret", secret));
    }
    fields
}

/// With its secret the web app uses the hybrid flow: a code beside the ID token, redeemed with
/// `client_secret_post` (no PKCE) for an ID token with the same nonce and user.
#[tokio::test]
async fn a_hybrid_web_sign_in_redeems_its_code_with_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let jwks = idp.jwks().await;
    let mut browser = Browser::new();
    let url = web_request(&idp, &[("response_type", "code id_token")]);
    let page = browser.sign_in(&idp, &url, ALICE, ALICE_PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (action, fields) = posted(&page);
    assert_eq!(action, CALLBACK);
    let front = verify(&fields["id_token"], &jwks, &idp.issuer(), API).unwrap();
    assert!(front["c_hash"].is_string(), "{front}");
    let code = &fields["code"];

    let r = token(&idp, &redeem_fields(code, Some(WEB_SECRET))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(body.get("access_token").is_none(), "{body}");
    let back = verify(
        body["id_token"].as_str().unwrap(),
        &jwks,
        &idp.issuer(),
        API,
    )
    .unwrap();
    assert_eq!(back["nonce"], "web-nonce-1");
    assert_eq!(back["sub"], front["sub"]);

    let again = token(&idp, &redeem_fields(code, Some(WEB_SECRET))).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("invalid_grant"), "{}", again.body);
    idp.stop().await;
}

/// A wrong or missing secret is `invalid_client` (401) and leaves the code unspent; the code is
/// bound to its redirect URI and to the web app (a SPA's code is not its to redeem).
#[tokio::test]
async fn the_web_code_is_redeemed_only_with_the_right_secret_and_redirect_uri() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    let url = web_request(&idp, &[("response_type", "id_token code")]);
    let page = browser.sign_in(&idp, &url, ALICE, ALICE_PASSWORD).await;
    let code = posted(&page).1["code"].clone();

    for secret in [Some("not-the-secret"), None] {
        let r = token(&idp, &redeem_fields(&code, secret)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{secret:?}: {}", r.body);
        assert!(r.body.contains("\"invalid_client\""), "{}", r.body);
        assert!(!r.body.contains(WEB_SECRET));
    }
    let mut moved = redeem_fields(&code, Some(WEB_SECRET));
    moved[3].1 = "http://localhost:7071/.auth/login/aad/callback";
    let r = token(&idp, &moved).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("redirect_uri"), "{}", r.body);

    // The web app's secret does not redeem the SPA's code, nor other grants.
    let spa_page = browser.get(&idp.authorize_url(&[])).await;
    let spa_code = response_params(&spa_page.location(), false)["code"].clone();
    let mut fields = redeem_fields(&spa_code, Some(WEB_SECRET));
    fields[3].1 = REDIRECT;
    let r = token(&idp, &fields).await;
    assert!(r.body.contains("another client"), "{}", r.body);
    let r = token(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", API),
            ("client_secret", WEB_SECRET),
            ("scope", &format!("{API_SCOPE}/.default") as &str),
        ],
    )
    .await;
    assert!(r.body.contains("unauthorized_client"), "{}", r.body);
    idp.stop().await;
}

/// Without a secret the registration is implicit-only: no hybrid flow, no secret accepted.
#[tokio::test]
async fn a_web_app_without_a_secret_keeps_to_the_implicit_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.apis[0].web_client_secret = None;
    let idp = Idp::start(config).await;
    let mut browser = Browser::new();
    let r = browser
        .get(&web_request(&idp, &[("response_type", "code id_token")]))
        .await;
    let (_, fields) = posted(&r);
    assert_eq!(fields["error"], "unsupported_response_type");
    let r = token(&idp, &redeem_fields("some-code", Some(WEB_SECRET))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(r.body.contains("\"invalid_client\""), "{}", r.body);
    idp.stop().await;
}
