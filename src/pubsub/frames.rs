//! What each frame from a node means for the subscription (a message, a confirmation, a
//! channel the node gave up, an error reply or a lost link, decided by the router), and how
//! a caller's change is applied to the live links.

use bytes::Bytes;

use super::task::Task;
use super::{Change, MessageKind, K_CHANNEL, K_PATTERN, K_SHARD};
use crate::error::Error;
use crate::resp::Value;
use crate::router::subscriber::Resubscribe;
use crate::slot::key_slot;

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
    /// Handle one frame (or the failure) of link `id`.
    pub(super) fn handle(&mut self, id: u64, ev: Result<Value, Error>) {
        if matches!(ev, Err(_) | Ok(Value::Error(_))) {
            // A failure or an error reply: the router decides what it means.
            let from = self.link_addr(id).unwrap_or_default();
            let router = self.client.router_ref();
            match router.subscriber_outcome(&ev, &from, &mut self.resub) {
                Resubscribe::Slot(slot) => {
                    let affected: Vec<Bytes> = self
                        .shard
                        .iter()
                        .filter(|c| key_slot(c) == slot)
                        .cloned()
                        .collect();
                    for ch in affected {
                        self.lose_shard(&ch, "the channel's slot moved");
                    }
                }
                Resubscribe::Link => {
                    let why = match &ev {
                        Err(e) => format!("connection lost: {e}"),
                        Ok(v) => {
                            format!("the node refused: {}", v.error_text().unwrap_or_default())
                        }
                    };
                    tracing::warn!(addr = %from, why = %why, "pub/sub link lost; resubscribing");
                    self.link_lost(id, &why);
                }
                Resubscribe::Nothing => {
                    if let Ok(v) = &ev {
                        let line = v.error_text().unwrap_or_default();
                        tracing::warn!(addr = %from, error = %line, "pub/sub: server error");
                    }
                }
            }
            return;
        }
        let Ok(v) = ev else { return };
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
                self.resub.confirmed();
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
    pub(super) fn change(&mut self, c: Change) {
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
                        let sent = self.global.as_ref().map(|link| link.sub.send(cmd, &new));
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
                                let _ = link.sub.send("SUNSUBSCRIBE", std::slice::from_ref(ch));
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
                            let _ = link.sub.send(cmd, &gone);
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
