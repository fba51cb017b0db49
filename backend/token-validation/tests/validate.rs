//! The validator against a real (in-test) OpenID issuer over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{
    API_CLIENT_ID, API_SCOPE, APP_ROLE, DAEMON_CLIENT_ID, SPA_CLIENT_ID, TestIssuer, now,
};
use token_validation::{RequiredClaim, ValidationError, Validator, ValidatorConfig};

fn config(issuer: &TestIssuer) -> ValidatorConfig {
    ValidatorConfig {
        openid_config_urls: vec![issuer.openid_config_url()],
        audiences: vec![API_CLIENT_ID.into()],
        ..ValidatorConfig::default()
    }
}

async fn validator(config: ValidatorConfig) -> Validator {
    let validator = Validator::new(config).await;
    validator
        .wait_for_first_fetch(Duration::from_secs(10))
        .await;
    validator
}

#[tokio::test]
async fn a_b2c_user_token_gives_a_typed_principal() {
    let issuer = TestIssuer::start().await;
    let v = validator(config(&issuer)).await;
    assert!(v.keys_loaded());
    assert_eq!(
        v.authorization_endpoint(),
        Some(issuer.authorization_endpoint())
    );
    let token = issuer.mint(&issuer.user_claims("user-1", API_CLIENT_ID, &[API_SCOPE, "read"]));
    let p = v.validate(&token).await.unwrap();
    assert_eq!(p.subject, "user-1");
    assert_eq!(p.object_id.as_deref(), Some("user-1"));
    assert_eq!(p.name.as_deref(), Some("Alice Example"));
    assert_eq!(p.scopes, [API_SCOPE, "read"]);
    assert!(p.roles.is_empty());
    assert_eq!(p.client_app.as_deref(), Some(SPA_CLIENT_ID));
    assert_eq!(p.issuer, issuer.issuer());
    assert_eq!(p.audience, API_CLIENT_ID);
    assert!(p.expires_at > now() + 3500);
    assert_eq!(p.claims["tfp"], "B2C_1_signupsignin");
}

#[tokio::test]
async fn a_client_credentials_token_carries_roles() {
    let issuer = TestIssuer::start().await;
    let v = validator(config(&issuer)).await;
    let token = issuer.mint(&issuer.app_claims(DAEMON_CLIENT_ID, API_CLIENT_ID, &[APP_ROLE]));
    let p = v.validate(&token).await.unwrap();
    assert_eq!(p.subject, DAEMON_CLIENT_ID);
    assert_eq!(p.roles, [APP_ROLE]);
    assert!(p.scopes.is_empty() && p.name.is_none());
    assert_eq!(p.client_app.as_deref(), Some(DAEMON_CLIENT_ID));
}

#[tokio::test]
async fn every_attack_class_is_refused_and_no_attacker_url_is_fetched() {
    let issuer = TestIssuer::start().await;
    let v = validator(config(&issuer)).await;
    for attack in issuer.attack_tokens(API_CLIENT_ID) {
        let result = v.validate(&attack.token).await;
        let Err(why) = result else {
            panic!("attack accepted: {}", attack.name);
        };
        assert_ne!(why, ValidationError::KeysUnavailable, "{}", attack.name);
        assert_eq!(why.status(), 401, "{}: {why}", attack.name);
        println!("{:<55} -> {why}", attack.name);
    }
    assert_eq!(issuer.attacker_fetches(), 0, "a jku/x5u URL was followed");
}

