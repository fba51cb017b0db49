//! `gateway explain`: the real binary, against an in-test issuer, for each kind of refusal.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer};
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_gateway");

fn env(issuer: &TestIssuer, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (
            "GATEWAY_BACKEND_FUNCTION_KEY",
            "explain-test-key-0000".to_owned(),
        ),
        (
            "GATEWAY_ALLOWED_ORIGINS",
            "http://127.0.0.1:8080".to_owned(),
        ),
        ("GATEWAY_OPENID_CONFIG_URLS", issuer.openid_config_url()),
        ("GATEWAY_AUDIENCES", API_CLIENT_ID.to_owned()),
    ];
    for (name, value) in extra {
        env.retain(|(n, _)| n != name);
        env.push((name, value.clone()));
    }
    env
}

/// (exit code, stdout) of `gateway explain`, the token as argument or on stdin.
async fn explain(env: &[(&'static str, String)], token: &str, on_stdin: bool) -> (i32, String) {
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("explain")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !on_stdin {
        command.arg(token);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if on_stdin {
        stdin
            .write_all(format!("{token}\n").as_bytes())
            .await
            .unwrap();
    }
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    // Never the signature, so never the whole token either.
    let signature = token.rsplit('.').next().unwrap();
    if signature.len() > 10 {
        assert!(
            !stdout.contains(signature) && !stderr.contains(signature),
            "{stdout}{stderr}"
        );
    }
    (output.status.code().unwrap(), stdout)
}

fn line<'a>(report: &'a str, rule: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(rule))
        .unwrap_or_else(|| panic!("no `{rule}` line in\n{report}"))
}

#[tokio::test]
async fn a_good_token_is_accepted_and_each_rule_says_ok() {
    let issuer = TestIssuer::start().await;
    let token = issuer.mint(&issuer.user_claims("explained", API_CLIENT_ID, &[API_SCOPE]));
    for on_stdin in [false, true] {
        let (code, report) = explain(&env(&issuer, &[]), &token, on_stdin).await;
        assert_eq!(code, 0, "{report}");
        assert!(!report.contains("FAIL"), "{report}");
        assert!(
            report.contains("verdict: accepted by validate-jwt (subject `explained`)"),
            "{report}"
        );
        assert!(
            line(&report, "expiry").contains("expires in 59m")
                || line(&report, "expiry").contains("expires in 1h"),
            "{report}"
        );
    }
}

#[tokio::test]
async fn a_wrong_audience_names_the_setting() {
    let issuer = TestIssuer::start().await;
    let token = issuer.mint(&issuer.user_claims("u", "someone-elses-api", &[API_SCOPE]));
    let (code, report) = explain(&env(&issuer, &[]), &token, false).await;
    assert_eq!(code, 1, "{report}");
    let audience = line(&report, "audience");
    assert!(audience.starts_with("FAIL"), "{report}");
    assert!(
        audience.contains("GATEWAY_AUDIENCES does not list `someone-elses-api`"),
        "{report}"
    );
    assert!(report.contains("verdict: refused with 401"), "{report}");
    assert!(line(&report, "issuer").starts_with("ok"), "{report}");
}

#[tokio::test]
async fn an_expired_token_says_by_how_much() {
    let issuer = TestIssuer::start().await;
    let mut claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let now = testkit::now();
    claims["exp"] = json!(now - 7_260);
    claims["nbf"] = json!(now - 9_000);
    let token = issuer.mint(&claims);
    let (code, report) = explain(&env(&issuer, &[]), &token, false).await;
    assert_eq!(code, 1, "{report}");
    let expiry = line(&report, "expiry");
    assert!(expiry.starts_with("FAIL"), "{report}");
    assert!(expiry.contains("expired 2h 01m 0"), "{report}");
    assert!(expiry.contains("GATEWAY_CLOCK_SKEW_SECONDS"), "{report}");

    // Within the skew it would pass, and the report says so.
    let (code, report) = explain(
        &env(&issuer, &[("GATEWAY_CLOCK_SKEW_SECONDS", "3600".into())]),
        &token,
        false,
    )
    .await;
    assert_eq!(code, 1, "{report}");
    let (code, report2) = explain(
        &env(&issuer, &[("GATEWAY_CLOCK_SKEW_SECONDS", "3600".into())]),
        &issuer.mint(&{
            let mut c = claims.clone();
            c["exp"] = json!(now - 600);
            c
        }),
        false,
    )
    .await;
    assert_eq!(code, 0, "{report}\n{report2}");
    assert!(
        line(&report2, "expiry").contains("within the clock skew"),
        "{report2}"
    );
}

#[tokio::test]
async fn an_unknown_kid_names_the_metadata_urls_asked() {
    let issuer = TestIssuer::start().await;
    let other = TestIssuer::start().await;
    let dead = format!(
        "http://127.0.0.1:{}/.well-known/openid-configuration",
        testkit::free_port()
    );
    let claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let token = issuer.mint_with_unpublished_key(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "rotated-away-kid"}),
        &claims,
    );
    let urls = format!("{},{dead}", other.openid_config_url());
    let (code, report) = explain(
        &env(&issuer, &[("GATEWAY_OPENID_CONFIG_URLS", urls)]),
        &token,
        false,
    )
    .await;
    assert_eq!(code, 1, "{report}");
    let key = line(&report, "signing");
    assert!(key.starts_with("FAIL"), "{report}");
    assert!(
        key.contains("`rotated-away-kid` is not published"),
        "{report}"
    );
    assert!(key.contains(&other.openid_config_url()), "{report}");
    assert!(key.contains(&format!("{dead} (did not load")), "{report}");
    // And the issuer is not one of the configured metadata's.
    assert!(line(&report, "issuer").starts_with("FAIL"), "{report}");
}

#[tokio::test]
async fn a_forged_signature_and_garbage_are_explained() {
    let issuer = TestIssuer::start().await;
    let claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let token = issuer.mint_with_unpublished_key(
        &json!({"alg": "RS256", "typ": "JWT", "kid": issuer.current_kid()}),
        &claims,
    );
    let (code, report) = explain(&env(&issuer, &[]), &token, false).await;
    assert_eq!(code, 1, "{report}");
    assert!(
        line(&report, "signature").contains("does not verify"),
        "{report}"
    );

    let (code, report) = explain(&env(&issuer, &[]), "not.a-token", false).await;
    assert_eq!(code, 1, "{report}");
    assert!(line(&report, "format").starts_with("FAIL"), "{report}");
}

#[tokio::test]
async fn a_missing_required_claim_names_the_rule_and_what_the_token_has() {
    let issuer = TestIssuer::start().await;
    let token = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &["read", "write"]));
    let settings = env(
        &issuer,
        &[("GATEWAY_REQUIRED_CLAIMS", "scp=accessapp|admin".into())],
    );
    let (code, report) = explain(&settings, &token, false).await;
    assert_eq!(code, 1, "{report}");
    let claims = line(&report, "claims");
    assert!(claims.starts_with("FAIL"), "{report}");
    assert!(
        claims.contains("GATEWAY_REQUIRED_CLAIMS wants `scp` one of [\"accessapp\", \"admin\"]; the token has `read write`"),
        "{report}"
    );
    let token = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &["read", "admin"]));
    let (code, report) = explain(&settings, &token, false).await;
    assert_eq!(code, 0, "{report}");
    assert!(line(&report, "claims").starts_with("ok"), "{report}");
}
