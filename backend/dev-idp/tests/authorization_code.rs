//! The Authorization Code + PKCE flow driven through the HTML pages, like a browser would.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::*;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

fn half_hash(value: &str) -> String {
    B64.encode(&Sha256::digest(value.as_bytes())[..16])
}

#[tokio::test]
async fn code_flow_with_rfc7636_pair_issues_b2c_shaped_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();

    let redirect = browser
        .sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    let location = redirect.location();
    assert!(
        location.starts_with("http://127.0.0.1:9/callback?"),
        "{location}"
    );
    let params = response_params(&location, false);
    assert_eq!(params["state"], "state-123");
    let code = params["code"].clone();

    let r = redeem_at(&idp.token_url(), &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.split(' ').any(|s| s == API_SCOPE), "{scope}");
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(body["refresh_token"].as_str().is_some());
    assert_eq!(body["refresh_token_expires_in"], 86400);
    assert!(body["client_info"].as_str().is_some());

    let jwks = idp.jwks().await;
    let access = body["access_token"].as_str().unwrap();
    let at = verify(access, &jwks, &idp.issuer(), API).unwrap();
    assert_eq!(at["scp"], "accessapp");
    assert_eq!(at["azp"], SPA);
    assert_eq!(at["tfp"], "B2C_1_signupsignin");
    assert_eq!(at["ver"], "1.0");
    assert_eq!(at["name"], "Alice Example");
    assert_eq!(at["emails"], serde_json::json!([ALICE]));
    assert_eq!(at["oid"], at["sub"]);
    assert_eq!(
        at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
        3600
    );
    assert!(at["auth_time"].as_i64().is_some());
    assert!(idp.issuer().ends_with(&format!("/{TENANT_ID}/v2.0/")));

    let id_token = body["id_token"].as_str().unwrap();
    let id = verify(id_token, &jwks, &idp.issuer(), SPA).unwrap();
    assert_eq!(id["nonce"], "nonce-456");
    assert_eq!(id["name"], "Alice Example");
    assert_eq!(id["sub"], at["sub"]);
    assert_eq!(id["at_hash"], half_hash(access));
    assert_eq!(id["c_hash"], half_hash(&code));
    // An ID token is not an access token for the API.
    assert!(verify(id_token, &jwks, &idp.issuer(), API).is_err());
    assert_eq!(kid(access), jwks["keys"][0]["kid"].as_str().unwrap());
    idp.stop().await;
}

#[tokio::test]
async fn fragment_mode_and_lowercased_authority_work_as_msal_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    let url = idp.authorize_url(&[("response_mode", "fragment")]).replace(
        "/devtenant.onmicrosoft.com/b2c_1_signupsignin/",
        "/DevTenant.onmicrosoft.com/B2C_1_SignUpSignIn/",
    );
    let redirect = browser.sign_in(&idp, &url, ALICE, ALICE_PASSWORD).await;
    let location = redirect.location();
    assert!(
        location.starts_with("http://127.0.0.1:9/callback#code="),
        "{location}"
    );
    let params = response_params(&location, true);
    assert_eq!(params["state"], "state-123");

    // MSAL redeems at the lowercased token endpoint.
    let r = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", &params["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("scope", &format!("openid offline_access {API_SCOPE}")),
            ("client_info", "1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The `tfp/` authority form works for the endpoints as well as for discovery.
    let tfp_base = format!("{}/tfp", idp.base);
    let tfp = idp
        .authorize_url(&[("response_mode", "fragment")])
        .replace(&idp.base, &tfp_base);
    let r = browser.get(&tfp).await;
    assert_eq!(
        r.status,
        StatusCode::FOUND,
        "the SSO session answers at once"
    );
    let code = response_params(&r.location(), true)["code"].clone();
    let r = redeem_at(&idp.token_url().replace(&idp.base, &tfp_base), &code).await;
    assert_eq!(r.status, StatusCode::OK);
    idp.stop().await;
}

