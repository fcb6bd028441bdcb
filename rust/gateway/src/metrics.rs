//! Prometheus metrics, kept in fixed arrays of atomics (no locks, no
//! allocation per request) and rendered in the text exposition format.
//!
//! Label sets are closed (route class × status class, pool × error kind, rate
//! class), so the series count is fixed and clients cannot inflate it.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use crate::routes::{RateClass, RouteClass};

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const ROUTES: usize = RouteClass::ALL.len();
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Pools that upstream errors are counted for.
pub const POOLS: [&str; 3] = ["api", "portal", "search"];

/// What went wrong talking to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Connect,
    Timeout,
    Other,
}

const UPSTREAM_ERRORS: [&str; 3] = ["connect", "timeout", "other"];

/// All counters of one gateway process.
#[derive(Debug)]
pub struct Metrics {
    requests: [[AtomicU64; 5]; ROUTES],
    latency_buckets: [[AtomicU64; BUCKETS.len()]; ROUTES],
    latency_sum_micros: [AtomicU64; ROUTES],
    latency_count: [AtomicU64; ROUTES],
    upstream_errors: [[AtomicU64; 3]; POOLS.len()],
    limited: [AtomicU64; RateClass::ALL.len()],
    auth_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Default::default(),
            latency_buckets: Default::default(),
            latency_sum_micros: Default::default(),
            latency_count: Default::default(),
            upstream_errors: Default::default(),
            limited: Default::default(),
            auth_failures: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records one answered request (latency to the response head).
    pub fn observe(&self, route: RouteClass, status: u16, latency: Duration) {
        let r = route.index();
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[r][class].fetch_add(1, Relaxed);
        let secs = latency.as_secs_f64();
        // Buckets are stored non-cumulatively and summed when rendered.
        if let Some(bucket) = BUCKETS.iter().position(|bound| secs <= *bound) {
            self.latency_buckets[r][bucket].fetch_add(1, Relaxed);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros[r].fetch_add(micros, Relaxed);
        self.latency_count[r].fetch_add(1, Relaxed);
    }

    /// Counts a failed exchange with an upstream of `pool` (an index into [`POOLS`]).
    pub fn upstream_error(&self, pool: usize, kind: UpstreamError) {
        self.upstream_errors[pool.min(POOLS.len() - 1)][kind as usize].fetch_add(1, Relaxed);
    }

    /// Counts a request refused with 429.
    pub fn limited(&self, class: RateClass) {
        self.limited[class.index()].fetch_add(1, Relaxed);
    }

    /// Counts a request refused with 401.
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Relaxed);
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        out.push_str("# HELP lmsd_gateway_requests_total Requests answered, by route class and status class.\n");
        out.push_str("# TYPE lmsd_gateway_requests_total counter\n");
        for route in RouteClass::ALL {
            for (i, status) in STATUS_CLASSES.iter().enumerate() {
                let n = self.requests[route.index()][i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "lmsd_gateway_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    route.as_str()
                );
            }
        }
        out.push_str("# HELP lmsd_gateway_request_duration_seconds Time to the response head.\n");
        out.push_str("# TYPE lmsd_gateway_request_duration_seconds histogram\n");
        for route in RouteClass::ALL {
            let r = route.index();
            let label = route.as_str();
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += self.latency_buckets[r][i].load(Relaxed);
                let _ = writeln!(out, "lmsd_gateway_request_duration_seconds_bucket{{route=\"{label}\",le=\"{bound}\"}} {cumulative}");
            }
            let count = self.latency_count[r].load(Relaxed);
            let sum = self.latency_sum_micros[r].load(Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "lmsd_gateway_request_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(
                out,
                "lmsd_gateway_request_duration_seconds_sum{{route=\"{label}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "lmsd_gateway_request_duration_seconds_count{{route=\"{label}\"}} {count}"
            );
        }
        out.push_str("# HELP lmsd_gateway_upstream_errors_total Failed upstream exchanges, by pool and kind.\n");
        out.push_str("# TYPE lmsd_gateway_upstream_errors_total counter\n");
        for (p, pool) in POOLS.iter().enumerate() {
            for (k, kind) in UPSTREAM_ERRORS.iter().enumerate() {
                let n = self.upstream_errors[p][k].load(Relaxed);
                let _ = writeln!(
                    out,
                    "lmsd_gateway_upstream_errors_total{{pool=\"{pool}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP lmsd_gateway_rate_limited_total Requests refused with 429, by rate class.\n",
        );
        out.push_str("# TYPE lmsd_gateway_rate_limited_total counter\n");
        for class in RateClass::ALL {
            let n = self.limited[class.index()].load(Relaxed);
            let _ = writeln!(
                out,
                "lmsd_gateway_rate_limited_total{{class=\"{}\"}} {n}",
                class.as_str()
            );
        }
        out.push_str("# HELP lmsd_gateway_auth_failures_total Requests refused with 401.\n");
        out.push_str("# TYPE lmsd_gateway_auth_failures_total counter\n");
        let _ = writeln!(
            out,
            "lmsd_gateway_auth_failures_total {}",
            self.auth_failures.load(Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe(RouteClass::Api, 200, Duration::from_micros(300));
        m.observe(RouteClass::Api, 503, Duration::from_millis(3));
        m.upstream_error(0, UpstreamError::Connect);
        m.limited(RateClass::Login);
        let text = m.render();
        assert!(text.contains("lmsd_gateway_requests_total{route=\"api\",status=\"2xx\"} 1\n"));
        assert!(text.contains("lmsd_gateway_requests_total{route=\"api\",status=\"5xx\"} 1\n"));
        assert!(text.contains(
            "lmsd_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "lmsd_gateway_request_duration_seconds_bucket{route=\"api\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains("lmsd_gateway_request_duration_seconds_count{route=\"api\"} 2\n"));
        assert!(
            text.contains("lmsd_gateway_upstream_errors_total{pool=\"api\",kind=\"connect\"} 1\n")
        );
        assert!(text.contains("lmsd_gateway_rate_limited_total{class=\"login\"} 1\n"));
    }
}
