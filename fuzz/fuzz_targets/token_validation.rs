//! token-validation against arbitrary input, with an oracle: whatever the validator accepts must really be an
//! RS256 token of the test issuer for the API audience that has not expired.
//!
//! The first byte picks the mode; the rest is
//!   0: the bearer token itself (any string)
//!   1: the claims of a token the issuer signs with its published key (JSON from the fuzzer; an object is laid
//!      over valid claims, so the fuzzer starts next to acceptance)
//!   2: the JOSE header of such a token over valid claims (likewise laid over a valid header)
//!   3: the raw `Authorization` header value given to `bearer_token`
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer, now};
use token_validation::{Validator, ValidatorConfig, bearer_token};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    issuer: TestIssuer,
    validator: Validator,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Multi-threaded so the issuer keeps serving its JWKS between inputs.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (issuer, validator) = runtime.block_on(async {
            let issuer = TestIssuer::start().await;
            let validator = Validator::new(ValidatorConfig {
                openid_config_urls: vec![issuer.openid_config_url()],
                audiences: vec![API_CLIENT_ID.to_owned()],
                ..ValidatorConfig::default()
            })
            .await;
            validator
                .wait_for_first_fetch(Duration::from_secs(10))
                .await;
            assert!(
                validator.keys_loaded(),
                "the validator could not load the test issuer's keys"
            );
            (issuer, validator)
        });
        Fixture {
            runtime,
            issuer,
            validator,
        }
    })
}

fn audience_ok(aud: Option<&Value>) -> bool {
    match aud {
        Some(Value::String(a)) => a == API_CLIENT_ID,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(API_CLIENT_ID)),
        _ => false,
    }
}

/// What every accepted token must satisfy, whatever the fuzzer put in it.
fn assert_acceptable(header: &Value, claims: &Value, issuer: &str) {
    assert_eq!(
        header.get("alg").and_then(Value::as_str),
        Some("RS256"),
        "accepted a non-RS256 token"
    );
    for pointer in ["jku", "x5u", "jwk", "x5c", "crit"] {
        assert!(
            header.get(pointer).is_none(),
            "accepted a token with `{pointer}`"
        );
    }
    assert_eq!(
        claims.get("iss").and_then(Value::as_str),
        Some(issuer),
        "accepted a foreign issuer"
    );
    assert!(
        audience_ok(claims.get("aud")),
        "accepted a token for another audience"
    );
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .expect("accepted a token without a numeric exp");
    assert!(exp >= (now() - 300) as f64, "accepted an expired token");
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf
            .as_f64()
            .expect("accepted a token with a non-numeric nbf");
        assert!(
            nbf <= (now() + 300) as f64,
            "accepted a token that is not valid yet"
        );
    }
    for id_token_claim in ["nonce", "at_hash", "c_hash"] {
        assert!(claims.get(id_token_claim).is_none(), "accepted an ID token");
    }
}

/// `base` with the fuzzer's fields set, when the fuzzer gave an object; otherwise the fuzzer's value as it is.
fn overlay(base: Value, fuzzed: Value) -> Value {
    match (base, fuzzed) {
        (Value::Object(mut base), Value::Object(fields)) => {
            base.extend(fields);
            Value::Object(base)
        }
        (_, fuzzed) => fuzzed,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    match mode % 4 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            // Unsigned by the issuer's key, so nothing here may be accepted.
            let result = f.runtime.block_on(f.validator.validate(token));
            assert!(result.is_err(), "accepted a token the fuzzer made up");
        }
        1 => {
            let Ok(fuzzed) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let claims = overlay(
                f.issuer
                    .user_claims("fuzz-sub", API_CLIENT_ID, &[API_SCOPE]),
                fuzzed,
            );
            let token = f.issuer.mint(&claims);
            if f.runtime.block_on(f.validator.validate(&token)).is_ok() {
                let header = serde_json::json!({"alg": "RS256"});
                assert_acceptable(&header, &claims, f.issuer.issuer());
            }
        }
        2 => {
            let Ok(fuzzed) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let base =
                serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": f.issuer.current_kid()});
            let header = overlay(base, fuzzed);
            let claims = f
                .issuer
                .user_claims("fuzz-sub", API_CLIENT_ID, &[API_SCOPE]);
            let token = f.issuer.mint_with_header(&header, &claims);
            if f.runtime.block_on(f.validator.validate(&token)).is_ok() {
                assert_acceptable(&header, &claims, f.issuer.issuer());
            }
        }
        _ => {
            let Ok(value) = HeaderValue::from_bytes(rest) else {
                return;
            };
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value);
            let _ = bearer_token(&headers);
        }
    }
});
