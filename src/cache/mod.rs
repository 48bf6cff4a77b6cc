//! [`Cache`]: values cached in the cluster with a TTL, configured like Spring's
//! `RedisCacheConfiguration` (feature `serde`).
//!
//! ```no_run
//! # async fn f(client: redcluster::Client) -> Result<(), redcluster::Error> {
//! use std::time::Duration;
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct User { id: u64, name: String, version: u64 }
//!
//! let users = client
//!     .cache::<User>("users")              // keys "users::{id}", JSON values
//!     .ttl(Duration::from_secs(30 * 60))   // the default
//!     .ttl_jitter(0.1)                     // expire between 27 and 33 minutes
//!     .read_your_writes(true);
//! let user: Option<User> = users
//!     .get_or_load(42, || async {
//!         // The source of truth; runs once however many tasks miss key 42 together.
//!         Ok::<_, std::io::Error>(Some(User { id: 42, name: "ada".into(), version: 1 }))
//!     })
//!     .await?;
//! # let _ = user; Ok(()) }
//! ```
//!
//! - Keys are `key_prefix + key`; the prefix defaults to `"{name}::"` as Spring's is
//!   `cacheName::`. Values go through a [`Codec`]: [`JsonCodec`] by default, [`BytesCodec`]
//!   for values that already are bytes.
//! - Entries expire after `ttl` (30 minutes by default), spread by `ttl_jitter` so entries
//!   written together do not all expire (and reload) together.
//! - `cache_nulls` (on by default, as in Spring) stores "no such value" too, so a missing
//!   row is not looked up again on every request until the TTL passes.
//! - [`get_or_load`](Cache::get_or_load) is single-flight within the process: when many
//!   tasks miss the same key at once, the loader runs once and all get its value; a loader
//!   error reaches every waiter and is not cached.
//!
//! # Reading from replicas, and read-your-writes
//! Reads follow the client's [`ReadFrom`] (or the cache's own, [`Cache::read_from`]).
//! Replication is asynchronous, so with `ReplicaPreferred` a `put` followed by a `get` may
//! read a replica that has not applied the `put` yet and return the older value.
//! [`read_your_writes(true)`](Cache::read_your_writes) reads a key from its primary for a
//! short window (2 s by default) after this process wrote or evicted it. The trade-off: those
//! reads load the primaries instead of the replicas; only this process's own writes are
//! covered (another process's write is seen once it has replicated); and a replica that lags
//! by more than the window can still serve the old value. When every read must see every
//! write, read from the primary (`read_from(ReadFrom::Primary)`).

mod codec;
mod flight;
mod ops;

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use codec::{BytesCodec, Codec, JsonCodec};

use crate::client::{Client, ReadFrom};
use flight::{Flights, RecentWrites, Stripes};

/// A cache of `V` values in the cluster; made by [`Client::cache`], configured by its
/// builder-style methods. Cheap to clone: clones share the statistics, the loads in progress
/// and the record of recent writes.
#[must_use = "a cache does nothing until it is used"]
pub struct Cache<V, C = JsonCodec> {
    client: Client,
    settings: Settings,
    codec: Arc<C>,
    shared: Arc<Shared>,
    _values: PhantomData<fn() -> V>,
}

#[derive(Clone, Debug)]
struct Settings {
    name: String,
    prefix: String,
    ttl: Duration,
    jitter: f64,
    cache_nulls: bool,
    read_from: Option<ReadFrom>,
    /// `Some(window)` with read-your-writes on.
    ryw: Option<Duration>,
}

/// State shared by the clones of one cache.
#[derive(Debug, Default)]
struct Shared {
    hits: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    flights: Flights,
    recent: RecentWrites,
    /// Per-key-stripe write generations: puts and evicts bump them, loads check them.
    stripes: Stripes,
}

/// Where [`Cache::get_or_load_origin`]'s value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The cache had it (a cached null included): a hit.
    Cache,
    /// This task ran the loader: a miss.
    Loaded,
    /// Another task's load of the same key, or a write that finished during it: a miss.
    Shared,
}

