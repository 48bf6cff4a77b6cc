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

//!
//! Files: this one holds the public types; `client.rs` the [`Client`](crate::Client) methods
//! that start a subscription; `task.rs` the background task (its links, the repair that
//! subscribes again, the loop); `frames.rs` what each frame from a node means and how a
//! caller's change is applied. Links are pinned sessions of the router
//! (`router/subscriber.rs`): it opens them, and decides, counts and applies every redirect
//! or failure they meet.

mod client;
mod frames;
mod task;

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, ErrorKind};
use crate::types::ToArg;

/// A channel, pattern or shard channel, with its kind (`K_CHANNEL` ...).
type Name = (u8, Bytes);

const K_CHANNEL: u8 = 0;
const K_PATTERN: u8 = 1;
const K_SHARD: u8 = 2;

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
///
/// Non-exhaustive: read its fields; only the subscription builds one, and it may carry more
/// later (as RESP3 push frames do).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
