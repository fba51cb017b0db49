//! EasyAuth's browser sign-in over HTTP, as a browser drives it: the redirect to the IdP, the
//! `form_post` callback with the ID token, the `AppServiceAuthSession` cookie, `/.auth/logout`,
//! and every refusal (nonce, audience, expiry, signature, state, tampered cookies, open
//! redirects). The whole journey against the real dev IdP in Chromium is
//! `backend/e2e/tests/browser.rs`'s `easyauth_login_redirect_signs_a_browser_in`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{Function, KEY, start};
use reqwest::StatusCode;
use serde_json::json;
use testkit::{API_CLIENT_ID, SPA_CLIENT_ID};

/// One sign-in the function started: its login cookie and what it sent the IdP.
struct Started {
    cookie: String,
    state: String,
    nonce: String,
    response_type: String,
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// Opens the function's URL without a token: the 302 to the IdP and the login cookie.
async fn begin(f: &Function) -> Started {
    let r = f
        .client
        .get(f.url(&format!("/api/hello?code={KEY}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&f.issuer.authorization_endpoint())
    );
    assert!(
        !location.as_str().contains(KEY),
        "the key stays on this site"
    );
    let query: HashMap<_, _> = location.query_pairs().into_owned().collect();
    let cookie = set_cookie(&r, "AppServiceAuthLogin").expect("a login cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    Started {
        cookie: value(&cookie),
        state: query["state"].clone(),
        nonce: query["nonce"].clone(),
        response_type: query["response_type"].clone(),
    }
}

/// The ID token the IdP would post for the API's web app and this sign-in.
fn id_token(f: &Function, nonce: &str) -> serde_json::Value {
    let mut claims = f.issuer.id_token_claims("user-1");
    claims["aud"] = json!(API_CLIENT_ID);
    claims["nonce"] = json!(nonce);
    claims
}

async fn callback(
    f: &Function,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = f
        .client
        .post(f.url("/.auth/login/aad/callback"))
        .form(fields);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("AppServiceAuthLogin={cookie}"));
    }
    request.send().await.unwrap()
}

async fn hello_with_session(f: &Function, session: &str) -> reqwest::Response {
    f.client
        .get(f.url(&format!("/api/hello?code={KEY}")))
        .header("cookie", format!("AppServiceAuthSession={session}"))
        .send()
        .await
        .unwrap()
}

/// `/.auth/me` with the session cookie: 200 and its body.
async fn me_with_session(f: &Function, session: &str) -> String {
    let me = f
        .client
        .get(f.url("/.auth/me"))
        .header("cookie", format!("AppServiceAuthSession={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    me.text().await.unwrap()
}

/// Signs in through the callback: the session cookie's value.
async fn sign_in(f: &Function) -> String {
    let started = begin(f).await;
    let token = f.issuer.mint(&id_token(f, &started.nonce));
    let r = callback(
        f,
        Some(&started.cookie),
        &[("id_token", &token), ("state", &started.state)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.headers());
    assert_eq!(r.headers()["location"], format!("/api/hello?code={KEY}"));
    let session = set_cookie(&r, "AppServiceAuthSession").expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("Path=/"),
        "{session}"
    );
    let cleared = set_cookie(&r, "AppServiceAuthLogin").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    value(&session)
}

#[tokio::test]
async fn a_browser_signs_in_through_the_callback_and_keeps_a_session() {
    let f = start(&[]).await;
    let session = sign_in(&f).await;

    let r = hello_with_session(&f, &session).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Hello World, time and date are ")
    );
    assert!(
        me_with_session(&f, &session)
            .await
            .contains("Alice Example")
    );

    // A bearer token, even a bad one, is judged instead of the cookie.
    let r = f
        .client
        .get(f.url(&format!("/api/hello?code={KEY}")))
        .header("cookie", format!("AppServiceAuthSession={session}"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);

    let out = f
        .client
        .get(f.url("/.auth/logout?post_logout_redirect_uri=/signed-out"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::FOUND);
    assert_eq!(out.headers()["location"], "/signed-out");
    let cleared = set_cookie(&out, "AppServiceAuthSession").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn the_callback_refuses_id_tokens_that_do_not_answer_this_sign_in() {
    let f = start(&[]).await;
    let unpublished = |claims: &serde_json::Value| {
        f.issuer.mint_with_unpublished_key(
            &json!({"alg": "RS256", "typ": "JWT", "kid": "rogue"}),
            claims,
        )
    };
    type Case = (&'static str, Box<dyn Fn(&Function, &str) -> String>);
    let cases: Vec<Case> = vec![
        (
            "another nonce",
            Box::new(|f, _| f.issuer.mint(&id_token(f, "another-nonce"))),
        ),
        (
            "no nonce",
            Box::new(|f, n| {
                let mut c = id_token(f, n);
                c.as_object_mut().unwrap().remove("nonce");
                f.issuer.mint(&c)
            }),
        ),
        (
            "the SPA's audience",
            Box::new(|f, n| {
                let mut c = id_token(f, n);
                c["aud"] = json!(SPA_CLIENT_ID);
                f.issuer.mint(&c)
            }),
        ),
        (
            "expired",
            Box::new(|f, n| {
                let mut c = id_token(f, n);
                c["exp"] = json!(testkit::now() - 3600);
                f.issuer.mint(&c)
            }),
        ),
        ("not a JWT", Box::new(|_, _| "not-a-jwt".to_owned())),
    ];
    for (name, token) in &cases {
        let started = begin(&f).await;
        let token = token(&f, &started.nonce);
        let r = callback(
            &f,
            Some(&started.cookie),
            &[("id_token", &token), ("state", &started.state)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(set_cookie(&r, "AppServiceAuthSession").is_none(), "{name}");
        assert!(
            r.text()
                .await
                .unwrap()
                .starts_with("Sign-in failed: the ID token was refused"),
            "{name}"
        );
    }
    let started = begin(&f).await;
    let rogue = unpublished(&id_token(&f, &started.nonce));
    let r = callback(
        &f,
        Some(&started.cookie),
        &[("id_token", &rogue), ("state", &started.state)],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a key not in the JWKS"
    );
}

#[tokio::test]
async fn the_callback_refuses_a_state_or_login_it_did_not_start() {
    let f = start(&[]).await;
    let started = begin(&f).await;
    let token = f.issuer.mint(&id_token(&f, &started.nonce));

    let wrong_state = callback(
        &f,
        Some(&started.cookie),
        &[("id_token", &token), ("state", "forged")],
    )
    .await;
    assert_eq!(wrong_state.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong_state
            .text()
            .await
            .unwrap()
            .contains("state does not match")
    );

    // Another browser's login (or one signed by another instance) is none.
    let other = start(&[]).await;
    let foreign = begin(&other).await;
    let r = callback(
        &f,
        Some(&foreign.cookie),
        &[("id_token", &token), ("state", &foreign.state)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut tampered = started.cookie.clone();
    tampered.insert(0, if tampered.starts_with('e') { 'f' } else { 'e' });
    let r = callback(
        &f,
        Some(&tampered),
        &[("id_token", &token), ("state", &started.state)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Without the login cookie (a cross-site post drops SameSite=Lax cookies) the fields are
    // posted once more from this site; a second time without it is refused.
    let bounce = callback(&f, None, &[("id_token", &token), ("state", &started.state)]).await;
    assert_eq!(bounce.status(), StatusCode::OK);
    let csp = bounce.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    let page = bounce.text().await.unwrap();
    assert!(
        page.contains(r#"action="/.auth/login/aad/callback""#)
            && page.contains(r#"name="bounced""#),
        "{page}"
    );
    let again = callback(
        &f,
        None,
        &[
            ("id_token", &token),
            ("state", &started.state),
            ("bounced", "1"),
        ],
    )
    .await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);

    // The IdP's own refusal is shown in plain words.
    let denied = callback(
        &f,
        Some(&started.cookie),
        &[
            ("error", "access_denied"),
            ("error_description", "AADB2C90091: cancelled"),
            ("state", &started.state),
        ],
    )
    .await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert!(denied.text().await.unwrap().contains("AADB2C90091"));

    // The right answer still works after all that.
    let ok = callback(
        &f,
        Some(&started.cookie),
        &[("id_token", &token), ("state", &started.state)],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn tampered_or_foreign_session_cookies_are_no_session() {
    let f = start(&[]).await;
    let session = sign_in(&f).await;
    let other = start(&[]).await;
    let foreign = sign_in(&other).await;
    let (body, tag) = session.split_once('.').unwrap();
    let flipped_tag = format!(
        "{body}.{}{}",
        if tag.starts_with('A') { 'B' } else { 'A' },
        &tag[1..]
    );
    let login = begin(&f).await.cookie;
    for (name, cookie) in [
        ("another instance's", foreign),
        ("a changed signature", flipped_tag),
        ("a changed body", format!("e{session}")),
        ("the login cookie", login),
        ("oversized", "A".repeat(5000)),
    ] {
        let r = hello_with_session(&f, &cookie).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{name}: to the login again");
    }
}

#[tokio::test]
async fn redirect_targets_off_this_site_are_refused() {
    let f = start(&[]).await;
    for target in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let url = format!(
            "{}?post_login_redirect_uri={}",
            f.url("/.auth/login/aad"),
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        );
        let r = f.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{target}");
        assert!(r.headers().get("location").is_none(), "{target}");

        let url = format!(
            "{}?post_logout_redirect_uri={}",
            f.url("/.auth/logout"),
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        );
        let r = f.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{target}");
        assert!(r.headers().get("location").is_none(), "{target}");
        assert!(
            set_cookie(&r, "AppServiceAuthSession")
                .unwrap()
                .contains("Max-Age=0")
        );
    }
    // A target too long for the login cookie is refused, not silently lost by the browser.
    let long = format!("/{}", "a".repeat(4000));
    let r = f
        .client
        .get(f.url(&format!("/.auth/login/aad?post_login_redirect_uri={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&r, "AppServiceAuthSession").is_none());
    let r = f
        .client
        .get(f.url("/.auth/login/aad?post_login_redirect_uri=/api/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&f.issuer.authorization_endpoint())
    );
}

/// Behind its real name (not loopback) the site is HTTPS: the callback URL says so and both
/// cookies are `Secure`.
#[tokio::test]
async fn on_an_https_site_the_cookies_are_secure() {
    let f = start(&[]).await;
    let host = "hello-fn.azurewebsites.net";
    let r = f
        .client
        .get(f.url(&format!("/api/hello?code={KEY}")))
        .header("host", host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let query: HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(
        query["redirect_uri"],
        format!("https://{host}/.auth/login/aad/callback")
    );
    let login = set_cookie(&r, "AppServiceAuthLogin").unwrap();
    assert!(login.contains("; Secure"), "{login}");

    let token = f.issuer.mint(&id_token(&f, &query["nonce"]));
    let r = f
        .client
        .post(f.url("/.auth/login/aad/callback"))
        .header("host", host)
        .header("cookie", format!("AppServiceAuthLogin={}", value(&login)))
        .form(&[("id_token", token.as_str()), ("state", &query["state"])])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let session = set_cookie(&r, "AppServiceAuthSession").unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}

const WEB_SECRET: &str = "test-web-client-secret";

fn confidential() -> [(&'static str, &'static str); 1] {
    [("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET", WEB_SECRET)]
}

/// With a client secret EasyAuth asks for `code id_token`, redeems the code with the secret
/// (`client_secret_post`) and makes the session of the redeemed ID token.
#[tokio::test]
async fn with_a_client_secret_the_code_is_redeemed_for_the_session() {
    let implicit = start(&[]).await;
    assert_eq!(begin(&implicit).await.response_type, "id_token");

    let f = start(&confidential()).await;
    assert!(!format!("{:?}", f.state.config).contains(WEB_SECRET));
    let started = begin(&f).await;
    assert_eq!(started.response_type, "code id_token");
    let front = f.issuer.mint(&id_token(&f, &started.nonce));
    let mut back = id_token(&f, &started.nonce);
    back["name"] = json!("From The Token Endpoint");
    f.issuer.set_token_reply(
        200,
        json!({"id_token": f.issuer.mint(&back), "token_type": "Bearer"}),
    );
    let r = callback(
        &f,
        Some(&started.cookie),
        &[
            ("id_token", &front),
            ("code", "the-code"),
            ("state", &started.state),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.headers());
    let session = value(&set_cookie(&r, "AppServiceAuthSession").expect("a session"));
    assert!(
        me_with_session(&f, &session)
            .await
            .contains("From The Token Endpoint")
    );
    assert_eq!(
        hello_with_session(&f, &session).await.status(),
        StatusCode::OK
    );

    let requests = f.issuer.token_requests();
    assert_eq!(requests.len(), 1);
    let form = &requests[0];
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["client_id"], API_CLIENT_ID);
    assert_eq!(form["client_secret"], WEB_SECRET);
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["redirect_uri"], f.url("/.auth/login/aad/callback"));
}

/// Every way the redemption can fail is a plain 401 page with no session, and never shows the secret.
#[tokio::test]
async fn the_confidential_callback_refuses_what_the_redemption_does_not_confirm() {
    let f = start(&confidential()).await;
    let other_nonce = f.issuer.mint(&id_token(&f, "another-nonce"));
    let mut other_user = id_token(&f, "");
    other_user["sub"] = json!("user-2");
    type Case = (
        &'static str,
        Option<(u16, serde_json::Value)>,
        bool,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "wrong secret",
            Some((401, json!({"error": "invalid_client"}))),
            true,
            "the identity provider refused the code: invalid_client (401",
        ),
        (
            "code spent",
            Some((400, json!({"error": "invalid_grant"}))),
            true,
            "the identity provider refused the code: invalid_grant (400",
        ),
        (
            "no ID token",
            Some((200, json!({"token_type": "Bearer"}))),
            true,
            "the identity provider refused the code: 200 OK without an ID token",
        ),
        (
            "another nonce",
            Some((200, json!({"id_token": other_nonce}))),
            true,
            "the ID token was refused",
        ),
        (
            "another user",
            None,
            true,
            "the redeemed ID token is for another user",
        ),
        (
            "no code",
            None,
            false,
            "the identity provider posted no code to redeem",
        ),
    ];
    for (name, reply, with_code, expected) in cases {
        let started = begin(&f).await;
        let reply = reply.unwrap_or_else(|| {
            let mut claims = other_user.clone();
            claims["nonce"] = json!(started.nonce);
            (200, json!({"id_token": f.issuer.mint(&claims)}))
        });
        f.issuer.set_token_reply(reply.0, reply.1);
        let front = f.issuer.mint(&id_token(&f, &started.nonce));
        let mut fields = vec![("id_token", front.as_str()), ("state", &started.state)];
        if with_code {
            fields.push(("code", "a-code"));
        }
        let r = callback(&f, Some(&started.cookie), &fields).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(set_cookie(&r, "AppServiceAuthSession").is_none(), "{name}");
        let body = r.text().await.unwrap();
        assert!(
            body.starts_with(&format!("Sign-in failed: {expected}")),
            "{name}: {body}"
        );
        assert!(!body.contains(WEB_SECRET), "{name}");
    }
}
