//! The defects of issue 13, each reproduced over HTTP against the running provider.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

const LOCKED: &str = "temporarily locked";

/// A browser holding a fresh sign-in page, ready to post its form.
async fn ready_form(idp: &Idp) -> (Browser, String) {
    let mut browser = Browser::new();
    let page = browser.get(&idp.authorize_url(&[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    (browser, page.body)
}

async fn post_guess(
    base: String,
    (mut browser, page): (Browser, String),
    name: &'static str,
    password: &'static str,
) -> Response {
    browser
        .submit(
            &base,
            &page,
            &[("signInName", name), ("password", password)],
        )
        .await
}

/// 29 wrong guesses posted at once, then the right one while they are still being hashed: the
/// limit of 10 must already be reserved, so the right guess is refused as locked — for a real
/// account and an unknown name alike. Before the fix the count was read before the hash and
/// written after it, so every guess of the burst (and the right one) was evaluated.
#[tokio::test]
async fn a_burst_of_concurrent_guesses_is_held_to_the_lockout_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // Enough hash slots for the whole burst: this test is about the lockout alone.
    cfg.limits.concurrent_password_hashes = 40;
    let idp = Idp::start(cfg).await;
    for name in [ALICE, "nobody@example.com"] {
        let mut forms = Vec::new();
        for _ in 0..29 {
            forms.push(ready_form(&idp).await);
        }
        let right = ready_form(&idp).await;
        let mut burst = tokio::task::JoinSet::new();
        for form in forms {
            burst.spawn(post_guess(idp.base.clone(), form, name, "Wrong-password-1"));
        }
        // The right guess goes once the burst has reached the server (its first answer), or
        // after 250 ms — long before 29 argon2 hashes can finish on any machine.
        let _ = tokio::time::timeout(Duration::from_millis(250), burst.join_next()).await;
        let r = post_guess(idp.base.clone(), right, name, ALICE_PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: the right guess got in");
        assert!(r.body.contains(LOCKED), "{name}: {}", r.body);
        let mut invalid = 0;
        while let Some(r) = burst.join_next().await {
            let r = r.unwrap();
            assert_eq!(r.status, StatusCode::OK);
            invalid += usize::from(r.body.contains("Invalid username or password."));
        }
        // Nine reservations below the limit see "invalid"; the tenth locks; the rest wait.
        assert!(
            invalid <= 9,
            "{name}: {invalid} guesses evaluated as invalid"
        );
    }
    idp.stop().await;
}

/// Posts a sign-in form as a browser (`Accept: text/html`) or as a script.
async fn post_as(base: String, (mut browser, page): (Browser, String), html: bool) -> Response {
    let form = Form::parse(&page);
    let mut fields = form.hidden;
    fields.push(("signInName".into(), ALICE.into()));
    fields.push(("password".into(), "Wrong-password-1".into()));
    let accept = if html { "text/html,*/*;q=0.8" } else { "*/*" };
    browser
        .post_with(
            &format!("{base}{}", form.action),
            &fields,
            &[("accept", accept)],
        )
        .await
}

/// With two hash slots, 24 sign-ins posted at once: at most two hash at a time behind a short
/// bounded line, the rest are told "busy" at once (503 with Retry-After; the form again for a
/// browser, plain text otherwise), and the provider signs in normally right after. Before the fix
/// every post hashed.
#[tokio::test]
async fn password_hashes_are_bounded_and_the_overflow_is_told_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.concurrent_password_hashes = 2;
    cfg.lockout.threshold = 1000;
    let idp = Idp::start(cfg).await;
    let mut forms = Vec::new();
    for _ in 0..24 {
        forms.push(ready_form(&idp).await);
    }
    let mut burst = tokio::task::JoinSet::new();
    for (i, form) in forms.into_iter().enumerate() {
        let (html, base) = (i % 2 == 0, idp.base.clone());
        burst.spawn(async move { (html, post_as(base, form, html).await) });
    }
    let (mut evaluated, mut busy_html, mut busy_plain) = (0, 0, 0);
    while let Some(done) = burst.join_next().await {
        let (html, r) = done.unwrap();
        match r.status {
            StatusCode::OK => {
                assert!(
                    r.body.contains("Invalid username or password."),
                    "{}",
                    r.body
                );
                evaluated += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.headers["retry-after"], "1");
                assert!(r.body.contains("busy"), "{}", r.body);
                if html {
                    assert!(r.body.contains("<form"), "a browser gets the form back");
                    busy_html += 1;
                } else {
                    assert!(
                        !r.body.contains('<'),
                        "a script gets plain text: {}",
                        r.body
                    );
                    busy_plain += 1;
                }
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!(
        busy_html > 0 && busy_plain > 0,
        "no busy answers: {evaluated} hashed"
    );
    assert_eq!(evaluated + busy_html + busy_plain, 24);
    let r = Browser::new()
        .sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    idp.stop().await;
}

/// Signs up through the pages (in a fresh browser); the response to the sign-up post.
async fn sign_up(idp: &Idp, email: &str, password: &str) -> Response {
    let mut b = Browser::new();
    let signup = b.sign_up_page(idp).await;
    b.submit(
        &idp.base,
        &signup.body,
        &[
            ("email", email),
            ("displayName", "Ömer"),
            ("newPassword", password),
            ("reenterPassword", password),
        ],
    )
    .await
}

async fn sign_in_as(idp: &Idp, name: &str, password: &str) -> Response {
    Browser::new()
        .sign_in(idp, &idp.authorize_url(&[]), name, password)
        .await
}

/// An account signed up as `Ömer@…` signs in however the address is cased or composed, and
/// `ömer@…` cannot become a second account. Before the fix the store compared with ASCII-only
/// NOCASE after sign-in had lower-cased with Unicode rules: `Ömer@…` could never sign in.
#[tokio::test]
async fn emails_have_one_normalised_form_for_sign_up_and_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let r = sign_up(&idp, "Ömer@Example.com", "Str0ng-pass").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    for typed in [
        "Ömer@Example.com",
        "ömer@example.com",
        "ÖMER@EXAMPLE.COM",
        "O\u{308}mer@example.com",
    ] {
        let r = sign_in_as(&idp, typed, "Str0ng-pass").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{typed:?}: {}", r.body);
    }
    for duplicate in ["ömer@example.com", "o\u{308}MER@example.COM"] {
        let r = sign_up(&idp, duplicate, "Other-Str0ng-pass").await;
        assert_eq!(r.status, StatusCode::OK, "{duplicate:?}");
        assert!(
            r.body.contains("already exists"),
            "{duplicate:?}: {}",
            r.body
        );
    }
    let r = sign_in_as(&idp, "ömer@example.com", "Other-Str0ng-pass").await;
    assert!(r.body.contains("Invalid username or password."));
    idp.stop().await;
}

/// Rows written by the old code (as typed, and a second account that differs only by Unicode
/// case) are migrated on start: the older account owns the normalised address, the younger
/// duplicate no longer answers to it.
#[tokio::test]
async fn stored_emails_are_normalised_on_start_and_the_older_account_wins() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    idp.stop().await;
    {
        let db = rusqlite::Connection::open(dir.path().join("devidp.sqlite3")).unwrap();
        for (id, email, password, created) in [
            ("older", "Ömer@Example.com", "Older-Str0ng-pass", 1),
            ("younger", "ömer@example.com", "Younger-Str0ng-pass", 2),
            ("mixed", "Zoë@Example.com", "Zoe-Str0ng-pass", 3),
        ] {
            db.execute(
                "INSERT INTO users (id, email, display_name, password_hash, created_at)
                 VALUES (?1, ?2, 'x', ?3, ?4)",
                rusqlite::params![
                    id,
                    email,
                    dev_idp::password::hash(password).unwrap(),
                    created
                ],
            )
            .unwrap();
        }
    }
    let idp = Idp::start(config(dir.path())).await;
    let r = sign_in_as(&idp, "ömer@example.com", "Older-Str0ng-pass").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = sign_in_as(&idp, "ÖMER@example.com", "Younger-Str0ng-pass").await;
    assert!(r.body.contains("Invalid username or password."));
    let r = sign_in_as(&idp, "zoë@example.com", "Zoe-Str0ng-pass").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    idp.stop().await;
}

/// A page on any other port of the IdP's host can set cookies for it. The old double submit took
/// any cookie that equalled the field; now the field must be this server's HMAC of the cookie, and
/// a post from another origin is refused outright. Both refusals keep the form from signing in.
#[tokio::test]
async fn planted_csrf_pairs_and_foreign_origins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let (mut victim, page) = ready_form(&idp).await;
    let form = Form::parse(&page);
    let url = format!("{}{}", idp.base, form.action);
    let mut fields: Vec<(String, String)> = form
        .hidden
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    fields.push(("signInName".into(), ALICE.into()));
    fields.push(("password".into(), ALICE_PASSWORD.into()));

    // The attacker's pair: a cookie and a field of its choosing, equal.
    let planted = "A".repeat(43);
    victim.cookies.insert("devidp_csrf".into(), planted.clone());
    let mut forged = fields.clone();
    forged.push(("csrf".into(), planted));
    let r = victim.post(&url, &forged).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "planted pair accepted");

    // A genuine pair, but posted by a page of another origin.
    let (mut browser, page) = ready_form(&idp).await;
    let form = Form::parse(&page);
    let mut genuine = form.hidden.clone();
    genuine.extend(fields[fields.len() - 2..].iter().cloned());
    let r = browser
        .post_with(&url, &genuine, &[("origin", "http://127.0.0.1:9999")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "foreign origin accepted");
    // The same post from the IdP's own origin signs in.
    let r = browser
        .post_with(&url, &genuine, &[("origin", &idp.base)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    idp.stop().await;
}

/// The session cookie is HttpOnly and SameSite=Lax, its id drawn by the server at each sign-in: a
/// planted id is not honoured (the sign-in page, no code) and never becomes the signed-in session.
#[tokio::test]
async fn the_session_cookie_is_httponly_lax_and_planted_ids_are_never_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let planted = "B".repeat(43);
    let mut b = Browser::new();
    b.cookies.insert("devidp_session".into(), planted.clone());
    let page = b.get(&idp.authorize_url(&[])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("localAccountForm"),
        "planted id honoured"
    );
    let r = b
        .submit(
            &idp.base,
            &page.body,
            &[("signInName", ALICE), ("password", ALICE_PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("devidp_session="))
        .unwrap();
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax"),
        "{cookie}"
    );
    assert_ne!(b.cookies["devidp_session"], planted);
    // Another browser holding only the planted id still gets the form.
    let mut other = Browser::new();
    other.cookies.insert("devidp_session".into(), planted);
    assert!(
        other
            .get(&idp.authorize_url(&[]))
            .await
            .body
            .contains("localAccountForm")
    );
    idp.stop().await;
}
