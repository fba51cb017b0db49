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
/// same order. Returns per call the number of decisions, then (allowed, remaining, retry ms) for
/// each.
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
local function calls_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 1
end
local state = {}
local function open(key, period)
  if state[key] then return state[key] end
  local s = {period = period, added = 0, changed = false}
  local score = redis.call('ZSCORE', key, '#')
  local expired = redis.call('ZRANGEBYSCORE', key, 0, now - period)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', key, 0, now - period)
    s.changed = true
  end
  if score then
    s.count = -tonumber(score) - 1
    for _, m in ipairs(expired) do s.count = s.count - calls_of(m) end
  else
    s.count = 0
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, 0, '+inf')) do s.count = s.count + calls_of(m) end
    s.changed = true
  end
  state[key] = s
  return s
end
local out = {}
local k, a = 1, 3
for c = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  local decided = {}
  for i = 1, n do
    local key = KEYS[k + i - 1]
    local limit = tonumber(ARGV[a + 2 * i - 1])
    local period = tonumber(ARGV[a + 2 * i])
    local s = open(key, period)
    if s.count < limit then
      s.count = s.count + 1
      s.added = s.added + 1
      table.insert(decided, 1); table.insert(decided, limit - s.count); table.insert(decided, 0)
    else
      local retry = period
      local oldest = redis.call('ZRANGEBYSCORE', key, 0, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if oldest[2] then retry = tonumber(oldest[2]) + period - now end
      table.insert(decided, 0); table.insert(decided, 0); table.insert(decided, retry)
      break
    end
  end
  table.insert(out, #decided / 3)
  for _, v in ipairs(decided) do table.insert(out, v) end
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
        let tag = counters.member();
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

/// Each call's decisions from the script's flat reply. Every policy of a call decided, or its
/// checks stopped at a refusal: a reply that skipped a policy after an acceptance would let a
/// call past it unchecked, so anything else fails the whole batch.
fn split(reply: &[i64], calls: &[Call]) -> Result<Vec<Vec<Decision>>, RedisUnavailable> {
    let mut rest = reply;
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        let (&n, tail) = rest
            .split_first()
            .ok_or_else(RedisUnavailable::unexpected_reply)?;
        let n = usize::try_from(n).map_err(|_| RedisUnavailable::unexpected_reply())?;
        if n == 0 || n > call.policies.len() || tail.len() < n * 3 {
            return Err(RedisUnavailable::unexpected_reply());
        }
        let (values, tail) = tail.split_at(n * 3);
        let decisions: Vec<Decision> = values
            .chunks_exact(3)
            .map(|d| Decision {
                allowed: d[0] == 1,
                remaining: u32::try_from(d[1]).unwrap_or(0),
                retry_after: std::time::Duration::from_millis(u64::try_from(d[2]).unwrap_or(0)),
            })
            .collect();
        let complete =
            decisions.len() == call.policies.len() || decisions.last().is_some_and(|d| !d.allowed);
        if !complete {
            return Err(RedisUnavailable::unexpected_reply());
        }
        out.push(decisions);
        rest = tail;
    }
    if rest.is_empty() {
        Ok(out)
    } else {
        Err(RedisUnavailable::unexpected_reply())
    }
}
