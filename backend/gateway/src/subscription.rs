//! API Management's products and subscriptions: `GATEWAY_PRODUCTS` names a TOML file of products,
//! each with its subscriptions (a primary and a secondary key, either works) and optionally a
//! per-subscription `rate-limit` and `quota`.
//!
//! The key is read from `Ocp-Apim-Subscription-Key` or the `subscription-key` query parameter,
//! before validate-jwt, as APIM checks it: no key → 401 "missing", a key that is unknown or whose
//! subscription is not active → 401 "invalid". `forward` removes both spellings from every call,
//! so a key never reaches the function; only the subscription's *name* is logged and counted.
//!
//! Keys are looked up by their SHA-256, so the lookup's timing says nothing about how much of a
//! guessed key matched. The file is re-read on SIGHUP ([`Subscriptions::reload`]): a bad file is
//! refused and the previous products stay; counters live outside the catalogue and survive.

use crate::config::{ConfigError, RateLimit};
use crate::error::GatewayError;
use crate::quota::{Quota, QuotaCounters, UsageRow};
use crate::rate_limit::{Limiter, RedisCounters};
use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

pub const VAR: &str = "GATEWAY_PRODUCTS";
/// APIM's subscription key header (names compare case-insensitively, as HTTP's do).
pub const KEY_HEADER: HeaderName = HeaderName::from_static("ocp-apim-subscription-key");
/// APIM's subscription key query parameter.
pub const KEY_QUERY: &str = "subscription-key";
/// APIM's `remaining-calls-header-name` / `total-calls-header-name` of the product `rate-limit`.
pub const REMAINING_HEADER: &str = "x-ratelimit-remaining-subscription";
pub const LIMIT_HEADER: &str = "x-ratelimit-limit-subscription";
/// Shorter keys are guessable; APIM's own are 32 hex digits.
pub const MIN_KEY_LENGTH: usize = 16;
/// A bound on what is read at start and on SIGHUP.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A subscription key. `Debug` never shows it.
#[derive(Clone)]
pub struct SubscriptionKey(String);

impl SubscriptionKey {
    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for SubscriptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubscriptionKey(<redacted>)")
    }
}

/// APIM's subscription states; only `active` subscriptions may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    Active,
    Suspended,
    Submitted,
    Rejected,
    Cancelled,
    Expired,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    pub primary_key: SubscriptionKey,
    pub secondary_key: SubscriptionKey,
    pub state: SubscriptionState,
}

#[derive(Debug, Clone)]
pub struct Product {
    pub name: String,
    pub subscription_required: bool,
    pub rate_limit: Option<RateLimit>,
    pub quota: Option<Quota>,
    pub subscriptions: Vec<Subscription>,
}

/// The products file, parsed and checked.
#[derive(Clone)]
pub struct Catalogue {
    pub path: PathBuf,
    pub products: Vec<Product>,
    /// SHA-256 of each key → (product, subscription) indexes.
    by_key: HashMap<[u8; 32], (usize, usize)>,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogue")
            .field("path", &self.path)
            .field("products", &self.products)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    product: Vec<ProductShape>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductShape {
    name: String,
    #[serde(default = "yes")]
    subscription_required: bool,
    rate_limit: Option<String>,
    quota: Option<String>,
    #[serde(default)]
    subscription: Vec<SubscriptionShape>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionShape {
    name: String,
    primary_key: String,
    secondary_key: String,
    #[serde(default = "active")]
    state: SubscriptionState,
}

fn active() -> SubscriptionState {
    SubscriptionState::Active
}

fn bad(path: &Path, reason: impl fmt::Display) -> ConfigError {
    ConfigError {
        var: VAR,
        reason: format!("{}: {reason}", path.display()),
    }
}

/// Names become counter keys, Redis keys and log fields: APIM's identifier characters only.
fn check_name(path: &Path, what: &str, name: &str) -> Result<(), ConfigError> {
    let plain = (1..=80).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        Ok(())
    } else {
        Err(bad(
            path,
            format!("{what} name `{name}` must be 1 to 80 of A-Z a-z 0-9 - _ ."),
        ))
    }
}

/// The reason never contains the key: it names the subscription and the field instead.
fn key(
    path: &Path,
    field: &str,
    subscription: &str,
    text: String,
) -> Result<SubscriptionKey, ConfigError> {
    if text.len() < MIN_KEY_LENGTH || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            path,
            format!(
                "subscription `{subscription}`: {field} must be at least {MIN_KEY_LENGTH} printable ASCII characters without spaces"
            ),
        ));
    }
    Ok(SubscriptionKey(text))
}

