//! RS256 signing keys: generated on first start, kept in the store, rotated by
//! `dev-idp rotate-keys`. The newest published key signs; older published keys stay in the JWKS
//! until retired, so tokens signed before a rotation keep validating.

use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, StoredKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Crypto(String),
}

/// A public key as published in the JWKS.
#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    pub kid: String,
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub n: String,
    pub e: String,
    pub nbf: i64,
}

struct SigningKey {
    kid: String,
    pair: KeyPair,
}

/// The keys loaded at one moment: the one that signs and all that are published.
pub struct KeyRing {
    signer: SigningKey,
    pub jwks: Vec<Jwk>,
}

impl KeyRing {
    pub fn kid(&self) -> &str {
        &self.signer.kid
    }

    /// Signs `claims` as a compact JWS with `alg: RS256` and this ring's `kid`. Through a JSON
    /// value, so the claims are in name order whatever type holds them.
    pub fn sign(&self, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        let claims = serde_json::to_value(claims)
            .map_err(|e| KeyError::Crypto(format!("claims not serialisable: {e}")))?;
        let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "kid": self.signer.kid });
        let mut jws = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signature = vec![0; self.signer.pair.public_modulus_len()];
        self.signer
            .pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                jws.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Crypto("signing failed".into()))?;
        jws.push('.');
        jws.push_str(&B64.encode(signature));
        Ok(jws)
    }

    /// Decoding keys for the tokens this provider issued (userinfo checks them).
    pub fn decoding_key(&self, kid: &str) -> Option<jsonwebtoken::DecodingKey> {
        let jwk = self.jwks.iter().find(|k| k.kid == kid)?;
        jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()
    }

    fn from_stored(keys: &[StoredKey]) -> Result<Self, KeyError> {
        let mut published = Vec::with_capacity(keys.len());
        let mut signer = None;
        for stored in keys {
            let pair = KeyPair::from_pkcs8(&stored.pkcs8).map_err(|e| {
                KeyError::Crypto(format!("stored key {} does not load: {e}", stored.kid))
            })?;
            published.push(public_jwk(&stored.kid, &pair, stored.created_at));
            if signer.is_none() {
                signer = Some(SigningKey {
                    kid: stored.kid.clone(),
                    pair,
                });
            }
        }
        let signer = signer.ok_or_else(|| KeyError::Crypto("no published signing key".into()))?;
        Ok(Self {
            signer,
            jwks: published,
        })
    }
}

fn public_jwk(kid: &str, pair: &KeyPair, nbf: i64) -> Jwk {
    let public = pair.public_key();
    Jwk {
        kid: kid.to_owned(),
        kty: "RSA",
        use_: "sig",
        alg: "RS256",
        n: B64.encode(public.modulus().big_endian_without_leading_zero()),
        e: B64.encode(public.exponent().big_endian_without_leading_zero()),
        nbf,
    }
}

/// Generates a 2048-bit RSA key; its `kid` is the RFC 7638 thumbprint of the public key.
pub fn generate(now: i64) -> Result<StoredKey, KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| KeyError::Crypto("RSA key generation failed".into()))?;
    let pkcs8 = pair
        .as_der()
        .map_err(|_| KeyError::Crypto("key encoding failed".into()))?
        .as_ref()
        .to_vec();
    let jwk = public_jwk("", &pair, now);
    let thumbprint_input = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, jwk.e, jwk.n);
    let kid = B64.encode(Sha256::digest(thumbprint_input.as_bytes()));
    Ok(StoredKey {
        kid,
        pkcs8,
        created_at: now,
    })
}

/// Adds a new signing key to the store; running servers switch to it on their next request.
pub fn rotate(store: &Store, now: i64) -> Result<String, KeyError> {
    let key = generate(now)?;
    store.insert_key(&key)?;
    Ok(key.kid)
}

/// The server's view of the keys, reloaded when another process changed the database.
pub struct Keys {
    store: Arc<Store>,
    current: RwLock<(i64, Arc<KeyRing>)>,
}

impl Keys {
    /// Loads the published keys, generating the first one on a fresh data directory.
    pub fn load(store: Arc<Store>, now: i64) -> Result<Self, KeyError> {
        let version = store.data_version()?;
        let mut stored = store.active_keys()?;
        if stored.is_empty() {
            rotate(&store, now)?;
            stored = store.active_keys()?;
        }
        let ring = Arc::new(KeyRing::from_stored(&stored)?);
        Ok(Self {
            store,
            current: RwLock::new((version, ring)),
        })
    }

    /// The current ring. Costs one `PRAGMA data_version` on a blocking thread; reloads only
    /// when another process (the `rotate-keys` command) committed something.
    pub async fn ring(self: &Arc<Self>) -> Result<Arc<KeyRing>, KeyError> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.ring_blocking())
            .await
            .map_err(|_| KeyError::Store(StoreError::Join))?
    }

    fn ring_blocking(&self) -> Result<Arc<KeyRing>, KeyError> {
        let version = self.store.data_version()?;
        if let Ok(current) = self.current.read()
            && current.0 == version
        {
            return Ok(Arc::clone(&current.1));
        }
        let stored = self.store.active_keys()?;
        let ring = Arc::new(KeyRing::from_stored(&stored)?);
        if let Ok(mut current) = self.current.write() {
            *current = (version, Arc::clone(&ring));
        }
        Ok(ring)
    }
}

/// `at_hash` / `c_hash`: the left half of SHA-256 of the value, base64url.
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    B64.encode(&digest[..16])
}
