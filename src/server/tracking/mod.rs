//! Server-assisted client-side caching (`CLIENT TRACKING`), as Redis 7.0's `tracking.c`.
//!
//! A node keeps, under its state lock, which clients may cache which keys (default and
//! OPTIN/OPTOUT modes: key -> client ids, filled after read-only commands) and which
//! prefixes BCAST clients follow (prefix -> clients, plus the keys changed under it since the
//! last broadcast). The keyspace reports every key it changes ([`super::db::Changed`]: what a
//! write propagates, keys dropped with a slot, flushes) while somebody tracks; the node turns
//! them into invalidations here.
//!
//! Delivery goes through the target connection's mailbox (the one pub/sub uses) as a
//! [`Delivery`], which the receiving connection words for itself: a RESP3 push
//! `invalidate [keys]`, a `message` on `__redis__:invalidate` for a RESP2 redirect target in
//! pub/sub mode, or nothing. Messages for the connection running the command are handed back
//! to its loop instead, before its reply (a redirect target's own write) or after it (its own
//! tracked keys), in the order Redis writes them.
//!
//! As Redis, client ids are removed from the key table lazily (a closed client's ids go when
//! the key is next invalidated), and the table is bounded by `tracking-table-max-keys` by
//! invalidating random keys.

pub(crate) mod cmd;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use indexmap::IndexMap;

use crate::resp::Value;

use super::clients::Clients;
use super::db::Changed;

/// Redis' default `tracking-table-max-keys`.
pub(crate) const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// Which keys an invalidation names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Msg {
    /// These keys.
    Keys(Vec<Bytes>),
    /// Every key (FLUSHALL/FLUSHDB): the null form.
    All,
}

/// What a connection receives from the tracking table; it words it for its own protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// An invalidation. `redirected`: sent to this connection as another client's redirect
    /// target (a RESP2 target in pub/sub mode then gets it as a `__redis__:invalidate`
    /// message; a RESP2 client never gets its own).
    Invalidate {
        /// The keys.
        msg: Msg,
        /// Sent on behalf of another client.
        redirected: bool,
    },
    /// The client this connection redirects to is gone (RESP3 only).
    RedirBroken(u64),
}

impl Delivery {
    /// The frame to write on a connection speaking RESP3 (`resp3`) or RESP2, subscribed to
    /// something or not; `None` when Redis would send nothing there.
    pub(crate) fn frame(&self, resp3: bool, subscribed: bool) -> Option<Value> {
        let bulk = |s: &'static [u8]| Value::BulkString(Bytes::from_static(s));
        match self {
            Delivery::Invalidate { msg, redirected } => {
                let keys = match msg {
                    Msg::Keys(keys) => {
                        Value::Array(keys.iter().cloned().map(Value::BulkString).collect())
                    }
                    Msg::All => Value::Null,
                };
                if resp3 {
                    Some(Value::Push(vec![bulk(b"invalidate"), keys]))
                } else if *redirected && subscribed {
                    Some(Value::Push(vec![
                        bulk(b"message"),
                        bulk(b"__redis__:invalidate"),
                        keys,
                    ]))
                } else {
                    None
                }
            }
            Delivery::RedirBroken(id) => resp3.then(|| {
                Value::Push(vec![
                    bulk(b"tracking-redir-broken"),
                    Value::Integer(*id as i64),
                ])
            }),
        }
    }

    /// About how many bytes it takes queued (counted against the output limit).
    pub(crate) fn size(&self) -> usize {
        match self {
            Delivery::Invalidate {
                msg: Msg::Keys(keys),
                ..
            } => 48 + keys.iter().map(|k| k.len() + 16).sum::<usize>(),
            _ => 48,
        }
    }
}

/// The options of `CLIENT TRACKING on`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// BCAST: invalidations for every key under the client's prefixes.
    pub(crate) bcast: bool,
    /// OPTIN: keys are tracked only after `CLIENT CACHING yes`.
    pub(crate) optin: bool,
    /// OPTOUT: keys are tracked unless after `CLIENT CACHING no`.
    pub(crate) optout: bool,
    /// NOLOOP: no invalidations for the client's own writes.
    pub(crate) noloop: bool,
}

/// One tracking client.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Its options.
    pub(crate) opts: Options,
    /// REDIRECT target, 0 for none.
    pub(crate) redirect: u64,
    /// The redirect target was found gone when a message was due.
    pub(crate) broken: bool,
    /// BCAST prefixes (the empty prefix when none was given).
    pub(crate) prefixes: BTreeSet<Bytes>,
}

