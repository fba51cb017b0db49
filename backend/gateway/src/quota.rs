//! API Management's `quota` (calls per renewal period, per subscription) and the usage counts
//! `gateway usage` reports for billing.
//!
//! A quota is a fixed window that starts with the subscription's first call and renews a whole
//! period later, as APIM's does; a refused call is not counted. Every call a subscription gets
//! through its product's rate limit and quota is added to its usage count.
//!
//! With `GATEWAY_REDIS_URL` both live in Redis (one Lua script per call: the window in
//! `gateway:quota:{product}/{subscription}`, usage in the hash `gateway:usage`), so instances
//! share them. When Redis is unreachable the local counters answer, as the rate limits do (see
//! `rate_limit`'s module doc for why). Local counters are held per configured subscription only,
//! so their number is bounded by the products file, never by what clients send.

use crate::config::{ConfigError, calls_per_seconds};
use crate::rate_limit::{RedisCounters, RedisUnavailable};
use crate::subscription::Catalogue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// `calls` per `period`, as APIM's `quota calls=… renewal-period=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub calls: u64,
    pub period: Duration,
}

impl Quota {
    /// A year: APIM's quotas are meant for days to months.
    pub const MAX_PERIOD_SECONDS: u64 = 365 * 86_400;

    pub(crate) fn parse(var: &'static str, text: &str) -> Result<Self, ConfigError> {
        let (calls, seconds) = calls_per_seconds(var, text, Self::MAX_PERIOD_SECONDS)?;
        Ok(Self {
            calls,
            period: Duration::from_secs(seconds),
        })
    }
}

/// The outcome of one quota check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDecision {
    pub allowed: bool,
    /// When refused: until the window renews.
    pub renews_in: Duration,
}

impl QuotaDecision {
    const ALLOWED: Self = Self {
        allowed: true,
        renews_in: Duration::ZERO,
    };