#[tokio::test]
async fn specific_attacks_fail_for_the_right_reason() {
    let issuer = TestIssuer::start().await;
    let v = validator(config(&issuer)).await;
    let reason = |name: &str| {
        let attacks = issuer.attack_tokens(API_CLIENT_ID);
        let token = attacks
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .token
            .clone();
        let v = v.clone();
        async move { v.validate(&token).await.unwrap_err() }
    };
    use ValidationError::*;
    assert_eq!(reason("alg none, no signature").await, UnsupportedAlgorithm);
    assert_eq!(
        reason("HS256 signed with the public key as secret").await,
        UnsupportedAlgorithm
    );
    assert_eq!(reason("signature corrupted").await, InvalidSignature);
    assert_eq!(
        reason("claims changed after signing").await,
        InvalidSignature
    );
    assert_eq!(
        reason("signed by a key not in the JWKS, real kid").await,
        InvalidSignature
    );
    assert_eq!(reason("unknown kid").await, UnknownKey);
    assert_eq!(reason("kid with path characters").await, UnknownKey);
    assert_eq!(
        reason("jku pointing at the attacker's JWKS").await,
        ForbiddenHeader("jku")
    );
    assert_eq!(
        reason("embedded jwk under the real kid").await,
        ForbiddenHeader("jwk")
    );
    assert_eq!(reason("expired beyond the skew").await, Expired);
    assert_eq!(
        reason("nbf in the future beyond the skew").await,
        NotYetValid
    );
    assert_eq!(reason("no exp").await, MissingClaim("exp"));
    // jsonwebtoken reports a wrongly typed required claim as missing: refused either way.
    assert!(matches!(
        reason("exp as a string").await,
        InvalidClaim("exp") | MissingClaim("exp")
    ));
    assert_eq!(reason("wrong aud").await, InvalidAudience);
    assert_eq!(reason("no aud").await, MissingClaim("aud"));
    assert_eq!(reason("wrong iss").await, InvalidIssuer);
    assert_eq!(reason("no iss").await, MissingClaim("iss"));
    assert_eq!(
        reason("ID token used as an access token").await,
        InvalidAudience
    );
    assert_eq!(
        reason("ID token claims with the API audience (nonce present)").await,
        IdToken
    );
    assert_eq!(reason("unknown crit header").await, UnsupportedCritical);
    assert_eq!(
        reason("oversized token (20 KiB claims)").await,
        TooLarge { max: 16 * 1024 }
    );
}

#[tokio::test]
async fn oversized_input_is_refused_before_parsing() {
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        max_token_bytes: 1000,
        ..config(&issuer)
    })
    .await;
    let garbage = "x".repeat(1001);
    assert_eq!(
        v.validate(&garbage).await,
        Err(ValidationError::TooLarge { max: 1000 })
    );
    assert!(matches!(
        v.validate(&"x".repeat(1000)).await,
        Err(ValidationError::Malformed(_))
    ));
    let huge = "a.".repeat(1_000_000);
    assert_eq!(
        v.validate(&huge).await,
        Err(ValidationError::TooLarge { max: 1000 })
    );
}

#[tokio::test]
async fn clock_skew_applies_to_exp_and_nbf() {
    let issuer = TestIssuer::start().await;
    let claims = |patch: serde_json::Value| {
        let mut c = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
        for (k, val) in patch.as_object().unwrap() {
            c[k] = val.clone();
        }
        issuer.mint(&c)
    };
    let t = now();
    let expired_100s_ago = claims(json!({"exp": t - 100, "nbf": t - 1000, "iat": t - 1000}));
    let starts_in_100s = claims(json!({"nbf": t + 100}));
    let expired_400s_ago = claims(json!({"exp": t - 400, "nbf": t - 1000, "iat": t - 1000}));
    let starts_in_400s = claims(json!({"nbf": t + 400}));

    let default_skew = validator(config(&issuer)).await;
    assert!(default_skew.validate(&expired_100s_ago).await.is_ok());
    assert!(default_skew.validate(&starts_in_100s).await.is_ok());
    assert_eq!(
        default_skew.validate(&expired_400s_ago).await,
        Err(ValidationError::Expired)
    );
    assert_eq!(
        default_skew.validate(&starts_in_400s).await,
        Err(ValidationError::NotYetValid)
    );

    let no_skew = validator(ValidatorConfig {
        clock_skew: Duration::ZERO,
        ..config(&issuer)
    })
    .await;
    assert_eq!(
        no_skew.validate(&expired_100s_ago).await,
        Err(ValidationError::Expired)
    );
    assert_eq!(
        no_skew.validate(&starts_in_100s).await,
        Err(ValidationError::NotYetValid)
    );
}

#[tokio::test]
async fn audiences_match_any_and_configured_issuers_replace_the_metadata_one() {
    let issuer = TestIssuer::start().await;
    let legacy = "https://login.microsoftonline.com/3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b/v2.0/";
    let v = validator(ValidatorConfig {
        audiences: vec!["other-api".into(), API_CLIENT_ID.into()],
        issuers: vec![legacy.into()],
        ..config(&issuer)
    })
    .await;
    let mut claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    assert_eq!(
        v.validate(&issuer.mint(&claims)).await,
        Err(ValidationError::InvalidIssuer),
        "the metadata issuer is not accepted once issuers are configured"
    );
    claims["iss"] = json!(legacy);
    assert!(v.validate(&issuer.mint(&claims)).await.is_ok());
    claims["aud"] = json!("other-api");
    assert_eq!(
        v.validate(&issuer.mint(&claims)).await.unwrap().audience,
        "other-api"
    );
    claims["aud"] = json!(["third", API_CLIENT_ID]);
    assert_eq!(
        v.validate(&issuer.mint(&claims)).await.unwrap().audience,
        API_CLIENT_ID
    );
}

