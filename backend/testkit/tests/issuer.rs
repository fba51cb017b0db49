//! The test issuer itself: what validators will see of it over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

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
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
