//! API Management's `rate-limit-by-key`: a sliding window of `calls` per `period` per key (the
//! client IP, then the verified token's `sub`).
//!
//! The window is exact: each accepted call is remembered until it is `period` old, a call is
//! accepted while fewer than `calls` are remembered, and a refused call is not counted (so the
//! `Retry-After` it gets is exactly when the oldest remembered call leaves the window).
//!
//! **In memory** the keys live in a bounded cache, keyed by the value itself (an `IpAddr`, the
//! subject as it is in the principal: a check formats or copies nothing unless the key is new): a key idle for a whole period has nothing left
//! to remember and is evicted, and at most `max_keys` keys are kept however many distinct IPs or
//! subjects arrive (worst case about `max_keys × calls × 8` bytes per limiter).
//!
//! **With Redis** (`GATEWAY_REDIS_URL`) the checks run in Lua scripts (atomic on the server, clock
//! from Redis's `TIME`), so any number of gateway instances share one budget exactly; keys expire
//! with their window. The calls waiting at one moment share one script and one round trip
//! ([`batch`]), still checked one after the other.
//!
//! **When Redis is unreachable the gateway keeps serving and falls back to its in-memory
//! counters** (fail-open to local limits, not fail-open to no limits). Why: rate limiting here
//! protects capacity, not identity — every call has already passed validate-jwt, which fails
//! closed on its own. Failing closed would turn an outage of a counter cache into an outage of
//! the whole API for every legitimate user; falling back keeps each instance enforcing the
//! configured limit, so the worst case during the outage is `instances ×` the budget, and a
//! single-instance deployment loses nothing. This is also how APIM behaves: its counters are
//! synchronised between instances on a best-effort basis and are never a reason to refuse calls.
//! Each failure pauses Redis use for a second (no per-request connection stalls) and logs a
//! warning; Redis is used again as soon as it answers.

use crate::client_addr::ClientIp;
use crate::config::RateLimit;
use crate::error::GatewayError;
use crate::metrics::Outcome;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use moka::sync::Cache;
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt::Display;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};
use token_validation::Principal;
use tokio::sync::{mpsc, oneshot};

mod batch;

/// APIM's `remaining-calls-header-name` / `total-calls-header-name`, one pair per policy.
pub const IP_REMAINING_HEADER: &str = "x-ratelimit-remaining-ip";
pub const IP_LIMIT_HEADER: &str = "x-ratelimit-limit-ip";
pub const SUBJECT_REMAINING_HEADER: &str = "x-ratelimit-remaining-subject";
pub const SUBJECT_LIMIT_HEADER: &str = "x-ratelimit-limit-subject";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Calls left in the window after this one.
    pub remaining: u32,
    /// When refused: until the oldest counted call leaves the window.
    pub retry_after: Duration,
}

impl Decision {
    /// Whole seconds, rounded up and at least 1, as `Retry-After` and APIM's message give them.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// Sliding windows kept in this process, one per key of type `K`.
pub struct MemoryWindows<K = String> {
    limit: RateLimit,
    epoch: Instant,
    /// foldhash with a per-process random key: SipHash, moka's default, was ~6 % of the
    /// gateway's instructions per call across its caches.
    windows: Cache<K, Arc<Mutex<VecDeque<u64>>>, foldhash::quality::RandomState>,
}

/// What a limiter can be keyed by.
pub trait CounterKey: Hash + Eq + Send + Sync + 'static {}
impl<K: Hash + Eq + Send + Sync + 'static> CounterKey for K {}

impl<K: CounterKey> MemoryWindows<K> {
    pub fn new(limit: RateLimit, max_keys: u64) -> Self {
        Self {
            limit,
            epoch: Instant::now(),
            windows: Cache::builder()
                .max_capacity(max_keys)
                // Idle for a whole period means every remembered call has expired.
                .time_to_idle(limit.period)
                .build_with_hasher(foldhash::quality::RandomState::default()),
        }
    }

    /// Looks `key` up by reference: a known key costs no allocation.
    pub fn check<Q>(&self, key: &Q) -> Decision
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        let now = self.epoch.elapsed().as_millis() as u64;
        let period = self.limit.period.as_millis() as u64;
        let calls = self.limit.calls as usize;
        let window = self
            .windows
            .get_with_by_ref(key, || Arc::new(Mutex::new(VecDeque::new())));
        // A panic elsewhere while holding the lock leaves a list of timestamps, still valid.
        let mut hits = window.lock().unwrap_or_else(PoisonError::into_inner);
        while hits.front().is_some_and(|&t| t + period <= now) {
            hits.pop_front();
        }
        if hits.len() < calls {
            hits.push_back(now);
            Decision {
                allowed: true,
                remaining: (calls - hits.len()) as u32,
                retry_after: Duration::ZERO,
            }
        } else {
            let oldest = hits.front().copied().unwrap_or(now);
            Decision {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_millis(oldest + period - now),
            }
        }
    }

