//! Discovery URL forms, CORS, persistence across restarts, key rotation with the real
//! `dev-idp rotate-keys` command, and start-up refusals of the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use reqwest::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_dev-idp");

#[tokio::test]
async fn discovery_answers_in_all_three_b2c_forms_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let b = &idp.base;
    let forms = [
        format!(
            "{b}/devtenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"
        ),
        format!(
            "{b}/devtenant.onmicrosoft.com/b2c_1_signupsignin/v2.0/.well-known/openid-configuration"
        ),
        format!(
            "{b}/devtenant.onmicrosoft.com/v2.0/.well-known/openid-configuration?p=B2C_1_signupsignin"
        ),
        format!(
            "{b}/devtenant.onmicrosoft.com/v2.0/.well-known/openid-configuration?p=b2c_1_signupsignin"
        ),
        format!(
            "{b}/tfp/devtenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"
        ),
        format!(
            "{b}/tfp/devtenant.onmicrosoft.com/b2c_1_signupsignin/v2.0/.well-known/openid-configuration"
        ),
        format!(
            "{b}/tfp/DEVTENANT.ONMICROSOFT.COM/B2C_1_SIGNUPSIGNIN/v2.0/.well-known/openid-configuration"
        ),
    ];
    let mut documents = Vec::new();
    for url in &forms {
        let r = reqwest::get(url).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        documents.push(r.json::<serde_json::Value>().await.unwrap());
    }
    assert!(documents.windows(2).all(|w| w[0] == w[1]));
    let doc = &documents[0];
    assert_eq!(doc["issuer"], idp.issuer());
    let policy = idp.policy_url();
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{policy}/oauth2/v2.0/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{policy}/oauth2/v2.0/token"));
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{policy}/oauth2/v2.0/logout")
    );
    assert_eq!(doc["jwks_uri"], format!("{policy}/discovery/v2.0/keys"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    let jwks: serde_json::Value = reqwest::get(doc["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0]["kid"].as_str().is_some());

    for url in [
        format!("{b}/devtenant.onmicrosoft.com/B2C_1_other/v2.0/.well-known/openid-configuration"),
        format!(
            "{b}/devtenant.onmicrosoft.com/v2.0/.well-known/openid-configuration?p=B2C_1_other"
        ),
        format!(
            "{b}/tfp/othertenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"
        ),
        format!("{b}/devtenant.onmicrosoft.com/B2C_1_other/discovery/v2.0/keys"),
    ] {
        assert_eq!(
            reqwest::get(&url).await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
    assert_eq!(
        reqwest::get(format!("{b}/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
    idp.stop().await;
}

#[tokio::test]
async fn cors_only_for_registered_spa_origins() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let client = reqwest::Client::new();
    let discovery = format!("{}/v2.0/.well-known/openid-configuration", idp.policy_url());
    let jwks = format!("{}/discovery/v2.0/keys", idp.policy_url());

    for origin in [SPA_ORIGIN, "http://localhost:8080", "http://127.0.0.1:8080"] {
        for url in [&discovery, &jwks] {
            let r = client
                .get(url)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["access-control-allow-origin"], origin, "{url}");
        }
        // The token endpoint: preflight and the actual (error) response.
        let r = client
            .request(reqwest::Method::OPTIONS, idp.token_url())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
        assert!(
            r.headers()["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        let r = client
            .post(idp.token_url())
            .header("origin", origin)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", SPA),
                ("refresh_token", "x"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
    }

    for url in [&discovery, &jwks, &idp.token_url()] {
        // A plain request and a preflight from an origin no SPA is registered at.
        let preflight = client
            .request(reqwest::Method::OPTIONS, url.as_str())
            .header("access-control-request-method", "POST");
        for request in [client.get(url.as_str()), preflight] {
            let r = request
                .header("origin", "https://evil.example")
                .send()
                .await
                .unwrap();
            assert!(
                r.headers().get("access-control-allow-origin").is_none(),
                "{url}"
            );
        }
    }
    // The sign-in pages are navigations, never CORS.
    let r = client
        .get(idp.authorize_url(&[]))
        .header("origin", SPA_ORIGIN)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    idp.stop().await;
}

#[tokio::test]
async fn users_and_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let mut b = Browser::new();
    let signup = b.sign_up_page(&idp).await;
    let r = b
        .submit(
            &idp.base,
            &signup.body,
            &[
                ("email", "carol@example.com"),
                ("displayName", "Carol"),
                ("newPassword", "Str0ng-pass"),
                ("reenterPassword", "Str0ng-pass"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let before = alice_tokens(&idp).await;
    let jwks_before = idp.jwks().await;
    idp.stop().await;

    let idp = Idp::start(config(dir.path())).await;
    assert_eq!(idp.jwks().await, jwks_before);
    let r = Browser::new()
        .sign_in(
            &idp,
            &idp.authorize_url(&[]),
            "carol@example.com",
            "Str0ng-pass",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Tokens from before the restart still validate (issuer differs only by the new port).
    let at = before["access_token"].as_str().unwrap();
    let old_issuer = claims(at)["iss"].as_str().unwrap().to_owned();
    verify(at, &idp.jwks().await, &old_issuer, API).unwrap();
    // So does the refresh token.
    let r = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", SPA),
            ("refresh_token", before["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Seeded users are not duplicated or reset by a restart.
    let r = Browser::new()
        .sign_in(&idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    idp.stop().await;
}

fn run_cli(dir: &std::path::Path, command: &str) -> std::process::Output {
    Command::new(BIN)
        .arg(command)
        .env_remove("DEVIDP_CONFIG")
        .env("DEVIDP_DATA_DIR", dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn rotate_keys_takes_effect_in_the_running_server_and_old_tokens_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let before = alice_tokens(&idp).await;
    let old_at = before["access_token"].as_str().unwrap().to_owned();
    let old_kid = kid(&old_at);

    let out = run_cli(dir.path(), "rotate-keys");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let jwks = idp.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old_kid.as_str()));

    // New tokens carry the new kid; the old token still validates against the JWKS.
    let after = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", SPA),
            ("refresh_token", before["refresh_token"].as_str().unwrap()),
        ],
    )
    .await
    .json();
    let new_at = after["access_token"].as_str().unwrap();
    let new_kid = kid(new_at);
    assert_ne!(new_kid, old_kid);
    assert!(kids.contains(&new_kid.as_str()));
    verify(&old_at, &jwks, &idp.issuer(), API).unwrap();
    verify(new_at, &jwks, &idp.issuer(), API).unwrap();

    // Retiring drops the old key from the JWKS: the old token no longer validates.
    let out = run_cli(dir.path(), "retire-keys");
    assert!(out.status.success());
    let jwks = idp.jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], new_kid);
    assert!(verify(&old_at, &jwks, &idp.issuer(), API).is_err());
    verify(new_at, &jwks, &idp.issuer(), API).unwrap();
    idp.stop().await;
}

/// Runs the binary expecting it to stop at start; returns its stderr.
fn refused(envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(BIN);
    for var in [
        "DEVIDP_CONFIG",
        "DEVIDP_PORT",
        "DEVIDP_BIND_ADDRESS",
        "DEVIDP_PUBLIC_URL",
        "DEVIDP_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Bounded wait: a binary that starts serving instead would hang the test.
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            assert_eq!(status.code(), Some(2), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
            return stderr;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("dev-idp kept running with {envs:?}");
}

#[test]
fn bad_settings_stop_the_binary_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "port = \"seventy\"\n[tenant\n").unwrap();
    let err = refused(&[
        ("DEVIDP_CONFIG", bad_toml.to_str().unwrap()),
        ("DEVIDP_DATA_DIR", data),
    ]);
    assert!(err.contains("DEVIDP_CONFIG"), "{err}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        dev_idp::config::BUILTIN_TOML.replace("access_token_seconds", "acess_token_seconds"),
    )
    .unwrap();
    let err = refused(&[
        ("DEVIDP_CONFIG", typo.to_str().unwrap()),
        ("DEVIDP_DATA_DIR", data),
    ]);
    assert!(err.contains("acess_token_seconds"), "{err}");

    let bad_value = dir.path().join("value.toml");
    std::fs::write(
        &bad_value,
        dev_idp::config::BUILTIN_TOML
            .replace("access_token_seconds = 3600", "access_token_seconds = 0"),
    )
    .unwrap();
    let err = refused(&[
        ("DEVIDP_CONFIG", bad_value.to_str().unwrap()),
        ("DEVIDP_DATA_DIR", data),
    ]);
    assert!(err.contains("lifetimes.access_token_seconds"), "{err}");

    let err = refused(&[
        ("DEVIDP_CONFIG", "/nonexistent/devidp.toml"),
        ("DEVIDP_DATA_DIR", data),
    ]);
    assert!(err.contains("DEVIDP_CONFIG"), "{err}");

    let err = refused(&[("DEVIDP_PORT", "99999"), ("DEVIDP_DATA_DIR", data)]);
    assert!(err.contains("DEVIDP_PORT"), "{err}");

    let err = refused(&[
        ("DEVIDP_PUBLIC_URL", "not a url"),
        ("DEVIDP_DATA_DIR", data),
    ]);
    assert!(err.contains("DEVIDP_PUBLIC_URL"), "{err}");

    // A data directory that is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = refused(&[
        ("DEVIDP_PORT", "0"),
        ("DEVIDP_DATA_DIR", file.to_str().unwrap()),
    ]);
    assert!(err.contains("DEVIDP_DATA_DIR"), "{err}");

    // A data directory holding something that is not our database.
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(
        junk.join("devidp.sqlite3"),
        "this is not a database, just text",
    )
    .unwrap();
    let err = refused(&[
        ("DEVIDP_PORT", "0"),
        ("DEVIDP_DATA_DIR", junk.to_str().unwrap()),
    ]);
    assert!(err.contains("DEVIDP_DATA_DIR"), "{err}");
}

#[test]
fn refuses_the_built_in_secrets_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let err = refused(&[
        ("DEVIDP_BIND_ADDRESS", "0.0.0.0"),
        ("DEVIDP_PORT", "0"),
        ("DEVIDP_DATA_DIR", data),
    ]);
    assert!(
        err.contains("bind_address") && err.contains("development secrets"),
        "{err}"
    );
    // Nothing was created: it stopped before touching the data directory.
    assert!(!dir.path().join("devidp.sqlite3").exists());

    // The library refuses too, whatever address the caller's listener is on.
    let config = common::config(dir.path());
    let err = dev_idp::AppState::new(config.clone(), "0.0.0.0:7010".parse().unwrap())
        .err()
        .unwrap();
    assert!(err.to_string().contains("development secrets"), "{err}");
    assert!(dev_idp::AppState::new(config, "[::]:7010".parse().unwrap()).is_err());
    assert!(!dir.path().join("devidp.sqlite3").exists());
}

/// By default on a loopback address of its own (127.0.0.2), so that no other local server shares
/// its cookies: nothing answers on 127.0.0.1 at that port.
#[tokio::test]
async fn the_binary_serves_on_the_configured_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(BIN)
        .env_remove("DEVIDP_CONFIG")
        .env("DEVIDP_PORT", port.to_string())
        .env("DEVIDP_DATA_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.2:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doc = if ready {
        reqwest::get(format!("{base}/tfp/devtenant.onmicrosoft.com/b2c_1_signupsignin/v2.0/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .ok()
    } else {
        None
    };
    let on_shared_host = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "binary did not become ready on 127.0.0.2");
    assert!(on_shared_host.is_err(), "also served on 127.0.0.1");
    assert_eq!(doc.unwrap()["issuer"], format!("{base}/{TENANT_ID}/v2.0/"));
}

/// SIGTERM (what container runtimes and `scripts/dev` send) stops the server gracefully, with
/// status 0, as Ctrl-C does; before, it killed the process mid-request.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_binary_gracefully() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // Port 0, and the address from its "listening on" line: no other test can take the port.
    let mut child = Command::new(BIN)
        .env_remove("DEVIDP_CONFIG")
        .env("DEVIDP_BIND_ADDRESS", "127.0.0.1")
        .env("DEVIDP_PORT", "0")
        .env("DEVIDP_DATA_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let health = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut status = None;
    for _ in 0..400 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if status.is_none() {
        let _ = child.kill();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}
