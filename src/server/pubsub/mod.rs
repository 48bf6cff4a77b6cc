//! Pub/sub: classic channels and patterns (PUBLISH reaches every node of the cluster over the
//! bus) and sharded channels (SPUBLISH reaches the nodes that serve the channel's slot).
//!
//! Each node keeps a [`PubSub`] registry of who listens to what. A connection that subscribes
//! (or blocks, see `server::blocking`) gets a [`Mailbox`]: other connections push frames into
//! it and the connection's own loop writes them out between replies, so delivery never waits
//! on a slow socket. What a connection has queued and not yet written is capped
//! ([`OUTPUT_LIMIT`], Redis' `client-output-buffer-limit pubsub` hard limit); beyond it the
//! connection is closed instead of growing memory.
//!
//! Lock order: a node's state lock may be held while taking any node's registry lock, never
//! the other way round; the registry lock is a leaf.

pub(crate) mod commands;
mod conn_state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use crate::resp::Value;
use crate::server::limits::{log_overflow, ClientClass, ClientLimits, OutputGuard};

pub(crate) use conn_state::{apply, drain, write_out, ConnPubSub};

/// Hard cap on the bytes of frames a connection has queued and not yet written. Redis'
/// default `client-output-buffer-limit pubsub 32mb 8mb 60` disconnects at 32 MiB.
pub(crate) const OUTPUT_LIMIT: usize = 32 * 1024 * 1024;

/// Something another task hands to a connection.
#[derive(Debug)]
pub(crate) enum Event {
    /// A pub/sub frame to write, with the bytes it counts against [`OUTPUT_LIMIT`].
    Push(Value, usize),
    /// The reply of this connection's blocking command, served or unblocked by another
    /// connection (or by the node).
    Reply(Value),
    /// A tracking invalidation (worded by the receiver for its protocol), with the bytes it
    /// counts against the output limit like a `Push`.
    Tracking(crate::server::tracking::Delivery, usize),
}

/// What a mailbox's sender and receiver share.
#[derive(Debug, Default)]
struct MailState {
    /// Bytes of `Push` events sent and not yet taken by the connection.
    pending: AtomicUsize,
    /// The node's limits, once the connection subscribed (`client-output-buffer-limit
    /// pubsub`; [`OUTPUT_LIMIT`] until then).
    limits: std::sync::OnceLock<Arc<ClientLimits>>,
    /// Since when `pending` has been above the soft limit.
    guard: Mutex<OutputGuard>,
    /// Set once `pending` passed the limit: the connection must close.
    overflow: AtomicBool,
    /// Signalled when `overflow` is set.
    notify: Notify,
}

/// The sending side of a connection's mailbox.
#[derive(Clone, Debug)]
pub(crate) struct Mailbox {
    tx: UnboundedSender<Event>,
    state: Arc<MailState>,
}

impl Mailbox {
    /// Queue a pub/sub frame of about `size` bytes. Past [`OUTPUT_LIMIT`] the frame is
    /// dropped and the connection told to close.
    pub(crate) fn push(&self, frame: Value, size: usize) {
        self.send_counted(Event::Push(frame, size), size);
    }

    /// Queue a tracking invalidation of about `size` bytes, under the same limit as `push`.
    pub(crate) fn track(&self, d: crate::server::tracking::Delivery, size: usize) {
        self.send_counted(Event::Tracking(d, size), size);
    }

    fn send_counted(&self, event: Event, size: usize) {
        let st = &self.state;
        if st.overflow.load(Ordering::Relaxed) {
            return;
        }
        let pending = st.pending.fetch_add(size, Ordering::Relaxed) + size;
        let over = match st.limits.get() {
            Some(l) => {
                let limit = l.output(ClientClass::Pubsub);
                let mut guard = st.guard.lock().unwrap_or_else(|e| e.into_inner());
                guard.over(limit, pending as u64)
            }
            None => pending > OUTPUT_LIMIT,
        };
        if over {
            log_overflow("(subscriber)", pending as u64, ClientClass::Pubsub);
            st.overflow.store(true, Ordering::Relaxed);
            st.notify.notify_one();
            return;
        }
        let _ = self.tx.send(event);
    }

    /// Hand the connection the reply of its blocking command.
    pub(crate) fn reply(&self, reply: Value) {
        let _ = self.tx.send(Event::Reply(reply));
    }
}

