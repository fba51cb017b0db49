//! Signing keys: OpenID discovery, then each issuer's JWKS; refreshed in the background and,
//! for a token naming an unknown `kid`, at most once per `min_refetch_interval`.
//!
//! A failed fetch never drops keys: whatever was loaded last keeps working while the IdP is down.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, watch};

use crate::header::ACCEPTED_ALG;

/// Metadata and JWKS documents larger than this are refused (B2C's are a few KiB).
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// RSA keys shorter than this are not used.
const MIN_RSA_MODULUS_BYTES: usize = 2048 / 8;
/// First retry after a failed background fetch; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The parts of an OpenID metadata document we use.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// One metadata URL's last successful load.
#[derive(Clone)]
pub(crate) struct Provider {
    pub(crate) metadata: ProviderMetadata,
    keys: HashMap<String, Arc<DecodingKey>>,
}

/// What is loaded now, swapped whole on each successful fetch.
#[derive(Default)]
pub(crate) struct Snapshot {
    /// Indexed like the configured URLs; `None` until that URL loaded once.
    pub(crate) providers: Vec<Option<Provider>>,
}

impl Snapshot {
    /// Every published key named `kid` (several issuers could reuse one).
    pub(crate) fn keys(&self, kid: &str) -> Vec<Arc<DecodingKey>> {
        self.providers
            .iter()
            .flatten()
            .filter_map(|p| p.keys.get(kid).cloned())
            .collect()
    }

    pub(crate) fn has_key(&self, kid: &str) -> bool {
        self.providers
            .iter()
            .flatten()
            .any(|p| p.keys.contains_key(kid))
    }

    pub(crate) fn loaded(&self) -> bool {
        self.providers.iter().any(Option::is_some)
    }

    pub(crate) fn issuers(&self) -> Vec<String> {
        self.providers
            .iter()
            .flatten()
            .map(|p| p.metadata.issuer.clone())
            .collect()
    }
}

pub(crate) struct KeyStore {
    urls: Vec<String>,
    client: reqwest::Client,
    min_refetch_interval: Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held while fetching, so concurrent refetch requests collapse into one fetch;
    /// holds the start time of the last on-demand refetch (scheduled fetches don't count).
    fetching: Mutex<Option<Instant>>,
    /// Number of completed fetch rounds, to wait for the first one.
    rounds: watch::Sender<u64>,
}

