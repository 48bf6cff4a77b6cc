//! Bounded waiting: tests wait for the condition they need, never for a fixed time, and a
//! condition that never comes fails the test instead of hanging it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long [`eventually`] and [`bounded`] wait before failing the test.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Poll `f` every 20 ms until it is true; panics naming `what` after [`LIMIT`].
pub async fn eventually<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(LIMIT, what, f).await
}

/// As [`eventually`], with its own limit.
pub async fn eventually_within<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll `f` every 20 ms until it returns `Some`, and return that; panics naming `what`
/// after [`LIMIT`].
pub async fn eventually_some<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until `counter` has grown by `more` from its value now: a background load (writers
/// counting their acknowledged writes) has made progress, instead of sleeping a while and
/// hoping it did. Panics naming `what` after [`LIMIT`].
pub async fn progress(what: &str, counter: &AtomicU64, more: u64) {
    let start = counter.load(Ordering::SeqCst);
    eventually(what, || async move {
        counter.load(Ordering::SeqCst) >= start + more
    })
    .await
}

/// Blocking version for synchronous tests: poll `cond` every 50 ms; panics if it is still
/// false after `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Await `f`, failing the test if it takes longer than [`LIMIT`]: a request must end by the
/// client's own deadline, well before this.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the request outlived its deadline")
}
