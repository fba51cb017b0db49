//! The password reset user flow, driven through its HTML forms like a browser: email → code
//! from the `.eml` mail → new password → back to the app signed in; and every refusal.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;

const NEW_PASSWORD: &str = "Reset-Me-2027?";
const WRONG_CODE: &str = "does not match our records";

fn mails(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("mail"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn latest_mail(dir: &Path) -> String {
    let file = mails(dir).pop().expect("a mail was written");
    std::fs::read_to_string(file).unwrap()
}

/// The code in the newest mail, and that mail's text.
fn latest_code(dir: &Path) -> (String, String) {
    let text = latest_mail(dir);
    let code = text
        .split("Your code is: ")
        .nth(1)
        .map(|rest| rest[..6].to_owned())
        .unwrap_or_else(|| panic!("no code in {text}"));
    (code, text)
}

/// Opens the reset flow and asks for a code for `email`: the code page (or the refusal).
async fn send(browser: &mut Browser, idp: &Idp, email: &str) -> Response {
    let page = browser
        .get(&idp.flow_authorize_url(PASSWORD_RESET, &[]))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("id=\"email_ver_but_send\""),
        "{}",
        page.body
    );
    browser
        .submit(&idp.base, &page.body, &[("email", email)])
        .await
}

async fn enter_code(browser: &mut Browser, idp: &Idp, code_page: &str, code: &str) -> Response {
    browser
        .submit(&idp.base, code_page, &[("email_ver_input", code)])
        .await
}

async fn new_password(browser: &mut Browser, idp: &Idp, page: &str, a: &str, b: &str) -> Response {
    browser
        .submit(
            &idp.base,
            page,
            &[("newPassword", a), ("reenterPassword", b)],
        )
        .await
}

async fn sign_in_status(idp: &Idp, password: &str) -> Result<(), String> {
    let r = Browser::new()
        .sign_in(idp, &idp.authorize_url(&[]), ALICE, password)
        .await;
    match r.status {
        StatusCode::SEE_OTHER => Ok(()),
        _ => Err(error_text(&r.body).unwrap_or_default()),
    }
}

#[tokio::test]
async fn reset_by_mailed_code_signs_in_with_the_new_password_and_clears_the_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.lockout.threshold = 3;
    let idp = Idp::start(config).await;
    for _ in 0..3 {
        assert!(sign_in_status(&idp, "Wrong-Password-1").await.is_err());
    }
    let locked = sign_in_status(&idp, ALICE_PASSWORD).await.unwrap_err();
    assert!(locked.contains("locked"), "{locked}");

    // The flow has its own B2C metadata, like every user flow.
    let doc: serde_json::Value = reqwest::get(format!(
        "{}/devtenant.onmicrosoft.com/B2C_1_PasswordReset/v2.0/.well-known/openid-configuration",
        idp.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let endpoint = doc["authorization_endpoint"].as_str().unwrap();
    assert!(
        endpoint.contains("/b2c_1_passwordreset/oauth2/v2.0/authorize"),
        "{doc}"
    );

    let mut browser = Browser::new();
    let code_page = send(&mut browser, &idp, "Alice@Example.com").await;
    assert_eq!(code_page.status, StatusCode::OK);
    assert!(
        code_page.body.contains("Verification code has been sent"),
        "{}",
        code_page.body
    );
    let (code, mail) = latest_code(dir.path());
    assert_eq!(mails(dir.path()).len(), 1, "one file per mail");
    assert!(mail.contains("\r\nTo: <Alice@Example.com>\r\n"), "{mail}");
    assert!(
        mail.contains("\r\nSubject: devtenant.onmicrosoft.com account email verification code\r\n")
    );
    assert!(
        mail.contains("\r\nDate: ") && mail.contains("\r\n\r\n"),
        "{mail}"
    );

    let password_page = enter_code(&mut browser, &idp, &code_page.body, &code).await;
    assert!(
        password_page.body.contains("id=\"newPassword\""),
        "{}",
        password_page.body
    );
    let done = new_password(
        &mut browser,
        &idp,
        &password_page.body,
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let params = response_params(&done.location(), false);
    assert_eq!(params["state"], "state-123");
    let tokens = redeem(&idp, PASSWORD_RESET, &params["code"]).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let id = verify(
        tokens.json()["id_token"].as_str().unwrap(),
        &idp.jwks().await,
        &idp.issuer(),
        SPA,
    )
    .unwrap();
    assert_eq!(id["tfp"], "B2C_1_passwordreset");
    assert_eq!(id["emails"], serde_json::json!([ALICE]));

    // The lockout was cleared by the reset; the old password no longer works, the new one does.
    assert_eq!(
        sign_in_status(&idp, ALICE_PASSWORD).await.unwrap_err(),
        "Invalid username or password."
    );
    sign_in_status(&idp, NEW_PASSWORD).await.unwrap();

    // The code and the verification are single-use.
    let again = enter_code(&mut browser, &idp, &code_page.body, &code).await;
    assert!(
        error_text(&again.body).unwrap().contains("no longer valid"),
        "{}",
        again.body
    );
    let again = new_password(
        &mut browser,
        &idp,
        &password_page.body,
        "Another-One-9",
        "Another-One-9",
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(error_text(&again.body).unwrap().contains("no longer valid"));
    sign_in_status(&idp, NEW_PASSWORD).await.unwrap();
    idp.stop().await;
}

#[tokio::test]
async fn three_wrong_codes_use_up_the_code_and_bad_input_gets_the_form_back() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    let invalid = send(&mut browser, &idp, "not an address").await;
    assert_eq!(invalid.status, StatusCode::OK);
    assert_eq!(
        error_text(&invalid.body).unwrap(),
        "Please enter a valid email address."
    );
    assert!(mails(dir.path()).is_empty());

    let code_page = send(&mut browser, &idp, ALICE).await;
    let (code, _) = latest_code(dir.path());
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for typed in ["12ab56", "", "1234567"] {
        let r = enter_code(&mut browser, &idp, &code_page.body, typed).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            error_text(&r.body).unwrap().contains("6-digit"),
            "{typed:?}: {}",
            r.body
        );
    }
    for _ in 0..3 {
        let r = enter_code(&mut browser, &idp, &code_page.body, wrong).await;
        assert!(
            error_text(&r.body).unwrap().contains(WRONG_CODE),
            "{}",
            r.body
        );
    }
    let r = enter_code(&mut browser, &idp, &code_page.body, &code).await;
    assert!(
        error_text(&r.body)
            .unwrap()
            .contains("too many incorrect attempts"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("id=\"email_ver_but_send\""),
        "back to step 1"
    );

    // A new code works; the password step refuses weak and mismatched passwords.
    let code_page = send(&mut browser, &idp, ALICE).await;
    let (code, _) = latest_code(dir.path());
    let page = enter_code(&mut browser, &idp, &code_page.body, &code).await;
    let weak = new_password(&mut browser, &idp, &page.body, "weakpass", "weakpass").await;
    assert_eq!(weak.status, StatusCode::OK);
    assert!(
        error_text(&weak.body).unwrap().contains("at least 3 of"),
        "{}",
        weak.body
    );
    let short = new_password(&mut browser, &idp, &page.body, "Sh0rt!", "Sh0rt!").await;
    assert!(
        error_text(&short.body)
            .unwrap()
            .contains("between 8 and 64")
    );
    let mismatch = new_password(
        &mut browser,
        &idp,
        &page.body,
        NEW_PASSWORD,
        "Reset-Me-2028?",
    )
    .await;
    assert!(error_text(&mismatch.body).unwrap().contains("do not match"));
    sign_in_status(&idp, ALICE_PASSWORD).await.unwrap();
    let done = new_password(&mut browser, &idp, &page.body, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);

    // Forged or missing hidden fields are refused with the page, never a 500.
    let mut forged = Form::parse(&code_page.body).hidden;
    forged.retain(|(k, _)| k != "verification");
    forged.push(("verification".into(), "made-up".into()));
    forged.push(("email_ver_input".into(), "123456".into()));
    let url = format!("{}{}", idp.base, Form::parse(&code_page.body).action);
    let r = browser.post(&url, &forged).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(error_text(&r.body).unwrap().contains("no longer valid"));
    let r = browser
        .post(&url, &[("email_ver_input".into(), "123456".into())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    idp.stop().await;
}

#[tokio::test]
async fn codes_expire() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.lifetimes.verification_code_seconds = 1;
    let idp = Idp::start(config).await;
    let mut browser = Browser::new();
    let code_page = send(&mut browser, &idp, ALICE).await;
    let (code, _) = latest_code(dir.path());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = enter_code(&mut browser, &idp, &code_page.body, &code).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        error_text(&r.body).unwrap(),
        "That code is expired. Please request a new code."
    );
    idp.stop().await;
}

#[tokio::test]
async fn sends_are_limited_per_address_per_minute() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut browser = Browser::new();
    for _ in 0..3 {
        let r = send(&mut browser, &idp, ALICE).await;
        assert!(r.body.contains("id=\"email_ver_input\""), "{}", r.body);
    }
    // Another spelling of the same address counts against the same limit.
    let r = send(&mut browser, &idp, "ALICE@example.com").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        error_text(&r.body)
            .unwrap()
            .contains("too many requests to verify"),
        "{}",
        r.body
    );
    assert_eq!(mails(dir.path()).len(), 3, "no mail for the refused send");
    // Other addresses are not affected.
    let r = send(&mut browser, &idp, "bob@example.com").await;
    assert!(r.body.contains("id=\"email_ver_input\""));
    idp.stop().await;
}

/// The page with the per-request values (CSRF token, verification id, typed address) blanked.
fn shape(html: &str, email: &str) -> String {
    let mut out = html.replace(email, "EMAIL");
    for (_, value) in Form::parse(html).hidden {
        if !value.is_empty() {
            out = out.replace(&value, "VALUE");
        }
    }
    out
}

async fn timed_send(idp: &Idp, email: &str) -> (Duration, Response) {
    let mut browser = Browser::new();
    let page = browser
        .get(&idp.flow_authorize_url(PASSWORD_RESET, &[]))
        .await;
    let started = Instant::now();
    let r = browser
        .submit(&idp.base, &page.body, &[("email", email)])
        .await;
    (started.elapsed(), r)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn unknown_emails_get_the_same_pages_and_timing() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let unknown = "nobody@example.com";
    let mut pages = Vec::new();
    for email in [ALICE, unknown] {
        let mut browser = Browser::new();
        let code_page = send(&mut browser, &idp, email).await;
        let wrong = enter_code(&mut browser, &idp, &code_page.body, "999999").await;
        pages.push((
            code_page.status,
            shape(&code_page.body, email),
            wrong.status,
            shape(&wrong.body, email),
        ));
    }
    assert_eq!(pages[0], pages[1]);
    let mail = latest_mail(dir.path());
    assert!(mail.contains("no account uses this address"), "{mail}");

    // The unknown address's stored code can never be typed right: all of them fail alike.
    let mut browser = Browser::new();
    let code_page = send(&mut browser, &idp, "nobody2@example.com").await;
    for code in ["000000", "123456", "999998"] {
        let r = enter_code(&mut browser, &idp, &code_page.body, code).await;
        assert!(error_text(&r.body).unwrap().contains(WRONG_CODE));
    }

    let (mut known, mut absent) = (Vec::new(), Vec::new());
    for i in 0..7 {
        let (t, r) = timed_send(&idp, &format!("timing{i}@example.com")).await;
        assert_eq!(r.status, StatusCode::OK);
        absent.push(t);
        // Alice's own limit is 3 a minute: time the known case on fresh accounts.
        let email = format!("known{i}@example.com");
        let mut signing_up = Browser::new();
        let page = signing_up.sign_up_page(&idp).await;
        let fields = [
            ("email", email.as_str()),
            ("displayName", "Known"),
            ("newPassword", NEW_PASSWORD),
            ("reenterPassword", NEW_PASSWORD),
        ];
        let r = signing_up.submit(&idp.base, &page.body, &fields).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let (t, r) = timed_send(&idp, &email).await;
        assert_eq!(r.status, StatusCode::OK);
        known.push(t);
    }
    let (known, absent) = (median(known), median(absent));
    let gap = known.abs_diff(absent);
    assert!(
        gap < Duration::from_millis(20),
        "known {known:?} vs unknown {absent:?}"
    );
    idp.stop().await;
}

/// The real binary's log names the mail file with its code, and never shows a password.
#[tokio::test]
async fn the_log_line_names_the_mail_file_and_its_code_but_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("devidp.toml");
    let text = dev_idp::config::BUILTIN_TOML.replace(
        "redirect_uris = [\"http://127.0.0.1:8080/\",",
        &format!("redirect_uris = [\"{REDIRECT}\", \"http://127.0.0.1:8080/\","),
    );
    std::fs::write(&config, text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dev-idp"))
        .env("DEVIDP_CONFIG", &config)
        .env("DEVIDP_BIND_ADDRESS", "127.0.0.1")
        .env("DEVIDP_PORT", port.to_string())
        .env("DEVIDP_DATA_DIR", dir.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let idp = Idp::external(format!("http://127.0.0.1:{port}"));
    let mut ready = false;
    for _ in 0..200 {
        if reqwest::get(format!("{}/healthz", idp.base))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outcome = if ready {
        let mut browser = Browser::new();
        let code_page = send(&mut browser, &idp, ALICE).await;
        let (code, _) = latest_code(dir.path());
        let page = enter_code(&mut browser, &idp, &code_page.body, &code).await;
        let done = new_password(&mut browser, &idp, &page.body, NEW_PASSWORD, NEW_PASSWORD).await;
        Some((code, done.status))
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    let (code, status) = outcome.expect("the binary became ready");
    assert_eq!(status, StatusCode::SEE_OTHER);
    let text = std::fs::read_to_string(&log).unwrap();
    let file = mails(dir.path()).pop().unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("verification mail written"))
        .unwrap_or_else(|| panic!("no mail line in {text}"));
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(line.contains(&code), "{line}");
    assert!(text.contains("password reset"), "{text}");
    for secret in [NEW_PASSWORD, ALICE_PASSWORD] {
        assert!(!text.contains(secret), "a password in the log: {text}");
    }
}

/// Unexpired codes are capped in all (the send beyond gets the form back with 503), and the new
/// password's hash waits for a hash slot like sign-in's: a burst beyond the slots is told to retry.
#[tokio::test]
async fn outstanding_codes_and_password_hashes_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.outstanding_verification_codes = 2;
    config.limits.concurrent_password_hashes = 1;
    let idp = Idp::start(config).await;
    let mut browser = Browser::new();
    let code_page = send(&mut browser, &idp, ALICE).await;
    let (code, _) = latest_code(dir.path());
    assert!(
        send(&mut Browser::new(), &idp, "bob@example.com")
            .await
            .status
            .is_success()
    );
    let full = send(&mut Browser::new(), &idp, "carol@example.com").await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        error_text(&full.body).unwrap().contains("busy"),
        "{}",
        full.body
    );
    assert_eq!(mails(dir.path()).len(), 2);

    let page = enter_code(&mut browser, &idp, &code_page.body, &code).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let mut twin = Browser::new();
        twin.cookies = browser.cookies.clone();
        let (base, body) = (idp.base.clone(), page.body.clone());
        burst.spawn(async move {
            let fields = [
                ("newPassword", NEW_PASSWORD),
                ("reenterPassword", NEW_PASSWORD),
            ];
            twin.submit(&base, &body, &fields).await
        });
    }
    let (mut done, mut busy, mut spent) = (0, 0, 0);
    while let Some(r) = burst.join_next().await {
        let r = r.unwrap();
        match r.status {
            StatusCode::SEE_OTHER => done += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.headers["retry-after"], "1");
                busy += 1;
            }
            StatusCode::OK => {
                assert!(error_text(&r.body).unwrap().contains("no longer valid"));
                spent += 1;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(
        done, 1,
        "one reset completes ({busy} busy, {spent} too late)"
    );
    assert!(busy > 0, "no busy answers: every post hashed");
    sign_in_status(&idp, NEW_PASSWORD).await.unwrap();
    idp.stop().await;
}