/// A TOML syntax or shape error by line and message only: the toml crate's own rendering quotes
/// the offending line, which may hold a key.
fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let line = error
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| before.matches('\n').count() + 1);
    let message = error.message().lines().next().unwrap_or("invalid TOML");
    match line {
        Some(line) => bad(path, format!("line {line}: {message}")),
        None => bad(path, message),
    }
}

impl Catalogue {
    /// Reads and checks the file; every problem is one `GATEWAY_PRODUCTS` error naming it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let size = std::fs::metadata(path)
            .map_err(|e| bad(path, format!("cannot be read: {e}")))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(bad(path, "is larger than 1 MiB"));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(path, format!("cannot be read: {e}")))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let shape: FileShape = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        if shape.product.is_empty() {
            return Err(bad(path, "lists no [[product]]"));
        }
        let mut products = Vec::with_capacity(shape.product.len());
        let mut by_key = HashMap::new();
        let mut subscription_names = std::collections::HashSet::new();
        for (p, entry) in shape.product.into_iter().enumerate() {
            check_name(path, "product", &entry.name)?;
            if products
                .iter()
                .any(|other: &Product| other.name == entry.name)
            {
                return Err(bad(
                    path,
                    format!("product `{}` is listed twice", entry.name),
                ));
            }
            let limit_error = |field: &str, e: ConfigError| {
                bad(
                    path,
                    format!("product `{}`: {field}: {}", entry.name, e.reason),
                )
            };
            let rate_limit = entry
                .rate_limit
                .as_deref()
                .map(|text| RateLimit::parse(VAR, text).map_err(|e| limit_error("rate_limit", e)))
                .transpose()?;
            let quota = entry
                .quota
                .as_deref()
                .map(|text| Quota::parse(VAR, text).map_err(|e| limit_error("quota", e)))
                .transpose()?;
            let mut subscriptions = Vec::with_capacity(entry.subscription.len());
            for (s, sub) in entry.subscription.into_iter().enumerate() {
                check_name(path, "subscription", &sub.name)?;
                if !subscription_names.insert(sub.name.clone()) {
                    return Err(bad(
                        path,
                        format!("subscription `{}` is listed twice", sub.name),
                    ));
                }
                let primary_key = key(path, "primary_key", &sub.name, sub.primary_key)?;
                let secondary_key = key(path, "secondary_key", &sub.name, sub.secondary_key)?;
                for k in [&primary_key, &secondary_key] {
                    if by_key.insert(k.digest(), (p, s)).is_some() {
                        return Err(bad(
                            path,
                            format!("subscription `{}`: a key is used twice", sub.name),
                        ));
                    }
                }
                subscriptions.push(Subscription {
                    name: sub.name,
                    primary_key,
                    secondary_key,
                    state: sub.state,
                });
            }
            products.push(Product {
                name: entry.name,
                subscription_required: entry.subscription_required,
                rate_limit,
                quota,
                subscriptions,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            products,
            by_key,
        })
    }

    /// Without a key a call is refused as soon as one product requires a subscription.
    pub fn requires_subscription(&self) -> bool {
        self.products.iter().any(|p| p.subscription_required)
    }

    fn find(&self, presented: &str) -> Option<(&Product, &Subscription)> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let &(p, s) = self.by_key.get(&digest)?;
        let product = self.products.get(p)?;
        Some((product, product.subscriptions.get(s)?))
    }
}

