//! Whole-keyspace operations of a [`Db`]: active expiry, key counts, FLUSH, a slot's
//! contents (`CLUSTER COUNTKEYSINSLOT`/`GETKEYSINSLOT`, keys dropped with a lost slot), and
//! MOVE's hand-over of a key to another database.

use bytes::Bytes;
use indexmap::IndexMap;

use super::{Db, DbStats};

impl Db {
    /// Delete up to `max_keys` expired keys (primary only), queueing a `DEL` for each.
    /// Returns how many were deleted.
    pub(crate) fn active_expire(&mut self, now_ms: u64, max_keys: usize) -> usize {
        if self.replica {
            return 0;
        }
        let mut n = 0;
        while n < max_keys {
            let Some(&(t, i)) = self.ttls.first() else {
                break;
            };
            if t > now_ms {
                break;
            }
            match self.remove_expired(i as usize) {
                Some((k, _)) => {
                    self.push_prop(vec![Bytes::from_static(b"DEL"), k.to_bytes()]);
                }
                None => {
                    // Not reachable while the indexes agree; never loop on it.
                    self.ttls.pop_first();
                }
            }
            n += 1;
        }
        self.expired_keys += n as u64;
        n
    }

    /// Delete expired keys until none is left or `deadline` passes (checked every 16 keys,
    /// as Redis' `activeExpireCycle` checks its time limit). True when expired keys remain:
    /// the caller should come back soon (Redis' fast cycle).
    pub(crate) fn active_expire_until(
        &mut self,
        now_ms: u64,
        deadline: std::time::Instant,
    ) -> bool {
        loop {
            if self.active_expire(now_ms, 16) < 16 {
                return false;
            }
            if std::time::Instant::now() >= deadline {
                return self.ttls.first().is_some_and(|(t, _)| *t <= now_ms);
            }
        }
    }

    /// Keys deleted because they expired, actively or on access (INFO expired_keys).
    pub(crate) fn expired_keys(&self) -> u64 {
        self.expired_keys
    }

    /// Number of live keys at `now_ms` (expired keys not yet reclaimed are not counted).
    pub(crate) fn dbsize(&self, now_ms: u64) -> usize {
        let expired = self.ttls.iter().take_while(|(t, _)| *t <= now_ms).count();
        self.map.len() - expired
    }

    /// Key and TTL counts for `INFO keyspace`.
    pub(crate) fn stats(&self) -> DbStats {
        DbStats {
            keys: self.map.len(),
            expires: self.ttls.len(),
        }
    }

    /// Remove every key. Versions keep increasing so `WATCH` sees the flush.
    pub(crate) fn flush(&mut self) {
        self.note(super::Changed::Flush);
        self.map = IndexMap::new();
        for s in &mut self.slots {
            if !s.is_empty() {
                *s = Vec::new();
            }
        }
        self.ttls.clear();
    }

    /// Keys stored in `slot` (expired ones not yet reclaimed included, as in Redis).
    pub(crate) fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.slots.get(slot as usize).map_or(0, Vec::len)
    }

    /// Up to `count` key names of `slot` (`CLUSTER GETKEYSINSLOT`).
    pub(crate) fn keys_in_slot(&self, slot: u16, count: usize) -> Vec<Bytes> {
        if usize::from(slot) >= self.slots.len() {
            return Vec::new();
        }
        self.slot_entries(slot.into())
            .take(count)
            .map(|(k, _)| k.to_bytes())
            .collect()
    }

    /// Delete every key of `slot`; returns how many. Nothing is propagated (the caller decides;
    /// Redis does this when a node loses a slot).
    pub(crate) fn delete_keys_in_slot(&mut self, slot: u16) -> usize {
        let mut n = 0;
        while let Some(&i) = self.slots.get(slot as usize).and_then(|s| s.last()) {
            if self.remove_index(i as usize).is_none() {
                // Not reachable while the indexes agree; never loop on it.
                self.slots[slot as usize].pop();
            }
            n += 1;
        }
        n
    }

    /// MOVE's keyspace part (`args` = `MOVE key db`): the key leaves this keyspace for
    /// `dst` with its value and TTL, unless it is missing here or present there (as Redis'
    /// `moveCommand`, which looks both up for writing). True when it moved; then MOVE is
    /// queued for the replicas as sent.
    pub(crate) fn move_key(&mut self, dst: &mut Db, args: &[Bytes], now_ms: u64) -> bool {
        let key = &args[1];
        if !self.exists(key, now_ms) || dst.exists(key, now_ms) {
            return false;
        }
        let Some(entry) = self.remove(key) else {
            return false;
        };
        let expire_at = entry.expire_at();
        dst.insert(key, entry.data, expire_at);
        self.prop_args(args);
        true
    }

    /// Another database takes this one's place as the current one (standalone SELECT):
    /// it reports key changes if this one did (tracking is per node, not per database),
    /// and the changes this one reported and nobody took yet go with it.
    pub(crate) fn hand_tracking_to(&mut self, next: &mut Db) {
        next.track = self.track;
        next.changed.append(&mut self.changed);
    }
}
