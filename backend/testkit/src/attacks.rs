//! One token per attack class of `platform.md`, for every validating layer to refuse.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::issuer::{TestIssuer, compact, now, signing_input};

/// A token every validator must refuse (401, or the unauthenticated action), never with a 500.
#[derive(Debug, Clone)]
pub struct Attack {
    /// What the token tries, e.g. `"alg none"`; shown when a test fails.
    pub name: &'static str,
    pub token: String,
}

impl TestIssuer {
    /// Attack tokens aimed at a validator that accepts `audience` from this issuer with a clock
    /// skew of at most 300 s and a token size limit of at most 16 KiB. Each is a valid user token
    /// (`user_claims("attacker-sub", audience, ["accessapp"])`) with exactly one thing wrong.
    pub fn attack_tokens(&self, audience: &str) -> Vec<Attack> {
        let good = self.user_claims("attacker-sub", audience, &[crate::API_SCOPE]);
        let kid = self.current_kid();
        let rs256 = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let with = |patch: Value| merge(&good, &patch);
        let without = |claim: &str| {
            let mut claims = good.clone();
            if let Some(map) = claims.as_object_mut() {
                map.remove(claim);
            }
            claims
        };
        let valid = self.mint(&good);
        let (signed_part, signature) = valid.rsplit_once('.').unwrap_or((&valid, ""));
        let mut corrupted = signature.as_bytes().to_vec();
        corrupted[10] = if corrupted[10] == b'A' { b'B' } else { b'A' };
        let corrupted = format!("{signed_part}.{}", String::from_utf8_lossy(&corrupted));

        let hs256 = hs256_with_secret(&good, &kid, self.public_key_pem().as_bytes());
        let jwk_n = self.current_jwk()["n"]
            .as_str()
            .unwrap_or_default()
            .to_owned();

        let rogue_kid = self.rogue().kid.clone();
        let attacker_jwks = format!("{}/attacker/keys", self.base_url());
        let now = now();
        let mut big = good.clone();
        if let Some(map) = big.as_object_mut() {
            map.insert("padding".into(), Value::String("x".repeat(20 * 1024)));
        }

        vec![
            Attack {
                name: "alg none, no signature",
                token: unsigned(&json!({"alg": "none", "typ": "JWT"}), &good),
            },
            Attack {
                name: "alg none with the current kid",
                token: unsigned(&json!({"alg": "none", "typ": "JWT", "kid": kid}), &good),
            },
            Attack {
                name: "alg NONE (case variant)",
                token: unsigned(&json!({"alg": "NONE", "kid": kid}), &good),
            },
            Attack {
                name: "signature stripped",
                token: format!("{signed_part}."),
            },
            Attack {
                name: "signature corrupted",
                token: corrupted,
            },
            Attack {
                name: "claims changed after signing",
                token: {
                    let (header, _) = signed_part.split_once('.').unwrap_or((signed_part, ""));
                    let forged = URL_SAFE_NO_PAD.encode(
                        serde_json::to_vec(&with(json!({"sub": "someone-else"})))
                            .unwrap_or_default(),
                    );
                    format!("{header}.{forged}.{signature}")
                },
            },
            Attack {
                name: "HS256 signed with the public key as secret",
                token: hs256,
            },
            Attack {
                name: "HS256 signed with the JWK's modulus as secret",
                token: hs256_with_secret(&good, &kid, jwk_n.as_bytes()),
            },
            Attack {
                name: "unknown kid",
                token: self.mint_with_header(&json!({"alg": "RS256", "kid": "no-such-key"}), &good),
            },
            Attack {
                name: "kid with path characters",
                token: self.mint_with_header(
                    &json!({"alg": "RS256", "kid": "../../../../etc/passwd"}),
                    &good,
                ),
            },
            Attack {
                name: "kid with SQL characters",
                token: self
                    .mint_with_header(&json!({"alg": "RS256", "kid": "x' OR '1'='1' --"}), &good),
            },
            Attack {
                name: "kid not a string",
                token: self.mint_with_header(&json!({"alg": "RS256", "kid": 1}), &good),
            },
            Attack {
                name: "no kid",
                token: self.mint_with_header(&json!({"alg": "RS256", "typ": "JWT"}), &good),
            },
            Attack {
                name: "jku pointing at the attacker's JWKS",
                token: self.mint_with_unpublished_key(
                    &json!({"alg": "RS256", "kid": rogue_kid, "jku": attacker_jwks}),
                    &good,
                ),
            },
            Attack {
                name: "x5u pointing at the attacker",
                token: self.mint_with_unpublished_key(
                    &json!({"alg": "RS256", "kid": rogue_kid, "x5u": attacker_jwks}),
                    &good,
                ),
            },
            Attack {
                name: "embedded jwk of the attacker's key",
                token: self.mint_with_unpublished_key(
                    &json!({"alg": "RS256", "kid": rogue_kid, "jwk": self.unpublished_jwk()}),
                    &good,
                ),
            },
            Attack {
                name: "embedded jwk under the real kid",
                token: self.mint_with_unpublished_key(
                    &json!({"alg": "RS256", "kid": kid, "jwk": self.unpublished_jwk()}),
                    &good,
                ),
            },
            Attack {
                name: "signed by a key not in the JWKS, real kid",
                token: self.mint_with_unpublished_key(&rs256, &good),
            },
            Attack {
                name: "expired beyond the skew",
                token: self.mint(&with(json!({"exp": now - 3600, "nbf": now - 7200, "iat": now - 7200}))),
            },
            Attack {
                name: "nbf in the future beyond the skew",
                token: self.mint(&with(json!({"nbf": now + 3600, "exp": now + 7200}))),
            },
            Attack {
                name: "no exp",
                token: self.mint(&without("exp")),
            },
            Attack {
                name: "exp as a string",
                token: self.mint(&with(json!({"exp": (now + 3600).to_string()}))),
            },
            Attack {
                name: "nbf as a string in the future",
                token: self.mint(&with(json!({"nbf": (now + 3600).to_string()}))),
            },
            Attack {
                name: "iss as a number",
                token: self.mint(&with(json!({"iss": 42}))),
            },
            Attack {
                name: "wrong aud",
                token: self.mint(&with(json!({"aud": "00000000-0000-0000-0000-000000000000"}))),
            },
            Attack {
                name: "no aud",
                token: self.mint(&without("aud")),
            },
            Attack {
                name: "wrong iss",
                token: self.mint(&with(json!({"iss": "https://evil.example/tenant/v2.0/"}))),
            },
            Attack {
                name: "iss without the trailing slash",
                token: self.mint(&with(json!({"iss": self.issuer().trim_end_matches('/')}))),
            },
            Attack {
                name: "no iss",
                token: self.mint(&without("iss")),
            },
            Attack {
                name: "ID token used as an access token",
                token: self.mint(&self.id_token_claims("attacker-sub")),
            },
            Attack {
                name: "ID token claims with the API audience (nonce present)",
                token: self.mint(&merge(
                    &self.id_token_claims("attacker-sub"),
                    &json!({"aud": audience}),
                )),
            },
            Attack {
                name: "unknown crit header",
                token: self.mint_with_header(
                    &json!({"alg": "RS256", "kid": kid, "crit": ["urn:example:unknown"], "urn:example:unknown": true}),
                    &good,
                ),
            },
            Attack {
                name: "oversized token (20 KiB claims)",
                token: self.mint(&big),
            },
            Attack {
                name: "not a JWT",
                token: "not-a-jwt".into(),
            },
            Attack {
                name: "three garbage segments",
                token: "%%%.%%%.%%%".into(),
            },
            Attack {
                name: "two segments",
                token: signed_part.to_string(),
            },
            Attack {
                name: "five segments (JWE shape)",
                token: format!("{valid}.AAAA.BBBB"),
            },
            Attack {
                name: "header is not JSON",
                token: format!(
                    "{}.{}.{signature}",
                    URL_SAFE_NO_PAD.encode(b"not json"),
                    signed_part.split_once('.').map(|(_, c)| c).unwrap_or_default()
                ),
            },
            Attack {
                name: "claims are not a JSON object",
                token: self.mint(&json!(["an", "array"])),
            },
            Attack {
                name: "claims are invalid UTF-8",
                token: self.mint_raw_claims(&rs256, b"{\"sub\":\"\xff\xfe\"}"),
            },
            Attack {
                name: "empty bearer",
                token: String::new(),
            },
        ]
    }
}

/// HS256 under the current kid, keyed with `secret`: the key-confusion attack on a validator that
/// lets the token pick its algorithm and uses the RSA key material as an HMAC key.
fn hs256_with_secret(claims: &Value, kid: &str, secret: &[u8]) -> String {
    let input = signing_input(&json!({"alg": "HS256", "typ": "JWT", "kid": kid}), claims);
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    compact(input, mac.as_ref())
}

/// `header.claims.` with an empty signature.
fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.", signing_input(header, claims))
}

/// `base` with `patch`'s top-level fields set.
fn merge(base: &Value, patch: &Value) -> Value {
    let mut merged = base.clone();
    if let (Some(target), Some(fields)) = (merged.as_object_mut(), patch.as_object()) {
        for (name, value) in fields {
            target.insert(name.clone(), value.clone());
        }
    }
    merged
}
