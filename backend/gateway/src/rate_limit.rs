//! API Management's `rate-limit-by-key`: a sliding window of `calls` per `period` per key (the
//! client IP, then the verified token's `sub`).
//!
//! The window is exact: each accepted call is remembered until it is `period` old, a call is
//! accepted while fewer than `calls` are remembered, and a refused call is not counted (so the
//! `Retry-After` it gets is exactly when the oldest remembered call leaves the window).
//!
//! **In memory** the keys live in a bounded cache: a key idle for a whole period has nothing left
//! to remember and is evicted, and at most `max_keys` keys are kept however many distinct IPs or
//! subjects arrive (worst case about `max_keys × calls × 8` bytes per limiter).
//!
//! **With Redis** (`GATEWAY_REDIS_URL`) every check is one Lua script (atomic on the server, clock
//! from Redis's `TIME`), so any number of gateway instances share one budget exactly; keys expire
//! with their window.
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
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use moka::sync::Cache;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};
use token_validation::Principal;

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

/// Sliding windows kept in this process.
pub struct MemoryWindows {
    limit: RateLimit,
    epoch: Instant,
    windows: Cache<String, Arc<Mutex<VecDeque<u64>>>>,
}

impl MemoryWindows {
    pub fn new(limit: RateLimit, max_keys: u64) -> Self {
        Self {
            limit,
            epoch: Instant::now(),
            windows: Cache::builder()
                .max_capacity(max_keys)
                // Idle for a whole period means every remembered call has expired.
                .time_to_idle(limit.period)
                .build(),
        }
    }

    pub fn check(&self, key: &str) -> Decision {
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

/// One check: drop expired calls, count, add this call if under the limit. The clock is Redis's
/// own, so instances with different clocks still agree.
const SLIDING_WINDOW_LUA: &str = r"
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, period)
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local retry = period
if oldest[2] then retry = tonumber(oldest[2]) + period - now end
return {0, 0, retry}
";

/// Counters in Redis, shared by every gateway instance that points at the same server.
pub struct RedisCounters {
    connection: RwLock<Option<redis::aio::ConnectionManager>>,
    script: redis::Script,
    /// Set after a failure: until then checks go straight to the local fallback.
    paused_until: Mutex<Option<Instant>>,
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
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
}

impl RedisCounters {
    /// Starts connecting in the background and returns at once: a gateway whose Redis is down
    /// still starts (and uses its local counters until Redis answers).
    pub fn connect(url: &str) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let counters = Arc::new(Self {
            connection: RwLock::new(None),
            script: redis::Script::new(SLIDING_WINDOW_LUA),
            paused_until: Mutex::new(None),
        });
        tokio::spawn(Self::keep_connecting(client, Arc::downgrade(&counters)));
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

    async fn check(&self, key: &str, limit: RateLimit) -> Result<Decision, RedisUnavailable> {
        let mut invocation = self.script.key(key);
        invocation
            .arg(limit.calls)
            .arg(limit.period.as_millis() as u64)
            .arg(uuid::Uuid::new_v4().to_string());
        match self.invoke(&invocation).await?[..] {
            [allowed, remaining, retry_after_ms] => Ok(Decision {
                allowed: allowed == 1,
                remaining: u32::try_from(remaining).unwrap_or(0),
                retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0)),
            }),
            _ => Err(RedisUnavailable::unexpected_reply()),
        }
    }

    /// Runs one counter script, unless Redis is paused after a failure; a failure pauses it.
    /// Shared by the rate limits and the subscription quotas.
    pub(crate) async fn invoke(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<Vec<i64>, RedisUnavailable> {
        {
            let mut paused = self
                .paused_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match *paused {
                Some(until) if Instant::now() < until => return Err(RedisUnavailable::Paused),
                Some(_) => *paused = None,
                None => {}
            }
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

/// One `rate-limit-by-key` policy.
pub struct Limiter {
    /// Part of the Redis key, so the IP and subject budgets never mix.
    name: &'static str,
    limit: RateLimit,
    local: MemoryWindows,
    shared: Option<Arc<RedisCounters>>,
    remaining_header: HeaderName,
    limit_header: HeaderName,
}

impl Limiter {
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

    pub async fn check(&self, key: &str) -> Decision {
        if let Some(shared) = &self.shared {
            let redis_key = format!("gateway:rate-limit:{}:{key}", self.name);
            match shared.check(&redis_key, self.limit).await {
                Ok(decision) => return decision,
                // Already reported (by the failure that paused it, or by the connecting task).
                Err(RedisUnavailable::Paused | RedisUnavailable::NotConnected) => {}
                Err(error) => {
                    tracing::warn!(limiter = self.name, %error, "rate-limit counters: Redis unavailable, using local counters");
                }
            }
        }
        self.local.check(key)
    }

    /// Checks `key`; refused → APIM's 429, accepted → the inner service's response. Both carry
    /// the remaining/total calls headers.
    async fn enforce(&self, key: &str, request: Request, next: Next) -> Response {
        let decision = self.check(key).await;
        let mut response = if decision.allowed {
            next.run(request).await
        } else {
            tracing::info!(
                limiter = self.name,
                retry_after = decision.retry_after_seconds(),
                "rate limit exceeded"
            );
            GatewayError::RateLimited {
                retry_after_seconds: decision.retry_after_seconds(),
            }
            .into_response()
        };
        self.annotate(decision, &mut response);
        response
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

/// `rate-limit-by-key counter-key="@(context.Request.IpAddress)"`: the [`ClientIp`] (the socket
/// peer, or the client behind a trusted proxy), never an address the client wrote itself.
pub async fn by_ip(
    State(limiter): State<Arc<Limiter>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    request: Request,
    next: Next,
) -> Response {
    limiter.enforce(&client.to_string(), request, next).await
}

/// `rate-limit-by-key counter-key="@(…AsJwt()?.Subject)"`: the `sub` of the token validate-jwt
/// verified. Without one (the layer order is broken) the call is refused, never counted as "no key".
pub async fn by_subject(
    State(limiter): State<Arc<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(subject) = request
        .extensions()
        .get::<Arc<Principal>>()
        .map(|p| p.subject.clone())
    else {
        tracing::error!("rate limit by subject reached without a validated principal");
        return GatewayError::Unauthorized.into_response();
    };
    limiter.enforce(&subject, request, next).await
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
