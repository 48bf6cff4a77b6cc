//! Pub/sub: [`Subscription`]s that survive reconnects, failovers and slot migrations.
//!
//! A subscription owns its connections (never shared with other traffic): one to any
//! primary for `SUBSCRIBE`/`PSUBSCRIBE` (Redis broadcasts `PUBLISH` to every node), and one
//! per node serving the slot of a shard channel for `SSUBSCRIBE`: the slot's primary, or with
//! a replica-reading `ReadFrom` one of its replicas (on a `READONLY` connection), since
//! `SPUBLISH` reaches every node of the shard. A background task
//! reads them all and yields [`Message`]s.
//!
//! When a connection is lost, when a node drops shard channels because their slot moved
//! (the server's own `sunsubscribe`), or when `SSUBSCRIBE` meets `MOVED`, the task yields a
//! [`MessageKind::Gap`] for each affected channel (messages published from then on until the
//! resubscription may be lost), refreshes the topology, subscribes again where the channel
//! now lives, and yields [`MessageKind::Resubscribed`] once the server confirms. It keeps
//! trying, with backoff, for as long as the subscription is alive; dropping the
//! [`Subscription`] ends the task and closes its connections.
//!
//! A live subscription takes more channels ([`Subscription::subscribe`] and friends, which
//! return once the server confirmed them) and gives some up ([`Subscription::unsubscribe`]
//! and friends: no message for them is yielded after the call).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::client::Client;
use crate::connection::Connection;
use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::slot::key_slot;
use crate::types::ToArg;

/// What a [`Message`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// A message published with `PUBLISH` to a subscribed channel.
    Message,
    /// A message published to a channel matching a subscribed pattern (`pattern` says which).
    Pattern,
    /// A message published with `SPUBLISH` to a subscribed shard channel.
    Sharded,
    /// The subscription to `channel` (or `pattern`) was interrupted: messages published from
    /// now until the matching [`Resubscribed`](MessageKind::Resubscribed) may be lost.
    /// `payload` says why.
    Gap,
    /// The subscription to `channel` (or `pattern`) is back after a [`Gap`](MessageKind::Gap).
    Resubscribed,
}

/// One message, or an event about the subscription itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Which kind of message or event.
    pub kind: MessageKind,
    /// The channel it was published to (for a pattern's Gap/Resubscribed: empty).
    pub channel: Bytes,
    /// The pattern that matched, for [`MessageKind::Pattern`] and pattern events.
    pub pattern: Option<Bytes>,
    /// The message body (for a Gap: why it happened).
    pub payload: Bytes,
}

/// A live subscription: a [`Stream`] of [`Message`]s. Dropping it unsubscribes (its
/// connections are closed).
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Message>,
    task: tokio::task::JoinHandle<()>,
    changes: mpsc::UnboundedSender<Change>,
    /// How long [`Subscription::subscribe`] waits for the server's confirmation.
    timeout: Duration,
    /// Names given up with `unsubscribe` and friends: messages for them still queued (or
    /// sent before the server took the unsubscription) are dropped here.
    dropped: HashSet<(u8, Bytes)>,
}

/// A change asked of a live subscription.
#[derive(Debug)]
enum Change {
    Add {
        kind: u8,
        names: Vec<Bytes>,
        confirmed: oneshot::Sender<()>,
    },
    Remove {
        kind: u8,
        names: Vec<Bytes>,
    },
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(m)) if self.is_dropped(&m) => continue,
                other => return other,
            }
        }
    }
}

