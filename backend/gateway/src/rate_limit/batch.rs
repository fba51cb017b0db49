//! The shared counters' checks, many calls per script. Each call's checks were one `EVALSHA`
//! round trip of their own, and Redis spent more CPU per call than the gateway (the script's
//! set-up, its reply and the socket's reads and writes, for each call). Now a call joins a queue;
//! one task sends every call waiting (up to [`MAX_CALLS`]) as one script, and while that script
//! runs the next calls gather behind it: under load a round trip carries many calls, at rest a
//! call goes at once, alone.
//!
//! The limits stay exact: the script checks the calls one after the other, in queue order, with
//! one clock reading, as the same calls one script each would have been checked within the same
//! millisecond. Within a script each key is read and written once, whatever the number of calls
//! it counts ([`BATCH_LUA`] says how).
//!
//! Bounded: at most [`QUEUE`] calls wait (a full queue sends the call to the local counters, as
//! an unreachable Redis does), and a failed script pauses Redis for everyone (see the parent
//! module), so no call waits longer than the script in flight and its own.

use std::sync::Weak;

use tokio::sync::{mpsc, oneshot};

use super::{Decision, RateLimit, RedisCounters, RedisUnavailable};

/// Calls in one script: enough to carry a saturated gateway's load in a few round trips, few
/// enough that Redis, which runs one script at a time, is never held for long.
pub const MAX_CALLS: usize = 128;
/// Calls waiting at most.
pub const QUEUE: usize = 4096;

/// One call's checks: the policies in order (Redis key, limit), up to the first refusal.
pub struct Call {
    pub policies: Vec<(String, RateLimit)>,
    /// Its decisions, or `None`: use the local counters (the failure is reported here).
    pub reply: oneshot::Sender<Option<Vec<Decision>>>,
}

/// ARGV: the number of calls, this script's member tag (unique across instances), then per call
/// its number of policies and a limit and period (ms) per policy; KEYS: every call's keys in the
/// same order. Returns the decisions, call after call, policy after policy up to a call's first
/// refusal: the calls left (`>= 0`) for an acceptance, `-(retry ms) - 1` for a refusal. (Three
/// values per decision and a count per call made the script's bookkeeping and reply cost more
/// than its Redis commands.)
///
/// A key is a sorted set of the accepted calls by time, one member per script that added any
/// (`{tag}:{calls}`, scored with the script's clock, in ms), and `#` holding the calls in the
/// window (scored `-(calls + 1)`, below every time). So a script touches a key a few times
/// however many calls it counts: one member per call made Redis insert and later remove a member
/// for every call of every policy. A key written by the earlier one-member-per-call script
/// (no `#`) is counted once from its members.
const BATCH_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tag = ARGV[2]
local state = {}
local out, o = {}, 0
local k, a = 1, 3
for c = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  for i = 1, n do
    local key = KEYS[k + i - 1]
    local limit = tonumber(ARGV[a + 2 * i - 1])
    local s = state[key]
    if not s then
      local period = tonumber(ARGV[a + 2 * i])
      s = {period = period, added = 0, changed = false}
      local score = redis.call('ZSCORE', key, '#')
      local expired = redis.call('ZRANGEBYSCORE', key, 0, now - period)
      if #expired > 0 then
        redis.call('ZREMRANGEBYSCORE', key, 0, now - period)
        s.changed = true
      end
      local count = 0
      if score then
        count = -tonumber(score) - 1
        for _, m in ipairs(expired) do count = count - (tonumber(string.match(m, ':(%d+)$')) or 1) end
      else
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, 0, '+inf')) do
          count = count + (tonumber(string.match(m, ':(%d+)$')) or 1)
        end
        s.changed = true
      end
      s.count = count
      state[key] = s
    end
    o = o + 1
    if s.count < limit then
      s.count = s.count + 1
      s.added = s.added + 1
      out[o] = limit - s.count
    else
      local retry = s.period
      local oldest = redis.call('ZRANGEBYSCORE', key, 0, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if oldest[2] then retry = tonumber(oldest[2]) + s.period - now end
      out[o] = -retry - 1
      break
    end
  end
  k = k + n
  a = a + 2 * n + 1
end
for key, s in pairs(state) do
  if s.added > 0 then
    redis.call('ZADD', key, now, tag .. ':' .. s.added, -(s.count + 1), '#')
    redis.call('PEXPIRE', key, s.period)
  elseif s.changed then
    redis.call('ZADD', key, -(s.count + 1), '#')
  end
end
return out
";

/// Runs until the counters are dropped (their queue's sender with them).
pub async fn run(mut queue: mpsc::Receiver<Call>, counters: Weak<RedisCounters>) {
    let script = redis::Script::new(BATCH_LUA);
    let mut calls = Vec::with_capacity(MAX_CALLS);
    while queue.recv_many(&mut calls, MAX_CALLS).await > 0 {
        let Some(counters) = counters.upgrade() else {
            return;
        };
        let tag = counters.script_tag();
        let reply = counters.invoke(&invocation(&script, &tag, &calls)).await;
        let decisions = match reply.and_then(|reply| split(&reply, &calls)) {
            Ok(decisions) => decisions.into_iter().map(Some).collect(),
            Err(error) => {
                // Paused or not connected yet: already reported, by the failure or the connecting task.
                if !matches!(
                    error,
                    RedisUnavailable::Paused | RedisUnavailable::NotConnected
                ) {
                    tracing::warn!(%error, calls = calls.len(), "rate-limit counters: Redis unavailable, using local counters");
                }
                vec![None; calls.len()]
            }
        };
        for (call, decisions) in calls.drain(..).zip(decisions) {
            // A caller that gave up is no longer listening: nothing to do.
            let _ = call.reply.send(decisions);
        }
    }
}

fn invocation<'a>(
    script: &'a redis::Script,
    tag: &str,
    calls: &[Call],
) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    invocation.arg(calls.len()).arg(tag);
    for call in calls {
        invocation.arg(call.policies.len());
        for (key, limit) in &call.policies {
            invocation
                .key(key)
                .arg(limit.calls)
                .arg(limit.period.as_millis() as u64);
        }
    }
    invocation
}

