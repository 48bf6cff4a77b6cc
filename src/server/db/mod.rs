//! One node's keyspace: every data type, expiry, and what replicas must replay.
//!
//! The engine is pure: no sockets, no async. The network layer holds a [`Db`] under a
//! `std::sync::Mutex` (nothing here waits) and calls [`Db::execute`] with the command's
//! arguments. Replies are [`Value`]s shaped like Redis 7.0 shapes them for the client's
//! protocol ([`ExecCtx::resp3`]); error replies carry Redis' exact text.
//!
//! - Layout: an `IndexMap` from [`Key`] (names up to 22 bytes inline) to [`Entry`] (value,
//!   absolute expiry, version), a per-slot list of map positions touched only when a key is
//!   created or deleted (so `CLUSTER COUNTKEYSINSLOT`/`GETKEYSINSLOT` and the slot-ordered
//!   `SCAN` cursor are cheap; 4 bytes a key, each entry knowing its place in its list), and a
//!   TTL index ordered by expiry time (so active expiry is exact and cheap). Memory per key
//!   is what this layout is for: see BENCHMARKS.md, "Memory per key".
//! - Expiry: lazy on access, plus [`Db::active_expire`]. A primary deletes expired keys and
//!   queues a `DEL`; a replica never deletes on its own: client reads see expired keys as
//!   missing, while the primary's stream (write commands on a replica) still sees them.
//! - Propagation ([`Db::take_propagation`]): every change, in order, with relative or random
//!   effects rewritten into deterministic commands as Redis does (`EX` -> `PXAT`, `EXPIRE` ->
//!   `PEXPIREAT`, `INCRBYFLOAT` -> `SET .. KEEPTTL`, `SPOP` -> `SREM`, expiry -> `DEL`). A command
//!   that changed nothing propagates nothing. Reads can propagate too (a lazily expired key's
//!   `DEL`), so callers take the queue after every call.
//! - `WATCH` support: [`Db::version_of`] changes on every real modification of a key.
//! - SCAN cursor = next hash slot to scan: whole slots are returned until `COUNT` keys were
//!   examined, so a key present for the whole scan is always returned exactly once.
//!
//! Files: `util` (argument parsing, shared errors), one file per
//! type family (`strings`, `bits`, `bitfield`, `lcs`, `keys`, `sort`, `hash`, `list`, `set`,
//! `zset`, `zrange`, `zstore`, `geo`, `hll`), streams (`stream` the type and its node model,
//! `stream_codec` its encoding, `xcmd`, `xread`, `xgroup`, `xclaim` the commands),
//! `glob` (KEYS/MATCH patterns), `changes` (key changes reported for CLIENT TRACKING), `housekeeping` (active expiry, counts, flush, slot contents), `snapshot` (full-resync and DUMP encodings), `blocking` (the
//! data side of BLPOP & co: [`Db::block_spec`], [`Db::try_serve_blocking`]).

pub(crate) mod bitfield;
pub(crate) mod bits;
mod blocking;
mod changes;
pub(crate) mod geo;
mod geohash;
pub(crate) mod glob;
pub(crate) mod hash;
pub(crate) mod hll;
mod housekeeping;
mod key;
pub(crate) mod keys;
pub(crate) mod lcs;
pub(crate) mod list;
mod memory;
pub(crate) mod set;
mod snapshot;
pub(crate) mod sort;
mod stream;
mod stream_codec;
pub(crate) mod strings;
mod util;
mod wire;
pub(crate) mod xclaim;
pub(crate) mod xcmd;
pub(crate) mod xgroup;
pub(crate) mod xread;
pub(crate) mod zrange;
pub(crate) mod zset;
pub(crate) mod zstore;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};

use crate::resp::Value;
use crate::slot::{key_slot, SLOT_COUNT};

pub(crate) use blocking::{BlockSpec, Pops};
pub(crate) use changes::Changed;
pub(crate) use glob::matches as glob_match;
pub(crate) use key::Key;
pub(crate) use zset::ZSet;

