//! The cache's memory: shards of records (one per Redis key, holding the cached replies of
//! each read command on it and the reads in flight), a byte and entry budget per shard,
//! sampled-LRU eviction, and every way an entry is dropped.
//!
//! The race between a read's reply and an invalidation is settled by the pending read: a
//! miss registers one (a token) on the key's record before the request is sent; every
//! invalidation of the key removes the record, pending reads included; the reply is stored
//! only if its token is still there, the slot's generation is unchanged (no MOVED or owner
//! change meanwhile) and the connection that served it is still open. All three are checked
//! under the shard lock that the dropping side also takes after flipping its flag, so no
//! order of events lets a stale value in. Concurrent misses for one read join the pending
//! read and get its reply.

use std::hash::BuildHasher;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use tokio::sync::oneshot;

use super::size::{compact, heap_size, ALLOC_OVERHEAD};
use crate::connection::ConnTag;
use crate::resp::Value;

type Hasher = foldhash::fast::RandomState;

/// Per record in the map: the entry (hash, key box, record) and the hash index slots
/// (`usize`, at most 7/8 full, so about 1.15 per entry; counted as 2).
const RECORD_FIXED: usize =
    size_of::<(u64, Box<[u8]>, Record)>() + 2 * size_of::<usize>() + 2 * ALLOC_OVERHEAD;
/// Records looked at per eviction (Redis' sampled LRU uses 5).
const SAMPLES: usize = 5;

/// One cached reply.
struct Item {
    /// The read: command name upper-cased, then every argument but the key.
    sig: Box<[u8]>,
    value: Value,
    /// The tracking connection it was read through.
    conn: u64,
    expires: Instant,
}

/// A read in flight for a key (the leader's token) and the callers waiting on it.
struct Pending {
    sig: Box<[u8]>,
    token: u64,
    waiters: Vec<oneshot::Sender<Value>>,
}

/// Everything cached for one Redis key.
struct Record {
    slot: u16,
    /// Shard tick of the last hit or store (sampled LRU).
    used: u64,
    items: Vec<Item>,
    pending: Vec<Pending>,
    /// What [`weigh`] said when it was last charged to the shard.
    bytes: usize,
}

struct Shard {
    map: IndexMap<Box<[u8]>, Record, Hasher>,
    bytes: usize,
    entries: usize,
    tick: u64,
    rng: u64,
}

/// Counters behind `Client::cache_stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) evictions: AtomicU64,
}

/// The cache's memory (see the module doc).
pub(crate) struct Memory {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
    shard_bytes: usize,
    shard_entries: usize,
    ttl: Duration,
    slot_gens: Box<[AtomicU32]>,
    tokens: AtomicU64,
    hasher: Hasher,
    pub(crate) counters: Counters,
    bytes: AtomicUsize,
    entries: AtomicUsize,
}

/// The connection that served a reply, as storing needs it (a [`ConnTag`]; tests fake it).
pub(crate) trait Served {
    /// The connection's id (what the tracking hook's calls name).
    fn id(&self) -> u64;
    /// True once it failed or closed.
    fn is_closed(&self) -> bool;
}

impl Served for ConnTag {
    fn id(&self) -> u64 {
        ConnTag::id(self)
    }
    fn is_closed(&self) -> bool {
        ConnTag::is_closed(self)
    }
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// A cached reply.
    Hit(Value),
    /// Nothing: the caller reads from the server and hands the reply to the ticket.
    Lead(Ticket),
    /// The same read is in flight: its reply arrives here (a closed channel means it was
    /// invalidated or failed: read without the cache).
    Follow(oneshot::Receiver<Value>),
}

/// The leader's right to store one reply; dropping it unfinished withdraws the read.
pub(crate) struct Ticket {
    memory: Arc<Memory>,
    key: Box<[u8]>,
    token: u64,
    slot: u16,
    gen: u32,
    done: bool,
}

