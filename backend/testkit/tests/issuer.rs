//! The test issuer itself: what validators will see of it over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use testkit::{API_CLIENT_ID, TestIssuer, wait_for_http_ok};

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn serves_b2c_shaped_discovery_and_jwks() {
    let issuer = TestIssuer::start().await;
    let (status, metadata) = get(&issuer.openid_config_url()).await;
    assert_eq!(status, 200);
    assert_eq!(metadata["issuer"], issuer.issuer());
    assert!(issuer.issuer().ends_with("/v2.0/"));
    assert_eq!(metadata["jwks_uri"], issuer.jwks_url());
    assert_eq!(
        metadata["authorization_endpoint"],
        issuer.authorization_endpoint()
    );
    assert!(metadata["token_endpoint"].is_string());
    let (_, jwks) = get(&issuer.jwks_url()).await;
    assert_eq!(kids(&jwks), [issuer.current_kid()]);
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn rotation_publishes_both_keys_until_retired() {
    let issuer = TestIssuer::start().await;
    let first = issuer.current_kid();
    let second = issuer.rotate_key().await;
    assert_ne!(first, second);
    assert_eq!(issuer.current_kid(), second);
    let (_, jwks) = get(&issuer.jwks_url()).await;
    assert_eq!(kids(&jwks), [first, second.clone()]);
    issuer.retire_old_keys();
    let (_, jwks) = get(&issuer.jwks_url()).await;
    assert_eq!(kids(&jwks), [second]);
}

#[tokio::test]
async fn down_means_503_for_discovery_and_jwks() {
    let issuer = TestIssuer::start().await;
    issuer.set_down(true);
    assert_eq!(get(&issuer.openid_config_url()).await.0, 503);
    assert_eq!(get(&issuer.jwks_url()).await.0, 503);
    assert!(
        wait_for_http_ok(&issuer.jwks_url(), Duration::from_millis(100))
            .await
            .is_err()
    );
    issuer.set_down(false);
    assert!(
        wait_for_http_ok(&issuer.jwks_url(), Duration::from_secs(2))
            .await
            .is_ok()
    );
    // Requests answered 503 are counted too.
    assert_eq!(issuer.discovery_fetches(), 1);
    assert!(issuer.jwks_fetches() >= 3);
}

#[tokio::test]
async fn minted_tokens_carry_the_current_kid_and_the_claims() {
    let issuer = TestIssuer::start().await;
    let token = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &["accessapp"]));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["kid"], issuer.current_kid());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["aud"], API_CLIENT_ID);
    assert_eq!(claims["scp"], "accessapp");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);
    assert!(issuer.attack_tokens(API_CLIENT_ID).len() >= 30);
}

/// The `test-issuer` binary that drivers outside Rust (the hardening suite) use: the same attack
/// list, and tokens it signs that validate against the JWKS it publishes.
#[tokio::test]
async fn the_test_issuer_binary_serves_the_same_attack_list_and_signs_on_request() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-issuer"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let control = started["control_url"].as_str().unwrap();
    let (status, metadata) = get(started["openid_config_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(metadata["issuer"], started["issuer"]);

    let (_, attacks) = get(&format!("{control}/attack-tokens")).await;
    let names: Vec<&str> = attacks
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let local = TestIssuer::start().await;
    let expected: Vec<&str> = local
        .attack_tokens(API_CLIENT_ID)
        .iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, expected);

    let (_, claims) = get(&format!("{control}/claims?sub=someone")).await;
    assert_eq!(claims["sub"], "someone");
    assert_eq!(claims["aud"], API_CLIENT_ID);
    let client = reqwest::Client::new();
    let sign = |unpublished: bool| {
        let body = serde_json::json!({"claims": claims, "header": {"typ": null}, "unpublished": unpublished});
        let request = client.post(format!("{control}/token")).json(&body);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let published = sign(false).await;
    let unpublished = sign(true).await;
    let header = |token: &str| -> Value {
        let segment = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    };
    let (_, stats) = get(&format!("{control}/stats")).await;
    assert_eq!(stats["jwks_fetches"], 0);
    let (_, jwks) = get(metadata["jwks_uri"].as_str().unwrap()).await;
    assert_eq!(kids(&jwks), [header(&published)["kid"].as_str().unwrap()]);
    assert!(
        header(&published).get("typ").is_none(),
        "null removes a header field"
    );
    assert_ne!(published.rsplit('.').next(), unpublished.rsplit('.').next());
    let (_, stats) = get(&format!("{control}/stats")).await;
    assert_eq!(stats["jwks_fetches"], 1);

    let rotated = testkit::json_reply(client.post(format!("{control}/rotate"))).await;
    let (_, jwks) = get(metadata["jwks_uri"].as_str().unwrap()).await;
    assert!(kids(&jwks).contains(&rotated["kid"].as_str().unwrap().to_owned()));
    child.kill().await.unwrap();
}
