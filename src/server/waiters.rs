//! The state of a node's blocked clients (BLPOP & co.): who waits on which key, and a
//! command waiting to be served. A leaf kept in the node state; `blocking.rs` does the
//! waiting and serving.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use tokio::time::Instant;

use super::db::Db;
use super::pubsub::Mailbox;
use crate::resp::Value;

/// A blocking command that found nothing to serve and must wait.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The command as sent.
    pub(crate) args: Vec<Bytes>,
    /// The keys it waits on.
    pub(crate) keys: Vec<Bytes>,
    /// Its timeout; `None` waits for ever.
    pub(crate) timeout_ms: Option<u64>,
    /// When the command arrived (the timeout counts from here).
    pub(crate) started: Instant,
}

impl Pending {
    /// The reply when it may not block (inside MULTI): what its non-blocking form answers,
    /// a null bulk for BLMOVE/BRPOPLPUSH and a null array for the others.
    pub(crate) fn nonblocking_reply(&self) -> Value {
        if is_move(&self.args) {
            Value::Null
        } else {
            Value::NullArray
        }
    }
}

/// BLMOVE/BRPOPLPUSH: serving one pushes to its destination, which may serve others.
pub(crate) fn is_move(args: &[Bytes]) -> bool {
    Db::blocking_pops(args).is_some_and(|(_, moves)| moves)
}

/// One blocked client.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// The command, as it waits (XREAD's `$` resolved).
    pub(crate) args: Vec<Bytes>,
    /// The keys it waits on.
    pub(crate) keys: Vec<Bytes>,
    /// The connection speaks RESP3.
    pub(crate) resp3: bool,
    /// Where its reply goes.
    pub(crate) mail: Mailbox,
    /// The database it waits in.
    pub(crate) db: usize,
}

/// A node's blocked clients, kept in its state so writes and serving share one lock.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// Client ids blocked on each key, in the order they blocked.
    pub(crate) by_key: HashMap<Bytes, VecDeque<u64>>,
    /// The blocked clients by id.
    pub(crate) clients: HashMap<u64, Waiter>,
    /// Keys written since the last `blocking::serve_ready` that someone waits on.
    pub(crate) ready: Vec<Bytes>,
}

impl Waiters {
    /// Blocked clients (INFO `blocked_clients`).
    pub(crate) fn len(&self) -> usize {
        self.clients.len()
    }

    /// Block client `id`.
    pub(crate) fn add(&mut self, id: u64, waiter: Waiter) {
        for k in &waiter.keys {
            let q = self.by_key.entry(k.clone()).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
        self.clients.insert(id, waiter);
    }

    /// Unblock client `id`, if blocked.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.clients.remove(&id)?;
        for k in &w.keys {
            if let Some(q) = self.by_key.get_mut(k) {
                q.retain(|&i| i != id);
                if q.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
        Some(w)
    }

    /// Note a write to `key`, if someone waits on it.
    pub(crate) fn mark(&mut self, key: &Bytes) {
        if self.by_key.contains_key(key) && !self.ready.contains(key) {
            self.ready.push(key.clone());
        }
    }
}
