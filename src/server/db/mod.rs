//! One node's keyspace: every data type, expiry, and what replicas must replay.
//!
//! The engine is pure: no sockets, no async. The network layer holds a [`Db`] under a
//! `std::sync::Mutex` (nothing here waits) and calls [`Db::execute`] with the command's
//! arguments. Replies are [`Value`]s shaped like Redis 7 shapes them for the client's protocol
//! ([`ExecCtx::resp3`]); writes queue what replicas must replay ([`Db::take_propagation`]), with
//! relative or random effects rewritten into deterministic commands the way Redis does.
//!
//! Layout: one `HashMap` from key to [`Entry`] (value, absolute expiry, version) plus a
//! per-slot index of key names, touched only when a key is created or deleted, so
//! `CLUSTER COUNTKEYSINSLOT`/`GETKEYSINSLOT` and the slot-ordered `SCAN` cursor are cheap.

#![allow(dead_code)]

mod glob;
mod hash;
mod keys;
mod list;
mod set;
mod snapshot;
mod strings;
mod table;
mod util;
mod zrange;
mod zset;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};

use crate::resp::Value;
use crate::slot::{key_slot, SLOT_COUNT};

pub(crate) use zset::ZSet;

/// Per-call facts a command needs from the connection that sent it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExecCtx {
    /// The clock (ms since the Unix epoch) used for every expiry decision of this call, so one
    /// command sees one instant.
    pub now_ms: u64,
    /// True when the client speaks RESP3: some replies change shape (pairs instead of flat
    /// arrays), as in Redis 7.
    pub resp3: bool,
}

/// Counters for `INFO keyspace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DbStats {
    /// Keys stored, including expired ones not yet reclaimed (as Redis counts them).
    pub keys: usize,
    /// Keys that carry a TTL.
    pub expires: usize,
}

/// A stored value of one of the supported types.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    /// A string (also what `INCR` works on).
    Str(Bytes),
    /// A hash; insertion order is kept, as Redis' small (listpack) hashes keep it.
    Hash(IndexMap<Bytes, Bytes>),
    /// A list.
    List(VecDeque<Bytes>),
    /// A set; insertion order kept so random picks are O(1).
    Set(IndexSet<Bytes>),
    /// A sorted set.
    Zset(Box<ZSet>),
}

impl Data {
    /// The name `TYPE` replies with.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Data::Str(_) => "string",
            Data::Hash(_) => "hash",
            Data::List(_) => "list",
            Data::Set(_) => "set",
            Data::Zset(_) => "zset",
        }
    }
}

/// One key's value and metadata.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The value.
    pub(crate) data: Data,
    /// Absolute expiry (ms since the epoch), `None` for a persistent key.
    pub(crate) expire_at: Option<u64>,
    /// Changes on every modification, so `WATCH` can tell whether the key was touched.
    pub(crate) version: u64,
}

/// A node's keyspace. `Clone` is the point-in-time snapshot replication ships (values are
/// reference-counted `Bytes`, so cloning copies the maps but not the payloads).
#[derive(Clone, Debug)]
pub(crate) struct Db {
    map: HashMap<Bytes, Entry>,
    /// Key names per hash slot; maintained on create and delete only.
    slots: Vec<HashSet<Bytes>>,
    /// Keys with a TTL (for `INFO keyspace` and to skip active expiry when zero).
    expires: usize,
    next_version: u64,
    replica: bool,
    propagate_on: bool,
    propagate: Vec<Vec<Bytes>>,
    /// Slot at which the next `active_expire` pass resumes.
    expire_cursor: u16,
}

impl Default for Db {
    fn default() -> Db {
        Db::new()
    }
}

impl Db {
    /// An empty keyspace.
    pub(crate) fn new() -> Db {
        Db {
            map: HashMap::new(),
            slots: vec![HashSet::new(); SLOT_COUNT as usize],
            expires: 0,
            next_version: 1,
            replica: false,
            propagate_on: true,
            propagate: Vec::new(),
            expire_cursor: 0,
        }
    }

    /// True when [`Db::execute`] implements the command `name` (any case).
    pub(crate) fn supports(name: &[u8]) -> bool {
        table::lookup(name).is_some()
    }