/// The subscription a call was admitted under, for the rate limit, the quota and the access log.
#[derive(Clone)]
pub struct Subscriber {
    pub product: Arc<str>,
    pub subscription: Arc<str>,
    limiter: Option<Arc<Limiter>>,
    quota: Option<Quota>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("product", &self.product)
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

/// The running state: the current catalogue, one limiter per product, quota and usage counters.
pub struct Subscriptions {
    catalogue: RwLock<Arc<Catalogue>>,
    /// By product name, with the limit it was built for: kept across reloads while it is unchanged.
    limiters: Mutex<HashMap<String, (RateLimit, Arc<Limiter>)>>,
    pub counters: QuotaCounters,
    max_keys: u64,
    redis: Option<Arc<RedisCounters>>,
}

impl Subscriptions {
    pub fn new(catalogue: Catalogue, max_keys: u64, redis: Option<Arc<RedisCounters>>) -> Self {
        let subscriptions = Self {
            catalogue: RwLock::new(Arc::new(catalogue.clone())),
            limiters: Mutex::new(HashMap::new()),
            counters: QuotaCounters::new(redis.clone()),
            max_keys,
            redis,
        };
        subscriptions.install(catalogue);
        subscriptions
    }

    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGHUP: re-reads the file. A bad file is refused and the current products stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let path = self.catalogue().path.clone();
        self.install(Catalogue::load(&path)?);
        Ok(())
    }

    fn install(&self, catalogue: Catalogue) {
        {
            let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
            let old = std::mem::take(&mut *limiters);
            for product in &catalogue.products {
                let Some(limit) = product.rate_limit else {
                    continue;
                };
                let limiter = match old.get(&product.name) {
                    Some((kept, limiter)) if *kept == limit => limiter.clone(),
                    // A new limit starts new local windows; with Redis the counts carry over.
                    _ => Arc::new(Limiter::new(
                        "subscription",
                        limit,
                        self.max_keys,
                        self.redis.clone(),
                        (REMAINING_HEADER, LIMIT_HEADER),
                    )),
                };
                limiters.insert(product.name.clone(), (limit, limiter));
            }
        }
        self.counters.retain(&catalogue);
        *self
            .catalogue
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(catalogue);
    }

    fn admit(&self, presented: Option<&str>) -> Result<Option<Subscriber>, GatewayError> {
        let catalogue = self.catalogue();
        let Some(presented) = presented else {
            return if catalogue.requires_subscription() {
                Err(GatewayError::SubscriptionKeyMissing)
            } else {
                Ok(None)
            };
        };
        let (product, subscription) = catalogue
            .find(presented)
            .filter(|(_, s)| s.state == SubscriptionState::Active)
            .ok_or(GatewayError::SubscriptionKeyInvalid)?;
        let limiter = self
            .limiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&product.name)
            .map(|(_, limiter)| limiter.clone());
        Ok(Some(Subscriber {
            product: product.name.as_str().into(),
            subscription: subscription.name.as_str().into(),
            limiter,
            quota: product.quota,
        }))
    }

    pub fn usage(&self) -> Vec<UsageRow> {
        self.counters.local_usage()
    }
}

/// The key as APIM reads it: the header first, else the query parameter. Two different header
/// values, or a value that is not text, count as an invalid key, never as no key.
fn presented_key(request: &Request) -> Result<Option<String>, GatewayError> {
    let mut values = request.headers().get_all(&KEY_HEADER).iter();
    if let Some(first) = values.next() {
        if values.next().is_some() {
            return Err(GatewayError::SubscriptionKeyInvalid);
        }
        let text = first
            .to_str()
            .map_err(|_| GatewayError::SubscriptionKeyInvalid)?;
        return Ok(Some(text.trim().to_owned()));
    }
    let Some(query) = request.uri().query() else {
        return Ok(None);
    };
    let mut found = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name.eq_ignore_ascii_case(KEY_QUERY))
        .map(|(_, value)| value.into_owned());
    let first = found.next();
    if found.next().is_some() {
        return Err(GatewayError::SubscriptionKeyInvalid);
    }
    Ok(first)
}

/// APIM's subscription check, before validate-jwt.
pub async fn check_key(
    State(subscriptions): State<Arc<Subscriptions>>,
    mut request: Request,
    next: Next,
) -> Response {
    let admitted =
        presented_key(&request).and_then(|presented| subscriptions.admit(presented.as_deref()));
    match admitted {
        Ok(Some(subscriber)) => {
            request.extensions_mut().insert(subscriber.clone());
            let mut response = next.run(request).await;
            response.extensions_mut().insert(subscriber);
            response
        }
        Ok(None) => next.run(request).await,
        Err(refusal) => {
            tracing::info!(refusal = %refusal, "subscription key refused");
            refusal.into_response()
        }
    }
}

