//! The subscription's background task: its links (pinned sessions the router opens), the
//! repair that subscribes again whatever was lost, and the loop that drives both.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{Change, Message, MessageKind, Name, K_CHANNEL, K_PATTERN, K_SHARD};
use crate::client::Client;
use crate::error::Error;
use crate::resp::Value;
use crate::router::subscriber::{Resubscribing, Subscriber};
use crate::slot::key_slot;

type Event = (u64, Result<Value, Error>);

pub(super) struct Link {
    pub(super) id: u64,
    pub(super) sub: Subscriber,
}

/// What a subscription wants, what it has, and what must be redone.
pub(super) struct Task {
    pub(super) client: Client,
    pub(super) out: mpsc::UnboundedSender<Message>,
    pub(super) events_tx: mpsc::UnboundedSender<Event>,
    pub(super) events_rx: mpsc::UnboundedReceiver<Event>,
    pub(super) changes: mpsc::UnboundedReceiver<Change>,
    /// Every name (with its kind) the caller wants: messages for others are dropped.
    pub(super) wanted: HashSet<(u8, Bytes)>,
    /// Callers of `Subscription::subscribe` waiting for these names to be confirmed.
    pub(super) waiters: Vec<(HashSet<Name>, oneshot::Sender<()>)>,
    pub(super) next_id: u64,
    pub(super) channels: Vec<Bytes>,
    pub(super) patterns: Vec<Bytes>,
    pub(super) shard: Vec<Bytes>,
    /// The link for channels and patterns.
    pub(super) global: Option<Link>,
    /// Links for shard channels, by node address.
    pub(super) nodes: HashMap<String, Link>,
    /// Where each shard channel is subscribed (or being subscribed).
    pub(super) shard_home: HashMap<Bytes, String>,
    /// Channels and patterns to subscribe again.
    pub(super) global_dirty: bool,
    /// Shard channels to subscribe again.
    pub(super) shard_dirty: HashSet<Bytes>,
    /// Names (with their kind) whose confirmation should be reported as Resubscribed.
    pub(super) awaiting: HashSet<(u8, Bytes)>,
    pub(super) failures: u32,
    /// Redirects and retries since the last confirmation, against the client's caps.
    pub(super) resub: Resubscribing,
}

impl Task {
    pub(super) fn new(
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
            resub: Resubscribing::default(),
        }
    }

    pub(super) fn emit(
        &self,
        kind: MessageKind,
        channel: Bytes,
        pattern: Option<Bytes>,
        payload: Bytes,
    ) {
        let _ = self.out.send(Message {
            kind,
            channel,
            pattern,
            payload,
        });
    }

    /// Open a link to `addr` through the router; its frames come back as events tagged
    /// with the link's id. A failure to connect goes through the router's decision too.
    async fn open(&mut self, addr: &str, readonly: bool) -> Result<Link, Error> {
        self.next_id += 1;
        let id = self.next_id;
        let tx = self.events_tx.clone();
        let sink = Box::new(move |ev| {
            let _ = tx.send((id, ev));
        });
        let router = self.client.router_ref();
        match router.subscriber(addr, readonly, sink).await {
            Ok(sub) => Ok(Link { id, sub }),
            Err(e) => {
                router.subscriber_outcome(&Err(e.clone()), addr, &mut self.resub);
                Err(e)
            }
        }
    }

    /// Subscribe whatever is marked dirty. Returns false when something failed (retry later).
    async fn repair(&mut self, first: bool) -> bool {
        let mut ok = true;
        if self.global_dirty {
            self.global = None;
            match self.client.router_ref().subscriber_target(None) {
                Some((addr, readonly)) => match self.open(&addr, readonly).await {
                    Ok(link) => {
                        let sent = (|| {
                            if !self.channels.is_empty() {
                                link.sub.send("SUBSCRIBE", &self.channels)?;
                            }
                            if !self.patterns.is_empty() {
                                link.sub.send("PSUBSCRIBE", &self.patterns)?;
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
                // The slot's primary, or one of its replicas as the client's ReadFrom says.
                let target = self
                    .client
                    .router_ref()
                    .subscriber_target(Some(key_slot(&ch)));
                let Some((addr, readonly)) = target else {
                    ok = false;
                    continue;
                };
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
                let sent = link.sub.send("SSUBSCRIBE", std::slice::from_ref(&ch));
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
    /// The address of link `id`, if it is still one of the task's.
    pub(super) fn link_addr(&self, id: u64) -> Option<String> {
        if let Some(l) = self.global.as_ref().filter(|l| l.id == id) {
            return Some(l.sub.addr().to_string());
        }
        self.nodes
            .iter()
            .find(|(_, l)| l.id == id)
            .map(|(a, _)| a.clone())
    }

    pub(super) fn close_unused_links(&mut self) {
        let used: HashSet<&String> = self.shard_home.values().collect();
        self.nodes.retain(|addr, _| used.contains(addr));
    }

    /// A shard channel was lost where it was: report the gap and mark it to redo.
    pub(super) fn lose_shard(&mut self, ch: &Bytes, why: &str) {
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

    pub(super) fn link_lost(&mut self, id: u64, why: &str) {
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
}

/// The subscription's task: handle frames and changes, move shard channels whose slot has a
/// new owner, and subscribe again (after the router's backoff) whatever was lost.
pub(super) async fn run(mut t: Task) {
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
                let router = t.client.router_ref();
                let d = router.resubscribe_backoff(t.failures.max(t.resub.failures()));
                tokio::time::sleep(d).await;
                if t.client.router_ref().is_closing() {
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
