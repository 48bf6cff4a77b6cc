//! Single flight (one load per key at a time) and the record of this process's recent
//! writes (for read-your-writes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::Error;

/// What a load produced, as every waiter receives it: the stored bytes (`None` when the
/// loader found nothing), or the loader's error.
pub(super) type Outcome = Result<Option<Bytes>, Error>;

type Slot = watch::Receiver<Option<Outcome>>;

/// The loads in progress, by full key.
#[derive(Debug, Default)]
pub(super) struct Flights {
    running: Mutex<HashMap<String, Slot>>,
}

/// A task's part in a load.
pub(super) enum Role<'a> {
    /// This task loads; it must [`finish`](Leader::finish) (or drop the guard, which sends
    /// the waiters back to look again).
    Leader(Leader<'a>),
    /// Another task is loading: wait for its outcome.
    Waiter(Slot),
}

/// The loading task's guard.
pub(super) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    tx: watch::Sender<Option<Outcome>>,
}

impl Flights {
    /// Join the load of `key` in progress, or start one.
    pub(super) fn join_or_lead(&self, key: &str) -> Role<'_> {
        let mut running = lock(&self.running);
        if let Some(rx) = running.get(key) {
            return Role::Waiter(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        running.insert(key.to_string(), rx);
        Role::Leader(Leader {
            flights: self,
            key: key.to_string(),
            tx,
        })
    }

    /// Loads in progress (for tests and stats).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.running).len()
    }
}

impl Leader<'_> {
    /// Hand `outcome` to every waiter and end the flight.
    pub(super) fn finish(self, outcome: Outcome) {
        // Remove first: a task arriving after this looks at Redis (where the value now is)
        // instead of joining a finished flight.
        self.remove();
        let _ = self.tx.send(Some(outcome));
    }

    fn remove(&self) {
        let mut running = lock(&self.flights.running);
        if running
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            running.remove(&self.key);
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // Cancelled before finishing (the request was dropped): let the waiters retry, one
        // of them becomes the next leader. (After `finish` this finds nothing to remove.)
        self.remove();
    }
}

/// Wait for a flight's outcome; `None` when its leader was dropped without one.
pub(super) async fn wait(mut rx: Slot) -> Option<Outcome> {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write generations by key stripe: a put or evict holds its stripe's lock while it writes
/// and bumps the generation after; a load notes the generation before it runs and stores
/// only if it is unchanged, under the same lock.
#[derive(Debug)]
pub(super) struct Stripes {
    locks: Box<[tokio::sync::Mutex<u64>]>,
}

const STRIPES: usize = 256;

impl Default for Stripes {
    fn default() -> Self {
        Stripes {
            locks: (0..STRIPES).map(|_| tokio::sync::Mutex::new(0)).collect(),
        }
    }
}

impl Stripes {
    /// The stripe of `key`.
    pub(super) fn of(&self, key: &str) -> &tokio::sync::Mutex<u64> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.locks[(h as usize) % self.locks.len()]
    }

    /// Bump every stripe (after `clear`).
    pub(super) async fn bump_all(&self) {
        for l in self.locks.iter() {
            *l.lock().await += 1;
        }
    }
}

/// Keys this process wrote recently: their reads go to the primary for `window`.
#[derive(Debug, Default)]
pub(super) struct RecentWrites {
    state: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    keys: HashMap<String, Instant>,
    /// Every key counts as written since this instant (after `clear`, or when the map
    /// outgrew its bound).
    all_since: Option<Instant>,
    /// Prune when `keys` reaches this size (doubles with the live set, so pruning stays
    /// amortised O(1) per write).
    next_prune: usize,
}

/// Past this many remembered keys, expired ones are dropped; past the hard cap, the map is
/// replaced by "every key was written now" (reads of every key go to the primary for one
/// window), so memory stays bounded under any write rate.
const PRUNE_AT: usize = 4096;
const HARD_CAP: usize = 65_536;

impl RecentWrites {
    /// Remember that `key` was written now.
    pub(super) fn mark(&self, key: &str, window: Duration) {
        let now = Instant::now();
        let mut s = lock(&self.state);
        if s.keys.len() >= s.next_prune {
            s.keys.retain(|_, at| now.duration_since(*at) < window);
            if s.keys.len() >= HARD_CAP {
                s.keys.clear();
                s.all_since = Some(now);
            }
            s.next_prune = (s.keys.len() * 2).max(PRUNE_AT);
        }
        s.keys.insert(key.to_string(), now);
    }

    /// Remember that every key was written now (`clear`).
    pub(super) fn mark_all(&self) {
        let mut s = lock(&self.state);
        s.keys.clear();
        s.all_since = Some(Instant::now());
    }

    /// True when `key` was written less than `window` ago.
    pub(super) fn is_recent(&self, key: &str, window: Duration) -> bool {
        let s = lock(&self.state);
        let fresh = |at: &Instant| at.elapsed() < window;
        s.all_since.as_ref().is_some_and(fresh) || s.keys.get(key).is_some_and(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_and_waiters_get_its_outcome() {
        let f = Flights::default();
        let Role::Leader(lead) = f.join_or_lead("k") else {
            panic!("first is the leader")
        };
        let Role::Waiter(rx) = f.join_or_lead("k") else {
            panic!("second waits")
        };
        let waiter = tokio::spawn(wait(rx));
        lead.finish(Ok(Some(Bytes::from_static(b"v"))));
        let got = waiter.await.unwrap().unwrap().unwrap();
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
        assert_eq!(f.len(), 0);
        assert!(matches!(f.join_or_lead("k"), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_waiters() {
        let f = Flights::default();
        let lead = f.join_or_lead("k");
        let Role::Waiter(rx) = f.join_or_lead("k") else {
            panic!("second waits")
        };
        drop(lead);
        assert!(wait(rx).await.is_none());
        assert!(matches!(f.join_or_lead("k"), Role::Leader(_)));
    }

    #[test]
    fn recent_writes_expire_and_stay_bounded() {
        let r = RecentWrites::default();
        let w = Duration::from_secs(60);
        r.mark("a", w);
        assert!(r.is_recent("a", w));
        assert!(!r.is_recent("b", w));
        assert!(!r.is_recent("a", Duration::ZERO));
        for i in 0..HARD_CAP + 10 {
            r.mark(&i.to_string(), w);
        }
        assert!(lock(&r.state).keys.len() < HARD_CAP);
        // Forgetting keys made every key count as written: still read from the primary.
        assert!(r.is_recent("never-written", w));
        r.mark_all();
        assert!(r.is_recent("b", w));
    }
}