impl Subscription {
    /// The next message (`None` only if the subscription's task ended).
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            let m = self.rx.recv().await?;
            if !self.is_dropped(&m) {
                return Some(m);
            }
        }
    }

    /// A message for a name the caller has unsubscribed from.
    fn is_dropped(&self, m: &Message) -> bool {
        if self.dropped.is_empty() {
            return false;
        }
        let key = match m.kind {
            MessageKind::Message => (K_CHANNEL, m.channel.clone()),
            MessageKind::Sharded => (K_SHARD, m.channel.clone()),
            MessageKind::Pattern => match &m.pattern {
                Some(p) => (K_PATTERN, p.clone()),
                None => return false,
            },
            _ => return false,
        };
        self.dropped.contains(&key)
    }

    async fn add(&mut self, kind: u8, names: Vec<Bytes>) -> Result<(), Error> {
        for n in &names {
            self.dropped.remove(&(kind, n.clone()));
        }
        let (confirmed, done) = oneshot::channel();
        self.changes
            .send(Change::Add {
                kind,
                names,
                confirmed,
            })
            .map_err(|_| ended())?;
        match tokio::time::timeout(self.timeout, done).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ended()),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "subscription not confirmed within {:?} (it is still being tried)",
                    self.timeout
                ),
            )),
        }
    }

    fn remove(&mut self, kind: u8, names: Vec<Bytes>) -> Result<(), Error> {
        self.dropped.extend(names.iter().map(|n| (kind, n.clone())));
        self.changes
            .send(Change::Remove { kind, names })
            .map_err(|_| ended())
    }

    /// Also `SUBSCRIBE` to `channels`; returns once the server confirmed every one.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when not confirmed within the client's request timeout (the
    /// subscription keeps trying); [`ErrorKind::Closed`] when the subscription has ended.
    pub async fn subscribe<I>(&mut self, channels: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        self.add(K_CHANNEL, bytes_of(channels)).await
    }

    /// Also `PSUBSCRIBE` to `patterns` (see [`subscribe`](Self::subscribe)).
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe).
    pub async fn psubscribe<I>(&mut self, patterns: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        self.add(K_PATTERN, bytes_of(patterns)).await
    }

    /// Also `SSUBSCRIBE` to shard `channels`, each where its slot lives (see
    /// [`subscribe`](Self::subscribe)).
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe).
    pub async fn ssubscribe<I>(&mut self, channels: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        self.add(K_SHARD, bytes_of(channels)).await
    }

    /// `UNSUBSCRIBE` from `channels`: no message for them is yielded after this call.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the subscription has ended.
    pub fn unsubscribe<I>(&mut self, channels: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        self.remove(K_CHANNEL, bytes_of(channels))
    }

    /// `PUNSUBSCRIBE` from `patterns` (see [`unsubscribe`](Self::unsubscribe)).
    ///
    /// # Errors
    /// As [`unsubscribe`](Self::unsubscribe).
    pub fn punsubscribe<I>(&mut self, patterns: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        self.remove(K_PATTERN, bytes_of(patterns))
    }

    /// `SUNSUBSCRIBE` from shard `channels` (see [`unsubscribe`](Self::unsubscribe)).
    ///
    /// # Errors
    /// As [`unsubscribe`](Self::unsubscribe).
    pub fn sunsubscribe<I>(&mut self, channels: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        self.remove(K_SHARD, bytes_of(channels))
    }
}

fn ended() -> Error {
    Error::new(ErrorKind::Closed, "the subscription has ended")
}

fn bytes_of<T: ToArg>(items: impl IntoIterator<Item = T>) -> Vec<Bytes> {
    items
        .into_iter()
        .map(|t| {
            let mut b = bytes::BytesMut::new();
            t.write_arg(&mut b);
            b.freeze()
        })
        .collect()
}

impl Client {
    /// `SUBSCRIBE` to `channels` (messages sent with `PUBLISH`, from any node).
    ///
    /// # Errors
    /// None yet: connection trouble is retried in the background and reported as
    /// [`MessageKind::Gap`] events. The `Result` leaves room for validation.
    pub async fn subscribe<I>(&self, channels: I) -> Result<Subscription, Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        Ok(self.subscription(bytes_of(channels), Vec::new(), Vec::new()))
    }

    /// `PSUBSCRIBE` to `patterns`.
    ///
    /// # Errors
    /// As [`subscribe`](Client::subscribe).
    pub async fn psubscribe<I>(&self, patterns: I) -> Result<Subscription, Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        Ok(self.subscription(Vec::new(), bytes_of(patterns), Vec::new()))
    }

    /// `SSUBSCRIBE` to shard `channels` (messages sent with `SPUBLISH`), each on the primary
    /// that owns its slot, following the slot when it moves.
    ///
    /// # Errors
    /// As [`subscribe`](Client::subscribe).
    pub async fn ssubscribe<I>(&self, channels: I) -> Result<Subscription, Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        Ok(self.subscription(Vec::new(), Vec::new(), bytes_of(channels)))
    }

    /// A subscription to any mix of channels, patterns and shard channels.
    pub fn subscription(
        &self,
        channels: Vec<Bytes>,
        patterns: Vec<Bytes>,
        shard_channels: Vec<Bytes>,
    ) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(Task::new(
            self.clone(),
            tx,
            changes_rx,
            channels,
            patterns,
            shard_channels,
        )));
        Subscription {
            rx,
            task,
            changes,
            timeout: self.router_ref().inner().config.request_timeout,
            dropped: HashSet::new(),
        }
    }

    /// `PUBLISH channel message`: how many subscribers (on the node that took it) got it.
    pub async fn publish<C: ToArg, M: ToArg>(&self, channel: C, message: M) -> Result<i64, Error> {
        self.cmd("PUBLISH").arg(channel).arg(message).query().await
    }

    /// `SPUBLISH shardchannel message`, routed to the channel's slot owner.
    pub async fn spublish<C: ToArg, M: ToArg>(&self, channel: C, message: M) -> Result<i64, Error> {
        self.cmd("SPUBLISH").arg(channel).arg(message).query().await
    }
}