#[tokio::test]
async fn no_audience_configured_refuses_everything() {
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        audiences: vec![],
        ..config(&issuer)
    })
    .await;
    let token = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]));
    assert_eq!(
        v.validate(&token).await,
        Err(ValidationError::InvalidAudience)
    );
}

#[tokio::test]
async fn required_claims_use_apim_semantics() {
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        required_claims: vec![RequiredClaim::any("scp", [API_SCOPE, "admin"]).separated_by(' ')],
        ..config(&issuer)
    })
    .await;
    let ok = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &["read", API_SCOPE]));
    assert!(v.validate(&ok).await.is_ok());
    let lacking = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &["read"]));
    let err = v.validate(&lacking).await.unwrap_err();
    assert_eq!(
        err,
        ValidationError::RequiredClaim {
            claim: "scp".into()
        }
    );
    assert_eq!(err.status(), 403);
    let app = issuer.mint(&issuer.app_claims(DAEMON_CLIENT_ID, API_CLIENT_ID, &[APP_ROLE]));
    assert!(matches!(
        v.validate(&app).await,
        Err(ValidationError::RequiredClaim { .. })
    ));
}

#[tokio::test]
async fn forged_kids_cause_at_most_one_refetch_per_interval() {
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        min_refetch_interval: Duration::from_secs(2),
        ..config(&issuer)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = issuer.jwks_fetches();
    let claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let forged: Vec<String> = (0..50)
        .map(|i| {
            issuer.mint_with_header(
                &json!({"alg": "RS256", "kid": format!("forged-{i}")}),
                &claims,
            )
        })
        .collect();
    let results = futures_join(&v, &forged).await;
    assert!(
        results
            .iter()
            .all(|r| *r == Err(ValidationError::UnknownKey))
    );
    assert_eq!(
        issuer.jwks_fetches() - before,
        1,
        "exactly one refetch for 50 forged kids"
    );
    // Within the interval: no further fetch at all.
    for token in &forged {
        assert_eq!(v.validate(token).await, Err(ValidationError::UnknownKey));
    }
    assert_eq!(issuer.jwks_fetches() - before, 1);
}

#[tokio::test]
async fn a_key_rotated_right_after_start_up_is_learnt_at_once() {
    // Regression (found by scripts/harden): the start-up fetch used to spend the refetch budget,
    // so for a whole interval after start a freshly rotated key was refused.
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        min_refetch_interval: Duration::from_secs(60),
        ..config(&issuer)
    })
    .await;
    assert!(v.keys_loaded());
    issuer.rotate_key().await;
    let claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let before = issuer.jwks_fetches();
    assert!(v.validate(&issuer.mint(&claims)).await.is_ok());
    assert_eq!(issuer.jwks_fetches() - before, 1, "one on-demand refetch");
    // That refetch spent the budget: forged kids now cause no fetch at all.
    let forged = issuer.mint_with_header(&json!({"alg": "RS256", "kid": "forged"}), &claims);
    assert_eq!(v.validate(&forged).await, Err(ValidationError::UnknownKey));
    assert_eq!(issuer.jwks_fetches() - before, 1);
}

/// Validates all tokens concurrently.
async fn futures_join(v: &Validator, tokens: &[String]) -> Vec<Result<(), ValidationError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let (v, token) = (v.clone(), token.clone());
        tasks.spawn(async move { v.validate(&token).await.map(|_| ()) });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.unwrap());
    }
    results
}

#[tokio::test]
async fn key_rotation_is_picked_up_and_a_retired_key_stops_working_even_when_cached() {
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        min_refetch_interval: Duration::from_millis(200),
        ..config(&issuer)
    })
    .await;
    let claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let old = issuer.mint(&claims);
    assert!(v.validate(&old).await.is_ok());

    let new_kid = issuer.rotate_key().await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let new = issuer.mint(&claims);
    assert!(new != old && issuer.current_kid() == new_kid);
    let fetches = issuer.jwks_fetches();
    assert!(v.validate(&new).await.is_ok(), "new kid after one refetch");
    assert_eq!(issuer.jwks_fetches(), fetches + 1);
    assert!(v.validate(&old).await.is_ok(), "old key still published");

    issuer.retire_old_keys();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Any unknown kid triggers the refetch that learns about the retirement.
    let forged = issuer.mint_with_header(&json!({"alg": "RS256", "kid": "nope"}), &claims);
    assert_eq!(v.validate(&forged).await, Err(ValidationError::UnknownKey));
    assert_eq!(
        v.validate(&old).await,
        Err(ValidationError::UnknownKey),
        "a cached token must not outlive its key"
    );
    assert!(v.validate(&new).await.is_ok());
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        min_refetch_interval: Duration::from_millis(100),
        ..config(&issuer)
    })
    .await;
    issuer.set_down(true);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    let forged = issuer.mint_with_header(&json!({"alg": "RS256", "kid": "nope"}), &claims);
    let fetches = issuer.jwks_fetches() + issuer.discovery_fetches();
    assert_eq!(v.validate(&forged).await, Err(ValidationError::UnknownKey));
    assert!(
        issuer.jwks_fetches() + issuer.discovery_fetches() > fetches,
        "refetch was tried"
    );
    assert!(v.keys_loaded(), "a failed refetch keeps the keys");
    assert!(v.validate(&issuer.mint(&claims)).await.is_ok());
}