#[tokio::test]
async fn sso_cookie_skips_the_form_and_prompt_controls_it() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();

    // prompt=none without a session: login_required, state echoed.
    let r = browser.get(&idp.authorize_url(&[("prompt", "none")])).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let p = response_params(&r.location(), false);
    assert_eq!(p["error"], "login_required");
    assert_eq!(p["state"], "state-123");

    browser
        .sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    assert!(browser.cookies.contains_key("devidp_session"));

    // A second authorize goes straight back with a code.
    let r = browser
        .get(&idp.authorize_url(&[("state", "second")]))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let p = response_params(&r.location(), false);
    assert!(p.contains_key("code"));
    assert_eq!(p["state"], "second");

    // prompt=none with a session: silent success.
    let r = browser.get(&idp.authorize_url(&[("prompt", "none")])).await;
    assert!(response_params(&r.location(), false).contains_key("code"));

    // prompt=login shows the form despite the session.
    let r = browser
        .get(&idp.authorize_url(&[("prompt", "login")]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"signInName\""));

    // Another browser has no session.
    let r = Browser::new().get(&idp.authorize_url(&[])).await;
    assert_eq!(r.status, StatusCode::OK);
    idp.stop().await;
}

#[tokio::test]
async fn login_hint_prefills_the_sign_in_name() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let r = Browser::new()
        .get(&idp.authorize_url(&[("login_hint", "bob@example.com")]))
        .await;
    assert!(r.body.contains("value=\"bob@example.com\""), "{}", r.body);
    assert!(r.body.contains("<label for=\"signInName\">"));
    assert!(r.body.contains("<label for=\"password\">"));
    assert_eq!(r.headers["x-frame-options"], "DENY");
    idp.stop().await;
}

#[tokio::test]
async fn untrusted_clients_and_redirects_get_a_page_never_a_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut b = Browser::new();
    for url in [
        idp.authorize_url(&[("client_id", "00000000-0000-0000-0000-000000000000")]),
        idp.authorize_url(&[("client_id", "")]),
        idp.authorize_url(&[("redirect_uri", "http://127.0.0.1:9/callback/")]),
        idp.authorize_url(&[("redirect_uri", "https://evil.example/callback")]),
        idp.authorize_url(&[("redirect_uri", "")]),
        format!("{}&client_id={SPA}", idp.authorize_url(&[])),
    ] {
        let r = b.get(&url).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(r.headers.get("location").is_none(), "{url}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let r = b
        .get(
            &idp.authorize_url(&[])
                .replace("b2c_1_signupsignin", "B2C_1_nope"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = b
        .get(
            &idp.authorize_url(&[])
                .replace("devtenant.onmicrosoft.com", "other.onmicrosoft.com"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    idp.stop().await;
}

#[tokio::test]
async fn request_errors_are_redirected_with_error_description_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut b = Browser::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("code_challenge", "too-short")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "")], "invalid_request"),
        (&[("response_mode", "form_post")], "invalid_request"),
        (
            &[(
                "scope",
                "openid https://devtenant.onmicrosoft.com/hello-api/write",
            )],
            "invalid_scope",
        ),
        (
            &[("scope", "openid https://other.example/api/read")],
            "invalid_scope",
        ),
        (&[("scope", "")], "invalid_scope"),
    ];
    for (extra, expected) in cases {
        let r = b.get(&idp.authorize_url(extra)).await;
        assert_eq!(r.status, StatusCode::FOUND, "{extra:?}: {}", r.body);
        let location = r.location();
        assert!(location.starts_with(REDIRECT), "{location}");
        let p = response_params(&location, false);
        assert_eq!(p["error"], *expected, "{extra:?}");
        assert!(!p["error_description"].is_empty());
        assert_eq!(p["state"], "state-123");
    }
    // Errors honour fragment mode too.
    let r = b
        .get(&idp.authorize_url(&[
            ("response_mode", "fragment"),
            ("code_challenge_method", "plain"),
        ]))
        .await;
    assert_eq!(
        response_params(&r.location(), true)["error"],
        "invalid_request"
    );
    idp.stop().await;
}

async fn fresh_code(idp: &Idp, browser: &mut Browser) -> String {
    let r = browser.get(&idp.authorize_url(&[])).await;
    let location = if r.status == StatusCode::OK {
        browser
            .submit(
                &idp.base,
                &r.body,
                &[("signInName", ALICE), ("password", ALICE_PASSWORD)],
            )
            .await
            .location()
    } else {
        r.location()
    };
    response_params(&location, false)["code"].clone()
}