type Event = (u64, Result<Value, Error>);

/// A channel, pattern or shard channel, with its kind (`K_CHANNEL` ...).
type Name = (u8, Bytes);

struct Link {
    id: u64,
    conn: Connection,
}

/// What a subscription wants, what it has, and what must be redone.
struct Task {
    client: Client,
    out: mpsc::UnboundedSender<Message>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    changes: mpsc::UnboundedReceiver<Change>,
    /// Every name (with its kind) the caller wants: messages for others are dropped.
    wanted: HashSet<(u8, Bytes)>,
    /// Callers of `Subscription::subscribe` waiting for these names to be confirmed.
    waiters: Vec<(HashSet<Name>, oneshot::Sender<()>)>,
    next_id: u64,
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
    shard: Vec<Bytes>,
    /// The link for channels and patterns.
    global: Option<Link>,
    /// Links for shard channels, by node address.
    nodes: HashMap<String, Link>,
    /// Where each shard channel is subscribed (or being subscribed).
    shard_home: HashMap<Bytes, String>,
    /// Channels and patterns to subscribe again.
    global_dirty: bool,
    /// Shard channels to subscribe again.
    shard_dirty: HashSet<Bytes>,
    /// Names (with their kind) whose confirmation should be reported as Resubscribed.
    awaiting: HashSet<(u8, Bytes)>,
    failures: u32,
}

const K_CHANNEL: u8 = 0;
const K_PATTERN: u8 = 1;
const K_SHARD: u8 = 2;

fn command<'a>(name: &'static str, names: &'a [Bytes]) -> Vec<&'a [u8]> {
    let mut v: Vec<&[u8]> = Vec::with_capacity(names.len() + 1);
    v.push(name.as_bytes());
    v.extend(names.iter().map(|n| &n[..]));
    v
}

fn frame_items(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Push(items) | Value::Array(items) => Some(items),
        _ => None,
    }
}

fn text(v: &Value) -> Option<Bytes> {
    match v {
        Value::BulkString(b) | Value::SimpleString(b) => Some(b.clone()),
        _ => None,
    }
}

impl Task {
    fn new(
        client: Client,
        out: mpsc::UnboundedSender<Message>,
        changes: mpsc::UnboundedReceiver<Change>,
        channels: Vec<Bytes>,
        patterns: Vec<Bytes>,
        shard: Vec<Bytes>,
    ) -> Task {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let shard_dirty = shard.iter().cloned().collect();
        let global_dirty = !channels.is_empty() || !patterns.is_empty();
        let wanted = channels
            .iter()
            .map(|c| (K_CHANNEL, c.clone()))
            .chain(patterns.iter().map(|p| (K_PATTERN, p.clone())))
            .chain(shard.iter().map(|c| (K_SHARD, c.clone())))
            .collect();
        Task {
            client,
            out,
            events_tx,
            events_rx,
            changes,
            wanted,
            waiters: Vec::new(),
            next_id: 0,
            channels,
            patterns,
            shard,
            global: None,
            nodes: HashMap::new(),
            shard_home: HashMap::new(),
            global_dirty,
            shard_dirty,
            awaiting: HashSet::new(),
            failures: 0,
        }
    }

    fn emit(&self, kind: MessageKind, channel: Bytes, pattern: Option<Bytes>, payload: Bytes) {
        let _ = self.out.send(Message {
            kind,
            channel,
            pattern,
            payload,
        });
    }

    async fn open(&mut self, addr: &str, readonly: bool) -> Result<Link, Error> {
        let conn = self
            .client
            .router_ref()
            .inner()
            .pool
            .dedicated(addr, readonly)
            .await?;
        self.next_id += 1;
        let id = self.next_id;
        let tx = self.events_tx.clone();
        conn.make_subscriber(Box::new(move |ev| {
            let _ = tx.send((id, ev));
        }));
        Ok(Link { id, conn })
    }

