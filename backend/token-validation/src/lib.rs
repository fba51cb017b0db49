//! Validates bearer tokens from an OpenID Connect issuer: discovery, JWKS cache, hardened JWT checks, typed principal.
//!
//! Used by the gateway (API Management's `validate-jwt`) and the hello function (EasyAuth).
//! jsonwebtoken verifies signatures and the time claims; this crate closes its unsafe
//! defaults (see `platform.md`):
//!
//! - the header is read here first: only `RS256`, a `kid` is required, `jku`/`x5u`/`jwk`/`x5c`
//!   and `crit`/`zip` refuse the token; keys come only from the issuer's JWKS;
//! - `exp`, `iss` and `aud` are required, `nbf` is checked, both with the configured skew;
//!   `iss` must be one of the allowed issuers, `aud` any allowed audience;
//! - wrongly typed claims and ID tokens (`nonce`, `at_hash`, `c_hash`) are refused;
//! - tokens above `max_token_bytes` are refused before any parsing.
//!
//! A token that passed is remembered until it expires, so a repeated token costs a hash, a lookup
//! and a comparison instead of an RSA verification. The cache is keyed by a fast hash with a
//! per-validator random key and every entry keeps its whole token: a hit counts only when the
//! presented token equals the remembered one byte for byte, so no collision can ever
//! authenticate a token (at worst it costs a verification).

mod bearer;
mod config;
mod error;
mod header;
mod jwks;
mod principal;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moka::sync::Cache;
use serde_json::{Map, Value};
use std::hash::BuildHasher;

pub use bearer::bearer_token;
pub use config::{RequiredClaim, ValidatorConfig};
pub use error::ValidationError;
pub use jwks::ProviderMetadata;
pub use principal::Principal;

use jwks::KeyStore;

/// Oversized tokens are refused before any parsing or hashing.
fn check_size(config: &ValidatorConfig, token: &str) -> Result<(), ValidationError> {
    if token.len() > config.max_token_bytes {
        return Err(ValidationError::TooLarge {
            max: config.max_token_bytes,
        });
    }
    Ok(())
}

/// Validates tokens against one configuration. Cheap to clone (an `Arc` inside); clones share
/// keys and cache. Dropping the last clone stops the background key refresh.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("openid_config_urls", &self.inner.config.openid_config_urls)
            .field("audiences", &self.inner.config.audiences)
            .field("keys_loaded", &self.keys_loaded())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: ValidatorConfig,
    keys: Arc<KeyStore>,
    /// Its keys are already a keyed hash: moka's SipHash over them again was wasted work.
    cache: Option<Cache<u64, Arc<CachedToken>, foldhash::fast::RandomState>>,
    /// The cache's keyed hash: random per validator, so nobody can aim tokens at one key.
    cache_key: foldhash::quality::RandomState,
}

/// A validated token, remembered until `valid_until` while its key stays published.
struct CachedToken {
    /// The whole token, compared on every hit (the key is only a hash of it).
    token: Box<str>,
    principal: Arc<Principal>,
    kid: String,
    valid_until: i64,
}

/// Entries leave the cache when their token stops being valid.
struct UntilTokenExpiry;

impl moka::Expiry<u64, Arc<CachedToken>> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &u64,
        value: &Arc<CachedToken>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            value.valid_until.saturating_sub(unix_now()).max(0) as u64,
        ))
    }
}

impl Validator {
    /// Starts loading the issuers' keys in the background and returns at once: an IdP that is
    /// down delays nothing and fails nothing here (tokens are refused until keys load).
    /// Must be called inside a Tokio runtime.
    pub async fn new(config: ValidatorConfig) -> Validator {
        // Pin jsonwebtoken's crypto to aws-lc-rs: if feature unification ever enabled its
        // `rust_crypto` backend too, its automatic choice would panic at the first verification.
        // An error only means a provider is installed already, which is fine.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        if config.audiences.is_empty() {
            tracing::warn!("no audience configured: every token will be refused");
        }
        let keys = Arc::new(KeyStore::new(
            config.openid_config_urls.clone(),
            config.http_timeout,
            config.min_refetch_interval,
        ));
        KeyStore::spawn_refresh(&keys, config.refresh_interval);
        let cache = (config.token_cache_capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(config.token_cache_capacity)
                .expire_after(UntilTokenExpiry)
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        Validator {
            inner: Arc::new(Inner {
                config,
                keys,
                cache,
                cache_key: foldhash::quality::RandomState::default(),
            }),
        }
    }