/// A keyspace command's implementation (registered in the server's command table).
pub(crate) type DbCommand = fn(&mut Db, &[Bytes], &ExecCtx) -> Value;

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
    /// A hash; insertion order is kept, as Redis' small (listpack) hashes keep it. Boxed,
    /// as sets are, so a string key's entry is not as large as a map's header.
    Hash(Box<IndexMap<Bytes, Bytes>>),
    /// A list.
    List(VecDeque<Bytes>),
    /// A set; insertion order kept so random picks are O(1).
    Set(Box<IndexSet<Bytes>>),
    /// A sorted set.
    Zset(Box<ZSet>),
    /// A stream (boxed: it is large and rare).
    Stream(Box<stream::Stream>),
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
            Data::Stream(_) => "stream",
        }
    }
}

/// One key's value and metadata.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The value.
    pub(crate) data: Data,
    /// Absolute expiry (ms since the epoch), 0 for a persistent key (8 bytes where an
    /// `Option` takes 16): read it with [`Entry::expire_at`].
    expiry: u64,
    /// Changes on every modification, so `WATCH` can tell whether the key was touched.
    pub(crate) version: u64,
    /// Where this key's map position sits in its slot's list (`Db::slots`).
    slot_pos: u32,
}

impl Entry {
    fn new(data: Data, expire_at: Option<u64>, version: u64) -> Entry {
        let mut e = Entry {
            data,
            expiry: 0,
            version,
            slot_pos: 0,
        };
        e.set_expire_at(expire_at);
        e
    }

    /// Absolute expiry (ms since the epoch), `None` for a persistent key.
    #[inline]
    pub(crate) fn expire_at(&self) -> Option<u64> {
        (self.expiry != 0).then_some(self.expiry)
    }

    /// An expiry at the epoch itself is kept as 1 ms after it: both are long past.
    fn set_expire_at(&mut self, t: Option<u64>) {
        self.expiry = t.map_or(0, |t| t.max(1));
    }
}

/// A node's keyspace. `Clone` is the point-in-time snapshot replication ships (values are
/// reference-counted `Bytes`, so cloning copies the maps but not the payloads).
#[derive(Clone, Debug)]
pub(crate) struct Db {
    /// Key -> entry. An `IndexMap` so a lookup hashes once and later steps use the index, and
    /// so `RANDOMKEY` is O(1).
    map: IndexMap<Key, Entry>,
    /// Map positions of the keys of each hash slot; maintained on create and delete only
    /// (a delete moves the map's last entry into the freed position: both lists follow).
    slots: Vec<Vec<u32>>,
    /// Map positions of the keys with a TTL, ordered by expiry time: active expiry pops from
    /// the front. 16 bytes an element where a key name took 32 (a map move is written back,
    /// as for the slot lists).
    ttls: BTreeSet<(u64, u32)>,
    next_version: u64,
    replica: bool,
    /// True while a replica runs a write command (necessarily from its primary's stream):
    /// expired keys stay visible to it, as Redis does for its master client.
    from_primary: bool,
    propagate: Vec<Vec<Bytes>>,
    /// Counts changes (every propagated command, recorded or not): a command that changed
    /// nothing leaves it alone.
    pub(super) changes: u64,
    /// Keys opened for writing by the running command, with their versions before.
    pub(super) touched: Vec<(Key, u64)>,
    /// Keys deleted because they expired (INFO expired_keys).
    expired_keys: u64,
    /// Somebody tracks keys on the node (`CLIENT TRACKING`): changes are listed in
    /// `changed` for the node to turn into invalidations.
    track: bool,
    /// What changed since the node last took the list (only while `track`).
    changed: Vec<Changed>,
    /// Set while expired keys are deleted (reported as [`Changed::Expired`]).
    expiring: bool,
}

