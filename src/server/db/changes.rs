//! Key changes the keyspace reports for client-side caching (`CLIENT TRACKING`): while a
//! node has trackers, every propagated write's written keys, deletions, expiries and flushes
//! are listed for the node to turn into invalidations.

use bytes::Bytes;

use super::Db;

/// A change the keyspace reports for client-side caching (see [`Db::take_changed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Changed {
    /// This key was modified, deleted, expired or created.
    Key(Bytes),
    /// This key expired (no client changed it: Redis' `signalModifiedKey(NULL, ..)`).
    Expired(Bytes),
    /// Every key went (a flush, or the keyspace replaced).
    Flush,
}

impl Db {
    /// Report the keys a propagated (so real) change wrote: those of its key specs that
    /// are not read-only (`COPY`'s source, `SINTERSTORE`'s inputs did not change). Deletions
    /// are reported where they happen ([`Db::remove_index`]): a `DEL` propagates its absent
    /// keys too.
    pub(super) fn note_changed(&mut self, cmd: &[Bytes]) {
        let Some(spec) = crate::command::lookup_args(cmd) else {
            return;
        };
        if matches!(spec.name, "del" | "unlink") {
            return;
        }
        for (i, ks) in crate::command::key_refs(spec, cmd) {
            if ks.flags.iter().any(|f| matches!(*f, "RW" | "OW" | "RM")) {
                if let Some(k) = cmd.get(i) {
                    self.changed.push(Changed::Key(k.clone()));
                }
            }
        }
    }

    /// Report key changes (or not): see [`Db::take_changed`].
    pub(crate) fn set_track(&mut self, on: bool) {
        self.track = on;
        if !on {
            self.changed = Vec::new();
        }
    }

    /// Whether key changes are being reported.
    #[inline]
    pub(crate) fn tracks(&self) -> bool {
        self.track
    }

    /// The changes since the last call, in order (reported while [`Db::set_track`] is on):
    /// every key a propagated write changed, keys dropped with a slot, flushes.
    pub(crate) fn take_changed(&mut self) -> Vec<Changed> {
        std::mem::take(&mut self.changed)
    }

    /// Report a change made outside propagation.
    pub(super) fn note(&mut self, change: Changed) {
        if self.track {
            self.changed.push(change);
        }
    }
}