/// The three kinds of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SUBSCRIBE: exact channel names, cluster-wide.
    Channel,
    /// PSUBSCRIBE: glob patterns over channel names, cluster-wide.
    Pattern,
    /// SSUBSCRIBE: channels of a slot, on the nodes serving it.
    Shard,
}

impl Kind {
    /// The first element of a subscribe confirmation.
    pub(crate) fn subscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    /// The first element of an unsubscribe confirmation.
    pub(crate) fn unsubscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

/// Subscribers of one channel or pattern, in subscription order, by client id.
type Subscribers = IndexMap<u64, Mailbox>;

#[derive(Debug, Default)]
struct Tables {
    channels: HashMap<Bytes, Subscribers>,
    patterns: IndexMap<Bytes, Subscribers>,
    shard: HashMap<Bytes, Subscribers>,
}

impl Tables {
    fn of(&mut self, kind: Kind) -> TableMut<'_> {
        match kind {
            Kind::Channel => TableMut::Hash(&mut self.channels),
            Kind::Pattern => TableMut::Index(&mut self.patterns),
            Kind::Shard => TableMut::Hash(&mut self.shard),
        }
    }
}

enum TableMut<'a> {
    Hash(&'a mut HashMap<Bytes, Subscribers>),
    Index(&'a mut IndexMap<Bytes, Subscribers>),
}

/// A node's subscriptions (the registry PUBLISH looks up).
#[derive(Debug, Default)]
pub(crate) struct PubSub {
    tables: Mutex<Tables>,
    /// The node's `client-output-buffer-limit` (set at start).
    limits: std::sync::OnceLock<Arc<ClientLimits>>,
}

impl PubSub {
    /// Apply the node's `client-output-buffer-limit pubsub` to its subscribers.
    pub(crate) fn set_limits(&self, limits: Arc<ClientLimits>) {
        let _ = self.limits.set(limits);
    }

    fn limits(&self) -> Option<Arc<ClientLimits>> {
        self.limits.get().cloned()
    }
}

/// A frame `[word, parts...]`, a Push so RESP3 peers see it out of band (RESP2 peers get an
/// array).
pub(crate) fn frame(word: &'static [u8], parts: &[&Bytes]) -> Value {
    let mut items = Vec::with_capacity(parts.len() + 1);
    items.push(Value::BulkString(Bytes::from_static(word)));
    items.extend(parts.iter().map(|b| Value::BulkString((*b).clone())));
    Value::Push(items)
}

impl PubSub {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register `mail` (client `id`) for `name`.
    pub(crate) fn add(&self, kind: Kind, name: &Bytes, id: u64, mail: &Mailbox) {
        let mut t = self.lock();
        match t.of(kind) {
            TableMut::Hash(m) => m.entry(name.clone()).or_default(),
            TableMut::Index(m) => m.entry(name.clone()).or_default(),
        }
        .insert(id, mail.clone());
    }

    /// Forget client `id`'s subscription to `name`.
    pub(crate) fn remove(&self, kind: Kind, name: &Bytes, id: u64) {
        let mut t = self.lock();
        match t.of(kind) {
            TableMut::Hash(m) => {
                if let Some(subs) = m.get_mut(name) {
                    subs.shift_remove(&id);
                    if subs.is_empty() {
                        m.remove(name);
                    }
                }
            }
            TableMut::Index(m) => {
                if let Some(subs) = m.get_mut(name) {
                    subs.shift_remove(&id);
                    if subs.is_empty() {
                        m.shift_remove(name);
                    }
                }
            }
        }
    }

    /// Deliver a PUBLISH to this node's subscribers: `message` to the channel's, then
    /// `pmessage` to every matching pattern's. The number of receivers.
    pub(crate) fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let t = self.lock();
        let mut n = 0;
        if let Some(subs) = t.channels.get(channel) {
            let size = channel.len() + message.len() + 32;
            for mail in subs.values() {
                mail.push(frame(b"message", &[channel, message]), size);
                n += 1;
            }
        }
        for (pattern, subs) in &t.patterns {
            if !crate::server::db::glob_match(pattern, channel) {
                continue;
            }
            let size = pattern.len() + channel.len() + message.len() + 48;
            for mail in subs.values() {
                mail.push(frame(b"pmessage", &[pattern, channel, message]), size);
                n += 1;
            }
        }
        n
    }

    /// Deliver an SPUBLISH to this node's subscribers of the shard channel.
    pub(crate) fn spublish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let t = self.lock();
        let Some(subs) = t.shard.get(channel) else {
            return 0;
        };
        let size = channel.len() + message.len() + 32;
        for mail in subs.values() {
            mail.push(frame(b"smessage", &[channel, message]), size);
        }
        subs.len()
    }

    /// Subscribers of each name (PUBSUB NUMSUB / SHARDNUMSUB).
    pub(crate) fn numsub(&self, kind: Kind, names: &[Bytes]) -> Vec<usize> {
        let t = self.lock();
        let table = if kind == Kind::Shard {
            &t.shard
        } else {
            &t.channels
        };
        names
            .iter()
            .map(|n| table.get(n).map_or(0, |s| s.len()))
            .collect()
    }

    /// Active channels matching `pattern` (PUBSUB CHANNELS / SHARDCHANNELS).
    pub(crate) fn active(&self, kind: Kind, pattern: Option<&Bytes>) -> Vec<Bytes> {
        let t = self.lock();
        let table = if kind == Kind::Shard {
            &t.shard
        } else {
            &t.channels
        };
        table
            .keys()
            .filter(|c| pattern.map_or(true, |p| crate::server::db::glob_match(p, c)))
            .cloned()
            .collect()
    }

    /// Every subscription of the clients `ids` (ACL changes check them against the user's
    /// new channel permissions).
    pub(crate) fn subscriptions_of(&self, ids: &[u64]) -> Vec<(u64, Kind, Bytes)> {
        let t = self.lock();
        let mut out = Vec::new();
        let mut collect = |kind: Kind, name: &Bytes, subs: &Subscribers| {
            for id in ids.iter().filter(|id| subs.contains_key(*id)) {
                out.push((*id, kind, name.clone()));
            }
        };
        for (name, subs) in &t.channels {
            collect(Kind::Channel, name, subs);
        }
        for (name, subs) in &t.patterns {
            collect(Kind::Pattern, name, subs);
        }
        for (name, subs) in &t.shard {
            collect(Kind::Shard, name, subs);
        }
        out
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub(crate) fn numpat(&self) -> usize {
        self.lock().patterns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mailbox_past_the_limit_drops_frames_and_signals_overflow() {
        let mut conn = ConnPubSub::default();
        let mail = conn.mailbox();
        let frame = frame(b"message", &[&Bytes::from_static(b"c")]);
        mail.push(frame.clone(), OUTPUT_LIMIT / 2);
        mail.push(frame.clone(), OUTPUT_LIMIT / 2);
        assert!(!mail.state.overflow.load(Ordering::Relaxed));
        // One byte more than the limit allows.
        mail.push(frame.clone(), 1);
        assert!(mail.state.overflow.load(Ordering::Relaxed));
        assert!(matches!(conn.next().await, conn_state::Wake::Overflow));
    }

    #[test]
    fn registry_counts_and_forgets_subscribers() {
        let ps = Arc::new(PubSub::default());
        let ch = Bytes::from_static(b"news");
        let pat = Bytes::from_static(b"n*");
        let mut a = ConnPubSub::default();
        let mut b = ConnPubSub::default();
        a.subscribe(Kind::Channel, &ch, 1, &ps, None);
        a.subscribe(Kind::Pattern, &pat, 1, &ps, None);
        b.subscribe(Kind::Channel, &ch, 2, &ps, None);
        assert_eq!(ps.numsub(Kind::Channel, std::slice::from_ref(&ch)), [2]);
        assert_eq!(ps.numpat(), 1);
        // One `message` each plus the pattern's `pmessage`.
        assert_eq!(ps.publish(&ch, &Bytes::from_static(b"m")), 3);
        assert_eq!(ps.spublish(&ch, &Bytes::from_static(b"m")), 0);
        drop(a);
        assert_eq!(ps.numsub(Kind::Channel, std::slice::from_ref(&ch)), [1]);
        assert_eq!(ps.numpat(), 0);
        b.unsubscribe(Kind::Channel, &ch);
        assert!(ps.active(Kind::Channel, None).is_empty());
    }
}
