//! Request counts and latencies in Prometheus' text format, served at `/metrics` on the admin
//! port: API Management's analytics role.
//!
//! Counters are labelled by status and by policy outcome (which policy answered, or
//! `forwarded` when the function did); both label sets are small and fixed by the code, so an
//! unauthenticated client cannot grow this registry. Written by hand rather than with a metrics
//! crate: two metric families do not justify another dependency tree to compile.

use crate::error::GatewayError;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Which policy answered a call; set on the response by whoever made the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Outcome(pub &'static str);

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Per bucket, calls at or under its bound (not yet cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(u16, Outcome), u64>,
    latency: BTreeMap<Outcome, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    pub fn observe(&self, status: u16, outcome: Outcome, seconds: f64) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        *registry.requests.entry((status, outcome)).or_insert(0) += 1;
        let histogram = registry.latency.entry(outcome).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            histogram.buckets[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// The exposition text (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::from(concat!(
            "# HELP gateway_requests_total Requests answered, by status and policy outcome.\n",
            "# TYPE gateway_requests_total counter\n",
        ));
        for ((status, outcome), count) in &registry.requests {
            let _ = writeln!(
                out,
                "gateway_requests_total{{status=\"{status}\",outcome=\"{}\"}} {count}",
                outcome.0
            );
        }
        out.push_str(concat!(
            "# HELP gateway_request_duration_seconds Time from request to response, by policy outcome.\n",
            "# TYPE gateway_request_duration_seconds histogram\n",
        ));
        for (outcome, histogram) in &registry.latency {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "gateway_request_duration_seconds_bucket{{outcome=\"{}\",le=\"{bound}\"}} {cumulative}",
                    outcome.0
                );
            }
            let name = outcome.0;
            let _ = writeln!(
                out,
                "gateway_request_duration_seconds_bucket{{outcome=\"{name}\",le=\"+Inf\"}} {}\ngateway_request_duration_seconds_sum{{outcome=\"{name}\"}} {}\ngateway_request_duration_seconds_count{{outcome=\"{name}\"}} {}",
                histogram.count, histogram.sum_seconds, histogram.count
            );
        }
        out
    }
}

/// The outcome when no policy named one: the gateway's own routes, else the function's answer.
fn default_outcome(method: &Method, path: &str, preflight: bool) -> Outcome {
    if preflight && method == Method::OPTIONS {
        Outcome("cors_preflight")
    } else if path == "/healthz" {
        Outcome("health")
    } else {
        Outcome("forwarded")
    }
}

/// One call being timed: outermost but for the request id, so it times and counts every answer.
pub struct Timing {
    started: Instant,
    fallback: Outcome,
}

impl Timing {
    pub fn start(request: &Request) -> Self {
        let preflight = request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        Self {
            started: Instant::now(),
            fallback: default_outcome(request.method(), request.uri().path(), preflight),
        }
    }

    /// Counts the answer, under the outcome its maker named (or the default one).
    pub fn finish(self, metrics: &Metrics, response: &Response) {
        let outcome = response
            .extensions()
            .get::<Outcome>()
            .copied()
            .unwrap_or(self.fallback);
        metrics.observe(
            response.status().as_u16(),
            outcome,
            self.started.elapsed().as_secs_f64(),
        );
    }
}

impl GatewayError {
    /// The `outcome` label of this refusal.
    pub fn outcome(&self) -> Outcome {
        Outcome(match self {
            Self::Unauthorized => "jwt_refused",
            Self::RateLimited { .. } => "rate_limited",
            Self::SubscriptionKeyMissing => "subscription_key_missing",
            Self::SubscriptionKeyInvalid => "subscription_key_invalid",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::Forbidden => "forbidden",
            Self::TooManyConcurrent => "concurrency_limited",
            Self::BackendUnavailable => "backend_unavailable",
            Self::BackendTimeout => "backend_timeout",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal_error",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_count_everything() {
        let metrics = Metrics::default();
        metrics.observe(200, Outcome("forwarded"), 0.0007);
        metrics.observe(200, Outcome("forwarded"), 0.02);
        metrics.observe(200, Outcome("forwarded"), 42.0);
        metrics.observe(401, Outcome("jwt_refused"), 0.0001);
        let text = metrics.render();
        for line in [
            "gateway_requests_total{status=\"200\",outcome=\"forwarded\"} 3",
            "gateway_requests_total{status=\"401\",outcome=\"jwt_refused\"} 1",
            "gateway_request_duration_seconds_bucket{outcome=\"forwarded\",le=\"0.0005\"} 0",
            "gateway_request_duration_seconds_bucket{outcome=\"forwarded\",le=\"0.001\"} 1",
            "gateway_request_duration_seconds_bucket{outcome=\"forwarded\",le=\"0.025\"} 2",
            "gateway_request_duration_seconds_bucket{outcome=\"forwarded\",le=\"10\"} 2",
            "gateway_request_duration_seconds_bucket{outcome=\"forwarded\",le=\"+Inf\"} 3",
            "gateway_request_duration_seconds_count{outcome=\"forwarded\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