    /// Keys currently held (after pending evictions have run).
    pub fn key_count(&self) -> u64 {
        self.windows.run_pending_tasks();
        self.windows.entry_count()
    }
}

/// Counters in Redis, shared by every gateway instance that points at the same server.
pub struct RedisCounters {
    connection: RwLock<Option<redis::aio::ConnectionManager>>,
    /// This process's part of each script's tag (random), and a counter for the rest: tags stay
    /// unique across instances without a random draw per script.
    instance: String,
    scripts: AtomicU64,
    /// Rate-limit checks waiting for their script ([`batch`]).
    batch: mpsc::Sender<batch::Call>,
    /// Set after a failure: until then checks go straight to the local fallback.
    paused_until: Mutex<Option<Instant>>,
    /// When a full queue was last reported ([`RedisCounters::busy`]).
    busy_reported: Mutex<Option<Instant>>,
}

/// How long one check may take before the local counters answer instead.
const REDIS_CHECK_TIMEOUT: Duration = Duration::from_millis(500);
const REDIS_PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RedisUnavailable {
    #[error("not connected yet")]
    NotConnected,
    #[error("paused after a failure")]
    Paused,
    #[error("timed out")]
    Timeout,
    #[error("too many checks waiting (said at most once a second)")]
    Busy,
    /// Already said: by the batch's failed script, once for all its calls, or by the last `Busy`.
    #[error("already reported")]
    Reported,
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
}

impl RedisCounters {
    /// Starts connecting in the background and returns at once: a gateway whose Redis is down
    /// still starts (and uses its local counters until Redis answers).
    pub fn connect(url: &str) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (batch, queue) = mpsc::channel(batch::QUEUE);
        let counters = Arc::new(Self {
            connection: RwLock::new(None),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            scripts: AtomicU64::new(0),
            batch,
            paused_until: Mutex::new(None),
            busy_reported: Mutex::new(None),
        });
        tokio::spawn(Self::keep_connecting(client, Arc::downgrade(&counters)));
        tokio::spawn(batch::run(queue, Arc::downgrade(&counters)));
        Ok(counters)
    }

    async fn keep_connecting(client: redis::Client, counters: Weak<Self>) {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_CHECK_TIMEOUT)
            .set_response_timeout(REDIS_CHECK_TIMEOUT)
            .set_number_of_retries(1);
        loop {
            let attempt = client
                .get_connection_manager_with_config(config.clone())
                .await;
            // The gateway has shut down: stop trying.
            let Some(counters) = counters.upgrade() else {
                return;
            };
            match attempt {
                Ok(manager) => {
                    tracing::info!("rate-limit counters: connected to Redis");
                    *counters
                        .connection
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Some(manager);
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "rate-limit counters: Redis unreachable, using local counters; retrying");
                }
            }
            drop(counters);
            tokio::time::sleep(REDIS_PAUSE_AFTER_FAILURE).await;
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// One call against each `(key, limit)` in order, up to the first refusal: a decision per
    /// policy that counted it (the last one may be the refusal). The call waits in the batch
    /// ([`batch`]); paused, not connected or a full queue, it does not wait at all.
    async fn check(
        &self,
        policies: Vec<(String, RateLimit)>,
    ) -> Result<Vec<Decision>, RedisUnavailable> {
        if self.is_paused() {
            return Err(RedisUnavailable::Paused);
        }
        if !self.is_connected() {
            return Err(RedisUnavailable::NotConnected);
        }
        let (reply, decisions) = oneshot::channel();
        let call = batch::Call { policies, reply };
        self.batch.try_send(call).map_err(|_| self.busy())?;
        decisions
            .await
            .ok()
            .flatten()
            .ok_or(RedisUnavailable::Reported)
    }

    /// A full queue sends calls to the local counters until it drains. The flood that fills it
    /// must not become a flood of warnings: `Busy` (logged) at most once a second, `Reported`
    /// (silent) for the other calls.
    fn busy(&self) -> RedisUnavailable {
        let mut reported = self
            .busy_reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if reported.is_some_and(|at| now.duration_since(at) < REDIS_PAUSE_AFTER_FAILURE) {
            return RedisUnavailable::Reported;
        }
        *reported = Some(now);
        RedisUnavailable::Busy
    }

    fn is_paused(&self) -> bool {
        let paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        paused.is_some_and(|until| Instant::now() < until)
    }

    /// A tag no other script of any instance uses (the rate-limit keys' members, [`batch`]).
    pub(crate) fn script_tag(&self) -> String {
        let script = self.scripts.fetch_add(1, Ordering::Relaxed);
        format!("{}-{script}", self.instance)
    }

    /// Runs one counter script, unless Redis is paused after a failure; a failure pauses it.
    /// Shared by the rate limits and the subscription quotas.
    pub(crate) async fn invoke(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<Vec<i64>, RedisUnavailable> {
        if self.is_paused() {
            return Err(RedisUnavailable::Paused);
        }
        let mut connection = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(RedisUnavailable::NotConnected)?;
        let result = match tokio::time::timeout(
            REDIS_CHECK_TIMEOUT,
            invocation.invoke_async(&mut connection),
        )
        .await
        {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(error)) => error.into(),
            Err(_) => RedisUnavailable::Timeout,
        };
        *self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some(Instant::now() + REDIS_PAUSE_AFTER_FAILURE);
        Err(result)
    }
}