/// A BCAST prefix: who follows it and what changed under it since the last broadcast (with
/// the client that changed each key last, for NOLOOP).
#[derive(Debug, Default)]
struct Prefix {
    keys: BTreeMap<Bytes, Option<u64>>,
    clients: BTreeSet<u64>,
}

/// A node's tracking table.
#[derive(Debug)]
pub(crate) struct Tracking {
    /// Key -> ids of the clients that may cache it.
    keys: IndexMap<Bytes, Vec<u64>>,
    /// Ids stored across `keys` (INFO tracking_total_items).
    items: usize,
    /// The clients with tracking on.
    trackers: HashMap<u64, Tracker>,
    /// BCAST prefixes, in Redis' (byte) order.
    prefixes: BTreeMap<Bytes, Prefix>,
    /// A key changed under some prefix since the last broadcast.
    bcast_due: bool,
    /// `tracking-table-max-keys` (0: no limit).
    pub(crate) max_keys: usize,
    /// Rounds in a row the table stayed over the limit (Redis grows its effort with them).
    over_rounds: usize,
    /// The client whose command runs now, and whether its connection loop collects the
    /// messages meant for it (`before`/`after`) rather than its mailbox.
    current: Option<(u64, bool)>,
    /// Inside the command (Redis' `fixed_time_expire`): the running client's own
    /// invalidations wait for its reply. Off for the evictions before it.
    in_command: bool,
    /// Invalidations for the running client's own keys, sent after its command.
    deferred: Vec<(u64, Msg)>,
    /// For the running client's loop: messages to write before its reply ...
    before: Vec<Delivery>,
    /// ... and after it.
    after: Vec<Delivery>,
}

impl Default for Tracking {
    fn default() -> Tracking {
        Tracking {
            keys: IndexMap::new(),
            items: 0,
            trackers: HashMap::new(),
            prefixes: BTreeMap::new(),
            bcast_due: false,
            max_keys: DEFAULT_MAX_KEYS,
            over_rounds: 0,
            current: None,
            in_command: false,
            deferred: Vec::new(),
            before: Vec::new(),
            after: Vec::new(),
        }
    }
}

impl Tracking {
    /// An empty table with `tracking-table-max-keys` at `max_keys`.
    pub(crate) fn with_max_keys(max_keys: usize) -> Tracking {
        Tracking {
            max_keys,
            ..Tracking::default()
        }
    }

    /// Whether key changes must be reported at all: somebody tracks, or keys are still
    /// recorded for clients that stopped (the single check the write path pays otherwise).
    pub(crate) fn active(&self) -> bool {
        !self.trackers.is_empty() || !self.keys.is_empty()
    }

    /// The tracking state of client `id`, if it tracks.
    pub(crate) fn tracker(&self, id: u64) -> Option<&Tracker> {
        self.trackers.get(&id)
    }

    /// `CLIENT TRACKING on` (options already checked, as `enableTracking`): a tracking
    /// client keeps its BCAST prefixes and adds the new ones.
    pub(crate) fn enable(&mut self, id: u64, redirect: u64, opts: Options, prefixes: &[Bytes]) {
        let t = self.trackers.entry(id).or_default();
        t.opts = opts;
        t.redirect = redirect;
        t.broken = false;
        if opts.bcast {
            let empty = [Bytes::new()];
            let list = if prefixes.is_empty() {
                &empty[..]
            } else {
                prefixes
            };
            for p in list {
                t.prefixes.insert(p.clone());
                self.prefixes
                    .entry(p.clone())
                    .or_default()
                    .clients
                    .insert(id);
            }
        }
    }

    /// `CLIENT TRACKING off`, RESET, or the connection closed.
    pub(crate) fn disable(&mut self, id: u64) {
        let Some(t) = self.trackers.remove(&id) else {
            return;
        };
        for p in t.prefixes {
            if let Some(state) = self.prefixes.get_mut(&p) {
                state.clients.remove(&id);
                if state.clients.is_empty() {
                    self.prefixes.remove(&p);
                }
            }
        }
    }