    /// Whether signing keys of at least one issuer are loaded.
    pub fn keys_loaded(&self) -> bool {
        self.inner.keys.snapshot().loaded()
    }

    /// Waits until the first key fetch has finished (successfully or not), at most `limit`.
    /// Useful at start-up; `validate` does this by itself for the first tokens.
    pub async fn wait_for_first_fetch(&self, limit: Duration) {
        self.inner.keys.first_round(limit).await;
    }

    /// The metadata of each configured URL loaded so far (in configuration order).
    pub fn metadata(&self) -> Vec<ProviderMetadata> {
        self.inner
            .keys
            .snapshot()
            .providers
            .iter()
            .flatten()
            .map(|p| p.metadata.clone())
            .collect()
    }

    /// The first loaded metadata's `authorization_endpoint` (EasyAuth's login redirect target).
    pub fn authorization_endpoint(&self) -> Option<String> {
        self.metadata()
            .into_iter()
            .find_map(|m| m.authorization_endpoint)
    }

    pub fn config(&self) -> &ValidatorConfig {
        &self.inner.config
    }

    /// Validates a bearer token (without the `Bearer ` prefix); see the crate docs for the rules.
    /// The principal is shared with the cache: a repeated token costs no copy of its claims.
    pub async fn validate(&self, token: &str) -> Result<Arc<Principal>, ValidationError> {
        let result = self.validate_uncached_or_cached(token).await;
        if let Err(why) = &result {
            // The reason only: never the token, and never the attacker-chosen kid.
            tracing::info!(reason = %why, "bearer token refused");
        }
        result
    }

    async fn validate_uncached_or_cached(
        &self,
        token: &str,
    ) -> Result<Arc<Principal>, ValidationError> {
        let config = &self.inner.config;
        check_size(config, token)?;
        let digest = self.inner.cache_key.hash_one(token);
        if let Some(cache) = &self.inner.cache
            && let Some(hit) = cache.get(&digest)
            // Another token with the same hash is a miss, never a hit (and it will replace it).
            && *hit.token == *token
        {
            // Re-check what can change after caching: time, and the key being withdrawn.
            if hit.valid_until > unix_now() && self.inner.keys.snapshot().has_key(&hit.kid) {
                return Ok(hit.principal.clone());
            }
            cache.invalidate(&digest);
        }

        let (claims, kid) = self.verified_claims(token).await?;
        let principal = principal::principal(claims, &config.audiences)?;
        principal::check_required(&principal.claims, &config.required_claims)?;
        let principal = Arc::new(principal);

        if let Some(cache) = &self.inner.cache {
            let skew = config.clock_skew.as_secs() as i64;
            cache.insert(
                digest,
                Arc::new(CachedToken {
                    token: token.into(),
                    principal: principal.clone(),
                    kid,
                    valid_until: principal.expires_at.saturating_add(skew),
                }),
            );
        }
        Ok(principal)
    }

    /// The claims of a token whose header, signature, `exp`, `nbf`, `iss` and `aud` passed,
    /// with its `kid`.
    async fn verified_claims(
        &self,
        token: &str,
    ) -> Result<(Map<String, Value>, String), ValidationError> {
        let kid = header::inspect(token)?;
        let (keys, snapshot) = self.keys_for(&kid).await?;
        let validation = self.validation(&snapshot);
        let mut verified = Err(ValidationError::UnknownKey);
        for key in &keys {
            verified = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
                .map_err(from_jsonwebtoken);
            if !matches!(verified, Err(ValidationError::InvalidSignature)) {
                break;
            }
        }
        Ok((verified?.claims, kid))
    }