impl RedisUnavailable {
    pub(crate) fn unexpected_reply() -> Self {
        Self::Redis(redis::RedisError::from((
            redis::ErrorKind::TypeError,
            "unexpected reply from a counter script",
        )))
    }
}

/// One `rate-limit-by-key` policy, keyed by `K`.
pub struct Limiter<K = String> {
    /// Part of the Redis key, so the IP and subject budgets never mix.
    name: &'static str,
    limit: RateLimit,
    local: MemoryWindows<K>,
    shared: Option<Arc<RedisCounters>>,
    remaining_header: HeaderName,
    limit_header: HeaderName,
}

impl<K: CounterKey> Limiter<K> {
    pub fn new(
        name: &'static str,
        limit: RateLimit,
        max_keys: u64,
        shared: Option<Arc<RedisCounters>>,
        headers: (&'static str, &'static str),
    ) -> Self {
        Self {
            name,
            limit,
            local: MemoryWindows::new(limit, max_keys),
            shared,
            remaining_header: HeaderName::from_static(headers.0),
            limit_header: HeaderName::from_static(headers.1),
        }
    }

    pub async fn check<Q>(&self, key: &Q) -> Decision
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + Display + Sync + ?Sized,
    {
        if self.shared.is_some()
            && let Some(decisions) = self
                .shared_check(vec![(self.redis_key(key), self.limit)])
                .await
            && let Some(&decision) = decisions.first()
        {
            return decision;
        }
        self.local.check(key)
    }

    /// The Redis key of `key`: the policy's name in it keeps the IP and subject budgets apart.
    fn redis_key(&self, key: &(impl Display + ?Sized)) -> String {
        format!("gateway:rate-limit:{}:{key}", self.name)
    }

    /// The decisions of the shared counters, or `None` to use the local ones (no Redis, or Redis
    /// unavailable: see the module doc).
    async fn shared_check(&self, policies: Vec<(String, RateLimit)>) -> Option<Vec<Decision>> {
        let shared = self.shared.as_ref()?;
        match shared.check(policies).await {
            Ok(decisions) => Some(decisions),
            // Already reported (by the failure that paused it, or by the connecting task).
            Err(
                RedisUnavailable::Paused
                | RedisUnavailable::NotConnected
                | RedisUnavailable::Reported,
            ) => None,
            Err(error) => {
                tracing::warn!(limiter = self.name, %error, "rate-limit counters: Redis unavailable, using local counters");
                None
            }
        }
    }

    /// APIM's 429 for a refusal by this policy.
    fn refuse(&self, decision: Decision) -> Response {
        tracing::info!(
            limiter = self.name,
            retry_after = decision.retry_after_seconds(),
            "rate limit exceeded"
        );
        GatewayError::RateLimited {
            retry_after_seconds: decision.retry_after_seconds(),
        }
        .into_response()
    }

