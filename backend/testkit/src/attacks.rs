//! One token per attack class of `platform.md`, for every validating layer to refuse.
//!
//! The list is built in groups — signature and algorithm, `kid`, foreign keys, claims, the token's
//! format — and its order and names are part of the contract: tests look attacks up by name, and
//! the hardening suite reads the same list through `test-issuer`.

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

fn attack(name: &'static str, token: String) -> Attack {
    Attack { name, token }
}

impl TestIssuer {
    /// Attack tokens aimed at a validator that accepts `audience` from this issuer with a clock
    /// skew of at most 300 s and a token size limit of at most 16 KiB. Each is a valid user token
    /// (`user_claims("attacker-sub", audience, ["accessapp"])`) with exactly one thing wrong.
    pub fn attack_tokens(&self, audience: &str) -> Vec<Attack> {
        let forge = Forge::new(self, audience);
        [
            forge.signature_attacks(),
            forge.kid_attacks(),
            forge.foreign_key_attacks(),
            forge.claim_attacks(),
            forge.format_attacks(),
        ]
        .concat()
    }
}

/// What every attack starts from: a valid token for the audience, its parts, and the issuer.
struct Forge<'a> {
    issuer: &'a TestIssuer,
    audience: &'a str,
    good: Value,
    kid: String,
    /// `{"alg":"RS256","typ":"JWT","kid":<current>}`.
    rs256: Value,
    valid: String,
    /// `header.claims` of `valid`.
    signed_part: String,
    signature: String,
}

impl<'a> Forge<'a> {
    fn new(issuer: &'a TestIssuer, audience: &'a str) -> Self {
        let good = issuer.user_claims("attacker-sub", audience, &[crate::API_SCOPE]);
        let kid = issuer.current_kid();
        let rs256 = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let valid = issuer.mint(&good);
        let (signed_part, signature) = valid.rsplit_once('.').unwrap_or((&valid, ""));
        let (signed_part, signature) = (signed_part.to_owned(), signature.to_owned());
        Forge {
            issuer,
            audience,
            good,
            kid,
            rs256,
            valid,
            signed_part,
            signature,
        }
    }

    /// The good claims with `patch`'s top-level fields set.
    fn with(&self, patch: Value) -> Value {
        merge(&self.good, &patch)
    }

    /// The good claims without `claim`.
    fn without(&self, claim: &str) -> Value {
        let mut claims = self.good.clone();
        if let Some(map) = claims.as_object_mut() {
            map.remove(claim);
        }
        claims
    }

    /// Signed with the current key under `header`.
    fn under_header(&self, header: Value) -> String {
        self.issuer.mint_with_header(&header, &self.good)
    }

    /// Signed with the key the issuer never publishes, under `header`.
    fn by_unpublished_key(&self, header: &Value) -> String {
        self.issuer.mint_with_unpublished_key(header, &self.good)
    }

