//! The cache's operations: get, put, evict, clear, get_or_load.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::codec::NULL_MARKER;
use super::flight::{self, Role};
use super::{Cache, Codec, Origin};
use crate::client::ReadFrom;
use crate::error::{Error, ErrorKind};
use crate::scan::{ScanCursor, ScanOptions};

/// What a lookup found.
enum Found<V> {
    Miss,
    Null,
    Value(V),
}

impl<V, C: Codec<V>> Cache<V, C> {
    /// The cached value of `key`: `None` when there is no entry or a cached null.
    ///
    /// # Errors
    /// The cluster's errors; [`ErrorKind::Decode`] for an entry the codec cannot read.
    pub async fn get(&self, key: impl Display) -> Result<Option<V>, Error> {
        match self.lookup(&self.full_key(key), None, true).await? {
            Found::Value(v) => Ok(Some(v)),
            Found::Null | Found::Miss => Ok(None),
        }
    }

    /// Store `value` for `key` with the cache's TTL (and jitter).
    ///
    /// # Errors
    /// The cluster's errors; [`ErrorKind::Decode`] when the codec cannot encode `value`.
    pub async fn put(&self, key: impl Display, value: &V) -> Result<(), Error> {
        let bytes = self.codec.encode(value)?;
        let full = self.full_key(key);
        let mut generation = self.shared.stripes.of(&full).lock().await;
        let r = self.store(&full, bytes).await;
        // Even after an error: the write may have been applied, and a load that started
        // before it must not store over it.
        *generation += 1;
        r
    }

    /// Remove `key`'s entry; true when there was one.
    ///
    /// # Errors
    /// The cluster's errors.
    pub async fn evict(&self, key: impl Display) -> Result<bool, Error> {
        let full = self.full_key(key);
        let mut generation = self.shared.stripes.of(&full).lock().await;
        let r: Result<i64, Error> = self.client.cmd("DEL").arg(&full).query().await;
        *generation += 1;
        drop(generation);
        self.mark_written(&full);
        Ok(r? > 0)
    }

    /// Remove every entry of the cache (every key with its prefix, on every primary, by the
    /// cluster SCAN); returns how many were removed. Entries written while it runs may
    /// survive.
    ///
    /// # Errors
    /// The cluster's errors; keys removed before the error stay removed.
    pub async fn clear(&self) -> Result<u64, Error> {
        let opts =
            ScanOptions::matching(&format!("{}*", glob_escape(&self.settings.prefix))).count(500);
        let mut cursor = ScanCursor::new();
        let mut removed = 0u64;
        while !cursor.is_finished() {
            let (keys, next) = self.client.scan_page(&cursor, &opts).await?;
            if !keys.is_empty() {
                let n: u64 = self.client.cmd("UNLINK").args(&keys).query().await?;
                removed += n;
            }
            cursor = next;
        }
        self.shared.stripes.bump_all().await;
        if self.settings.ryw.is_some() {
            self.shared.recent.mark_all();
        }
        Ok(removed)
    }