    /// Run a data command. `args[0]` is the name (any case); the caller has normally checked
    /// arity and slot ownership already (arity is checked again here so nothing can panic).
    /// Errors are `Value::Error` replies with Redis' text. Writes queue what replicas must
    /// replay (see [`Db::take_propagation`]).
    pub(crate) fn execute(&mut self, args: &[Bytes], ctx: &ExecCtx) -> Value {
        let Some(name) = args.first() else {
            return Value::error("ERR empty command");
        };
        let Some((handler, arity)) = table::lookup(name) else {
            return Value::error(format!(
                "ERR unknown command '{}'",
                String::from_utf8_lossy(name)
            ));
        };
        let n = args.len() as i32;
        if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
            return util::wrong_args(name);
        }
        handler(self, args, ctx)
    }

    /// The commands replicas must apply, in order, since the last call.
    pub(crate) fn take_propagation(&mut self) -> Vec<Vec<Bytes>> {
        std::mem::take(&mut self.propagate)
    }

    /// Turn recording of propagation on or off (a primary without replicas need not keep it).
    pub(crate) fn set_propagation(&mut self, on: bool) {
        self.propagate_on = on;
        if !on {
            self.propagate.clear();
        }
    }

    /// Switch replica mode. A replica never deletes expired keys itself (reads treat them as
    /// missing, writes from the primary's stream still see them); it only replays the
    /// primary's `DEL`s.
    pub(crate) fn set_replica(&mut self, replica: bool) {
        self.replica = replica;
    }

    /// Whether this keyspace is in replica mode.
    pub(crate) fn is_replica(&self) -> bool {
        self.replica
    }

    /// Delete up to `max_keys` expired keys (primary only), queueing a `DEL` for each.
    /// Returns how many were deleted.
    pub(crate) fn active_expire(&mut self, now_ms: u64, max_keys: usize) -> usize {
        if self.replica || self.expires == 0 || max_keys == 0 {
            return 0;
        }
        let mut victims = Vec::new();
        // Walk slots from where the last pass stopped; at most one full round per call.
        for _ in 0..SLOT_COUNT {
            let slot = self.expire_cursor as usize;
            for k in &self.slots[slot] {
                if let Some(e) = self.map.get(k) {
                    if e.expire_at.is_some_and(|t| t <= now_ms) {
                        victims.push(k.clone());
                        if victims.len() >= max_keys {
                            break;
                        }
                    }
                }
            }
            if victims.len() >= max_keys {
                break;
            }
            self.expire_cursor = (self.expire_cursor + 1) % SLOT_COUNT;
        }
        for k in &victims {
            self.remove(k);
            self.push_prop(vec![Bytes::from_static(b"DEL"), k.clone()]);
        }
        victims.len()
    }

    /// Number of live keys at `now_ms` (expired keys not yet reclaimed are not counted).
    pub(crate) fn dbsize(&self, now_ms: u64) -> usize {
        if self.expires == 0 {
            return self.map.len();
        }
        self.map
            .values()
            .filter(|e| !e.expire_at.is_some_and(|t| t <= now_ms))
            .count()
    }

    /// Key and TTL counts for `INFO keyspace`.
    pub(crate) fn stats(&self) -> DbStats {
        DbStats {
            keys: self.map.len(),
            expires: self.expires,
        }
    }

    /// Remove every key. Versions keep increasing so `WATCH` sees the flush.
    pub(crate) fn flush(&mut self) {
        self.map.clear();
        for s in &mut self.slots {
            if !s.is_empty() {
                *s = HashSet::new();
            }
        }
        self.expires = 0;
    }

    /// Keys stored in `slot` (expired ones not yet reclaimed included, as in Redis).
    pub(crate) fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.slots.get(slot as usize).map_or(0, HashSet::len)
    }

    /// Up to `count` key names of `slot` (`CLUSTER GETKEYSINSLOT`).
    pub(crate) fn keys_in_slot(&self, slot: u16, count: usize) -> Vec<Bytes> {
        self.slots
            .get(slot as usize)
            .map(|s| s.iter().take(count).cloned().collect())
            .unwrap_or_default()
    }

    /// Delete every key of `slot`; returns how many. Nothing is propagated (the caller decides;
    /// Redis does this when a node loses a slot).
    pub(crate) fn delete_keys_in_slot(&mut self, slot: u16) -> usize {
        let Some(set) = self.slots.get_mut(slot as usize) else {
            return 0;
        };
        let keys = std::mem::take(set);
        for k in &keys {
            if let Some(e) = self.map.remove(k) {
                if e.expire_at.is_some() {
                    self.expires -= 1;
                }
            }
        }
        keys.len()
    }

    /// A number that changes whenever `key` is modified, deleted, expired or created; 0 when
    /// the key is absent (or logically expired) at `now_ms`.
    pub(crate) fn version_of(&self, key: &[u8], now_ms: u64) -> u64 {
        match self.map.get(key) {
            Some(e) if !e.expire_at.is_some_and(|t| t <= now_ms) => e.version,
            _ => 0,
        }
    }

    // ---- internal helpers shared by the command modules ----

    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    pub(super) fn push_prop(&mut self, cmd: Vec<Bytes>) {
        if self.propagate_on {
            self.propagate.push(cmd);
        }
    }

    /// Queue the command exactly as received.
    pub(super) fn prop_args(&mut self, args: &[Bytes]) {
        if self.propagate_on {
            self.propagate.push(args.to_vec());
        }
    }

    /// Whether `key` exists but is past its expiry at `now` (a replica keeps such keys hidden).
    pub(super) fn is_logically_expired(&self, key: &[u8], now: u64) -> bool {
        self.expired(key, now)
    }

    /// Whether `key` exists but is past its expiry at `now` (primary deletes it, replica hides it).
    fn expired(&self, key: &[u8], now: u64) -> bool {
        self.map
            .get(key)
            .is_some_and(|e| e.expire_at.is_some_and(|t| t <= now))
    }

    /// Lazily expire `key` on a primary (deleting it and queueing `DEL`). Returns true when the
    /// key is logically gone (expired), on a primary or a replica.
    fn expire_if_needed(&mut self, key: &[u8], now: u64) -> bool {
        if !self.expired(key, now) {
            return false;
        }
        if !self.replica {
            if let Some((k, _)) = self.remove_entry(key) {
                self.push_prop(vec![Bytes::from_static(b"DEL"), k]);
            }
        }
        true
    }

    /// The live entry at `key` for reading.
    pub(super) fn read(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        if self.expire_if_needed(key, now) {
            return None;
        }
        self.map.get(key)
    }

    /// The live entry at `key` for modification; bumps its version. On a replica (which only
    /// runs its primary's stream) expiry is ignored, as Redis does for its master client.
    pub(super) fn write(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        if !self.replica {
            self.expire_if_needed(key, now);
        }
        let v = self.bump();
        let e = self.map.get_mut(key)?;
        e.version = v;
        Some(e)
    }

    /// Whether a live key exists (lazily expiring it).
    pub(super) fn exists(&mut self, key: &[u8], now: u64) -> bool {
        self.read(key, now).is_some()
    }

    /// Store `data` at `key`, replacing any value; `expire_at` is the new TTL (callers pass the
    /// old one to keep it). The key bytes are copied when the key is new so no network buffer
    /// is pinned by the keyspace.
    pub(super) fn insert(&mut self, key: &Bytes, data: Data, expire_at: Option<u64>) {
        let version = self.bump();
        if expire_at.is_some() {
            self.expires += 1;
        }
        if let Some(e) = self.map.get_mut(key.as_ref()) {
            if e.expire_at.is_some() {
                self.expires -= 1;
            }
            *e = Entry {
                data,
                expire_at,
                version,
            };
            return;
        }
        let owned = Bytes::copy_from_slice(key);
        self.slots[key_slot(key) as usize].insert(owned.clone());
        self.map.insert(
            owned,
            Entry {
                data,
                expire_at,
                version,
            },
        );
    }

    /// Change the TTL of an existing key (no-op when absent).
    pub(super) fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>) {
        let v = self.bump();
        if let Some(e) = self.map.get_mut(key) {
            match (e.expire_at.is_some(), expire_at.is_some()) {
                (false, true) => self.expires += 1,
                (true, false) => self.expires -= 1,
                _ => {}
            }
            e.expire_at = expire_at;
            e.version = v;
        }
    }

    /// Delete `key` (whatever its expiry), returning the entry.
    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_entry(key).map(|(_, e)| e)
    }

    fn remove_entry(&mut self, key: &[u8]) -> Option<(Bytes, Entry)> {
        let (k, e) = self.map.remove_entry(key)?;
        self.slots[key_slot(&k) as usize].remove(&k);
        if e.expire_at.is_some() {
            self.expires -= 1;
        }
        Some((k, e))
    }

    /// Delete `key` if its aggregate value became empty (Redis never stores empty ones).
    pub(super) fn remove_if_empty(&mut self, key: &[u8]) {
        let empty = match self.map.get(key).map(|e| &e.data) {
            Some(Data::Hash(h)) => h.is_empty(),
            Some(Data::List(l)) => l.is_empty(),
            Some(Data::Set(s)) => s.is_empty(),
            Some(Data::Zset(z)) => z.is_empty(),
            _ => false,
        };
        if empty {
            self.remove(key);
        }
    }

    /// All key names of `slot` (for SCAN).
    pub(super) fn slot_keys(&self, slot: usize) -> &HashSet<Bytes> {
        &self.slots[slot]
    }

    /// Every stored entry (for snapshots and KEYS).
    pub(super) fn entries(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter()
    }

    /// The raw entry without expiry checks.
    pub(super) fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// Number of stored entries (expired included).
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