fn redeem<'a>(code: &'a str, verifier: &'a str, redirect: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", SPA),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn codes_are_single_use_and_a_reuse_revokes_what_they_issued() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    let code = fresh_code(&idp, &mut browser).await;

    let first = token(&idp, &redeem(&code, VERIFIER, REDIRECT)).await;
    assert_eq!(first.status, StatusCode::OK);
    let refresh = first.json()["refresh_token"].as_str().unwrap().to_owned();

    let again = token(&idp, &redeem(&code, VERIFIER, REDIRECT)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["error"], "invalid_grant");

    // The refresh token issued from the reused code no longer works.
    let r = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", SPA),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_grant");
    idp.stop().await;
}

#[tokio::test]
async fn codes_are_bound_to_verifier_redirect_and_client() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();

    let other_verifier = "xBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = fresh_code(&idp, &mut browser).await;
    let r = token(&idp, &redeem(&code, other_verifier, REDIRECT)).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    // The failed attempt consumed the code: guessing verifiers gets one try.
    let r = token(&idp, &redeem(&code, VERIFIER, REDIRECT)).await;
    assert_eq!(r.json()["error"], "invalid_grant");

    let code = fresh_code(&idp, &mut browser).await;
    let r = token(&idp, &redeem(&code, VERIFIER, "http://127.0.0.1:8080/")).await;
    assert_eq!(r.json()["error"], "invalid_grant");

    let code = fresh_code(&idp, &mut browser).await;
    let r = token(&idp, &redeem(&code, "", REDIRECT)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_request");

    let r = token(&idp, &redeem("not-a-code", VERIFIER, REDIRECT)).await;
    assert_eq!(r.json()["error"], "invalid_grant");

    // A code presented by another client (the daemon, authenticated) is refused.
    let code = fresh_code(&idp, &mut browser).await;
    let r = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", DAEMON),
            ("client_secret", DAEMON_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    idp.stop().await;
}

#[tokio::test]
async fn codes_expire() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.lifetimes.authorization_code_seconds = 1;
    let idp = Idp::start(cfg).await;
    let mut browser = Browser::new();
    let code = fresh_code(&idp, &mut browser).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = token(&idp, &redeem(&code, VERIFIER, REDIRECT)).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    idp.stop().await;
}