/// The product's `rate-limit` then `quota` for the admitted subscription, after validate-jwt;
/// a call that passes both is counted for billing.
pub async fn limits(
    State(subscriptions): State<Arc<Subscriptions>>,
    request: Request,
    next: Next,
) -> Response {
    // No subscriber: an open product called without a key.
    let Some(subscriber) = request.extensions().get::<Subscriber>().cloned() else {
        return next.run(request).await;
    };
    let counter_key = format!("{}/{}", subscriber.product, subscriber.subscription);
    let decision = match &subscriber.limiter {
        Some(limiter) => {
            let decision = limiter.check(&counter_key).await;
            if !decision.allowed {
                tracing::info!(subscription = %subscriber.subscription, "subscription rate limit exceeded");
                let mut response = GatewayError::RateLimited {
                    retry_after_seconds: decision.retry_after_seconds(),
                }
                .into_response();
                limiter.annotate(decision, &mut response);
                return response;
            }
            Some((limiter.clone(), decision))
        }
        None => None,
    };
    let quota = subscriptions
        .counters
        .consume(
            &subscriber.product,
            &subscriber.subscription,
            subscriber.quota,
        )
        .await;
    let mut response = if quota.allowed {
        next.run(request).await
    } else {
        tracing::info!(subscription = %subscriber.subscription, "subscription quota exceeded");
        GatewayError::QuotaExceeded {
            renews_in_seconds: quota.renews_in_seconds(),
        }
        .into_response()
    };
    if let Some((limiter, decision)) = decision {
        limiter.annotate(decision, &mut response);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The catalogue the integration tests and scripts/harden use too.
    const GOOD: &str = include_str!("../tests/products.toml");

    fn parse(text: &str) -> Result<Catalogue, ConfigError> {
        Catalogue::parse(Path::new("products.toml"), text)
    }

    #[test]
    fn a_good_file_is_read_with_its_limits_and_both_keys() {
        let catalogue = parse(GOOD).unwrap();
        let product = &catalogue.products[0];
        assert!(product.subscription_required);
        assert_eq!(product.rate_limit, Some(RateLimit::new(100, 60)));
        assert_eq!(product.quota.unwrap().calls, 10000);
        for key in ["contoso-dev-primary-0001", "contoso-dev-secondary-02"] {
            assert_eq!(catalogue.find(key).unwrap().1.name, "contoso-dev");
        }
        assert_eq!(
            catalogue.find("suspended-primary-key-04").unwrap().1.state,
            SubscriptionState::Suspended
        );
        assert!(catalogue.find("contoso-dev-primary-000").is_none());
        let debug = format!("{catalogue:?}");
        assert!(!debug.contains("contoso-dev-primary-0001"), "{debug}");
    }

    #[test]
    fn each_bad_file_is_refused_without_showing_a_key() {
        for (text, expected) in [
            ("", "no [[product]]"),
            (
                "[[product]]\nname = \"a\"\nrate_limit = \"5/301\"",
                "rate_limit",
            ),
            ("[[product]]\nname = \"a\"\nquota = \"0/60\"", "quota"),
            ("[[product]]\nname = \"a b\"", "product name"),
            (
                "[[product]]\nname = \"a\"\n[[product]]\nname = \"a\"",
                "twice",
            ),
            ("[[product]]\nname = \"a\"\ncolour = 1", "line 3"),
            (
                "[[product]]\nname = \"a\"\n[[product.subscription]]\nname = \"s\"\nprimary_key = \"short-secret\"\nsecondary_key = \"fedcba9876543210fedc\"",
                "primary_key must be at least 16",
            ),
            (
                "[[product]]\nname = \"a\"\n[[product.subscription]]\nname = \"s\"\nprimary_key = \"fedcba9876543210fedc\"\nsecondary_key = \"fedcba9876543210fedc\"",
                "a key is used twice",
            ),
            (
                "[[product]]\nname = \"a\"\n[[product.subscription]]\nname = \"s\"\nprimary_key = \"fedcba9876543210fedc\"\nsecondary_key = \"fedcba9876543210fedd\"\nstate = \"paused\"",
                "line 7",
            ),
            (
                "[[product]]\nname = \"a\"\nprimary_key = \"leaky-secret-value-123\"",
                "line 3",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.var, VAR);
            let line = error.to_string();
            assert!(line.contains(expected), "{text:?} → {line}");
            assert!(!line.contains("secret"), "a key leaked: {line}");
            assert!(!line.contains('\n'), "not one line: {line:?}");
        }
    }
}
