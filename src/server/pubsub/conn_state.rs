//! A connection's side of pub/sub: what it subscribed to, the receiving end of its mailbox,
//! and what its loop does when woken by either.

use std::future::pending;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use indexmap::{IndexMap, IndexSet};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::{Interval, MissedTickBehavior};

use super::{Event, Kind, MailState, Mailbox, PubSub};
use crate::resp::{encode_reply, Value};
use crate::server::cluster::state::NodeId;
use crate::server::node::NodeShared;
use crate::server::session::Conn;
use crate::server::stream::Stream;
use crate::slot::key_slot;

/// How often a connection with shard subscriptions checks that their slots did not move.
const SHARD_CHECK: Duration = Duration::from_millis(100);

/// Per-connection pub/sub state. Dropping it (disconnect, RESET) ends every subscription.
#[derive(Debug, Default)]
pub(crate) struct ConnPubSub {
    /// The client id the registry knows this connection by.
    id: u64,
    /// The node's registry, once the connection subscribed to something.
    registry: Option<Arc<PubSub>>,
    /// SUBSCRIBE channels, in subscription order.
    channels: IndexSet<Bytes>,
    /// PSUBSCRIBE patterns, in subscription order.
    patterns: IndexSet<Bytes>,
    /// SSUBSCRIBE channels with the owner of their slot when subscribed: once the slot
    /// changes hands the subscription ends with a `sunsubscribe`, as Redis 7 does when it
    /// deletes a slot it served.
    shard: IndexMap<Bytes, Option<NodeId>>,
    /// The mailbox (sender kept for handing out, receiver read by the connection loop).
    mail: Option<(Mailbox, UnboundedReceiver<Event>)>,
    /// Ticks while `shard` is not empty.
    tick: Option<Interval>,
}

/// Why a connection woke up.
#[derive(Debug)]
pub(crate) enum Wake {
    /// Something arrived in the mailbox.
    Event(Event),
    /// Time to check the slots of the shard subscriptions.
    ShardCheck,
    /// The output limit was passed: close the connection.
    Overflow,
}

async fn overflowed(state: &MailState) {
    loop {
        if state.overflow.load(Ordering::Relaxed) {
            return;
        }
        state.notify.notified().await;
    }
}

impl ConnPubSub {
    /// The mailbox other tasks use to reach this connection (created on first use).
    pub(crate) fn mailbox(&mut self) -> Mailbox {
        let (mail, _) = self.mail.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let mail = Mailbox {
                tx,
                state: Arc::new(MailState::default()),
            };
            (mail, rx)
        });
        mail.clone()
    }

    /// SUBSCRIBE + PSUBSCRIBE count (what their confirmations report).
    pub(crate) fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// SSUBSCRIBE count.
    pub(crate) fn shard_count(&self) -> usize {
        self.shard.len()
    }

    /// The count a confirmation of `kind` reports.
    pub(crate) fn count_of(&self, kind: Kind) -> usize {
        if kind == Kind::Shard {
            self.shard_count()
        } else {
            self.count()
        }
    }

    /// The `sub=.. psub=.. ssub=..` fields of CLIENT INFO / CLIENT LIST.
    pub(crate) fn client_fields(&self) -> String {
        format!(
            "sub={} psub={} ssub={}",
            self.channels.len(),
            self.patterns.len(),
            self.shard.len()
        )
    }

    /// True while subscribed to anything (RESP2 connections are then restricted).
    pub(crate) fn subscribed(&self) -> bool {
        self.count() + self.shard_count() > 0
    }

    /// The names subscribed to as `kind`, in order.
    pub(crate) fn names(&self, kind: Kind) -> Vec<Bytes> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Pattern => self.patterns.iter().cloned().collect(),
            Kind::Shard => self.shard.keys().cloned().collect(),
        }
    }

    /// Subscribe client `id` to `name`. `owner`: the slot's owner now (shard channels).
    pub(crate) fn subscribe(
        &mut self,
        kind: Kind,
        name: &Bytes,
        id: u64,
        registry: &Arc<PubSub>,
        owner: Option<NodeId>,
    ) {
        let added = match kind {
            Kind::Channel => self.channels.insert(name.clone()),
            Kind::Pattern => self.patterns.insert(name.clone()),
            Kind::Shard => self.shard.insert(name.clone(), owner).is_none(),
        };
        if !added {
            return;
        }
        self.id = id;
        let mail = self.mailbox();
        if let Some(limits) = registry.limits() {
            let _ = mail.state.limits.set(limits);
        }
        registry.add(kind, name, id, &mail);
        self.registry.get_or_insert_with(|| registry.clone());
        if kind == Kind::Shard && self.tick.is_none() {
            let mut tick = tokio::time::interval(SHARD_CHECK);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            self.tick = Some(tick);
        }
    }

    /// End the subscription to `name` (nothing if there was none).
    pub(crate) fn unsubscribe(&mut self, kind: Kind, name: &Bytes) {
        let removed = match kind {
            Kind::Channel => self.channels.shift_remove(name),
            Kind::Pattern => self.patterns.shift_remove(name),
            Kind::Shard => self.shard.shift_remove(name).is_some(),
        };
        if removed {
            if let Some(r) = &self.registry {
                r.remove(kind, name, self.id);
            }
        }
        if self.shard.is_empty() {
            self.tick = None;
        }
    }

    /// Wait for the next thing to do; never resolves for a connection without a mailbox.
    pub(crate) async fn next(&mut self) -> Wake {
        let ConnPubSub { mail, tick, .. } = self;
        let Some((mail, rx)) = mail.as_mut() else {
            return pending().await;
        };
        let state = mail.state.clone();
        let tick = async {
            match tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = overflowed(&state) => Wake::Overflow,
            ev = rx.recv() => match ev {
                Some(ev) => {
                    if let Event::Push(_, size) | Event::Tracking(_, size) = &ev {
                        state.pending.fetch_sub(*size, Ordering::Relaxed);
                    }
                    Wake::Event(ev)
                }
                // We hold a sender, so the channel never closes.
                None => pending().await,
            },
            _ = tick => Wake::ShardCheck,
        }
    }

    /// A queued pub/sub frame or tracking message, without waiting (`Some(None)`: one that
    /// says nothing on this connection).
    fn try_next_push(&mut self, resp3: bool) -> Option<Option<Value>> {
        let subscribed = self.subscribed();
        let (mail, rx) = self.mail.as_mut()?;
        match rx.try_recv() {
            Ok(Event::Push(v, size)) => {
                mail.state.pending.fetch_sub(size, Ordering::Relaxed);
                Some(Some(v))
            }
            Ok(Event::Tracking(d, size)) => {
                mail.state.pending.fetch_sub(size, Ordering::Relaxed);
                Some(d.frame(resp3, subscribed))
            }
            // A reply only arrives while blocked, when `next` is what reads the mailbox.
            Ok(Event::Reply(_)) | Err(_) => None,
        }
    }

    /// Whether the connection has a mailbox (see [`ConnPubSub::mailbox`]).
    pub(crate) fn has_mailbox(&self) -> bool {
        self.mail.is_some()
    }
}