    /// The remaining/total calls headers of this policy, and on a refusal which limit it was
    /// (the metrics' `outcome`).
    pub fn annotate(&self, decision: Decision, response: &mut Response) {
        if !decision.allowed {
            response.extensions_mut().insert(Outcome(match self.name {
                "ip" => "rate_limited_ip",
                "subject" => "rate_limited_subject",
                "subscription" => "rate_limited_subscription",
                _ => "rate_limited",
            }));
        }
        let headers = response.headers_mut();
        headers.insert(
            self.remaining_header.clone(),
            HeaderValue::from(decision.remaining),
        );
        headers.insert(
            self.limit_header.clone(),
            HeaderValue::from(self.limit.calls),
        );
    }
}

/// The API's two `rate-limit-by-key` policies, in APIM's order: by client IP, then by the token's
/// subject.
pub struct IpThenSubject {
    pub ip: Arc<Limiter<IpAddr>>,
    pub subject: Arc<Limiter>,
}

impl IpThenSubject {
    /// The IP's decision, then the subject's unless the IP refused (a call refused by the first
    /// policy never reaches, nor counts in, the second). With Redis both are one script.
    pub async fn check(&self, ip: IpAddr, subject: &str) -> (Decision, Option<Decision>) {
        if self.ip.shared.is_some() {
            let policies = vec![
                (self.ip.redis_key(&ip), self.ip.limit),
                (self.subject.redis_key(subject), self.subject.limit),
            ];
            if let Some(decisions) = self.ip.shared_check(policies).await
                && let Some(&first) = decisions.first()
            {
                return (first, decisions.get(1).copied());
            }
        }
        let first = self.ip.local.check(&ip);
        if !first.allowed {
            return (first, None);
        }
        (first, Some(self.subject.local.check(subject)))
    }
}

/// `rate-limit-by-key counter-key="@(context.Request.IpAddress)"`, then `rate-limit-by-key
/// counter-key="@(…AsJwt()?.Subject)"`: the [`ClientIp`] (the socket peer, or the client behind a
/// trusted proxy, never an address the client wrote itself), then the `sub` of the token
/// validate-jwt verified (both given by [`crate::auth::validate_jwt_then_rate_limit`], which
/// cannot call this without them). Refused → APIM's 429; either way the response carries the
/// remaining/total calls headers of each policy that counted the call.
pub async fn by_ip_then_subject(
    limits: &IpThenSubject,
    ClientIp(client): ClientIp,
    principal: &Principal,
    request: Request,
    next: Next,
) -> Response {
    let (by_ip, by_subject) = limits.check(client, &principal.subject).await;
    let mut response = match by_subject {
        _ if !by_ip.allowed => limits.ip.refuse(by_ip),
        Some(decision) if !decision.allowed => limits.subject.refuse(decision),
        _ => next.run(request).await,
    };
    if let Some(decision) = by_subject {
        limits.subject.annotate(decision, &mut response);
    }
    limits.ip.annotate(by_ip, &mut response);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sliding_window_counts_refuses_and_recovers() {
        let windows = MemoryWindows::new(
            RateLimit {
                calls: 3,
                period: Duration::from_millis(300),
            },
            1000,
        );
        for remaining in [2, 1, 0] {
            let decision = windows.check("a");
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
        }
        let refused = windows.check("a");
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_millis(300));
        assert_eq!(refused.retry_after_seconds(), 1);
        assert!(windows.check("b").allowed, "keys are independent");
        std::thread::sleep(refused.retry_after + Duration::from_millis(20));
        assert!(windows.check("a").allowed, "the window slid");
    }

    #[test]
    fn refused_calls_are_not_counted() {
        let windows = MemoryWindows::new(RateLimit::new(1, 60), 1000);
        assert!(windows.check("a").allowed);
        let first = windows.check("a");
        for _ in 0..100 {
            assert!(!windows.check("a").allowed);
        }
        let later = windows.check("a");
        assert!(later.retry_after <= first.retry_after);
        assert_eq!(later.retry_after_seconds(), 60);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_keys() {
        let windows = MemoryWindows::new(RateLimit::new(15, 60), 1000);
        for i in 0..50_000 {
            windows.check(&format!("subject-{i}"));
        }
        let count = windows.key_count();
        assert!(count <= 1000, "{count} keys held");
    }

    #[test]
    fn idle_keys_are_evicted_after_one_period() {
        let windows = MemoryWindows::new(
            RateLimit {
                calls: 5,
                period: Duration::from_millis(200),
            },
            1000,
        );
        for i in 0..500 {
            windows.check(&format!("ip-{i}"));
        }
        assert_eq!(windows.key_count(), 500);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(windows.key_count(), 0);
    }
}
