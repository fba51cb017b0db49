//! The profile editing user flow, driven through its HTML form like a browser: a signed-in user
//! changes the display name and the new ID token carries it; and every refusal.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;

/// Redeems the code of an app redirect at `policy`'s token endpoint: the ID token's claims.
async fn id_claims(idp: &Idp, policy: &str, redirect: &Response) -> serde_json::Value {
    assert_eq!(redirect.status, StatusCode::SEE_OTHER, "{}", redirect.body);
    let params = response_params(&redirect.location(), false);
    assert_eq!(params["state"], "state-123");
    let r = redeem(idp, policy, &params["code"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id_token = r.json()["id_token"].as_str().unwrap().to_owned();
    verify(&id_token, &idp.jwks().await, &idp.issuer(), SPA).unwrap()
}

#[tokio::test]
async fn a_signed_in_user_changes_the_display_name_and_the_new_id_token_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    let signed_in = browser
        .sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);

    // The SSO session skips the sign-in form: the profile form comes straight away.
    let page = browser
        .get(&idp.flow_authorize_url(PROFILE_EDIT, &[]))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("value=\"Alice Example\""),
        "{}",
        page.body
    );
    let done = browser
        .submit(
            &idp.base,
            &page.body,
            &[("displayName", "  Alice Renamed  ")],
        )
        .await;
    let id = id_claims(&idp, PROFILE_EDIT, &done).await;
    assert_eq!(id["name"], "Alice Renamed");
    assert_eq!(id["tfp"], "B2C_1_profileedit");
    assert_eq!(id["nonce"], "nonce-456");

    // The sign-in flow's next tokens (same session) carry it too.
    let again = browser.get(&idp.authorize_url(&[])).await;
    assert_eq!(again.status, StatusCode::FOUND);
    let params = response_params(&again.location(), false);
    let r = redeem(&idp, "b2c_1_signupsignin", &params["code"]).await;
    let claims = verify(
        r.json()["access_token"].as_str().unwrap(),
        &idp.jwks().await,
        &idp.issuer(),
        API,
    )
    .unwrap();
    assert_eq!(claims["name"], "Alice Renamed");
    idp.stop().await;
}

#[tokio::test]
async fn without_a_session_the_flow_signs_in_first() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let url = idp.flow_authorize_url(PROFILE_EDIT, &[("prompt", "none")]);
    let r = Browser::new().get(&url).await;
    assert_eq!(
        response_params(&r.location(), false)["error"],
        "login_required"
    );

    let mut browser = Browser::new();
    let url = idp.flow_authorize_url(PROFILE_EDIT, &[]);
    // Profile edit signs existing users in; it creates no accounts.
    let sign_in_page = browser.get(&url).await;
    assert!(sign_in_page.body.contains("id=\"signInName\""));
    assert!(
        !sign_in_page.body.contains("createAccount"),
        "{}",
        sign_in_page.body
    );
    let sign_up = url.replace("/authorize?", "/authorize/signup?");
    assert_eq!(browser.get(&sign_up).await.status, StatusCode::NOT_FOUND);
    let sign_up_post =
        format!("{}{}", idp.base, Form::parse(&sign_in_page.body).action) + "/signup";
    let fields = [
        ("email", "new@example.com"),
        ("displayName", "New"),
        ("newPassword", "Brand-New-2027"),
        ("reenterPassword", "Brand-New-2027"),
    ];
    let r = browser
        .submit_to(&sign_up_post, &sign_in_page.body, &fields)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let profile = browser.sign_in(&idp, &url, ALICE, ALICE_PASSWORD).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    assert!(
        profile.body.contains("id=\"displayName\""),
        "{}",
        profile.body
    );
    assert!(browser.cookies.contains_key("devidp_session"));
    let done = browser
        .submit(&idp.base, &profile.body, &[("displayName", "Ålice Ω")])
        .await;
    assert_eq!(
        id_claims(&idp, PROFILE_EDIT, &done).await["name"],
        "Ålice Ω"
    );
    idp.stop().await;
}

#[tokio::test]
async fn bad_names_missing_sessions_and_forged_posts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    browser
        .sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    let page = browser
        .get(&idp.flow_authorize_url(PROFILE_EDIT, &[]))
        .await;
    let long = "x".repeat(101);
    for bad in ["", "   ", long.as_str(), "tab\there"] {
        let r = browser
            .submit(&idp.base, &page.body, &[("displayName", bad)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{bad:?}");
        assert_eq!(
            error_text(&r.body).unwrap(),
            "Please enter a display name of 1 to 100 characters.",
            "{bad:?}"
        );
    }
    // Without the CSRF token.
    let action = format!("{}{}", idp.base, Form::parse(&page.body).action);
    let r = browser
        .post(&action, &[("displayName".into(), "Mallory".into())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // With the token but the session gone: back to the sign-in form.
    browser.cookies.remove("devidp_session");
    let r = browser
        .submit(&idp.base, &page.body, &[("displayName", "Nobody")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"signInName\""));
    assert!(error_text(&r.body).unwrap().contains("session has ended"));
    // The profile and reset steps only exist in their own kinds of flow.
    let wrong_flow = action.replace(&format!("/{PROFILE_EDIT}/"), "/b2c_1_signupsignin/");
    let r = browser
        .submit_to(&wrong_flow, &page.body, &[("displayName", "X")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let reset_step = action.replace("/authorize/profile", "/authorize/reset/send");
    let r = browser
        .submit_to(&reset_step, &page.body, &[("email", ALICE)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // Nothing above changed the name.
    let tokens = alice_tokens(&idp).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["name"], "Alice Example");
    idp.stop().await;
}