    /// Whole seconds, rounded up and at least 1, for APIM's HH:MM:SS.
    pub fn renews_in_seconds(&self) -> u64 {
        self.renews_in.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// One subscription's calls for billing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageRow {
    pub product: String,
    pub subscription: String,
    pub calls: u64,
}

/// The Redis hash holding every subscription's usage, field `{product}/{subscription}`.
pub const USAGE_KEY: &str = "gateway:usage";

const QUOTA_LUA: &str = r"
local limit = tonumber(ARGV[1])
if limit > 0 then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 and used >= limit then return {0, ttl} end
  if ttl > 0 then
    redis.call('INCR', KEYS[1])
  else
    redis.call('SET', KEYS[1], 1, 'PX', ARGV[2])
  end
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
return {1, 0}
";

struct Window {
    started: Instant,
    calls: u64,
}

pub struct QuotaCounters {
    windows: Mutex<HashMap<String, Window>>,
    usage: Mutex<HashMap<String, u64>>,
    redis: Option<Arc<RedisCounters>>,
    script: redis::Script,
}

impl QuotaCounters {
    pub fn new(redis: Option<Arc<RedisCounters>>) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
            redis,
            script: redis::Script::new(QUOTA_LUA),
        }
    }

    /// Checks the quota (when the product has one) and, if the call may go on, counts it.
    pub async fn consume(
        &self,
        product: &str,
        subscription: &str,
        quota: Option<Quota>,
    ) -> QuotaDecision {
        let field = format!("{product}/{subscription}");
        if let Some(shared) = &self.redis {
            match self.consume_shared(shared, &field, quota).await {
                Ok(decision) => {
                    if decision.allowed {
                        self.count_locally(&field);
                    }
                    return decision;
                }
                Err(RedisUnavailable::Paused | RedisUnavailable::NotConnected) => {}
                Err(error) => {
                    tracing::warn!(%error, "quota counters: Redis unavailable, using local counters");
                }
            }
        }
        let decision = quota.map_or(QuotaDecision::ALLOWED, |q| self.consume_local(&field, q));
        if decision.allowed {
            self.count_locally(&field);
        }
        decision
    }

    async fn consume_shared(
        &self,
        shared: &RedisCounters,
        field: &str,
        quota: Option<Quota>,
    ) -> Result<QuotaDecision, RedisUnavailable> {
        let window_key = format!("gateway:quota:{field}");
        let mut invocation = self.script.key(window_key);
        invocation
            .key(USAGE_KEY)
            .arg(quota.map_or(0, |q| q.calls))
            .arg(quota.map_or(1, |q| q.period.as_millis() as u64))
            .arg(field);
        let reply = shared.invoke(&invocation).await?;
        match reply[..] {
            [allowed, renews_in_ms] => Ok(QuotaDecision {
                allowed: allowed == 1,
                renews_in: Duration::from_millis(u64::try_from(renews_in_ms).unwrap_or(0)),
            }),
            _ => Err(RedisUnavailable::unexpected_reply()),
        }
    }

    fn consume_local(&self, field: &str, quota: Quota) -> QuotaDecision {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = windows.entry(field.to_owned()).or_insert(Window {
            started: now,
            calls: 0,
        });
        let elapsed = now.duration_since(window.started);
        if elapsed >= quota.period {
            // Renewed: the new window starts with this call.
            *window = Window {
                started: now,
                calls: 0,
            };
        } else if window.calls >= quota.calls {
            return QuotaDecision {
                allowed: false,
                renews_in: quota.period - elapsed,
            };
        }
        window.calls += 1;
        QuotaDecision::ALLOWED
    }

    fn count_locally(&self, field: &str) {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        *usage.entry(field.to_owned()).or_insert(0) += 1;
    }

    /// After a reload: windows of subscriptions no longer listed go (usage stays for billing).
    pub fn retain(&self, catalogue: &Catalogue) {
        let listed: std::collections::HashSet<String> = catalogue
            .products
            .iter()
            .flat_map(|p| {
                p.subscriptions
                    .iter()
                    .map(|s| format!("{}/{}", p.name, s.name))
            })
            .collect();
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|field, _| listed.contains(field));
    }

    /// This instance's counts, sorted by product and subscription.
    pub fn local_usage(&self) -> Vec<UsageRow> {
        let usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        rows(usage.iter().map(|(field, calls)| (field.as_str(), *calls)))
    }
}

fn rows<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> Vec<UsageRow> {
    let mut rows: Vec<UsageRow> = counts
        .filter_map(|(field, calls)| {
            let (product, subscription) = field.split_once('/')?;
            Some(UsageRow {
                product: product.to_owned(),
                subscription: subscription.to_owned(),
                calls,
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.product, &a.subscription).cmp(&(&b.product, &b.subscription)));
    rows
}

/// Every instance's counts, from Redis (`gateway usage` with `GATEWAY_REDIS_URL`).
pub async fn shared_usage(url: &str) -> Result<Vec<UsageRow>, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let counts: HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(USAGE_KEY)
        .query_async(&mut connection)
        .await?;
    Ok(rows(counts.iter().map(|(f, c)| (f.as_str(), *c))))
}

/// `gateway usage`'s table: one line per subscription, tab-separated under a header.
pub fn table(rows: &[UsageRow]) -> String {
    let mut out = String::from("product\tsubscription\tcalls\n");
    for row in rows {
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            row.product, row.subscription, row.calls
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_refuses_past_its_calls_and_renews() {
        let counters = QuotaCounters::new(None);
        let quota = Quota {
            calls: 2,
            period: Duration::from_millis(200),
        };
        assert!(counters.consume_local("p/s", quota).allowed);
        assert!(counters.consume_local("p/s", quota).allowed);
        let refused = counters.consume_local("p/s", quota);
        assert!(!refused.allowed);
        assert!(refused.renews_in <= Duration::from_millis(200));
        assert_eq!(refused.renews_in_seconds(), 1);
        assert!(counters.consume_local("p/other", quota).allowed);
        std::thread::sleep(Duration::from_millis(220));
        assert!(counters.consume_local("p/s", quota).allowed);
    }
}