#[tokio::test]
async fn sign_up_checks_its_fields_then_creates_and_signs_in_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    let signup = browser.sign_up_page(&idp).await;
    assert_eq!(signup.status, StatusCode::OK);
    for id in ["email", "displayName", "newPassword", "reenterPassword"] {
        assert!(
            signup.body.contains(&format!("<label for=\"{id}\">")),
            "{id}"
        );
    }

    let attempts: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("email", "bob"),
                ("displayName", "Bob"),
                ("newPassword", "Str0ng-pass"),
                ("reenterPassword", "Str0ng-pass"),
            ],
            "valid email",
        ),
        (
            &[
                ("email", "bob@example.com"),
                ("displayName", " "),
                ("newPassword", "Str0ng-pass"),
                ("reenterPassword", "Str0ng-pass"),
            ],
            "display name",
        ),
        (
            &[
                ("email", "bob@example.com"),
                ("displayName", "Bob"),
                ("newPassword", "Sh0rt!"),
                ("reenterPassword", "Sh0rt!"),
            ],
            "between 8 and 64",
        ),
        (
            &[
                ("email", "bob@example.com"),
                ("displayName", "Bob"),
                ("newPassword", "alllowercase"),
                ("reenterPassword", "alllowercase"),
            ],
            "at least 3",
        ),
        (
            &[
                ("email", "bob@example.com"),
                ("displayName", "Bob"),
                ("newPassword", "Str0ng-pass"),
                ("reenterPassword", "Str0ng-pasS"),
            ],
            "do not match",
        ),
        (
            &[
                ("email", "ALICE@example.com"),
                ("displayName", "Alice 2"),
                ("newPassword", "Str0ng-pass"),
                ("reenterPassword", "Str0ng-pass"),
            ],
            "already exists",
        ),
    ];
    for (fields, message) in attempts {
        let r = browser.submit(&idp.base, &signup.body, fields).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("role=\"alert\""), "{message}");
        assert!(
            r.body.contains(message),
            "expected '{message}' in {}",
            r.body
        );
    }

    let r = browser
        .submit(
            &idp.base,
            &signup.body,
            &[
                ("email", "bob@example.com"),
                ("displayName", "Bob Builder"),
                ("newPassword", "Str0ng-pass"),
                ("reenterPassword", "Str0ng-pass"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let code = response_params(&r.location(), false)["code"].clone();
    let tokens = token(&idp, &redeem(&code, VERIFIER, REDIRECT)).await.json();
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["name"], "Bob Builder");
    assert_eq!(id["emails"][0], "bob@example.com");

    // The new account signs in from another browser.
    let r = Browser::new()
        .sign_in(
            &idp,
            &idp.authorize_url(&[]),
            "bob@example.com",
            "Str0ng-pass",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    idp.stop().await;
}

#[tokio::test]
async fn concurrent_sign_ups_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let idp = std::sync::Arc::new(Idp::start(config(dir.path())).await);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let idp = idp.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = Browser::new();
            let signup = b.sign_up_page(&idp).await;
            let email = format!("user{i}@example.com");
            let r = b
                .submit(
                    &idp.base,
                    &signup.body,
                    &[
                        ("email", &email),
                        ("displayName", "Someone"),
                        ("newPassword", "Str0ng-pass"),
                        ("reenterPassword", "Str0ng-pass"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            email
        }));
    }
    // Two browsers racing for the same address: exactly one account results.
    let mut racers = Vec::new();
    for _ in 0..2 {
        let idp = idp.clone();
        racers.push(tokio::spawn(async move {
            let mut b = Browser::new();
            let signup = b.sign_up_page(&idp).await;
            b.submit(
                &idp.base,
                &signup.body,
                &[
                    ("email", "twin@example.com"),
                    ("displayName", "Twin"),
                    ("newPassword", "Str0ng-pass"),
                    ("reenterPassword", "Str0ng-pass"),
                ],
            )
            .await
            .status
        }));
    }
    let mut created = 0;
    for r in racers {
        if r.await.unwrap() == StatusCode::SEE_OTHER {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let mut emails = Vec::new();
    for t in tasks {
        emails.push(t.await.unwrap());
    }
    for email in emails {
        let r = Browser::new()
            .sign_in(&idp, &idp.authorize_url(&[]), &email, "Str0ng-pass")
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{email}");
    }
}

#[tokio::test]
async fn forgot_password_and_cancel_return_b2c_errors_to_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut b = Browser::new();
    let page = b.get(&idp.authorize_url(&[])).await;
    let r = b.follow(&idp, &page, "forgotPassword").await;
    let p = response_params(&r.location(), false);
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].starts_with("AADB2C90118"));
    assert_eq!(p["state"], "state-123");

    let signup = b.follow(&idp, &page, "createAccount").await;
    let r = b.follow(&idp, &signup, "cancel").await;
    let p = response_params(&r.location(), false);
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].starts_with("AADB2C90091"));

    // In fragment mode the error comes back in the fragment.
    let page = b
        .get(&idp.authorize_url(&[("response_mode", "fragment")]))
        .await;
    let r = b.follow(&idp, &page, "forgotPassword").await;
    assert!(response_params(&r.location(), true)["error_description"].starts_with("AADB2C90118"));
    idp.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut victim = Browser::new();
    let page = victim.get(&idp.authorize_url(&[])).await;
    let form = Form::parse(&page.body);
    let url = format!("{}{}", idp.base, form.action);
    let credentials = [
        ("signInName".to_owned(), ALICE.to_owned()),
        ("password".to_owned(), ALICE_PASSWORD.to_owned()),
    ];

    // No csrf field at all.
    let mut fields: Vec<_> = form
        .hidden
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    fields.extend(credentials.clone());
    let r = victim.post(&url, &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A wrong token.
    let mut wrong = fields.clone();
    wrong.push(("csrf".into(), "A".repeat(43)));
    assert_eq!(
        victim.post(&url, &wrong).await.status,
        StatusCode::FORBIDDEN
    );

    // The right token but no cookie (a cross-site post from another browser).
    let mut attacker = Browser::new();
    let mut all = form.hidden.clone();
    all.extend(credentials.clone());
    assert_eq!(
        attacker.post(&url, &all).await.status,
        StatusCode::FORBIDDEN
    );

    // Sign-up is protected the same way.
    let signup_url = format!("{url}/signup");
    assert_eq!(
        attacker.post(&signup_url, &all).await.status,
        StatusCode::FORBIDDEN
    );

    // With both it works.
    assert_eq!(victim.post(&url, &all).await.status, StatusCode::SEE_OTHER);
    idp.stop().await;
}

