//! A steady write load for failover tests: writers each `INCR` their own counter through a
//! client, and the load reports when writes succeed again after a kill, which writes failed,
//! and how many acknowledged increments a failover lost (a counter that went back: the old
//! primary had not yet streamed them to the promoted replica). Also a `+switch-master`
//! watcher on a Sentinel, to time the Sentinels' own failover.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redcluster::{Client, ErrorKind};

use super::raw;
use super::wait::{eventually, progress};

/// A running write load (see the module docs).
pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    killed_at: Arc<Mutex<Option<Instant>>>,
    first_ok_after: Arc<Mutex<Option<Instant>>>,
    writers: Vec<tokio::task::JoinHandle<(Vec<ErrorKind>, i64, i64)>>,
}

/// What a write load saw, once stopped.
#[derive(Debug)]
pub struct LoadReport {
    /// The kinds of the writes that failed.
    pub failed: Vec<ErrorKind>,
    /// Acknowledged increments missing afterwards (lost in the replication window).
    pub lost: i64,
    /// Increments no write explains: a counter that grew by more than its acknowledged and
    /// maybe-applied increments (the consistency checker's "unexpected"; should be 0).
    pub unexpected: i64,
    /// Writes acknowledged in all.
    pub acked: u64,
    /// From the kill to the first write that started after it and succeeded.
    pub kill_to_first_write: Duration,
}

impl WriteLoad {
    /// Start `writers` writers on `client` (keys `counter:N`) and wait until they made
    /// 100 writes.
    pub async fn start(client: &Client, writers: usize) -> WriteLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let killed_at = Arc::new(Mutex::new(None::<Instant>));
        let first_ok_after = Arc::new(Mutex::new(None::<Instant>));
        let writers = (0..writers)
            .map(|w| {
                let (client, stop, acked) = (client.clone(), stop.clone(), acked.clone());
                let (killed, first) = (killed_at.clone(), first_ok_after.clone());
                tokio::spawn(async move {
                    let mut last = 0i64;
                    let (mut failed, mut lost, mut unexpected, mut maybe) =
                        (Vec::new(), 0i64, 0i64, 0i64);
                    while !stop.load(Ordering::SeqCst) {
                        let started = Instant::now();
                        match client.incr(format!("counter:{w}")).await {
                            Ok(n) => {
                                if n <= last {
                                    // Only a failover may lose acknowledged writes.
                                    assert!(killed.lock().unwrap().is_some(), "{w}: {last} -> {n}");
                                    lost += last - n + 1;
                                } else if n > last + 1 + maybe {
                                    unexpected += n - last - 1 - maybe;
                                }
                                last = n;
                                maybe = 0;
                                acked.fetch_add(1, Ordering::SeqCst);
                                let kill = *killed.lock().unwrap();
                                if kill.is_some_and(|k| started >= k) {
                                    first.lock().unwrap().get_or_insert_with(Instant::now);
                                }
                            }
                            Err(e) => {
                                maybe += i64::from(e.maybe_applied());
                                failed.push(e.kind());
                            }
                        }
                    }
                    (failed, lost, unexpected)
                })
            })
            .collect();
        let load = WriteLoad {
            stop,
            acked,
            killed_at,
            first_ok_after,
            writers,
        };
        progress("writes before the kill", &load.acked, 100).await;
        load
    }

    /// Note that the primary is being killed now; returns the instant noted.
    pub fn mark_kill(&self) -> Instant {
        let now = Instant::now();
        *self.killed_at.lock().unwrap() = Some(now);
        now
    }

    /// Wait until a write that started after the kill succeeded and 100 more were made, then
    /// stop the writers and report.
    pub async fn finish(self) -> LoadReport {
        eventually("a write succeeds after the kill", || async {
            self.first_ok_after.lock().unwrap().is_some()
        })
        .await;
        progress("writes on the new primary", &self.acked, 100).await;
        self.stop.store(true, Ordering::SeqCst);
        let (mut failed, mut lost, mut unexpected) = (Vec::new(), 0, 0);
        for w in self.writers {
            let (f, l, u) = w.await.unwrap();
            failed.extend(f);
            lost += l;
            unexpected += u;
        }
        let kill = self
            .killed_at
            .lock()
            .unwrap()
            .expect("mark_kill was called");
        let first = self
            .first_ok_after
            .lock()
            .unwrap()
            .expect("a write after the kill");
        LoadReport {
            failed,
            lost,
            unexpected,
            acked: self.acked.load(Ordering::SeqCst),
            kill_to_first_write: first - kill,
        }
    }
}

/// Subscribe to `+switch-master` on the Sentinel at `addr`; the task ends at the first
/// switch of `name`, with the time it arrived.
pub async fn switch_watch(addr: &str, name: &str) -> tokio::task::JoinHandle<Instant> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut c = raw::Client::connect(addr).await;
    c.send(&["SUBSCRIBE", "+switch-master"]).await;
    let confirmed = c.read().await.expect("subscribe confirmation");
    assert_eq!(raw::parts(&confirmed)[0], "subscribe");
    let name = format!("{name} ");
    tokio::spawn(async move {
        loop {
            let v = c.read().await.expect("the Sentinel hung up");
            let p = raw::parts(&v);
            if p.len() == 3 && p[0] == "message" && p[2].starts_with(&name) {
                return Instant::now();
            }
        }
    })
}

/// Wait until the Sentinel at `addr` knows `replicas` replicas of `name` and `others` other
/// Sentinels (`SENTINEL master`), so a failover can be elected.
pub async fn sentinel_ready(addr: &str, name: &str, replicas: usize, others: usize) {
    eventually("the Sentinels know the replicas and each other", || async {
        let p = raw::parts(&raw::node_cmd(addr, &["SENTINEL", "master", name]).await);
        let get = |k: &str| {
            p.iter()
                .position(|f| f == k)
                .and_then(|i| p.get(i + 1))
                .and_then(|v| v.parse::<usize>().ok())
        };
        get("num-slaves") == Some(replicas) && get("num-other-sentinels") == Some(others)
    })
    .await
}
