//! Fault switches of one node, flipped by `TestCluster`'s fault-injection methods and by the
//! fault commands outside tools send (`DEBUG SLEEP`, `CLIENT PAUSE`, `SHUTDOWN`).
//!
//! Three kinds of stall exist, as in Redis:
//! - *frozen* (`pause_node`, `DEBUG SLEEP`): the whole node stops, bus included, like a
//!   process stopped with SIGSTOP or stuck in a long command;
//! - *client pause* (`CLIENT PAUSE ms [WRITE|ALL]`): client commands (all, or writes only)
//!   wait, the bus and replication go on;
//! - *partitioned*: the listener is closed, connections and replication links are cut, the
//!   bus drops every message to and from the node.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// What is paused now.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pause {
    /// `pause_node`: frozen until resumed.
    pub(crate) frozen: bool,
    /// `DEBUG SLEEP`: frozen until then.
    pub(crate) sleep_until: Option<Instant>,
    /// `CLIENT PAUSE`: client commands wait until then.
    pub(crate) clients_until: Option<Instant>,
    /// `CLIENT PAUSE ... WRITE`: only writes wait.
    pub(crate) writes_only: bool,
}

impl Pause {
    /// When the stall that applies to a request ends: `None` not stalled, `Some(None)` until
    /// further notice, `Some(Some(t))` until `t`.
    fn stalled(&self, now: Instant, client: bool, write: bool) -> Option<Option<Instant>> {
        if self.frozen {
            return Some(None);
        }
        let mut until = self.sleep_until.filter(|t| *t > now);
        if client && (write || !self.writes_only) {
            if let Some(t) = self.clients_until.filter(|t| *t > now) {
                until = Some(until.map_or(t, |u| u.max(t)));
            }
        }
        until.map(Some)
    }
}

/// Fault switches of one node.
#[derive(Debug)]
pub(crate) struct Faults {
    /// Drop every bus message to and from this node.
    pub(crate) bus_blocked: AtomicBool,
    /// Delay, in ms, a replica waits before applying replication data it received.
    pub(crate) repl_delay_ms: AtomicU64,
    /// Delay, in ms, before each batch of replies is written.
    pub(crate) reply_delay_ms: AtomicU64,
    /// Unreachable: the listener is closed until healed.
    pub(crate) partitioned: watch::Sender<bool>,
    /// `DEBUG SET-ACTIVE-EXPIRE 0`: no active expiry cycle.
    pub(crate) active_expire_off: AtomicBool,
    /// Bumped to cut every replication link of the node.
    pub(crate) cut: watch::Sender<u64>,
    /// Cheap check for the hot path: some pause may be in force.
    pause_set: AtomicBool,
    pause: watch::Sender<Pause>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            bus_blocked: AtomicBool::new(false),
            repl_delay_ms: AtomicU64::new(0),
            reply_delay_ms: AtomicU64::new(0),
            partitioned: watch::channel(false).0,
            active_expire_off: AtomicBool::new(false),
            cut: watch::channel(0).0,
            pause_set: AtomicBool::new(false),
            pause: watch::channel(Pause::default()).0,
        }
    }
}

impl Faults {
    /// Change the pause state.
    pub(crate) fn set_pause(&self, f: impl FnOnce(&mut Pause)) {
        self.pause.send_modify(|p| {
            f(p);
            let set = p.frozen || p.sleep_until.is_some() || p.clients_until.is_some();
            self.pause_set.store(set, Ordering::Release);
        });
    }

    /// True when some pause may apply (cheap).
    pub(crate) fn maybe_paused(&self) -> bool {
        self.pause_set.load(Ordering::Acquire)
    }

    /// True while the whole node is frozen (`pause_node`, `DEBUG SLEEP`).
    pub(crate) fn frozen(&self) -> bool {
        self.maybe_paused()
            && self
                .pause
                .borrow()
                .stalled(Instant::now(), false, false)
                .is_some()
    }

    /// True when the node neither sends nor receives bus messages.
    pub(crate) fn bus_silent(&self) -> bool {
        self.bus_blocked.load(Ordering::Relaxed) || self.frozen()
    }

    /// True while partitioned.
    pub(crate) fn is_partitioned(&self) -> bool {
        *self.partitioned.borrow()
    }

    /// Resolve once no stall applies to a request (`client`: a client command; `write`: one
    /// that writes).
    pub(crate) async fn wait(&self, client: bool, write: bool) {
        if !self.maybe_paused() {
            return;
        }
        let mut rx = self.pause.subscribe();
        loop {
            let p = *rx.borrow_and_update();
            let now = Instant::now();
            let Some(until) = p.stalled(now, client, write) else {
                self.tidy(&p, now);
                return;
            };
            let sleep = async {
                match until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = sleep => {}
            }
        }
    }

    /// Drop pauses that are over, so the hot path's cheap check sees nothing again.
    fn tidy(&self, p: &Pause, now: Instant) {
        let over = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if over(p.sleep_until) || over(p.clients_until) {
            self.set_pause(|p| {
                if over(p.sleep_until) {
                    p.sleep_until = None;
                }
                if over(p.clients_until) {
                    p.clients_until = None;
                }
            });
        }
    }

    /// Delay to apply before writing replies.
    pub(crate) fn reply_delay(&self) -> Option<Duration> {
        match self.reply_delay_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Cut every replication link (both directions) now.
    pub(crate) fn cut_links(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// Resolves when `rx`'s link cut counter changes.
pub(crate) async fn cut(rx: &mut watch::Receiver<u64>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_pause_spares_reads() {
        let now = Instant::now();
        let p = Pause {
            clients_until: Some(now + Duration::from_secs(1)),
            writes_only: true,
            ..Pause::default()
        };
        assert!(p.stalled(now, true, false).is_none());
        assert!(p.stalled(now, true, true).is_some());
        assert!(p.stalled(now, false, true).is_none());
        let frozen = Pause {
            frozen: true,
            ..Pause::default()
        };
        assert_eq!(frozen.stalled(now, false, false), Some(None));
    }

    #[tokio::test]
    async fn pauses_that_ended_are_cleared() {
        let faults = Faults::default();
        faults.set_pause(|p| p.sleep_until = Some(Instant::now()));
        assert!(faults.maybe_paused());
        faults.wait(true, true).await;
        assert!(!faults.maybe_paused());
    }
}
