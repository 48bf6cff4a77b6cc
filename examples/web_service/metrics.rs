//! The service's counters and latency histogram, rendered as Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::app::{app_figures, App, AppError};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// What the handlers count.
#[derive(Default)]
pub struct Metrics {
    /// GETs served from SQLite because the cluster failed or missed the deadline.
    pub fallbacks: AtomicU64,
    /// Cached users older than this process's own write, replaced from SQLite.
    pub stale_repairs: AtomicU64,
    /// PUTs whose cache update failed or missed the deadline.
    pub cache_write_failures: AtomicU64,
    /// (route, status) -> requests, and per route the latency histogram.
    by_route: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Count one request of `route` that ended as `result` after `took`.
    pub fn request(
        &self,
        route: &'static str,
        result: &Result<axum::response::Response, AppError>,
        took: Duration,
    ) {
        let status = match result {
            Ok(r) => r.status().as_u16(),
            Err(AppError::Cluster(_)) => 503,
            Err(AppError::Database(_)) => 500,
        };
        *self
            .by_route
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route, status))
            .or_insert(0) += 1;
        let secs = took.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = latency.entry(route).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Everything as Prometheus text exposition format 0.0.4.
    pub fn render(&self, app: &App) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "webservice_fallbacks_total",
            "GETs served from SQLite because the cluster failed or missed the deadline",
            self.fallbacks.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "webservice_stale_repairs_total",
            "cached users older than this process's write, replaced from SQLite",
            self.stale_repairs.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "webservice_cache_write_failures_total",
            "PUTs whose cache update failed or missed the deadline",
            self.cache_write_failures.load(Ordering::Relaxed),
        );
        for (name, help, v) in app_figures(app) {
            counter(&mut out, name, help, v);
        }
        out.push_str("# HELP webservice_requests_total HTTP requests by route and status\n");
        out.push_str("# TYPE webservice_requests_total counter\n");
        for ((route, status), n) in self
            .by_route
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "webservice_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP webservice_request_seconds HTTP request latency by route\n");
        out.push_str("# TYPE webservice_request_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "webservice_request_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "webservice_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 webservice_request_seconds_sum{{route=\"{route}\"}} {}\n\
                 webservice_request_seconds_count{{route=\"{route}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let stats = app.client.stats();
        out.push_str("# HELP redcluster_node_requests_total requests sent to each node\n");
        out.push_str("# TYPE redcluster_node_requests_total counter\n");
        for (node, n) in &stats.requests_per_node {
            let _ = writeln!(out, "redcluster_node_requests_total{{node=\"{node}\"}} {n}");
        }
        out
    }
}
