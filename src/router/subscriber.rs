//! Subscriber links: the pinned sessions of pub/sub. The router opens each one (to a random
//! primary for channels and patterns, to the node serving a shard channel's slot by
//! `ReadFrom`), and every error reply or failure a link meets goes through the same
//! [`decide`] as any request, counted in `stats()`; the subscription only learns which of
//! its channels to subscribe again, and how long to wait first.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::decide::{decide, Action, Attempt};
use super::route::Route;
use super::Router;
use crate::connection::Connection;
pub(crate) use crate::connection::Sink;
use crate::error::Error;
use crate::resp::Value;

/// A dedicated connection carrying subscriptions. Dropping it closes the connection (the
/// server forgets its subscriptions).
#[derive(Debug)]
pub(crate) struct Subscriber {
    conn: Connection,
}

impl Subscriber {
    /// The node it is connected to.
    pub(crate) fn addr(&self) -> &str {
        self.conn.addr()
    }

    /// Send `command names...` (SUBSCRIBE, SUNSUBSCRIBE ...); its confirmations arrive at
    /// the link's sink.
    ///
    /// # Errors
    /// The connection's failure when it is already closed.
    pub(crate) fn send(&self, command: &str, names: &[Bytes]) -> Result<(), Error> {
        let mut args: Vec<&[u8]> = Vec::with_capacity(names.len() + 1);
        args.push(command.as_bytes());
        args.extend(names.iter().map(|n| &n[..]));
        self.conn
            .send_no_reply(|buf| crate::resp::encode_command(buf, args))
    }
}

/// The redirect state of a subscription between two confirmations: MOVED/ASK followed and
/// retries, against the client's caps.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Resubscribing {
    attempt: Attempt,
}

impl Resubscribing {
    /// The server confirmed a subscription: the episode is over.
    pub(crate) fn confirmed(&mut self) {
        self.attempt = Attempt::default();
    }

    /// Attempts so far in this episode (for the backoff).
    pub(crate) fn failures(&self) -> u32 {
        self.attempt.redirects + self.attempt.retries
    }
}

/// What a subscriber link's error reply or failure means for the subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resubscribe {
    /// Not a redirect or transient error: nothing to redo (the reply is only worth a log).
    Nothing,
    /// The shard channels of `slot` live elsewhere (the slot map is already patched):
    /// subscribe them again where the topology now says.
    Slot(u16),
    /// The link is unusable (broken, or the node cannot serve it now): drop it, wait the
    /// backoff, refresh, subscribe its channels again.
    Link,
}

impl Router {
    /// Where a subscriber link goes: a random primary for channels and patterns (`None`),
    /// or the node serving `slot` by the client's `ReadFrom` (SPUBLISH reaches a shard's
    /// replicas too). The address and whether the link must be `READONLY`; `None` while
    /// the topology knows no such node.
    pub(crate) fn subscriber_target(&self, slot: Option<u16>) -> Option<(String, bool)> {
        match slot {
            Some(slot) => {
                let route = Route {
                    slot: Some(slot),
                    ..Route::keyless(true)
                };
                let (entry, readonly) = self.inner.pick(route)?;
                Some((entry.addr().to_string(), readonly))
            }
            None => {
                let topo = self.inner.topology.load();
                let shards = topo.shards();
                if shards.is_empty() {
                    return None;
                }
                let shard = &shards[rand::random::<usize>() % shards.len()];
                Some((shard.primary.addr.clone(), false))
            }
        }
    }

    /// Open a subscriber link to `addr` whose frames (pushes, confirmations, error replies)
    /// and failure go to `sink`.
    ///
    /// # Errors
    /// Connect failures.
    pub(crate) async fn subscriber(
        &self,
        addr: &str,
        readonly: bool,
        sink: Sink,
    ) -> Result<Subscriber, Error> {
        let entry = self.inner.pool.entry(addr);
        let conn = self.inner.pool.dedicated(addr, readonly).await?;
        entry.count_request();
        conn.make_subscriber(sink);
        Ok(Subscriber { conn })
    }

    /// Decide what a link's error reply (or failure) at `from` means, through [`decide`]:
    /// a MOVED is counted and patches the slot map, an ASK is counted, a transient error or
    /// a broken link counts as a retry (and asks for a refresh when the cluster's shape may
    /// have changed).
    pub(crate) fn subscriber_outcome(
        &self,
        outcome: &Result<Value, Error>,
        from: &str,
        state: &mut Resubscribing,
    ) -> Resubscribe {
        let inner = &self.inner;
        match decide(outcome, &state.attempt, &inner.config.policy) {
            Action::Done => Resubscribe::Nothing,
            Action::Moved { slot, addr } => {
                state.attempt.redirects += 1;
                inner.note_moved(slot, &addr, from, state.attempt.redirects);
                Resubscribe::Slot(slot)
            }
            Action::Ask { slot, addr } => {
                // The channel is served where the map says until the migration ends.
                state.attempt.redirects += 1;
                inner.note_ask(&addr, from, state.attempt.redirects);
                Resubscribe::Slot(slot)
            }
            Action::RetryAfter { refresh, .. } => {
                inner.count_retry();
                state.attempt.retries += 1;
                if refresh {
                    inner.trigger_refresh();
                }
                Resubscribe::Link
            }
            Action::RefreshAndRetry | Action::Fail(_) => {
                // (Fail: the redirect cap; a subscription never gives up, it starts over
                // from a fresh topology.)
                inner.count_retry();
                state.attempt.retries += 1;
                inner.trigger_refresh();
                Resubscribe::Link
            }
        }
    }

    /// How long to wait before subscribing again after `failures` attempts: the client's
    /// retry backoff.
    pub(crate) fn resubscribe_backoff(&self, failures: u32) -> Duration {
        self.inner.config.policy.backoff(failures.min(8))
    }

    /// True once the client is being dropped (background tasks end).
    pub(crate) fn is_closing(&self) -> bool {
        self.inner.closing.load(Ordering::Relaxed)
    }
}