    /// Validates an ID token that answers a sign-in this caller started (EasyAuth's login
    /// callback): the same checks as [`Validator::validate`], and its `nonce` must be `nonce`
    /// (OpenID Connect Core §3.1.3.7), which binds it to that sign-in. Never cached: each is
    /// seen once.
    pub async fn validate_id_token(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<Principal, ValidationError> {
        let config = &self.inner.config;
        check_size(config, token)?;
        let (mut claims, _) = self.verified_claims(token).await?;
        match claims.remove("nonce") {
            Some(Value::String(given)) if given == nonce => {}
            Some(_) => return Err(ValidationError::InvalidClaim("nonce")),
            None => return Err(ValidationError::MissingClaim("nonce")),
        }
        // The rest of the ID-token-only claims bind it to other tokens of that response.
        claims.remove("at_hash");
        claims.remove("c_hash");
        principal::principal(claims, &config.audiences)
    }

    /// The published keys named `kid`, refetching the JWKS once (rate-limited) when unknown.
    async fn keys_for(
        &self,
        kid: &str,
    ) -> Result<(Vec<Arc<DecodingKey>>, Arc<jwks::Snapshot>), ValidationError> {
        let store = &self.inner.keys;
        let mut snapshot = store.snapshot();
        if !snapshot.loaded() {
            // Right after start the first fetch may still be running: wait for it, bounded.
            store.first_round(self.inner.config.http_timeout * 2).await;
            snapshot = store.snapshot();
        }
        let keys = snapshot.keys(kid);
        if !keys.is_empty() {
            return Ok((keys, snapshot));
        }
        store.refetch_if_due().await;
        let snapshot = store.snapshot();
        let keys = snapshot.keys(kid);
        if !keys.is_empty() {
            Ok((keys, snapshot))
        } else if !snapshot.loaded() {
            Err(ValidationError::KeysUnavailable)
        } else {
            Err(ValidationError::UnknownKey)
        }
    }

    /// jsonwebtoken's checks with its lax defaults replaced.
    fn validation(&self, snapshot: &jwks::Snapshot) -> Validation {
        let config = &self.inner.config;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = config.clock_skew.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_audience(&config.audiences);
        if config.issuers.is_empty() {
            validation.set_issuer(&snapshot.issuers());
        } else {
            validation.set_issuer(&config.issuers);
        }
        validation
    }
}

fn from_jsonwebtoken(error: jsonwebtoken::errors::Error) -> ValidationError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => ValidationError::InvalidSignature,
        ErrorKind::ExpiredSignature => ValidationError::Expired,
        ErrorKind::ImmatureSignature => ValidationError::NotYetValid,
        ErrorKind::InvalidIssuer => ValidationError::InvalidIssuer,
        ErrorKind::InvalidAudience => ValidationError::InvalidAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            ValidationError::UnsupportedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(claim) => ValidationError::MissingClaim(spec_claim(claim)),
        ErrorKind::InvalidClaimFormat(claim) => ValidationError::InvalidClaim(spec_claim(claim)),
        ErrorKind::Json(_) => ValidationError::Malformed("the claims are not a JSON object"),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            ValidationError::Malformed("a part is not base64url")
        }
        _ => ValidationError::Malformed("the token cannot be decoded"),
    }
}

fn spec_claim(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "unknown",
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer};

    /// Plants, under the cache key of `victim`, the entry of another token: what a hash collision
    /// would leave in the cache.
    fn plant_collision(
        validator: &Validator,
        victim: &str,
        cached: &str,
        principal: Arc<Principal>,
    ) {
        let inner = &validator.inner;
        let kid = header::inspect(cached).unwrap();
        inner.cache.as_ref().unwrap().insert(
            inner.cache_key.hash_one(victim),
            Arc::new(CachedToken {
                token: cached.into(),
                valid_until: principal.expires_at,
                principal,
                kid,
            }),
        );
    }

    #[tokio::test]
    async fn a_colliding_cache_entry_never_authenticates_another_token() {
        let issuer = TestIssuer::start().await;
        let validator = Validator::new(ValidatorConfig {
            openid_config_urls: vec![issuer.openid_config_url()],
            audiences: vec![API_CLIENT_ID.into()],
            ..ValidatorConfig::default()
        })
        .await;
        let alice = issuer.mint(&issuer.user_claims("alice", API_CLIENT_ID, &[API_SCOPE]));
        let alice_principal = validator.validate(&alice).await.unwrap();
        assert_eq!(alice_principal.subject, "alice");

        // A forged token whose key held Alice's entry: refused, not Alice.
        let forged = format!("{}AAAA", &alice[..alice.len() - 4]);
        plant_collision(&validator, &forged, &alice, alice_principal.clone());
        assert!(validator.validate(&forged).await.is_err());

        // Another valid token whose key held Alice's entry: its own subject, not Alice's.
        let bob = issuer.mint(&issuer.user_claims("bob", API_CLIENT_ID, &[API_SCOPE]));
        plant_collision(&validator, &bob, &alice, alice_principal);
        assert_eq!(validator.validate(&bob).await.unwrap().subject, "bob");
        // ...and Alice's own token still passes (from a verification or its own entry).
        assert_eq!(validator.validate(&alice).await.unwrap().subject, "alice");
    }
}