    /// After a read-only command of client `id` (`trackingRememberKeys`): remember that it
    /// may cache `keys`, unless its mode says otherwise (`caching`: CLIENT CACHING was
    /// given for this command).
    pub(crate) fn remember<'k>(
        &mut self,
        id: u64,
        caching: bool,
        keys: impl IntoIterator<Item = &'k Bytes>,
    ) {
        let Some(t) = self.trackers.get(&id) else {
            return;
        };
        let o = t.opts;
        if o.bcast || (o.optin && !caching) || (o.optout && caching) {
            return;
        }
        for k in keys {
            let ids = match self.keys.get_mut(k.as_ref()) {
                Some(ids) => ids,
                None => self.keys.entry(Bytes::copy_from_slice(k)).or_default(),
            };
            if !ids.contains(&id) {
                ids.push(id);
                self.items += 1;
            }
        }
    }

    /// A command of client `id` starts; `inline`: its connection loop takes the messages
    /// meant for it (see [`Tracking::take_inline`]).
    pub(crate) fn begin(&mut self, id: u64, inline: bool) {
        self.current = Some((id, inline));
        self.in_command = true;
    }

    /// The command that [`Tracking::begin`] started ended: send its deferred messages
    /// (`trackingHandlePendingKeyInvalidations`).
    pub(crate) fn end(&mut self, clients: &Clients) {
        if !self.deferred.is_empty() {
            for (tracker, msg) in std::mem::take(&mut self.deferred) {
                self.send(tracker, msg, clients, true);
            }
        }
        self.current = None;
        self.in_command = false;
    }

    /// What the running connection must write before and after its reply.
    pub(crate) fn take_inline(&mut self) -> Option<(Vec<Delivery>, Vec<Delivery>)> {
        if self.before.is_empty() && self.after.is_empty() {
            return None;
        }
        Some((
            std::mem::take(&mut self.before),
            std::mem::take(&mut self.after),
        ))
    }

    /// Key `key` changed (`trackingInvalidateKey`): tell the clients that may cache it, and
    /// queue it for BCAST clients (`bcast`; not for the table's own evictions). `writer`:
    /// the client that changed it, if any.
    pub(crate) fn invalidate_key(
        &mut self,
        key: &Bytes,
        writer: Option<u64>,
        bcast: bool,
        clients: &Clients,
    ) {
        if bcast && !self.prefixes.is_empty() {
            for (p, state) in self.prefixes.iter_mut() {
                if key.starts_with(p) {
                    state.keys.insert(key.clone(), writer);
                    self.bcast_due = true;
                }
            }
        }
        let Some(ids) = self.keys.swap_remove(key.as_ref()) else {
            return;
        };
        self.items -= ids.len();
        let current = self.current.map(|(id, _)| id);
        for id in ids {
            let Some(t) = self.trackers.get(&id) else {
                continue;
            };
            if t.opts.bcast || (t.opts.noloop && current == Some(id)) {
                continue;
            }
            if current == Some(id) && self.in_command {
                // After its reply, not in the middle of it.
                self.deferred.push((id, Msg::Keys(vec![key.clone()])));
            } else {
                self.send(id, Msg::Keys(vec![key.clone()]), clients, false);
            }
        }
    }

    /// Every key changed (`trackingInvalidateKeysOnFlush`): the null invalidation to every
    /// tracking client; the table is emptied.
    pub(crate) fn invalidate_all(&mut self, clients: &Clients) {
        let current = self.current.map(|(id, _)| id);
        let mut ids: Vec<u64> = self.trackers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if current == Some(id) {
                self.deferred.push((id, Msg::All));
            } else {
                self.send(id, Msg::All, clients, false);
            }
        }
        self.keys = IndexMap::new();
        self.items = 0;
    }

    /// Send the keys changed under each prefix to its BCAST clients
    /// (`trackingBroadcastInvalidationMessages`, once per batch of commands).
    pub(crate) fn broadcast(&mut self, clients: &Clients) {
        if !std::mem::take(&mut self.bcast_due) {
            return;
        }
        let mut out: Vec<(u64, Msg)> = Vec::new();
        for state in self.prefixes.values_mut() {
            let keys = std::mem::take(&mut state.keys);
            if keys.is_empty() {
                continue;
            }
            let all: Vec<Bytes> = keys.keys().cloned().collect();
            for &id in &state.clients {
                let noloop = self.trackers.get(&id).is_some_and(|t| t.opts.noloop);
                if noloop {
                    let own: Vec<Bytes> = keys
                        .iter()
                        .filter(|(_, w)| **w != Some(id))
                        .map(|(k, _)| k.clone())
                        .collect();
                    if !own.is_empty() {
                        out.push((id, Msg::Keys(own)));
                    }
                } else {
                    out.push((id, Msg::Keys(all.clone())));
                }
            }
        }
        for (id, msg) in out {
            self.send(id, msg, clients, true);
        }
    }

    /// Keep the key table within `tracking-table-max-keys` (`trackingLimitUsedSlots`):
    /// invalidate random keys, with an effort that grows while the table stays over.
    /// Before a command ([`Tracking::begin`] called), the running client's evicted keys go
    /// out at once, before its reply, as Redis sends them from `processCommand`.
    pub(crate) fn limit(&mut self, clients: &Clients) {
        if self.max_keys == 0 || self.keys.len() <= self.max_keys {
            self.over_rounds = 0;
            return;
        }
        let in_command = std::mem::replace(&mut self.in_command, false);
        self.evict(clients);
        self.in_command = in_command;
    }

    fn evict(&mut self, clients: &Clients) {
        let mut effort = 100 * (self.over_rounds + 1);
        while effort > 0 && !self.keys.is_empty() {
            effort -= 1;
            let i = rand::Rng::gen_range(&mut rand::thread_rng(), 0..self.keys.len());
            let Some((key, _)) = self.keys.get_index(i) else {
                break;
            };
            let key = key.clone();
            self.invalidate_key(&key, None, false, clients);
            if self.keys.len() <= self.max_keys {
                self.over_rounds = 0;
                return;
            }
        }
        self.over_rounds += 1;
    }

    /// INFO `tracking_clients`.
    pub(crate) fn clients_count(&self) -> usize {
        self.trackers.len()
    }

    /// INFO `tracking_total_keys`, `tracking_total_items`, `tracking_total_prefixes`.
    pub(crate) fn totals(&self) -> (usize, usize, usize) {
        (self.keys.len(), self.items, self.prefixes.len())
    }

    /// Send `msg` for tracking client `tracker` (`sendTrackingMessage`): to it, or to its
    /// redirect target; a gone target marks the redirect broken and tells the client.
    /// `after`: the running command is over (its own messages follow its reply).
    fn send(&mut self, tracker: u64, msg: Msg, clients: &Clients, after: bool) {
        let Some(t) = self.trackers.get_mut(&tracker) else {
            return;
        };
        if t.redirect == 0 {
            let d = Delivery::Invalidate {
                msg,
                redirected: false,
            };
            self.deliver(tracker, d, clients, after);
            return;
        }
        let target = t.redirect;
        if !clients.exists(target) {
            t.broken = true;
            self.deliver(tracker, Delivery::RedirBroken(target), clients, after);
            return;
        }
        let d = Delivery::Invalidate {
            msg,
            redirected: true,
        };
        self.deliver(target, d, clients, after);
    }

    fn deliver(&mut self, dest: u64, d: Delivery, clients: &Clients, after: bool) {
        if self.current == Some((dest, true)) {
            if after {
                self.after.push(d);
            } else {
                self.before.push(d);
            }
            return;
        }
        let size = d.size();
        if let Some(mail) = clients.mailbox(dest) {
            mail.track(d, size);
        }
    }
}

impl super::node::NodeState {
    /// Have the keyspace report its changes only while tracking is active.
    pub(crate) fn sync_tracking(&mut self) {
        let active = self.tracking.active();
        self.db.set_track(active);
    }

    /// Turn the changes the keyspace reported into invalidations; `writer`: the client whose
    /// command made them. A single branch when nobody tracks.
    pub(crate) fn invalidate_changed(&mut self, clients: &Clients, writer: Option<u64>) {
        if !self.db.tracks() {
            return;
        }
        for change in self.db.take_changed() {
            match change {
                Changed::Key(k) => self.tracking.invalidate_key(&k, writer, true, clients),
                Changed::Expired(k) => self.tracking.invalidate_key(&k, None, true, clients),
                Changed::Flush => self.tracking.invalidate_all(clients),
            }
        }
        self.sync_tracking();
    }

    /// Before the node lock is released: the changes nobody claimed, then the BCAST
    /// messages due (Redis sends those once per event-loop turn).
    pub(crate) fn settle_tracking(&mut self, clients: &Clients) {
        if !self.db.tracks() {
            return;
        }
        self.invalidate_changed(clients, None);
        self.tracking.broadcast(clients);
    }
}

#[cfg(test)]
mod tests;