#[tokio::test]
async fn lockout_after_ten_failures_never_reveals_whether_the_account_exists() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut b = Browser::new();
    let locked = "temporarily locked";
    for name in [ALICE, "nobody@example.com"] {
        for i in 1..=10 {
            let r = b
                .sign_in(&idp, &idp.authorize_url(&[]), name, "Wrong-password-1")
                .await;
            assert_eq!(r.status, StatusCode::OK);
            if i < 10 {
                assert!(
                    r.body.contains("Invalid username or password."),
                    "{name} attempt {i}"
                );
            } else {
                assert!(r.body.contains(locked), "{name} attempt {i}");
            }
        }
        // Locked: even the right password is refused, with the same message for both names.
        let r = b
            .sign_in(&idp, &idp.authorize_url(&[]), name, ALICE_PASSWORD)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains(locked), "{name}");
    }
    // Other accounts are unaffected.
    let r = Browser::new()
        .sign_in(&idp, &idp.authorize_url(&[]), "bob@example.com", "x")
        .await;
    assert!(r.body.contains("Invalid username or password."));
    idp.stop().await;
}

async fn attempt(idp: &Idp, b: &mut Browser, password: &str) -> Response {
    b.sign_in(idp, &idp.authorize_url(&[]), ALICE, password)
        .await
}

#[tokio::test]
async fn lock_expires_and_grows() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.lockout.threshold = 2;
    // Times are whole seconds: the margins below hold wherever a second boundary falls.
    cfg.lockout.lock_seconds = 2;
    let idp = Idp::start(cfg).await;
    let mut b = Browser::new();
    for _ in 0..2 {
        attempt(&idp, &mut b, "Wrong-password-1").await;
    }
    let r = attempt(&idp, &mut b, ALICE_PASSWORD).await;
    assert!(r.body.contains("temporarily locked"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // The first lock (2 s) is over; the second lasts 4 s.
    for _ in 0..2 {
        attempt(&idp, &mut b, "Wrong-password-1").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = attempt(&idp, &mut b, ALICE_PASSWORD).await;
    assert!(
        r.body.contains("temporarily locked"),
        "the second lock must last longer"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = attempt(&idp, &mut b, ALICE_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    idp.stop().await;
}

#[tokio::test]
async fn logout_clears_the_session_and_returns_only_to_registered_uris() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut b = Browser::new();
    b.sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    let logout = format!("{}/oauth2/v2.0/logout", idp.policy_url());

    // Unregistered target: signed out, but no redirect.
    let r = b
        .get(&format!(
            "{logout}?post_logout_redirect_uri=https://evil.example/"
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get("location").is_none());
    assert!(!b.cookies.contains_key("devidp_session"));

    b.sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    let session_cookie = b.cookies["devidp_session"].clone();
    let target = url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    let r = b
        .get(&format!(
            "{logout}?post_logout_redirect_uri={target}&state=bye"
        ))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.location(), format!("{REDIRECT}?state=bye"));
    assert!(!b.cookies.contains_key("devidp_session"));

    // The form is back, and the old cookie is dead server-side too.
    assert_eq!(b.get(&idp.authorize_url(&[])).await.status, StatusCode::OK);
    b.cookies.insert("devidp_session".into(), session_cookie);
    assert_eq!(b.get(&idp.authorize_url(&[])).await.status, StatusCode::OK);

    // No target: a signed-out page.
    let r = b.get(&logout).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("signed out"));
    idp.stop().await;
}