/// `b` in an allocation of its own when it is small (see [`Db::run`]).
fn own_copy(b: &Bytes) -> Bytes {
    if b.len() < 32 * 1024 {
        Bytes::copy_from_slice(b)
    } else {
        b.clone()
    }
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
            map: IndexMap::new(),
            slots: vec![Vec::new(); SLOT_COUNT as usize],
            ttls: BTreeSet::new(),
            next_version: 1,
            replica: false,
            from_primary: false,
            propagate: Vec::new(),
            changes: 0,
            touched: Vec::new(),
            expired_keys: 0,
            track: false,
            changed: Vec::new(),
            expiring: false,
        }
    }

    /// Run a data command: `command` is its handler (from the server's registry), `args[0]`
    /// its name. The caller has checked arity (handlers index the arguments it guarantees)
    /// and slot ownership. Errors are `Value::Error` replies with Redis' text. Writes queue
    /// what replicas must replay (see [`Db::take_propagation`]).
    pub(crate) fn run(&mut self, command: DbCommand, args: &[Bytes], ctx: &ExecCtx) -> Value {
        let write = args
            .first()
            .and_then(|name| crate::command::lookup(name))
            .is_some_and(|spec| spec.is_write());
        if self.replica {
            self.from_primary = write;
        }
        // What a write stores must not pin the buffer the request was read into (a slice
        // keeps the whole allocation alive: a 16 KiB read for one 64-byte key that outlives
        // its neighbours): small arguments get exact-size copies, as Redis builds its own
        // objects; big ones (Redis' 32 KiB PROTO_MBULK_BIG_ARG) are most of their buffer.
        let owned: Vec<Bytes>;
        let args = if write {
            owned = args.iter().map(own_copy).collect();
            &owned[..]
        } else {
            args
        };
        let changes_before = self.changes;
        let reply = command(self, args, ctx);
        self.from_primary = false;
        if !self.touched.is_empty() {
            self.settle_versions(changes_before);
        }
        reply
    }

    /// After a command: a key it opened for writing but did not change (nothing was
    /// propagated, e.g. `SREM` of an absent member, an `LSET` out of range) gets its old
    /// version back, so `WATCH` only sees real modifications, as in Redis.
    pub(super) fn settle_versions(&mut self, changes_before: u64) {
        let unchanged = self.changes == changes_before;
        // Newest first, so a key opened twice ends with its version from before the command.
        for (k, v) in std::mem::take(&mut self.touched).into_iter().rev() {
            if unchanged {
                if let Some(e) = self.map.get_mut(&k) {
                    e.version = v;
                }
            }
        }
    }

    /// The commands replicas must apply, in order, since the last call.
    pub(crate) fn take_propagation(&mut self) -> Vec<Vec<Bytes>> {
        std::mem::take(&mut self.propagate)
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

    /// A number that changes whenever `key` is modified, deleted, expired or created; 0 when
    /// the key is absent (or logically expired) at `now_ms`.
    pub(crate) fn version_of(&self, key: &[u8], now_ms: u64) -> u64 {
        match self.map.get(key) {
            Some(e) if !e.expire_at().is_some_and(|t| t <= now_ms) => e.version,
            _ => 0,
        }
    }

    // ---- internal helpers shared by the command modules ----

    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    pub(super) fn push_prop(&mut self, cmd: Vec<Bytes>) {
        self.changes += 1;
        if self.track {
            self.note_changed(&cmd);
        }
        self.propagate.push(cmd);
    }

    /// Queue the command exactly as received.
    pub(super) fn prop_args(&mut self, args: &[Bytes]) {
        self.changes += 1;
        if self.track {
            self.note_changed(args);
        }
        self.propagate.push(args.to_vec());
    }

    /// Whether `key` exists but is past its expiry at `now` (a replica keeps such keys hidden
    /// from clients).
    pub(super) fn is_logically_expired(&self, key: &[u8], now: u64) -> bool {
        !self.from_primary
            && self
                .map
                .get(key)
                .is_some_and(|e| e.expire_at().is_some_and(|t| t <= now))
    }

    /// Index of `key` if it is live for this access. An expired key is deleted (with a `DEL`
    /// queued) on a primary, hidden on a replica serving a client, and visible to a replica
    /// running its primary's stream.
    fn live_index(&mut self, key: &[u8], now: u64) -> Option<usize> {
        let (i, _, e) = self.map.get_full(key)?;
        match e.expire_at() {
            Some(t) if t <= now && !self.from_primary => {
                if !self.replica {
                    let removed = self.remove_expired(i);
                    if let Some((k, _)) = removed {
                        self.push_prop(vec![Bytes::from_static(b"DEL"), k.to_bytes()]);
                        self.expired_keys += 1;
                    }
                }
                None
            }
            _ => Some(i),
        }
    }

    /// The live entry at `key` for reading.
    #[inline]
    pub(super) fn read(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        let i = self.live_index(key, now)?;
        self.map.get_index(i).map(|(_, e)| e)
    }

    /// The live entry at `key` for modification; bumps its version. On a replica (which only
    /// writes what its primary streams) expiry is ignored, as Redis does for its master client.
    #[inline]
    pub(super) fn write(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let i = if self.replica {
            self.map.get_index_of(key)?
        } else {
            self.live_index(key, now)?
        };
        let v = self.bump();
        let (k, e) = self.map.get_index_mut(i)?;
        self.touched.push((k.clone(), e.version));
        e.version = v;
        Some(e)
    }

    /// Whether a live key exists (lazily expiring it).
    pub(super) fn exists(&mut self, key: &[u8], now: u64) -> bool {
        self.live_index(key, now).is_some()
    }

    /// Store `data` at `key`, replacing any value; `expire_at` is the new TTL (callers pass the
    /// old one to keep it). The key bytes are copied when the key is new so no network buffer
    /// is pinned by the keyspace.
    pub(super) fn insert(&mut self, key: &[u8], data: Data, expire_at: Option<u64>) {
        let version = self.bump();
        let mut new = Entry::new(data, expire_at, version);
        // Stored as it will read back (an expiry at 0 is kept as 1).
        let expire_at = new.expire_at();
        if let Some((i, _, e)) = self.map.get_full_mut(key) {
            let old_ttl = e.expire_at();
            new.slot_pos = e.slot_pos;
            *e = new;
            self.move_ttl(i as u32, old_ttl, expire_at);
            return;
        }
        let owned = Key::new(key);
        let list = &mut self.slots[key_slot(key) as usize];
        new.slot_pos = list.len() as u32;
        // A new key is appended to the map: its position is the current length.
        let i = self.map.len() as u32;
        list.push(i);
        self.move_ttl(i, None, expire_at);
        self.map.insert(owned, new);
    }

    /// Change the TTL of an existing key (no-op when absent).
    pub(super) fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>) {
        let v = self.bump();
        let Some((i, _, e)) = self.map.get_full_mut(key) else {
            return;
        };
        e.version = v;
        let old = e.expire_at();
        e.set_expire_at(expire_at);
        let new = e.expire_at();
        self.move_ttl(i as u32, old, new);
    }

    /// The TTL index entry of map position `i` goes from `old` to `new` expiry.
    fn move_ttl(&mut self, i: u32, old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        if let Some(t) = old {
            self.ttls.remove(&(t, i));
        }
        if let Some(t) = new {
            self.ttls.insert((t, i));
        }
    }

    /// Delete `key` (whatever its expiry), returning the entry.
    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let i = self.map.get_index_of(key)?;
        self.remove_index(i).map(|(_, e)| e)
    }

    /// Delete the entry at map position `i` and drop it from the slot and TTL indexes. The
    /// map moves its last entry into position `i` and the slot list moves its last position
    /// into the freed place: both moves are written back, so every list entry, every TTL
    /// index entry and every `slot_pos` stays true.
    fn remove_index(&mut self, i: usize) -> Option<(Key, Entry)> {
        let last = self.map.len().checked_sub(1)? as u32;
        let (k, e) = self.map.get_index(i)?;
        let slot = key_slot(k) as usize;
        let pos = e.slot_pos as usize;
        let list = &mut self.slots[slot];
        if list.get(pos) == Some(&(i as u32)) {
            list.swap_remove(pos);
            if let Some(&moved) = list.get(pos) {
                if let Some((_, m)) = self.map.get_index_mut(moved as usize) {
                    m.slot_pos = pos as u32;
                }
            }
        }
        let (k, e) = self.map.swap_remove_index(i)?;
        if self.track {
            let k = k.to_bytes();
            self.changed.push(if self.expiring {
                Changed::Expired(k)
            } else {
                Changed::Key(k)
            });
        }
        if let Some(t) = e.expire_at() {
            self.ttls.remove(&(t, i as u32));
        }
        if let Some((moved_key, m)) = self.map.get_index(i) {
            let moved_slot = key_slot(moved_key) as usize;
            if let Some(p) = self.slots[moved_slot].get_mut(m.slot_pos as usize) {
                *p = i as u32;
            }
            if let Some(t) = m.expire_at() {
                self.ttls.remove(&(t, last));
                self.ttls.insert((t, i as u32));
            }
        }
        Some((k, e))
    }

    /// [`Db::remove_index`] of an expired key.
    fn remove_expired(&mut self, i: usize) -> Option<(Key, Entry)> {
        self.expiring = true;
        let removed = self.remove_index(i);
        self.expiring = false;
        removed
    }

    /// Store the result of a *STORE command at `dst` (no TTL), or delete `dst` when the result
    /// is empty. Returns whether anything changed (what decides propagation).
    pub(super) fn store_result(&mut self, dst: &Bytes, data: Option<Data>, now: u64) -> bool {
        match data {
            Some(d) => {
                self.insert(dst, d, None);
                true
            }
            None => self.exists(dst, now) && self.remove(dst).is_some(),
        }
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

    /// Every stored entry of `slot` (for SCAN and GETKEYSINSLOT).
    pub(super) fn slot_entries(&self, slot: usize) -> impl Iterator<Item = (&Key, &Entry)> {
        self.slots[slot]
            .iter()
            .filter_map(|&i| self.map.get_index(i as usize))
    }

    /// A random stored entry (expired ones included).
    pub(super) fn random_entry(&self) -> Option<(&Key, &Entry)> {
        if self.map.is_empty() {
            return None;
        }
        let i = rand::Rng::gen_range(&mut rand::thread_rng(), 0..self.map.len());
        self.map.get_index(i)
    }

    /// Every stored entry (for snapshots and KEYS).
    pub(super) fn entries(&self) -> impl Iterator<Item = (&Key, &Entry)> {
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

    /// Check the indexes agree with the map (tests only).
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        let in_slots: usize = self.slots.iter().map(Vec::len).sum();
        assert_eq!(in_slots, self.map.len(), "slot index size");
        for (i, (k, e)) in self.map.iter().enumerate() {
            assert_eq!(
                self.slots[key_slot(k) as usize].get(e.slot_pos as usize),
                Some(&(i as u32)),
                "slot index entry"
            );
            if let Some(t) = e.expire_at() {
                assert!(self.ttls.contains(&(t, i as u32)), "ttl index entry");
            }
            let empty = match &e.data {
                Data::Str(_) => false,
                Data::Hash(h) => h.is_empty(),
                Data::List(l) => l.is_empty(),
                Data::Set(s) => s.is_empty(),
                Data::Zset(z) => z.is_empty(),
                Data::Stream(_) => false,
            };
            assert!(!empty, "empty aggregate stored");
        }
        assert_eq!(
            self.ttls.len(),
            self.map
                .values()
                .filter(|e| e.expire_at().is_some())
                .count(),
            "ttl index size"
        );
    }
}