/// Write what is queued in the connection's mailbox to `out` now (before the replies of the
/// commands about to run: Redis has put them in the output buffer already).
pub(crate) fn drain(conn: &mut Conn, out: &mut BytesMut) {
    let resp3 = conn.proto == crate::resp::Protocol::Resp3;
    while out.len() < 256 * 1024 {
        match conn.pubsub.try_next_push(resp3) {
            Some(Some(v)) => encode_reply(out, &v, conn.proto),
            Some(None) => {}
            None => break,
        }
    }
}

impl Drop for ConnPubSub {
    fn drop(&mut self) {
        let Some(r) = self.registry.take() else {
            return;
        };
        for c in &self.channels {
            r.remove(Kind::Channel, c, self.id);
        }
        for p in &self.patterns {
            r.remove(Kind::Pattern, p, self.id);
        }
        for s in self.shard.keys() {
            r.remove(Kind::Shard, s, self.id);
        }
    }
}

/// Write `out` to the client, giving up (an error that closes the connection) if the
/// connection passes its output limit meanwhile: a subscriber that does not read must not
/// keep the node's memory.
///
/// # Errors
/// The socket's, or the limit.
pub(crate) async fn write_out(stream: &mut Stream, out: &[u8], ps: &ConnPubSub) -> io::Result<()> {
    let send = async {
        stream.write_all(out).await?;
        stream.flush().await
    };
    let Some((mail, _)) = &ps.mail else {
        return send.await;
    };
    let state = mail.state.clone();
    tokio::select! {
        r = send => r,
        _ = overflowed(&state) => Err(limit_error()),
    }
}

fn limit_error() -> io::Error {
    io::Error::other("pubsub client output buffer limit reached")
}

/// Apply a wake-up to the connection: frames are appended to `out`; `Ok(Some(reply))` is the
/// reply of the connection's blocking command.
///
/// # Errors
/// When the connection must close (output limit).
pub(crate) fn apply(
    conn: &mut Conn,
    wake: Wake,
    out: &mut BytesMut,
    shared: &NodeShared,
) -> io::Result<Option<Value>> {
    match wake {
        Wake::Overflow => return Err(limit_error()),
        Wake::Event(Event::Reply(v)) => return Ok(Some(v)),
        Wake::Event(Event::Push(v, _)) => {
            encode_reply(out, &v, conn.proto);
            // Batch whatever else is queued into the same write.
            drain(conn, out);
        }
        Wake::Event(Event::Tracking(d, _)) => {
            let resp3 = conn.proto == crate::resp::Protocol::Resp3;
            if let Some(v) = d.frame(resp3, conn.pubsub.subscribed()) {
                encode_reply(out, &v, conn.proto);
            }
            drain(conn, out);
        }
        Wake::ShardCheck => check_shards(conn, out, shared),
    }
    Ok(None)
}

/// End the shard subscriptions whose slot changed owner, telling the client with
/// `["sunsubscribe", channel, remaining]` so it can subscribe again where the slot went.
fn check_shards(conn: &mut Conn, out: &mut BytesMut, shared: &NodeShared) {
    let lost: Vec<Bytes> = {
        let st = shared.lock();
        conn.pubsub
            .shard
            .iter()
            .filter(|(ch, owner)| st.cluster.slots[usize::from(key_slot(ch))] != **owner)
            .map(|(ch, _)| ch.clone())
            .collect()
    };
    for ch in lost {
        conn.pubsub.unsubscribe(Kind::Shard, &ch);
        let v = Value::Push(vec![
            Value::BulkString(Bytes::from_static(b"sunsubscribe")),
            Value::BulkString(ch),
            Value::Integer(conn.pubsub.shard_count() as i64),
        ]);
        encode_reply(out, &v, conn.proto);
    }
}