/// Counters of a [`Cache`] since it was made (shared by its clones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups that found an entry (a cached null included).
    pub hits: u64,
    /// Lookups that found no entry.
    pub misses: u64,
    /// Loader runs of [`Cache::get_or_load`] (one per single-flight group).
    pub loads: u64,
    /// Loader runs that failed.
    pub load_errors: u64,
}

/// How long reads stay on the primary after a write with read-your-writes on.
const DEFAULT_RYW_WINDOW: Duration = Duration::from_secs(2);

impl Client {
    /// A cache named `name` of `V` values (JSON by default): keys `"{name}::{key}"`, a
    /// 30-minute TTL, nulls cached, reads by the client's [`ReadFrom`]. See
    /// [`Cache`](crate::cache::Cache) for the options.
    pub fn cache<V>(&self, name: &str) -> Cache<V> {
        Cache {
            client: self.clone(),
            settings: Settings {
                name: name.to_string(),
                prefix: format!("{name}::"),
                ttl: Duration::from_secs(30 * 60),
                jitter: 0.0,
                cache_nulls: true,
                read_from: None,
                ryw: None,
            },
            codec: Arc::new(JsonCodec),
            shared: Arc::default(),
            _values: PhantomData,
        }
    }
}

impl<V, C> Clone for Cache<V, C> {
    fn clone(&self) -> Self {
        Cache {
            client: self.client.clone(),
            settings: self.settings.clone(),
            codec: self.codec.clone(),
            shared: self.shared.clone(),
            _values: PhantomData,
        }
    }
}

impl<V, C> fmt::Debug for Cache<V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.settings.name)
            .field("prefix", &self.settings.prefix)
            .field("ttl", &self.settings.ttl)
            .field("ttl_jitter", &self.settings.jitter)
            .field("cache_nulls", &self.settings.cache_nulls)
            .field("read_from", &self.settings.read_from)
            .field("read_your_writes", &self.settings.ryw)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<V, C> Cache<V, C> {
    /// How long an entry lives (default 30 minutes). Zero is treated as 1 ms.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self
    }

    /// The text in front of every key (default `"{name}::"`). Two caches with the same
    /// prefix share entries.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// Store "no such value" when the loader finds nothing (default true, as Spring), so a
    /// missing row is not looked up on every request.
    pub fn cache_nulls(mut self, on: bool) -> Self {
        self.settings.cache_nulls = on;
        self
    }

    /// Spread each entry's TTL uniformly over `ttl × (1 ± fraction)` (default 0; clamped to
    /// 0..=0.9), so entries written together do not expire together.
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.settings.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 0.9)
        } else {
            0.0
        };
        self
    }

    /// Read entries by `read_from` instead of the client's policy.
    pub fn read_from(mut self, read_from: ReadFrom) -> Self {
        self.settings.read_from = Some(read_from);
        self
    }

    /// Read a key from its primary for a short window (2 s) after this process wrote or
    /// evicted it, so a `put` then `get` never returns the older value (see the
    /// [module docs](crate::cache) for the trade-off). Default off.
    pub fn read_your_writes(mut self, on: bool) -> Self {
        self.settings.ryw = on.then_some(DEFAULT_RYW_WINDOW);
        self
    }

    /// Read-your-writes with a window of `window` (longer covers more replica lag, and
    /// sends more reads to the primaries).
    pub fn read_your_writes_window(mut self, window: Duration) -> Self {
        self.settings.ryw = Some(window);
        self
    }

    /// Store values with `codec` instead of JSON (e.g. [`BytesCodec`] for `Bytes` values).
    pub fn codec<C2: Codec<V>>(self, codec: C2) -> Cache<V, C2> {
        Cache {
            client: self.client,
            settings: self.settings,
            codec: Arc::new(codec),
            shared: self.shared,
            _values: PhantomData,
        }
    }

    /// The key stored in Redis for `key`.
    pub fn full_key(&self, key: impl fmt::Display) -> String {
        format!("{}{key}", self.settings.prefix)
    }

    /// Hits, misses, loads and load errors so far.
    pub fn stats(&self) -> CacheStats {
        let s = &self.shared;
        CacheStats {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            loads: s.loads.load(Ordering::Relaxed),
            load_errors: s.load_errors.load(Ordering::Relaxed),
        }
    }
}
