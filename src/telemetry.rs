//! Traces and metrics of the request path, in one place so the router only calls hooks.
//!
//! **Traces** (`tracing`, level debug): one span per request named `redis` with the
//! OpenTelemetry database-client attributes: `db.system.name = "redis"`,
//! `db.operation.name` (the command, from the command table), `server.address` and
//! `server.port` (the node that answered last), `db.redis.slot`, and
//! `db.redis.redirects` (MOVED/ASK followed). Keys and argument values are never recorded.
//!
//! **Metrics** (feature `metrics`, through the `metrics` facade; install any recorder):
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `redcluster_requests_total` | counter | `command` |
//! | `redcluster_request_duration_seconds` | histogram | `command` |
//! | `redcluster_errors_total` | counter | `kind` (`timeout`, `io`, `server` ...) |
//! | `redcluster_redirects_total` | counter | `type` (`moved`, `ask`), `node` (the sender) |
//! | `redcluster_retries_total` | counter | |
//! | `redcluster_reconnects_total` | counter | `node` |
//! | `redcluster_topology_refreshes_total` | counter | |
//! | `redcluster_cache_hits_total`, `redcluster_cache_misses_total` | counter | `cache` |
//!
//! Command labels come from the command table (an unknown name is `unknown`), so a
//! caller's typo cannot grow the label set without bound.

use std::time::Instant;

use tracing::field::Empty;

use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::types::Args;

/// One request being timed.
pub(crate) struct Op {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    command: &'static str,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    started: Instant,
}

/// The command's name as the command table spells it, or `unknown`.
fn command_of(args: &Args) -> &'static str {
    args.get(0)
        .and_then(crate::command::lookup)
        .map_or("unknown", |spec| spec.name)
}

/// Start timing `args` and open its span.
pub(crate) fn start(args: &Args) -> (Op, tracing::Span) {
    open(command_of(args), None)
}

/// Start timing a batch — a pipeline (`PIPELINE`) or a transaction (`MULTI`) — of `size`
/// commands and open its span: one span for the whole batch, as OpenTelemetry's database
/// conventions ask (`db.operation.batch.size`), so a 1,000-command pipeline costs one span,
/// not a thousand.
pub(crate) fn start_batch(name: &'static str, size: usize) -> (Op, tracing::Span) {
    open(name, Some(size))
}

/// The span of one request or batch, with every attribute it may carry declared up front
/// (tracing only records declared fields).
fn open(command: &'static str, batch: Option<usize>) -> (Op, tracing::Span) {
    let span = tracing::debug_span!(
        "redis",
        "db.system.name" = "redis",
        "db.operation.name" = %command.to_ascii_uppercase(),
        "db.operation.batch.size" = Empty,
        "server.address" = Empty,
        "server.port" = Empty,
        "db.redis.slot" = Empty,
        "db.redis.redirects" = Empty,
        "error.type" = Empty,
    );
    if let Some(size) = batch {
        span.record("db.operation.batch.size", size);
    }
    (
        Op {
            command,
            started: Instant::now(),
        },
        span,
    )
}

/// Count and time the finished request; an error's kind goes on the span too.
pub(crate) fn finish(op: Op, span: &tracing::Span, result: &Result<Value, Error>) {
    finish_with(op, span, result.as_ref().err());
}

/// Count and time a finished request or batch that failed with `error` (for a batch, its
/// first failed command's), or succeeded with `None`.
pub(crate) fn finish_with(op: Op, span: &tracing::Span, error: Option<&Error>) {
    if let Some(e) = error {
        span.record("error.type", kind_label(e.kind()));
    }
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("redcluster_requests_total", "command" => op.command).increment(1);
        metrics::histogram!("redcluster_request_duration_seconds", "command" => op.command)
            .record(op.started.elapsed().as_secs_f64());
        if let Some(e) = error {
            metrics::counter!("redcluster_errors_total", "kind" => kind_label(e.kind()))
                .increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = op;
}

/// The slot the request routes by (on the current span).
pub(crate) fn slot(slot: Option<u16>) {
    if let Some(s) = slot {
        tracing::Span::current().record("db.redis.slot", s);
    }
}

/// The node an attempt goes to (on the current span).
pub(crate) fn node(addr: &str) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            span.record("server.address", host.trim_matches(['[', ']']));
            if let Ok(p) = port.parse::<u16>() {
                span.record("server.port", p);
            }
        }
        None => {
            span.record("server.address", addr);
        }
    }
}

/// A MOVED (`ask` false) or ASK redirect sent by `from`; `redirects` so far.
pub(crate) fn redirect(ask: bool, from: &str, redirects: u32) {
    tracing::Span::current().record("db.redis.redirects", redirects);
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "redcluster_redirects_total",
        "type" => if ask { "ask" } else { "moved" },
        "node" => from.to_string()
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (ask, from);
}

/// A retry after a transient error.
pub(crate) fn retry() {
    #[cfg(feature = "metrics")]
    metrics::counter!("redcluster_retries_total").increment(1);
}

/// A connection to `node` re-opened after one broke.
pub(crate) fn reconnect(node: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("redcluster_reconnects_total", "node" => node.to_string()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = node;
}

/// A topology refresh installed.
pub(crate) fn refresh() {
    #[cfg(feature = "metrics")]
    metrics::counter!("redcluster_topology_refreshes_total").increment(1);
}

/// A cache lookup of cache `name`.
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
pub(crate) fn cache_lookup(name: &str, hit: bool) {
    #[cfg(feature = "metrics")]
    {
        let name = name.to_string();
        if hit {
            metrics::counter!("redcluster_cache_hits_total", "cache" => name).increment(1);
        } else {
            metrics::counter!("redcluster_cache_misses_total", "cache" => name).increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (name, hit);
}

/// A short stable label for an error kind.
fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Io => "io",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Server => "server",
        ErrorKind::CrossSlot => "cross_slot",
        ErrorKind::TooManyRedirects => "too_many_redirects",
        ErrorKind::ClusterDown => "cluster_down",
        ErrorKind::Config => "config",
        ErrorKind::Auth => "auth",
        ErrorKind::Conversion => "conversion",
        ErrorKind::Decode => "decode",
        ErrorKind::Load => "load",
        ErrorKind::MaybeApplied => "maybe_applied",
        ErrorKind::Closed => "closed",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}
