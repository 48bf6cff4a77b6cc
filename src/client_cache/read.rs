//! The request path through the cache: a hit returns from memory before the router is
//! touched; a miss leads (or joins) one read and stores its reply when nothing invalidated
//! it; a write drops its keys once it completes.

use std::sync::Arc;

pub(crate) use super::policy::Choice;
use super::policy::{self, Plan};
use super::store::{Lookup, Served};
use super::Store;
use crate::error::Error;
use crate::resp::Value;
use crate::router::{Router, Track};
use crate::slot::key_slot;
use crate::types::Args;

/// Run `args` through the cache (`choice` from `Cmd::cached`/`uncached`).
///
/// # Errors
/// As `Router::execute`; [`ErrorKind::Config`](crate::ErrorKind::Config) for
/// `Cmd::cached` on a command that cannot be cached.
pub(crate) async fn execute(
    store: &Arc<Store>,
    router: &Router,
    args: &Args,
    choice: Choice,
) -> Result<Value, Error> {
    match policy::plan(args, choice)? {
        Plan::Read { key, sig } if store.covers(key) => read(store, router, args, key, &sig).await,
        Plan::PerKey => mget(store, router, args).await,
        Plan::Pass { write: true } => {
            let r = router.execute(args).await;
            drop_keys(store, args);
            r
        }
        Plan::Read { .. } | Plan::Pass { write: false } => router.execute(args).await,
    }
}

/// After this client sent a write (done, failed or maybe applied): drop its keys. The
/// node's invalidation may reach the connection that read them later than this reply
/// reached us, and a read right after the write must see it.
fn drop_keys(store: &Store, args: &Args) {
    for k in policy::keys(args) {
        store.memory.invalidate_key(k);
    }
}

/// [`drop_keys`] for each write among `commands` (pipelines, transactions).
pub(crate) fn wrote<'a>(store: &Store, commands: impl IntoIterator<Item = &'a Args>) {
    for c in commands {
        if matches!(
            policy::plan(c, Choice::Uncached),
            Ok(Plan::Pass { write: true })
        ) {
            drop_keys(store, c);
        }
    }
}

/// One cacheable read: from memory, or from the server (stored if still valid).
async fn read(
    store: &Arc<Store>,
    router: &Router,
    args: &Args,
    key: &[u8],
    sig: &[u8],
) -> Result<Value, Error> {
    match store.memory.lookup(key, sig, key_slot(key)) {
        Lookup::Hit(v) => Ok(v),
        Lookup::Follow(rx) => match rx.await {
            Ok(v) => Ok(v),
            // The read it joined was invalidated, failed or cancelled: read alone.
            Err(_) => router.execute(args).await,
        },
        Lookup::Lead(ticket) => {
            let mut track = Track {
                optin: store.optin(),
                conn: None,
            };
            let r = router.execute_tracked(args, &mut track).await;
            if let Ok(v) = &r {
                ticket.finish(v, track.conn.as_ref().map(|c| c as &dyn Served));
            }
            r
        }
    }
}

/// `MGET`: each key a cached `MGET key` of its own, hits from memory, misses sent
/// together (the connection pipelines them); the replies in the caller's order.
async fn mget(store: &Arc<Store>, router: &Router, args: &Args) -> Result<Value, Error> {
    let one = |key: &[u8]| {
        let mut a = Args::new("MGET");
        a.push(key);
        if let Some(r) = args.read_from() {
            a.set_read_from(r);
        }
        a
    };
    let reads = args.iter().skip(1).map(|key| {
        let a = one(key);
        async move {
            let v = if store.covers(key) {
                read(store, router, &a, key, b"MGET").await?
            } else {
                router.execute(&a).await?
            };
            match v {
                Value::Array(mut vs) if vs.len() == 1 => Ok(vs.pop().unwrap_or(Value::Null)),
                other => Ok(other),
            }
        }
    });
    let values: Result<Vec<Value>, Error> =
        futures::future::join_all(reads).await.into_iter().collect();
    Ok(Value::Array(values?))
}
