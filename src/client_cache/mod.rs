//! Client-side caching with server-assisted invalidation (Redis 6+ `CLIENT TRACKING`):
//! [`ClientCache`] configures it, [`ClientBuilder::client_cache`](crate::ClientBuilder::client_cache)
//! turns it on, [`Client::cache_stats`](crate::Client::cache_stats) tells how it does.
//!
//! Every pooled connection (primaries, and replicas under replica reads) runs
//! `CLIENT TRACKING ON` in its handshake (with `BCAST PREFIX ...` or `OPTIN` per
//! [`CacheMode`]); the node then tells that connection, with an `invalidate` push, the moment
//! a key read through it changes, and the entry goes at once. A hit is served from memory:
//! no router, no await.
//!
//! What may have missed an invalidation drops what it cached: a connection that breaks or
//! closes drops every entry read through it; a slot that changes owner (MOVED, a refresh
//! after failover or migration) drops its keys; this client's own writes drop their keys
//! when they complete (whatever the outcome, so `maybe_applied` ones too). Files:
//! `store.rs` (memory, budgets, eviction, the race with invalidations), `size.rs` (what a
//! value costs), `policy.rs` (which reads are cached), `read.rs` (the request path).
//!
//! Key TTLs: the key's own expiry is not fetched with the read. An expiring key is dropped
//! when Redis expires it (the server sends an invalidation then: on access, or within its
//! active-expiry cycle, typically well under a second) and in any case after
//! [`ClientCache::ttl`].

mod policy;
pub(crate) mod read;
mod size;
mod store;

use std::sync::Arc;
use std::time::Duration;

use crate::connection::{Tracking, TrackingHook};
use crate::resp::Value;
use crate::topology::Topology;
pub(crate) use store::Memory;

/// How the nodes decide which keys to report changes of ([`ClientCache::mode`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheMode {
    /// The node remembers each key read through a connection and reports a change of it
    /// once (`CLIENT TRACKING ON`). Costs server memory per key read.
    #[default]
    Default,
    /// The node reports every change of a key under one of `prefixes` to every connection
    /// (`CLIENT TRACKING ON BCAST PREFIX ...`), whether or not it read it: no server memory
    /// per key, more invalidation traffic. Only keys under the prefixes are cached; no prefix
    /// means every key.
    Broadcast {
        /// Key prefixes to cache and be told about.
        prefixes: Vec<String>,
    },
    /// The node tracks only reads preceded by `CLIENT CACHING yes`
    /// (`CLIENT TRACKING ON OPTIN`): the client sends that in front of each cached read, in
    /// the same write, so uncached reads cost the server nothing.
    OptIn,
}

/// Client-side cache settings; pass to
/// [`ClientBuilder::client_cache`](crate::ClientBuilder::client_cache).
///
/// ```no_run
/// # async fn f() -> Result<(), redcluster::Error> {
/// use std::time::Duration;
/// use redcluster::{CacheMode, Client, ClientCache};
/// let client = Client::builder(["127.0.0.1:7000"])
///     .client_cache(
///         ClientCache::new()
///             .max_bytes(16 << 20)
///             .ttl(Duration::from_secs(60))
///             .mode(CacheMode::Default),
///     )
///     .build()
///     .await?;
/// let flags: Option<String> = client.get("feature-flags").await?; // from the server
/// let again: Option<String> = client.get("feature-flags").await?; // from memory
/// # let _ = (flags, again); Ok(()) }
/// ```
///
/// Cached by default (single key each): `GET`, `MGET` (key by key), `GETRANGE`, `SUBSTR`,
/// `STRLEN`, `EXISTS` (one key), `TYPE`, `GETBIT`, `BITCOUNT`, `BITPOS`, `HGET`, `HMGET`,
/// `HGETALL`, `HEXISTS`, `HKEYS`, `HVALS`, `HLEN`, `HSTRLEN`, `LINDEX`, `LLEN`, `LRANGE`,
/// `LPOS`, `SMEMBERS`, `SISMEMBER`, `SMISMEMBER`, `SCARD`, `ZCARD`, `ZCOUNT`, `ZLEXCOUNT`,
/// `ZSCORE`, `ZMSCORE`, `ZRANK`, `ZREVRANK`, `ZRANGE`, `ZRANGEBYSCORE`, `ZRANGEBYLEX`,
/// `ZREVRANGE`, `ZREVRANGEBYSCORE`, `ZREVRANGEBYLEX`, `XLEN`, `GEOPOS`, `GEODIST`,
/// `GEOHASH`: read-only commands on one key whose reply depends only on the key's value (not
/// on time, like `TTL`, or chance, like `SRANDMEMBER`). `client.cmd(..).cached()` opts any
/// other read-only single-key command in; `.uncached()` bypasses the cache.
#[derive(Clone, Debug)]
#[must_use = "a ClientCache does nothing until given to ClientBuilder::client_cache"]
pub struct ClientCache {
    pub(crate) max_bytes: usize,
    pub(crate) max_entries: usize,
    pub(crate) ttl: Duration,
    pub(crate) mode: CacheMode,
}