    /// No signature, a wrong one, or one a validator must not accept the algorithm of.
    fn signature_attacks(&self) -> Vec<Attack> {
        let (good, kid, signature) = (&self.good, &self.kid, &self.signature);
        let mut corrupted = signature.as_bytes().to_vec();
        corrupted[10] = if corrupted[10] == b'A' { b'B' } else { b'A' };
        let corrupted = format!(
            "{}.{}",
            self.signed_part,
            String::from_utf8_lossy(&corrupted)
        );
        let (header, _) = self
            .signed_part
            .split_once('.')
            .unwrap_or((&self.signed_part, ""));
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&self.with(json!({"sub": "someone-else"}))).unwrap_or_default(),
        );
        let jwk_n = self.issuer.current_jwk()["n"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let public_pem = self.issuer.public_key_pem();
        vec![
            attack(
                "alg none, no signature",
                unsigned(&json!({"alg": "none", "typ": "JWT"}), good),
            ),
            attack(
                "alg none with the current kid",
                unsigned(&json!({"alg": "none", "typ": "JWT", "kid": kid}), good),
            ),
            attack(
                "alg NONE (case variant)",
                unsigned(&json!({"alg": "NONE", "kid": kid}), good),
            ),
            attack("signature stripped", format!("{}.", self.signed_part)),
            attack("signature corrupted", corrupted),
            attack(
                "claims changed after signing",
                format!("{header}.{forged}.{signature}"),
            ),
            attack(
                "HS256 signed with the public key as secret",
                hs256_with_secret(good, kid, public_pem.as_bytes()),
            ),
            attack(
                "HS256 signed with the JWK's modulus as secret",
                hs256_with_secret(good, kid, jwk_n.as_bytes()),
            ),
        ]
    }

    /// A `kid` that names no published key, or is no key id at all.
    fn kid_attacks(&self) -> Vec<Attack> {
        vec![
            attack(
                "unknown kid",
                self.under_header(json!({"alg": "RS256", "kid": "no-such-key"})),
            ),
            attack(
                "kid with path characters",
                self.under_header(json!({"alg": "RS256", "kid": "../../../../etc/passwd"})),
            ),
            attack(
                "kid with SQL characters",
                self.under_header(json!({"alg": "RS256", "kid": "x' OR '1'='1' --"})),
            ),
            attack(
                "kid not a string",
                self.under_header(json!({"alg": "RS256", "kid": 1})),
            ),
            attack(
                "no kid",
                self.under_header(json!({"alg": "RS256", "typ": "JWT"})),
            ),
        ]
    }

    /// Signed by the attacker's key, which the token points at or carries, or hides under the
    /// real `kid`.
    fn foreign_key_attacks(&self) -> Vec<Attack> {
        let rogue_kid = self.issuer.rogue().kid.clone();
        let attacker_jwks = format!("{}/attacker/keys", self.issuer.base_url());
        let jwk = self.issuer.unpublished_jwk();
        vec![
            attack(
                "jku pointing at the attacker's JWKS",
                self.by_unpublished_key(
                    &json!({"alg": "RS256", "kid": rogue_kid, "jku": attacker_jwks}),
                ),
            ),
            attack(
                "x5u pointing at the attacker",
                self.by_unpublished_key(
                    &json!({"alg": "RS256", "kid": rogue_kid, "x5u": attacker_jwks}),
                ),
            ),
            attack(
                "embedded jwk of the attacker's key",
                self.by_unpublished_key(&json!({"alg": "RS256", "kid": rogue_kid, "jwk": jwk})),
            ),
            attack(
                "embedded jwk under the real kid",
                self.by_unpublished_key(&json!({"alg": "RS256", "kid": self.kid, "jwk": jwk})),
            ),
            attack(
                "signed by a key not in the JWKS, real kid",
                self.by_unpublished_key(&self.rs256),
            ),
        ]
    }

    /// Properly signed, with one claim out of time, of the wrong type, for someone else, from
    /// someone else, or missing; and the SPA's ID token in place of an access token.
    fn claim_attacks(&self) -> Vec<Attack> {
        let issuer = self.issuer;
        let mint = |claims: Value| issuer.mint(&claims);
        let now = now();
        vec![
            attack(
                "expired beyond the skew",
                mint(self.with(json!({"exp": now - 3600, "nbf": now - 7200, "iat": now - 7200}))),
            ),
            attack(
                "nbf in the future beyond the skew",
                mint(self.with(json!({"nbf": now + 3600, "exp": now + 7200}))),
            ),
            attack("no exp", mint(self.without("exp"))),
            attack(
                "exp as a string",
                mint(self.with(json!({"exp": (now + 3600).to_string()}))),
            ),
            attack(
                "nbf as a string in the future",
                mint(self.with(json!({"nbf": (now + 3600).to_string()}))),
            ),
            attack("iss as a number", mint(self.with(json!({"iss": 42})))),
            attack(
                "wrong aud",
                mint(self.with(json!({"aud": "00000000-0000-0000-0000-000000000000"}))),
            ),
            attack("no aud", mint(self.without("aud"))),
            attack(
                "wrong iss",
                mint(self.with(json!({"iss": "https://evil.example/tenant/v2.0/"}))),
            ),
            attack(
                "iss without the trailing slash",
                mint(self.with(json!({"iss": issuer.issuer().trim_end_matches('/')}))),
            ),
            attack("no iss", mint(self.without("iss"))),
            attack(
                "ID token used as an access token",
                mint(issuer.id_token_claims("attacker-sub")),
            ),
            attack(
                "ID token claims with the API audience (nonce present)",
                mint(merge(
                    &issuer.id_token_claims("attacker-sub"),
                    &json!({"aud": self.audience}),
                )),
            ),
        ]
    }

    /// Not a token a validator may parse: an extension it must not ignore, too big, not three
    /// base64url JSON segments, or nothing at all.
    fn format_attacks(&self) -> Vec<Attack> {
        let (signed_part, signature) = (&self.signed_part, &self.signature);
        let mut big = self.good.clone();
        if let Some(map) = big.as_object_mut() {
            map.insert("padding".into(), Value::String("x".repeat(20 * 1024)));
        }
        let claims_segment = signed_part
            .split_once('.')
            .map(|(_, c)| c)
            .unwrap_or_default();
        vec![
            attack(
                "unknown crit header",
                self.under_header(json!({"alg": "RS256", "kid": self.kid, "crit": ["urn:example:unknown"], "urn:example:unknown": true})),
            ),
            attack("oversized token (20 KiB claims)", self.issuer.mint(&big)),
            attack("not a JWT", "not-a-jwt".into()),
            attack("three garbage segments", "%%%.%%%.%%%".into()),
            attack("two segments", signed_part.clone()),
            attack(
                "five segments (JWE shape)",
                format!("{}.AAAA.BBBB", self.valid),
            ),
            attack(
                "header is not JSON",
                format!(
                    "{}.{claims_segment}.{signature}",
                    URL_SAFE_NO_PAD.encode(b"not json")
                ),
            ),
            attack(
                "claims are not a JSON object",
                self.issuer.mint(&json!(["an", "array"])),
            ),
            attack(
                "claims are invalid UTF-8",
                self.issuer
                    .mint_raw_claims(&self.rs256, b"{\"sub\":\"\xff\xfe\"}"),
            ),
            attack("empty bearer", String::new()),
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