    /// The cached value of `key`, or else `loader`'s, which is then cached.
    ///
    /// When many tasks of this process miss `key` at once, `loader` runs once and every
    /// one gets its value (single flight; if the loading task is cancelled, a waiting one
    /// takes over). `Ok(None)` from the loader is cached as a null when `cache_nulls` is on.
    /// An entry the codec cannot read (a changed type) counts as a miss and is replaced.
    /// A [`put`](Cache::put) or [`evict`](Cache::evict) of the key by this process that
    /// finishes while the loader runs wins: the loaded value (maybe read before that write)
    /// is not stored over it.
    ///
    /// # Errors
    /// The cluster's errors while looking up (the caller decides whether to bypass the
    /// cache); [`ErrorKind::Load`] with the loader's error as `source()`, given to every
    /// waiting task and not cached. A failure to store the loaded value is logged, not
    /// returned: the value itself is good.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: impl Display,
        loader: F,
    ) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.get_or_load_origin(key, loader).await.map(|(v, _)| v)
    }

    /// [`get_or_load`](Cache::get_or_load), also saying where the value came from (for an
    /// `x-cache: hit|miss` header, or metrics).
    ///
    /// # Errors
    /// As [`get_or_load`](Cache::get_or_load).
    pub async fn get_or_load_origin<F, Fut, E>(
        &self,
        key: impl Display,
        loader: F,
    ) -> Result<(Option<V>, Origin), Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let full = self.full_key(key);
        let mut loader = Some(loader);
        loop {
            match self.lookup(&full, None, true).await {
                Ok(Found::Value(v)) => return Ok((Some(v), Origin::Cache)),
                Ok(Found::Null) => return Ok((None, Origin::Cache)),
                Ok(Found::Miss) => {}
                Err(e) if e.kind() == ErrorKind::Decode => {
                    tracing::warn!(cache = %self.settings.name, error = %e, "unreadable entry; reloading");
                }
                Err(e) => return Err(e),
            }
            let lead = match self.shared.flights.join_or_lead(&full) {
                Role::Waiter(rx) => match flight::wait(rx).await {
                    Some(outcome) => {
                        return self.value_of_outcome(outcome).map(|v| (v, Origin::Shared))
                    }
                    // The loading task was dropped: look again, maybe lead.
                    None => continue,
                },
                Role::Leader(lead) => lead,
            };
            let stripe = self.shared.stripes.of(&full);
            let generation = *stripe.lock().await;
            // Another task may have loaded and stored it between our miss and now: look
            // again on the primary, which has it as soon as that store was acknowledged.
            // (Not counted: this task's miss already was.)
            match self.lookup(&full, Some(ReadFrom::Primary), false).await {
                Ok(Found::Value(v)) => {
                    // Waiters decode the stored form; re-encoding is cheaper than a GET.
                    lead.finish(self.codec.encode(&v).map(Some));
                    return Ok((Some(v), Origin::Cache));
                }
                Ok(Found::Null) => {
                    lead.finish(Ok(None));
                    return Ok((None, Origin::Cache));
                }
                _ => {}
            }
            let Some(load) = loader.take() else {
                // Unreachable: a leader returns in every branch below.
                return Err(Error::new(ErrorKind::Load, "loader already used"));
            };
            self.shared.loads.fetch_add(1, Ordering::Relaxed);
            let loaded = match load().await {
                Ok(v) => v,
                Err(e) => {
                    self.shared.load_errors.fetch_add(1, Ordering::Relaxed);
                    let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                    let err = Error::wrapping(
                        ErrorKind::Load,
                        format!("cache {:?}: loader failed: {e}", self.settings.name),
                        e,
                    );
                    lead.finish(Err(err.clone()));
                    return Err(err);
                }
            };
            let encoded = match loaded.as_ref().map(|v| self.codec.encode(v)).transpose() {
                Ok(b) => b,
                Err(e) => {
                    lead.finish(Err(e.clone()));
                    return Err(e);
                }
            };
            // Store and end the flight under the key's write lock, so a put that finished
            // meanwhile is not overwritten, and no task joins this flight after a later put
            // was acknowledged.
            let current = stripe.lock().await;
            if *current != generation {
                // A write of this key (or one sharing its stripe) finished during the load:
                // what it stored is at least as new as what was loaded.
                if let Ok(Found::Value(v)) =
                    self.lookup(&full, Some(ReadFrom::Primary), false).await
                {
                    lead.finish(self.codec.encode(&v).map(Some));
                    return Ok((Some(v), Origin::Shared));
                }
            } else {
                let to_store = match &encoded {
                    Some(b) => Some(b.clone()),
                    None if self.settings.cache_nulls => Some(Bytes::from_static(NULL_MARKER)),
                    None => None,
                };
                if let Some(bytes) = to_store {
                    if let Err(e) = self.store(&full, bytes).await {
                        tracing::warn!(cache = %self.settings.name, error = %e, "could not store loaded value");
                    }
                }
            }
            lead.finish(Ok(encoded));
            drop(current);
            return Ok((loaded, Origin::Loaded));
        }
    }

    /// A waiter's result from the leader's outcome.
    fn value_of_outcome(&self, outcome: flight::Outcome) -> Result<Option<V>, Error> {
        match outcome? {
            Some(bytes) => self.codec.decode(bytes).map(Some),
            None => Ok(None),
        }
    }

    /// GET the entry, counting a hit or a miss when `count`. `force` overrides the read
    /// policy.
    async fn lookup(
        &self,
        full: &str,
        force: Option<ReadFrom>,
        count: bool,
    ) -> Result<Found<V>, Error> {
        let mut cmd = self.client.cmd("GET").arg(full);
        if let Some(rf) = force.or_else(|| self.read_policy(full)) {
            cmd = cmd.read_from(rf);
        }
        let got: Option<Bytes> = cmd.query().await?;
        let counter = if got.is_some() {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        if count {
            counter.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::cache_lookup(&self.settings.name, got.is_some());
        }
        match got {
            None => Ok(Found::Miss),
            Some(b) if b[..] == *NULL_MARKER => Ok(Found::Null),
            Some(b) => self
                .codec
                .decode(b)
                .map(Found::Value)
                .map_err(|e| e.in_command("GET")),
        }
    }

    /// The primary for a key written within the read-your-writes window, else the cache's
    /// own policy (`None`: the client's).
    fn read_policy(&self, full: &str) -> Option<ReadFrom> {
        match self.settings.ryw {
            Some(window) if self.shared.recent.is_recent(full, window) => Some(ReadFrom::Primary),
            _ => self.settings.read_from,
        }
    }

    /// SET with the TTL (jittered), then remember the write.
    async fn store(&self, full: &str, bytes: Bytes) -> Result<(), Error> {
        let ttl_ms = jittered_ms(self.settings.ttl, self.settings.jitter);
        self.client
            .cmd("SET")
            .arg(full)
            .arg(bytes)
            .arg("PX")
            .arg(ttl_ms)
            .query::<()>()
            .await?;
        self.mark_written(full);
        Ok(())
    }

    fn mark_written(&self, full: &str) {
        if let Some(window) = self.settings.ryw {
            self.shared.recent.mark(full, window);
        }
    }
}

/// `ttl` in milliseconds, spread uniformly over `ttl × (1 ± jitter)`, at least 1.
fn jittered_ms(ttl: Duration, jitter: f64) -> u64 {
    let ms = ttl.as_millis().min(u128::from(u64::MAX)) as f64;
    let factor = if jitter > 0.0 {
        1.0 + rand::thread_rng().gen_range(-jitter..=jitter)
    } else {
        1.0
    };
    ((ms * factor).round() as u64).max(1)
}

/// `text` with the glob characters of MATCH (`* ? [ ] \`) escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_within_bounds() {
        let ttl = Duration::from_secs(1800);
        assert_eq!(jittered_ms(ttl, 0.0), 1_800_000);
        let got: Vec<u64> = (0..200).map(|_| jittered_ms(ttl, 0.1)).collect();
        assert!(got.iter().all(|&m| (1_620_000..=1_980_000).contains(&m)));
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        assert!(distinct.len() > 100, "{}", distinct.len());
        assert_eq!(jittered_ms(Duration::ZERO, 0.5), 1);
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("users::"), "users::");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