#[tokio::test]
async fn keys_never_loaded_refuse_every_token_then_recover() {
    let issuer = TestIssuer::start().await;
    issuer.set_down(true);
    let started = Instant::now();
    let v = Validator::new(ValidatorConfig {
        min_refetch_interval: Duration::from_millis(100),
        ..config(&issuer)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "new() does not wait for the IdP"
    );
    let token = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]));
    let err = v.validate(&token).await.unwrap_err();
    assert_eq!(err, ValidationError::KeysUnavailable);
    assert_eq!(err.status(), 503);
    assert_eq!(err.retry_after_seconds(), Some(5));
    assert!(!v.keys_loaded());
    for attack in issuer.attack_tokens(API_CLIENT_ID) {
        assert!(v.validate(&attack.token).await.is_err(), "{}", attack.name);
    }

    issuer.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !v.keys_loaded() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        v.validate(&token).await.is_ok(),
        "keys load once the IdP is back"
    );
}

#[tokio::test]
async fn an_unreachable_metadata_url_is_keys_unavailable() {
    let port = testkit::free_port();
    let v = validator(ValidatorConfig {
        openid_config_urls: vec![format!(
            "http://127.0.0.1:{port}/.well-known/openid-configuration"
        )],
        audiences: vec![API_CLIENT_ID.into()],
        ..ValidatorConfig::default()
    })
    .await;
    let issuer = TestIssuer::start().await;
    let token = issuer.mint(&issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]));
    assert_eq!(
        v.validate(&token).await,
        Err(ValidationError::KeysUnavailable)
    );
}

#[tokio::test]
async fn several_metadata_urls_accept_each_issuer_and_survive_one_down() {
    let b2c = TestIssuer::start().await;
    let legacy = TestIssuer::start().await;
    legacy.set_down(true);
    let v = validator(ValidatorConfig {
        openid_config_urls: vec![b2c.openid_config_url(), legacy.openid_config_url()],
        min_refetch_interval: Duration::from_millis(100),
        ..config(&b2c)
    })
    .await;
    let b2c_token = b2c.mint(&b2c.user_claims("u", API_CLIENT_ID, &[API_SCOPE]));
    let legacy_token = legacy.mint(&legacy.user_claims("u", API_CLIENT_ID, &[API_SCOPE]));
    assert!(v.validate(&b2c_token).await.is_ok());
    assert_eq!(
        v.validate(&legacy_token).await,
        Err(ValidationError::UnknownKey)
    );

    legacy.set_down(false);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(v.validate(&legacy_token).await.is_ok());
    // Each issuer's tokens carry its own iss; a token of one issuer signed by the other's key fails.
    let mut crossed = legacy.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    crossed["iss"] = json!("https://evil.example/");
    assert_eq!(
        v.validate(&legacy.mint(&crossed)).await,
        Err(ValidationError::InvalidIssuer)
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_once_expired() {
    let issuer = TestIssuer::start().await;
    let v = validator(ValidatorConfig {
        clock_skew: Duration::ZERO,
        ..config(&issuer)
    })
    .await;
    let mut claims = issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]);
    claims["exp"] = json!(now() + 2);
    let token = issuer.mint(&claims);
    assert!(v.validate(&token).await.is_ok());
    assert!(v.validate(&token).await.is_ok(), "cache hit");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(v.validate(&token).await, Err(ValidationError::Expired));
}

#[tokio::test]
async fn a_refused_token_stays_refused_on_repeat() {
    let issuer = TestIssuer::start().await;
    let v = validator(config(&issuer)).await;
    let forged = issuer.mint_with_unpublished_key(
        &json!({"alg": "RS256", "kid": issuer.current_kid()}),
        &issuer.user_claims("u", API_CLIENT_ID, &[API_SCOPE]),
    );
    for _ in 0..3 {
        assert_eq!(
            v.validate(&forged).await,
            Err(ValidationError::InvalidSignature)
        );
    }
}