impl Default for ClientCache {
    fn default() -> ClientCache {
        ClientCache::new()
    }
}

impl ClientCache {
    /// 64 MiB, no entry count limit, entries live at most 10 minutes, [`CacheMode::Default`].
    pub fn new() -> ClientCache {
        ClientCache {
            max_bytes: 64 << 20,
            max_entries: usize::MAX,
            ttl: Duration::from_secs(600),
            mode: CacheMode::Default,
        }
    }

    /// Upper bound on the memory the cache holds: keys, values and bookkeeping, as the
    /// allocator is asked for them plus an estimate of its per-allocation overhead (default
    /// 64 MiB). Least recently used entries are evicted (sampled LRU) to stay under it.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Upper bound on the number of cached replies (default unbounded: `max_bytes` rules).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// Upper bound on how long any entry lives, whatever the server says (default 10
    /// minutes): a safety net should an invalidation ever be lost.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How the nodes track keys for this client (default [`CacheMode::Default`]).
    pub fn mode(mut self, mode: CacheMode) -> Self {
        self.mode = mode;
        self
    }
}

/// What [`Client::cache_stats`](crate::Client::cache_stats) reports (all zero without a
/// cache).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCacheStats {
    /// Reads served from memory.
    pub hits: u64,
    /// Cacheable reads that went to the server (concurrent misses of one read share one
    /// request, each still counted).
    pub misses: u64,
    /// Cached replies dropped because a key changed or may have: invalidation pushes, this
    /// client's writes, broken connections, slots changing owner.
    pub invalidations: u64,
    /// Cached replies dropped to stay within `max_bytes` / `max_entries`.
    pub evictions: u64,
    /// Replies cached now.
    pub entries: u64,
    /// Bytes the cache holds now (never above `max_bytes`).
    pub bytes: u64,
}

/// The running cache: its memory and its mode. The connections' [`TrackingHook`].
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) memory: Arc<Memory>,
    mode: CacheMode,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("entries", &self.entries())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Store {
    pub(crate) fn new(config: &ClientCache) -> Store {
        Store {
            memory: Arc::new(Memory::new(
                config.max_bytes,
                config.max_entries,
                config.ttl,
            )),
            mode: config.mode.clone(),
        }
    }

    /// The handshake's `CLIENT TRACKING ON ...` and this store as its listener.
    pub(crate) fn tracking(self: &Arc<Self>) -> Tracking {
        let mut command: Vec<Vec<u8>> =
            vec![b"CLIENT".to_vec(), b"TRACKING".to_vec(), b"ON".to_vec()];
        match &self.mode {
            CacheMode::Default => {}
            CacheMode::Broadcast { prefixes } => {
                command.push(b"BCAST".to_vec());
                for p in prefixes {
                    command.push(b"PREFIX".to_vec());
                    command.push(p.as_bytes().to_vec());
                }
            }
            CacheMode::OptIn => command.push(b"OPTIN".to_vec()),
        }
        Tracking {
            command: command.into(),
            hook: self.clone(),
        }
    }

    /// True when reads need `CLIENT CACHING yes` in front.
    pub(crate) fn optin(&self) -> bool {
        self.mode == CacheMode::OptIn
    }

    /// True when `key` may be cached under the mode (BCAST: under one of the prefixes).
    pub(crate) fn covers(&self, key: &[u8]) -> bool {
        match &self.mode {
            CacheMode::Broadcast { prefixes } if !prefixes.is_empty() => {
                prefixes.iter().any(|p| key.starts_with(p.as_bytes()))
            }
            _ => true,
        }
    }

    /// MOVED for `slot`: its old owner no longer reports its keys' changes.
    pub(crate) fn drop_slot(&self, slot: u16) {
        self.memory.drop_slots(&[slot]);
    }

    /// A new topology: drop the keys of every slot whose primary changed.
    pub(crate) fn owners_changed(&self, old: &Topology, new: &Topology) {
        let changed: Vec<u16> = (0..crate::slot::SLOT_COUNT)
            .filter(|&s| {
                let o = old.shard_for_slot(s).map(|sh| &sh.primary.addr);
                // Slots never served before hold nothing cached.
                o.is_some() && o != new.shard_for_slot(s).map(|sh| &sh.primary.addr)
            })
            .collect();
        self.memory.drop_slots(&changed);
    }

    /// The figures for `Client::cache_stats`.
    pub(crate) fn stats(&self) -> ClientCacheStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.memory.counters;
        ClientCacheStats {
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            invalidations: c.invalidations.load(Relaxed),
            evictions: c.evictions.load(Relaxed),
            entries: self.memory.entries() as u64,
            bytes: self.memory.bytes() as u64,
        }
    }
}

impl TrackingHook for Store {
    fn invalidate(&self, conn: u64, keys: Option<&[Value]>) {
        match keys {
            Some(keys) => {
                for k in keys {
                    if let Value::BulkString(k) | Value::SimpleString(k) = k {
                        self.memory.invalidate_key(k);
                    }
                }
            }
            None => self.memory.flush_conn(conn),
        }
    }

    fn closed(&self, conn: u64) {
        self.memory.drop_conn(conn);
    }
}