impl KeyStore {
    pub(crate) fn new(
        urls: Vec<String>,
        http_timeout: Duration,
        min_refetch_interval: Duration,
    ) -> Self {
        let client = trust_store::reqwest_builder()
            .timeout(http_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Self {
            snapshot: RwLock::new(Arc::new(Snapshot {
                providers: vec![None; urls.len()],
            })),
            urls,
            client,
            min_refetch_interval,
            fetching: Mutex::new(None),
            rounds: watch::Sender::new(0),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Starts the background refresh; it stops when the store is dropped.
    pub(crate) fn spawn_refresh(store: &Arc<KeyStore>, refresh_interval: Duration) {
        let weak: Weak<KeyStore> = Arc::downgrade(store);
        tokio::spawn(async move {
            let mut retry = FIRST_RETRY;
            loop {
                let Some(store) = weak.upgrade() else { return };
                let complete = store.fetch_now().await;
                drop(store);
                let wait = if complete {
                    retry = FIRST_RETRY;
                    refresh_interval
                } else {
                    let wait = retry.min(refresh_interval);
                    retry = (retry * 2).min(MAX_RETRY);
                    wait
                };
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// Waits (at most `limit`) until the first fetch round has finished, successful or not.
    pub(crate) async fn first_round(&self, limit: Duration) {
        let mut rounds = self.rounds.subscribe();
        let _ = tokio::time::timeout(limit, rounds.wait_for(|n| *n > 0)).await;
    }

    /// Fetches again unless a fetch started less than `min_refetch_interval` ago (forged `kid`s
    /// must not turn into a request storm against the IdP). Concurrent callers share one fetch.
    pub(crate) async fn refetch_if_due(&self) {
        let mut last = self.fetching.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.fetch_locked().await;
    }

    /// Fetches every provider now; true when all loaded.
    ///
    /// Scheduled fetches take the lock (never two fetches at once) but not the refetch budget:
    /// a key the IdP publishes just after start-up or a scheduled refresh must still be learnt
    /// on demand, or every token it signs would be refused until the interval ran out.
    async fn fetch_now(&self) -> bool {
        let _one_fetch_at_a_time = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> bool {
        let current = self.snapshot();
        let mut providers = current.providers.clone();
        let mut complete = true;
        for (slot, url) in providers.iter_mut().zip(&self.urls) {
            match self.fetch_provider(url).await {
                Ok(provider) => {
                    tracing::debug!(metadata = %url, keys = provider.keys.len(), "signing keys loaded");
                    *slot = Some(provider);
                }
                Err(why) => {
                    complete = false;
                    tracing::warn!(metadata = %url, error = %why, kept = slot.is_some(), "cannot load signing keys");
                }
            }
        }
        match self.snapshot.write() {
            Ok(mut guard) => *guard = Arc::new(Snapshot { providers }),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(Snapshot { providers }),
        }
        self.rounds.send_modify(|n| *n += 1);
        complete
    }

    async fn fetch_provider(&self, url: &str) -> Result<Provider, String> {
        let metadata: ProviderMetadata = serde_json::from_value(self.get_json(url).await?)
            .map_err(|e| format!("metadata: {e}"))?;
        let jwks = self.get_json(&metadata.jwks_uri).await?;
        let keys = parse_jwks(&jwks);
        if keys.is_empty() {
            return Err("the JWKS has no usable RS256 signing key".into());
        }
        Ok(Provider { metadata, keys })
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

/// The RS256 signing keys of a JWKS, by `kid`; other keys are skipped.
fn parse_jwks(jwks: &Value) -> HashMap<String, Arc<DecodingKey>> {
    let mut keys = HashMap::new();
    let Some(entries) = jwks.get("keys").and_then(Value::as_array) else {
        return keys;
    };
    for jwk in entries {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let usable = field("kty") == Some("RSA")
            && field("use").is_none_or(|u| u == "sig")
            && field("alg").is_none_or(|a| a == ACCEPTED_ALG);
        let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else {
            continue;
        };
        let long_enough = URL_SAFE_NO_PAD.decode(n).is_ok_and(|modulus| {
            modulus.iter().skip_while(|b| **b == 0).count() >= MIN_RSA_MODULUS_BYTES
        });
        if !usable || !long_enough || kid.is_empty() {
            tracing::debug!(
                kid,
                "JWKS entry skipped: not an RS256 signing key of at least 2048 bits"
            );
            continue;
        }
        match DecodingKey::from_rsa_components(n, e) {
            Ok(key) => {
                keys.insert(kid.to_owned(), Arc::new(key));
            }
            Err(why) => tracing::debug!(kid, error = %why, "JWKS entry skipped"),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_rs256_signing_keys_of_2048_bits() {
        let n = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let short = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let jwks = json!({"keys": [
            {"kid": "good", "kty": "RSA", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kid": "no-alg", "kty": "RSA", "n": n, "e": "AQAB"},
            {"kid": "enc", "kty": "RSA", "use": "enc", "n": n, "e": "AQAB"},
            {"kid": "ps", "kty": "RSA", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kid": "short", "kty": "RSA", "n": short, "e": "AQAB"},
            {"kid": "hmac", "kty": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
        ]});
        let mut kids: Vec<_> = parse_jwks(&jwks).into_keys().collect();
        kids.sort();
        assert_eq!(kids, ["good", "no-alg"]);
        assert!(parse_jwks(&json!({"keys": "nope"})).is_empty());
        assert!(parse_jwks(&json!([])).is_empty());
    }
}
