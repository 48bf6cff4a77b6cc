//! Waiting for pub/sub messages: subscriptions are confirmed asynchronously (and re-made
//! after a loss or a slot move), so tests publish until the message they need arrives instead
//! of sleeping and publishing once.

use std::future::Future;
use std::time::{Duration, Instant};

use redcluster::{Message, MessageKind, Subscription};

/// The next message within `limit` (a bound so a broken subscription fails, not hangs).
pub async fn next(sub: &mut Subscription, limit: Duration) -> Option<Message> {
    tokio::time::timeout(limit, sub.next_message())
        .await
        .ok()
        .flatten()
}

/// Drain whatever `sub` delivers until it is quiet for 50 ms.
pub async fn drain(sub: &mut Subscription) {
    while next(sub, Duration::from_millis(50)).await.is_some() {}
}

/// Call `publish(i)` (i = 0, 1, ...) and collect what `sub` delivers, until `done` is true of
/// the messages seen so far; returns them. Panics with what was seen after `limit`.
pub async fn publish_until<P, F>(
    sub: &mut Subscription,
    limit: Duration,
    mut publish: P,
    mut done: impl FnMut(&[Message]) -> bool,
) -> Vec<Message>
where
    P: FnMut(usize) -> F,
    F: Future,
{
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut i = 0;
    loop {
        assert!(
            start.elapsed() < limit,
            "no such message within {limit:?}: {seen:?}"
        );
        publish(i).await;
        i += 1;
        while let Some(m) = next(sub, Duration::from_millis(100)).await {
            seen.push(m);
            if done(&seen) {
                return seen;
            }
        }
    }
}

/// A `done` for [`publish_until`]: the last message seen is of `kind`.
pub fn last_is(kind: MessageKind) -> impl FnMut(&[Message]) -> bool {
    move |seen| seen.last().is_some_and(|m| m.kind == kind)
}

/// A `done` for [`publish_until`] after a subscription was lost or moved: a `Resubscribed`
/// event, then a sharded message whose payload starts with `prefix`.
pub fn resubscribed_then(prefix: &'static [u8]) -> impl FnMut(&[Message]) -> bool {
    move |seen| {
        let back = seen
            .iter()
            .position(|m| m.kind == MessageKind::Resubscribed);
        let after = seen
            .iter()
            .rposition(|m| m.kind == MessageKind::Sharded && m.payload.starts_with(prefix));
        back.is_some() && after > back
    }
}