/// What a record costs: key, map entry, item list, and each item's signature and value.
fn weigh(key_len: usize, rec: &Record) -> usize {
    if rec.items.is_empty() {
        // A record holding only reads in flight is transient (bounded by the requests in
        // flight) and is not charged.
        return 0;
    }
    RECORD_FIXED
        + key_len
        + rec.items.capacity() * size_of::<Item>()
        + ALLOC_OVERHEAD
        + rec
            .items
            .iter()
            .map(|i| i.sig.len() + ALLOC_OVERHEAD + heap_size(&i.value))
            .sum::<usize>()
}

impl Shard {
    fn rand(&mut self) -> u64 {
        // xorshift64: eviction sampling only needs spread.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

impl Memory {
    /// A cache of at most `max_bytes` and `max_entries`, entries living at most `ttl`.
    pub(crate) fn new(max_bytes: usize, max_entries: usize, ttl: Duration) -> Memory {
        // Small caches get fewer shards, so each shard's budget still holds useful values.
        let n = (max_bytes / (256 * 1024)).clamp(1, 64).next_power_of_two();
        let n = if n > max_bytes / (256 * 1024) && n > 1 {
            n / 2
        } else {
            n
        };
        let hasher = Hasher::default();
        let shards = (0..n)
            .map(|i| {
                Mutex::new(Shard {
                    map: IndexMap::with_hasher(hasher),
                    bytes: 0,
                    entries: 0,
                    tick: 0,
                    rng: 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
                })
            })
            .collect();
        Memory {
            shards,
            mask: n - 1,
            shard_bytes: max_bytes / n,
            shard_entries: max_entries.div_ceil(n).max(1),
            ttl,
            slot_gens: (0..usize::from(crate::slot::SLOT_COUNT))
                .map(|_| AtomicU32::new(0))
                .collect(),
            tokens: AtomicU64::new(1),
            hasher,
            counters: Counters::default(),
            bytes: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
        }
    }

    /// Bytes charged now (never above `max_bytes`).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Replies cached now.
    pub(crate) fn entries(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    fn shard(&self, key: &[u8]) -> (usize, MutexGuard<'_, Shard>) {
        let i = (self.hasher.hash_one(key) >> 40) as usize & self.mask;
        (i, lock(&self.shards[i]))
    }

    /// Look `sig` on `key` up: a hit, or lead or join the read for it.
    pub(crate) fn lookup(self: &Arc<Self>, key: &[u8], sig: &[u8], slot: u16) -> Lookup {
        let (_, mut guard) = self.shard(key);
        let shard = &mut *guard;
        shard.tick += 1;
        let tick = shard.tick;
        if let Some(rec) = shard.map.get_mut(key) {
            if let Some(i) = rec.items.iter().position(|it| &*it.sig == sig) {
                if rec.items[i].expires > Instant::now() {
                    rec.used = tick;
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Hit(rec.items[i].value.clone());
                }
                rec.items.swap_remove(i);
                self.count_entries(shard, 0, 1);
                self.recharge(shard, key);
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let rec = shard.map.entry(key.into()).or_insert_with(|| Record {
            slot,
            used: tick,
            items: Vec::new(),
            pending: Vec::new(),
            bytes: 0,
        });
        if let Some(p) = rec.pending.iter_mut().find(|p| &*p.sig == sig) {
            let (tx, rx) = oneshot::channel();
            p.waiters.push(tx);
            return Lookup::Follow(rx);
        }
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        rec.pending.push(Pending {
            sig: sig.into(),
            token,
            waiters: Vec::new(),
        });
        Lookup::Lead(Ticket {
            memory: self.clone(),
            key: key.into(),
            token,
            slot,
            gen: self.slot_gens[usize::from(slot)].load(Ordering::SeqCst),
            done: false,
        })
    }

    /// Re-weigh `key`'s record after a change, and forget it once it holds nothing.
    fn recharge(&self, shard: &mut Shard, key: &[u8]) {
        let Some(i) = shard.map.get_index_of(key) else {
            return;
        };
        let (k, rec) = shard.map.get_index_mut(i).expect("index just found");
        let new = weigh(k.len(), rec);
        let old = std::mem::replace(&mut rec.bytes, new);
        let empty = rec.items.is_empty() && rec.pending.is_empty();
        self.charge(shard, old, new);
        if empty {
            shard.map.swap_remove_index(i);
        }
    }

    fn charge(&self, shard: &mut Shard, old: usize, new: usize) {
        shard.bytes = shard.bytes + new - old;
        if new >= old {
            self.bytes.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.bytes.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    fn count_entries(&self, shard: &mut Shard, added: usize, removed: usize) {
        shard.entries = shard.entries + added - removed;
        self.entries.fetch_add(added, Ordering::Relaxed);
        self.entries.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Remove the record at `i` whole (its pending reads' waiters learn by a closed
    /// channel); returns the replies it held.
    fn remove_at(&self, shard: &mut Shard, i: usize) -> usize {
        let Some((_, rec)) = shard.map.swap_remove_index(i) else {
            return 0;
        };
        let n = rec.items.len();
        self.charge(shard, rec.bytes, 0);
        self.count_entries(shard, 0, n);
        n
    }

    /// Store the leader's reply if nothing invalidated it meanwhile; hand it to the
    /// followers either way (when they are still there).
    fn finish(&self, t: &Ticket, value: &Value, conn: Option<&dyn Served>) -> bool {
        let (_, mut guard) = self.shard(&t.key);
        let shard = &mut *guard;
        let Some(rec) = shard.map.get_mut(&*t.key) else {
            return false;
        };
        let Some(p) = rec.pending.iter().position(|p| p.token == t.token) else {
            return false;
        };
        let p = rec.pending.swap_remove(p);
        for w in p.waiters {
            let _ = w.send(value.clone());
        }
        let valid = conn.is_some_and(|c| !c.is_closed())
            && self.slot_gens[usize::from(t.slot)].load(Ordering::SeqCst) == t.gen
            && !matches!(value, Value::Error(_) | Value::Push(_));
        if !valid {
            self.recharge(shard, &t.key);
            return false;
        }
        let item = Item {
            sig: p.sig,
            value: compact(value),
            conn: conn.map_or(0, |c| c.id()),
            expires: Instant::now() + self.ttl,
        };
        let replaced = match rec.items.iter().position(|i| i.sig == item.sig) {
            Some(i) => {
                rec.items[i] = item;
                true
            }
            None => {
                // Most keys hold one read: no spare capacity (it would be charged).
                rec.items.reserve_exact(1);
                rec.items.push(item);
                false
            }
        };
        shard.tick += 1;
        rec.used = shard.tick;
        // Weighed before it is charged: room is made first, so the charged total never goes
        // over the budget, not even for a moment.
        let new = weigh(t.key.len(), rec);
        let extra = new.saturating_sub(rec.bytes);
        self.count_entries(shard, usize::from(!replaced), 0);
        if new > self.shard_bytes {
            // Too big for the shard on its own: not kept.
            if let Some(i) = shard.map.get_index_of(&*t.key) {
                let n = self.remove_at(shard, i);
                self.counters
                    .evictions
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            return false;
        }
        self.evict(shard, &t.key, extra);
        self.recharge(shard, &t.key);
        true
    }

    /// Evict sampled least-recently-used records, never `keep` (the record being stored),
    /// until `extra` more bytes fit and the entries are within their budget.
    fn evict(&self, shard: &mut Shard, keep: &[u8], extra: usize) {
        while shard.bytes + extra > self.shard_bytes || shard.entries > self.shard_entries {
            let len = shard.map.len();
            let mut victim: Option<(usize, u64)> = None;
            for _ in 0..SAMPLES {
                let i = (shard.rand() % len as u64) as usize;
                let (k, r) = shard.map.get_index(i).expect("index below len");
                if r.items.is_empty() || &**k == keep {
                    continue;
                }
                if victim.map_or(true, |(_, used)| r.used < used) {
                    victim = Some((i, r.used));
                }
            }
            let i = match victim {
                Some((i, _)) => i,
                // Samples all missed: the first charged record from a random start.
                None => {
                    let start = (shard.rand() % len as u64) as usize;
                    match (0..len).map(|o| (start + o) % len).find(|&i| {
                        let (k, r) = shard.map.get_index(i).expect("index below len");
                        r.bytes > 0 && &**k != keep
                    }) {
                        Some(i) => i,
                        None => break,
                    }
                }
            };
            let n = self.remove_at(shard, i);
            self.counters
                .evictions
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Drop everything cached for `key` (an invalidation, or this client's write).
    pub(crate) fn invalidate_key(&self, key: &[u8]) {
        let (_, mut guard) = self.shard(key);
        if let Some(i) = guard.map.get_index_of(key) {
            let n = self.remove_at(&mut guard, i);
            self.counters
                .invalidations
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Drop, in every shard, the replies `drop_item` picks and the records `drop_record`
    /// picks (their reads in flight too); every read in flight as well with `all_pending`.
    fn sweep(
        &self,
        drop_record: impl Fn(&Record) -> bool,
        drop_item: impl Fn(&Item) -> bool,
        all_pending: bool,
    ) -> usize {
        let mut dropped = 0;
        for s in self.shards.iter() {
            let mut guard = lock(s);
            let shard = &mut *guard;
            let mut i = 0;
            while i < shard.map.len() {
                let rec = &mut shard.map[i];
                if drop_record(rec) {
                    dropped += self.remove_at(shard, i);
                    continue;
                }
                let before = rec.items.len();
                rec.items.retain(|it| !drop_item(it));
                if all_pending {
                    rec.pending.clear();
                }
                let gone = before - rec.items.len();
                let key_len = shard.map.get_index(i).map_or(0, |(k, _)| k.len());
                let rec = &mut shard.map[i];
                let new = weigh(key_len, rec);
                let old = std::mem::replace(&mut rec.bytes, new);
                let empty = rec.items.is_empty() && rec.pending.is_empty();
                self.charge(shard, old, new);
                self.count_entries(shard, 0, gone);
                dropped += gone;
                if empty {
                    shard.map.swap_remove_index(i);
                } else {
                    i += 1;
                }
            }
        }
        dropped
    }

    /// A null invalidation on connection `conn` (its node flushed, or its tracking table
    /// overflowed): drop what was read through it, and every read in flight.
    pub(crate) fn flush_conn(&self, conn: u64) {
        let n = self.sweep(|_| false, |it| it.conn == conn, true);
        self.counters
            .invalidations
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Connection `conn` closed: what was read through it may miss invalidations from now
    /// on. (Reads in flight on it are refused at store time: it is already marked closed.)
    pub(crate) fn drop_conn(&self, conn: u64) {
        let n = self.sweep(|_| false, |it| it.conn == conn, false);
        self.counters
            .invalidations
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// These slots changed owner: drop their keys, and make replies in flight for them
    /// unstorable.
    pub(crate) fn drop_slots(&self, slots: &[u16]) {
        if slots.is_empty() {
            return;
        }
        let mut hit = vec![false; usize::from(crate::slot::SLOT_COUNT)];
        for &s in slots {
            self.slot_gens[usize::from(s)].fetch_add(1, Ordering::SeqCst);
            hit[usize::from(s)] = true;
        }
        let n = self.sweep(|r| hit[usize::from(r.slot)], |_| false, false);
        self.counters
            .invalidations
            .fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Ticket {
    /// Hand the reply over: stored when still valid (see the module doc), given to the
    /// followers. `conn` is the tracking connection that served it (`None`: not stored).
    pub(crate) fn finish(mut self, value: &Value, conn: Option<&dyn Served>) -> bool {
        self.done = true;
        self.memory.finish(&self, value, conn)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Failed or cancelled: withdraw the read; followers see a closed channel.
        let (_, mut guard) = self.memory.shard(&self.key);
        let shard = &mut *guard;
        if let Some(rec) = shard.map.get_mut(&*self.key) {
            rec.pending.retain(|p| p.token != self.token);
            self.memory.recharge(shard, &self.key);
        }
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic under this lock leaves at worst a record miscounted: use it as is.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