    /// Subscribe whatever is marked dirty. Returns false when something failed (retry later).
    async fn repair(&mut self, first: bool) -> bool {
        let mut ok = true;
        if self.global_dirty {
            self.global = None;
            let topo = self.client.topology();
            let addrs: Vec<String> = topo
                .shards()
                .iter()
                .map(|s| s.primary.addr.clone())
                .collect();
            let pick = if addrs.is_empty() {
                None
            } else {
                Some(addrs[rand::random::<usize>() % addrs.len()].clone())
            };
            match pick {
                Some(addr) => match self.open(&addr, false).await {
                    Ok(link) => {
                        let sent = (|| {
                            if !self.channels.is_empty() {
                                link.conn.send_no_reply(|buf| {
                                    crate::resp::encode_command(
                                        buf,
                                        command("SUBSCRIBE", &self.channels),
                                    )
                                })?;
                            }
                            if !self.patterns.is_empty() {
                                link.conn.send_no_reply(|buf| {
                                    crate::resp::encode_command(
                                        buf,
                                        command("PSUBSCRIBE", &self.patterns),
                                    )
                                })?;
                            }
                            Ok::<(), Error>(())
                        })();
                        if sent.is_ok() {
                            if !first {
                                for c in &self.channels {
                                    self.awaiting.insert((K_CHANNEL, c.clone()));
                                }
                                for p in &self.patterns {
                                    self.awaiting.insert((K_PATTERN, p.clone()));
                                }
                            }
                            self.global = Some(link);
                            self.global_dirty = false;
                        } else {
                            ok = false;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pub/sub: reconnect failed");
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        if !self.shard_dirty.is_empty() {
            let dirty: Vec<Bytes> = self.shard_dirty.iter().cloned().collect();
            for ch in dirty {
                // The slot's primary, or one of its replicas as the client's ReadFrom says
                // (SPUBLISH reaches a shard's replicas too).
                let route = crate::router::route::Route {
                    slot: Some(key_slot(&ch)),
                    readonly: true,
                    fanout: None,
                };
                let Some((entry, readonly)) = self.client.router_ref().inner().pick(route) else {
                    ok = false;
                    continue;
                };
                let addr = entry.addr().to_string();
                if !self.nodes.contains_key(&addr) {
                    match self.open(&addr, readonly).await {
                        Ok(link) => {
                            self.nodes.insert(addr.clone(), link);
                        }
                        Err(e) => {
                            tracing::warn!(addr = %addr, error = %e, "pub/sub: connect failed");
                            ok = false;
                            continue;
                        }
                    }
                }
                let Some(link) = self.nodes.get(&addr) else {
                    continue;
                };
                let sent = link.conn.send_no_reply(|buf| {
                    crate::resp::encode_command(buf, [&b"SSUBSCRIBE"[..], &ch[..]])
                });
                match sent {
                    Ok(()) => {
                        self.shard_dirty.remove(&ch);
                        if !first {
                            self.awaiting.insert((K_SHARD, ch.clone()));
                        }
                        self.shard_home.insert(ch, addr);
                    }
                    Err(_) => {
                        self.nodes.remove(&addr);
                        ok = false;
                    }
                }
            }
        }
        self.close_unused_links();
        ok
    }

    /// Close the links that no longer carry any shard channel.
    fn close_unused_links(&mut self) {
        let used: HashSet<&String> = self.shard_home.values().collect();
        self.nodes.retain(|addr, _| used.contains(addr));
    }

    /// A shard channel was lost where it was: report the gap and mark it to redo.
    fn lose_shard(&mut self, ch: &Bytes, why: &str) {
        if self.shard_home.remove(ch).is_some() || !self.shard_dirty.contains(ch) {
            self.emit(
                MessageKind::Gap,
                ch.clone(),
                None,
                Bytes::from(why.to_string()),
            );
        }
        self.awaiting.remove(&(K_SHARD, ch.clone()));
        self.shard_dirty.insert(ch.clone());
    }

    fn link_lost(&mut self, id: u64, why: &str) {
        if self.global.as_ref().is_some_and(|l| l.id == id) {
            self.global = None;
            self.global_dirty = true;
            for c in self.channels.clone() {
                self.emit(MessageKind::Gap, c, None, Bytes::from(why.to_string()));
            }
            for p in self.patterns.clone() {
                self.emit(
                    MessageKind::Gap,
                    Bytes::new(),
                    Some(p),
                    Bytes::from(why.to_string()),
                );
            }
            return;
        }
        let Some(addr) = self
            .nodes
            .iter()
            .find(|(_, l)| l.id == id)
            .map(|(a, _)| a.clone())
        else {
            return;
        };
        self.nodes.remove(&addr);
        let lost: Vec<Bytes> = self
            .shard_home
            .iter()
            .filter(|(_, a)| **a == addr)
            .map(|(c, _)| c.clone())
            .collect();
        for ch in lost {
            self.lose_shard(&ch, why);
        }
    }

    fn handle(&mut self, id: u64, ev: Result<Value, Error>) {
        let v = match ev {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "pub/sub connection lost; resubscribing");
                self.link_lost(id, &format!("connection lost: {e}"));
                self.client.router_ref().trigger_refresh();
                return;
            }
        };
        if let Value::Error(line) = &v {
            let line = String::from_utf8_lossy(line).into_owned();
            let (code, rest) = line.split_once(' ').unwrap_or((&line, ""));
            if code == "MOVED" {
                if let Some((slot, addr)) = crate::router::decide::parse_redirect(rest) {
                    self.client
                        .router_ref()
                        .inner()
                        .topology
                        .apply_moved(slot, &addr);
                    let affected: Vec<Bytes> = self
                        .shard
                        .iter()
                        .filter(|c| key_slot(c) == slot)
                        .cloned()
                        .collect();
                    for ch in affected {
                        self.lose_shard(&ch, "slot moved (MOVED)");
                    }
                }
            } else {
                tracing::warn!(error = %line, "pub/sub: server error");
            }
            return;
        }
        let Some(items) = frame_items(v) else {
            return;
        };
        let kind = items.first().and_then(text).unwrap_or_default();
        let at = |i: usize| items.get(i).and_then(text).unwrap_or_default();
        let wanted = |k: u8, name: Bytes| self.wanted.contains(&(k, name));
        match &kind.to_ascii_lowercase()[..] {
            b"message" if wanted(K_CHANNEL, at(1)) => {
                self.emit(MessageKind::Message, at(1), None, at(2));
            }
            b"smessage" if wanted(K_SHARD, at(1)) => {
                self.emit(MessageKind::Sharded, at(1), None, at(2));
            }
            b"pmessage" if wanted(K_PATTERN, at(1)) => {
                self.emit(MessageKind::Pattern, at(2), Some(at(1)), at(3));
            }
            b"subscribe" | b"psubscribe" | b"ssubscribe" => {
                let k = match &kind.to_ascii_lowercase()[..] {
                    b"subscribe" => K_CHANNEL,
                    b"psubscribe" => K_PATTERN,
                    _ => K_SHARD,
                };
                let name = at(1);
                // A name the caller just added is confirmed to them, not reported as back.
                let fresh = self.confirm(k, &name);
                if self.awaiting.remove(&(k, name.clone())) && !fresh {
                    let (channel, pattern) = if k == K_PATTERN {
                        (Bytes::new(), Some(name))
                    } else {
                        (name, None)
                    };
                    self.emit(MessageKind::Resubscribed, channel, pattern, Bytes::new());
                }
                self.failures = 0;
            }
            b"sunsubscribe" => {
                // We never unsubscribe: the node dropped the channel (its slot moved).
                let ch = at(1);
                let from_home = self
                    .nodes
                    .iter()
                    .find(|(_, l)| l.id == id)
                    .map(|(a, _)| a.clone());
                if from_home.is_some() && self.shard_home.get(&ch) == from_home.as_ref() {
                    self.lose_shard(&ch, "the node gave up the channel's slot");
                    self.client.router_ref().trigger_refresh();
                }
            }
            _ => {}
        }
    }
}

impl Task {
    /// Count a confirmation towards the callers waiting for it; true if one was.
    fn confirm(&mut self, kind: u8, name: &Bytes) -> bool {
        let key = (kind, name.clone());
        let mut fresh = false;
        for (pending, _) in &mut self.waiters {
            fresh |= pending.remove(&key);
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(pending, _)| pending.is_empty());
        self.waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
        fresh
    }

    /// Apply a caller's change: new names are subscribed on the links already open (or by
    /// the next repair), removed ones unsubscribed and their messages dropped from now on.
    fn change(&mut self, c: Change) {
        match c {
            Change::Add {
                kind,
                names,
                confirmed,
            } => {
                let new: Vec<Bytes> = names
                    .into_iter()
                    .filter(|n| self.wanted.insert((kind, n.clone())))
                    .collect();
                if new.is_empty() {
                    let _ = confirmed.send(());
                    return;
                }
                self.waiters
                    .push((new.iter().map(|n| (kind, n.clone())).collect(), confirmed));
                match kind {
                    K_SHARD => {
                        self.shard.extend(new.iter().cloned());
                        self.shard_dirty.extend(new);
                    }
                    _ => {
                        let (list, cmd) = if kind == K_CHANNEL {
                            (&mut self.channels, "SUBSCRIBE")
                        } else {
                            (&mut self.patterns, "PSUBSCRIBE")
                        };
                        list.extend(new.iter().cloned());
                        let sent = self.global.as_ref().map(|link| {
                            link.conn.send_no_reply(|buf| {
                                crate::resp::encode_command(buf, command(cmd, &new))
                            })
                        });
                        if !matches!(sent, Some(Ok(()))) {
                            // No link (or it just failed): the repair subscribes everything.
                            self.global = None;
                            self.global_dirty = true;
                        }
                    }
                }
            }
            Change::Remove { kind, names } => {
                let gone: Vec<Bytes> = names
                    .into_iter()
                    .filter(|n| self.wanted.remove(&(kind, n.clone())))
                    .collect();
                for n in &gone {
                    self.awaiting.remove(&(kind, n.clone()));
                    // A caller still waiting for it needs it no more.
                    self.confirm(kind, n);
                }
                match kind {
                    K_SHARD => {
                        self.shard.retain(|c| !gone.contains(c));
                        for ch in &gone {
                            self.shard_dirty.remove(ch);
                            if let Some(link) = self
                                .shard_home
                                .remove(ch)
                                .and_then(|addr| self.nodes.get(&addr))
                            {
                                let _ = link.conn.send_no_reply(|buf| {
                                    crate::resp::encode_command(
                                        buf,
                                        [&b"SUNSUBSCRIBE"[..], &ch[..]],
                                    )
                                });
                            }
                        }
                        self.close_unused_links();
                    }
                    _ => {
                        let (list, cmd) = if kind == K_CHANNEL {
                            (&mut self.channels, "UNSUBSCRIBE")
                        } else {
                            (&mut self.patterns, "PUNSUBSCRIBE")
                        };
                        list.retain(|c| !gone.contains(c));
                        if let Some(link) = &self.global {
                            let _ = link.conn.send_no_reply(|buf| {
                                crate::resp::encode_command(buf, command(cmd, &gone))
                            });
                        }
                        if self.channels.is_empty() && self.patterns.is_empty() {
                            // Nothing left on the global link: close it.
                            self.global = None;
                            self.global_dirty = false;
                        }
                    }
                }
            }
        }
    }
}

async fn run(mut t: Task) {
    let _ = t.repair(true).await;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = t.events_rx.recv() => {
                let Some((id, ev)) = ev else { return };
                t.handle(id, ev);
                // Drain what else is ready before repairing.
                while let Ok((id, ev)) = t.events_rx.try_recv() {
                    t.handle(id, ev);
                }
            }
            _ = tick.tick() => {
                // A shard channel whose slot the topology now gives to another node moves.
                let topo = t.client.topology();
                let stale: Vec<Bytes> = t
                    .shard_home
                    .iter()
                    .filter(|(c, a)| {
                        topo.shard_for_slot(key_slot(c)).map_or(true, |s| {
                            s.primary.addr != **a && s.replicas.iter().all(|r| r.addr != **a)
                        })
                    })
                    .map(|(c, _)| c.clone())
                    .collect();
                for ch in stale {
                    t.lose_shard(&ch, "the channel's slot has a new owner");
                }
            }
            Some(c) = t.changes.recv() => t.change(c),
            _ = t.out.closed() => return,
        }
        if t.global_dirty || !t.shard_dirty.is_empty() {
            if t.failures > 0 {
                let d = crate::pool::backoff(
                    t.failures.min(6),
                    Duration::from_millis(50),
                    Duration::from_secs(2),
                );
                tokio::time::sleep(d).await;
                if t.client
                    .router_ref()
                    .inner()
                    .closing
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    return;
                }
                t.client.router_ref().refresh_and_wait().await;
            }
            // Counted until a confirmation resets it, so repeated attempts back off.
            let _ = t.repair(false).await;
            t.failures = t.failures.saturating_add(1);
        }
    }
}