/// Each call's decisions from the script's flat reply: every policy of a call decided, or its
/// checks stopped at a refusal; a reply with values missing or left over fails the whole batch.
fn split(reply: &[i64], calls: &[Call]) -> Result<Vec<Vec<Decision>>, RedisUnavailable> {
    let mut values = reply.iter();
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        let mut decisions = Vec::with_capacity(call.policies.len());
        for _ in &call.policies {
            let &value = values
                .next()
                .ok_or_else(RedisUnavailable::unexpected_reply)?;
            let decision = decision(value);
            decisions.push(decision);
            if !decision.allowed {
                break;
            }
        }
        out.push(decisions);
    }
    match values.next() {
        None => Ok(out),
        Some(_) => Err(RedisUnavailable::unexpected_reply()),
    }
}

fn decision(value: i64) -> Decision {
    match u32::try_from(value) {
        Ok(remaining) => Decision {
            allowed: true,
            remaining,
            retry_after: std::time::Duration::ZERO,
        },
        // More calls left than a u32 holds cannot be: the limit is a u32.
        Err(_) if value >= 0 => Decision {
            allowed: true,
            remaining: u32::MAX,
            retry_after: std::time::Duration::ZERO,
        },
        Err(_) => Decision {
            allowed: false,
            remaining: 0,
            retry_after: std::time::Duration::from_millis(value.unsigned_abs() - 1),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn call(policies: usize) -> Call {
        let (reply, _) = oneshot::channel();
        Call {
            policies: vec![("k".to_owned(), RateLimit::new(5, 60)); policies],
            reply,
        }
    }

    #[test]
    fn a_reply_is_split_per_call() {
        let calls = [call(2), call(2), call(1)];
        // accepted twice; accepted then refused (1.5 s); refused at once (0.9 s)
        let reply = [4, 3, 2, -1501, -901];
        let decisions = split(&reply, &calls).unwrap();
        assert_eq!(decisions.len(), 3);
        assert!(decisions[0].iter().all(|d| d.allowed));
        assert_eq!(decisions[0][1].remaining, 3);
        assert!(decisions[1][0].allowed && !decisions[1][1].allowed);
        assert_eq!(decisions[1][1].retry_after_seconds(), 2);
        assert!(!decisions[2][0].allowed);
        assert_eq!(decisions[2][0].retry_after.as_millis(), 900);
    }

    #[test]
    fn a_reply_with_values_missing_or_left_over_fails_every_call() {
        let calls = [call(2), call(1)];
        for bad in [&[4, 3][..], &[][..], &[4, 3, 2, 1][..], &[-5][..]] {
            assert!(split(bad, &calls).is_err(), "{bad:?}");
        }
        // A refusal ends a call's decisions: the next value is the next call's.
        let decisions = split(&[-5, 1], &calls).unwrap();
        assert_eq!(decisions[0].len(), 1);
        assert!(decisions[1][0].allowed);
    }
}
