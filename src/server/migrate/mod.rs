//! `MIGRATE` and `RESTORE-ASKING`: moving keys to another node over real TCP, as Redis 7.0
//! does during resharding.
//!
//! Redis runs MIGRATE blocking the whole server, so nothing can touch a key between its
//! DUMP and its deletion. Here the network exchange runs without the node lock (the target
//! may be a node of this very process, served by the same runtime), in three steps:
//!
//! 1. [`prepare`], under the lock: parse, find the keys, DUMP each with its TTL and version.
//! 2. [`run`], no lock held: send `RESTORE-ASKING` for each key over a cached connection
//!    (Redis' reply texts for every failure), read the replies.
//! 3. Under the lock again, delete each acknowledged key whose version did not change
//!    (propagating `DEL` to replicas, as Redis does). A key written in the meantime is sent
//!    again (`RESTORE-ASKING ... REPLACE`, or `DEL` on the target when it is gone now), so
//!    no write made during the exchange is lost; clients never see the difference.
//!
//! While a MIGRATE is in flight its keys are *fenced* ([`Fence`]): routing serves them here
//! even when deleted meanwhile, instead of sending clients with ASK to the target's copy,
//! which may be stale. A key deleted during the exchange is then deleted on the target too,
//! and one written again is sent again; either way the outcome is that of the command running
//! before the MIGRATE, as with Redis' blocking one.
//!
//! The receiving side needs nothing special: `RESTORE-ASKING` is `RESTORE` with the command
//! flag `asking`, which routing honours on an importing node.

mod link;

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::resp::{encode_command, Value};
use crate::server::args::{not_integer, parse_i64, syntax_error};
use crate::server::call::{Call, Outcome};
use crate::server::db::ExecCtx;
use crate::server::node::{now_ms, Locked, NodeShared, NodeState};
use crate::server::registry;

pub(crate) use link::LinkCache;
use link::{ConnectFailure, IoFailure, Link};

/// How many times a key written during the exchange is sent again before MIGRATE gives up.
const SETTLE_ROUNDS: usize = 16;

/// One key to send: its DUMP payload, TTL and the version it had when dumped.
#[derive(Debug, Clone)]
struct Item {
    key: Bytes,
    /// Milliseconds to live; 0: no expiry.
    ttl_ms: u64,
    payload: Bytes,
    version: u64,
}

/// The keys MIGRATEs of this node are moving right now (with a count: two MIGRATEs may
/// carry one key).
#[derive(Debug, Default)]
pub(crate) struct Fence {
    keys: HashMap<Bytes, usize>,
}

impl Fence {
    /// True while a MIGRATE is moving `key`: routing serves it here.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        !self.keys.is_empty() && self.keys.contains_key(key)
    }

    fn add(&mut self, keys: &[Bytes]) {
        for k in keys {
            *self.keys.entry(k.clone()).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, keys: &[Bytes]) {
        for k in keys {
            if let Some(n) = self.keys.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    self.keys.remove(k);
                }
            }
        }
    }
}

/// Lifts a MIGRATE's fence when the MIGRATE ends, however it ends (the connection task may
/// also be dropped mid-exchange).
struct FenceGuard<'a> {
    shared: &'a NodeShared,
    keys: Vec<Bytes>,
}

impl Drop for FenceGuard<'_> {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            self.shared.lock().migrate_fence.remove(&self.keys);
        }
    }
}

/// A MIGRATE ready to run: everything read from the keyspace under the lock.
#[derive(Debug)]
pub(crate) struct Job {
    /// `host:port` as given, the connection cache key (as Redis).
    name: String,
    host: String,
    port: u16,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// `(username, password)` for AUTH / AUTH2.
    auth: Option<(Option<Bytes>, Bytes)>,
    items: Vec<Item>,
    /// Keys put behind the fence by [`prepare`] (none with COPY: nothing is deleted).
    fenced: Vec<Bytes>,
}

impl Job {
    /// Drop a job that will not run, lifting its fence.
    pub(crate) fn abandon(self, st: &mut NodeState) {
        st.migrate_fence.remove(&self.fenced);
    }
}

fn ctx() -> ExecCtx {
    ExecCtx {
        now_ms: now_ms(),
        resp3: false,
    }
}

/// DUMP `key` now: `None` when it is absent or expired.
fn snapshot(st: &mut NodeState, key: &Bytes) -> Option<Item> {
    let c = ctx();
    let payload = st.db.dump_key(key, c.now_ms)?;
    let pttl = [Bytes::from_static(b"PTTL"), key.clone()];
    let ttl_ms = match registry::execute_db(&mut st.db, &pttl, &c) {
        Value::Integer(n) if n >= 0 => (n as u64).max(1),
        Value::Integer(-1) => 0,
        _ => return None,
    };
    Some(Item {
        key: key.clone(),
        ttl_ms,
        payload: Bytes::from(payload),
        version: st.db.version_of(key, c.now_ms),
    })
}

/// Parse MIGRATE and read its keys (under the node lock).
///
/// # Errors
/// The reply to send instead of running: Redis' argument errors, or `+NOKEY` when none of
/// the keys exists.
pub(crate) fn prepare(args: &[Bytes], st: &mut NodeState) -> Result<Job, Value> {
    let (mut copy, mut replace, mut auth) = (false, false, None);
    let (mut first_key, mut num_keys) = (3, 1);
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"copy") {
            copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") {
            if more == 0 {
                return Err(syntax_error());
            }
            j += 1;
            auth = Some((None, args[j].clone()));
        } else if a.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(syntax_error());
            }
            auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !args[3].is_empty() {
                return Err(Value::error(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            first_key = j + 1;
            num_keys = args.len() - j - 1;
            break;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    let timeout = parse_i64(&args[5]).ok_or_else(not_integer)?;
    let db = parse_i64(&args[4]).ok_or_else(not_integer)?;
    let timeout = if timeout <= 0 { 1000 } else { timeout as u64 };
    let items: Vec<Item> = args[first_key..first_key + num_keys]
        .iter()
        .filter_map(|k| snapshot(st, k))
        .collect();
    if items.is_empty() {
        return Err(Value::simple("NOKEY"));
    }
    let fenced: Vec<Bytes> = if copy {
        Vec::new()
    } else {
        items.iter().map(|it| it.key.clone()).collect()
    };
    st.migrate_fence.add(&fenced);
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let port_text = String::from_utf8_lossy(&args[2]).into_owned();
    Ok(Job {
        name: format!("{host}:{port_text}"),
        port: atoi_port(&args[2]),
        host,
        db,
        timeout: Duration::from_millis(timeout),
        copy,
        replace,
        auth,
        items,
        fenced,
    })
}

/// The port as C's `atoi` reads it (leading digits; 0 when none), which Redis uses.
fn atoi_port(arg: &[u8]) -> u16 {
    let digits: Vec<u8> = arg
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

fn restore_cmd(out: &mut BytesMut, item: &Item, replace: bool) {
    let ttl = item.ttl_ms.to_string();
    let mut parts: Vec<&[u8]> = vec![b"RESTORE-ASKING", &item.key, ttl.as_bytes(), &item.payload];
    if replace {
        parts.push(b"REPLACE");
    }
    encode_command(out, parts.iter());
}

/// What one round trip to the target gave.
struct Exchange {
    /// Indexes of the items the target restored.
    acked: Vec<usize>,
    /// The first error the target replied with.
    target_error: Option<String>,
    /// A socket failure, and how many RESTORE replies were read before it.
    io: Option<(IoFailure, usize)>,
}

async fn exchange(job: &Job, link: &mut Link) -> Exchange {
    let mut out = BytesMut::new();
    if let Some((user, pass)) = &job.auth {
        let mut parts: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = user {
            parts.push(u);
        }
        parts.push(pass);
        encode_command(&mut out, parts.iter());
    }
    let select = link.last_db != Some(job.db);
    if select {
        let db = job.db.to_string();
        encode_command(&mut out, [b"SELECT".as_slice(), db.as_bytes()].iter());
    }
    for item in &job.items {
        restore_cmd(&mut out, item, job.replace);
    }
    let mut ex = Exchange {
        acked: Vec::new(),
        target_error: None,
        io: None,
    };
    if let Err(f) = link.write(&out, job.timeout).await {
        ex.io = Some((f, 0));
        return ex;
    }
    let mut prefix_error = None;
    for _ in 0..usize::from(job.auth.is_some()) + usize::from(select) {
        match link.read(job.timeout).await {
            Err(f) => {
                ex.io = Some((f, 0));
                return ex;
            }
            Ok(v) if v.is_error() && prefix_error.is_none() => {
                prefix_error = v.error_text().map(|t| t.into_owned());
            }
            Ok(_) => {}
        }
    }
    for (i, _) in job.items.iter().enumerate() {
        match link.read(job.timeout).await {
            Err(f) => {
                ex.io = Some((f, i));
                break;
            }
            Ok(v) => {
                if let Some(e) = prefix_error.clone() {
                    ex.target_error.get_or_insert(e);
                } else if v.is_error() {
                    let text = v.error_text().map(|t| t.into_owned()).unwrap_or_default();
                    ex.target_error.get_or_insert(text);
                } else {
                    ex.acked.push(i);
                }
            }
        }
    }
    ex
}

/// Run a prepared MIGRATE: talk to the target, then delete what it acknowledged.
pub(crate) async fn run(mut job: Job, shared: &NodeShared) -> Value {
    let mut fence = FenceGuard {
        shared,
        keys: std::mem::take(&mut job.fenced),
    };
    let mut may_retry = true;
    loop {
        let mut link = match shared.migrate_links.take(&job.name) {
            Some(l) => l,
            None => match Link::connect(&job.host, job.port, &shared.config, job.timeout).await {
                Ok(l) => l,
                Err(ConnectFailure::TimedOut) => {
                    return Value::error("IOERR error or timeout connecting to the client")
                }
                Err(ConnectFailure::Refused) => {
                    if std::mem::take(&mut may_retry) {
                        continue;
                    }
                    return IoFailure::Write { timed_out: false }.reply();
                }
            },
        };
        if link.peer() == Some(shared.addr) {
            // Redis blocks on itself until the timeout; restoring onto ourselves and then
            // deleting would lose the keys.
            return IoFailure::Read { timed_out: true }.reply();
        }
        let ex = exchange(&job, &mut link).await;
        if let Some((failure, 0)) = ex.io {
            if ex.target_error.is_none() && !failure.timed_out() && may_retry {
                may_retry = false;
                continue;
            }
        }
        let acked: Vec<Item> = ex.acked.iter().map(|&i| job.items[i].clone()).collect();
        let settled = if job.copy {
            Ok(())
        } else if ex.io.is_some() {
            // The socket is unusable: delete what was acknowledged, no second round.
            delete_unchanged(shared, acked, &mut fence.keys);
            Ok(())
        } else {
            settle(shared, &mut link, acked, &job, &mut fence.keys).await
        };
        if let Some(e) = ex.target_error {
            if ex.io.is_none() {
                link.last_db = None;
                shared.migrate_links.put(job.name.clone(), link);
            }
            return Value::error(format!("ERR Target instance replied with error: {e}"));
        }
        if let Some((failure, _)) = ex.io {
            return failure.reply();
        }
        return match settled {
            Ok(()) => {
                link.last_db = Some(job.db);
                shared.migrate_links.put(job.name.clone(), link);
                Value::ok()
            }
            Err(e) => e,
        };
    }
}

/// Delete each acknowledged key still at the version that was sent, propagating `DEL`.
/// Returns the items whose key changed since.
///
/// A deleted key leaves the fence at once (it lives on the target now: clients must be
/// sent there); `fenced` is the MIGRATE's own list, kept in step.
fn delete_unchanged(shared: &NodeShared, items: Vec<Item>, fenced: &mut Vec<Bytes>) -> Vec<Item> {
    let mut locked = Locked::new(shared);
    let st = locked.get();
    let now = now_ms();
    let (same, changed): (Vec<Item>, Vec<Item>) = items
        .into_iter()
        .partition(|it| st.db.version_of(&it.key, now) == it.version);
    if !same.is_empty() {
        let mut del = Vec::with_capacity(same.len() + 1);
        del.push(Bytes::from_static(b"DEL"));
        del.extend(same.into_iter().map(|it| it.key));
        if !fenced.is_empty() {
            st.migrate_fence.remove(&del[1..]);
            fenced.retain(|k| !del[1..].contains(k));
        }
        registry::execute_db(&mut st.db, &del, &ctx());
        let props = st.db.take_propagation();
        if !props.is_empty() {
            st.repl.feed(props);
        }
    }
    changed
}

/// Delete the acknowledged keys; send again the ones written during the exchange until every
/// key is gone from here at the version the target holds.
async fn settle(
    shared: &NodeShared,
    link: &mut Link,
    mut pending: Vec<Item>,
    job: &Job,
    fenced: &mut Vec<Bytes>,
) -> Result<(), Value> {
    for _ in 0..SETTLE_ROUNDS {
        let changed = delete_unchanged(shared, pending, fenced);
        if changed.is_empty() {
            return Ok(());
        }
        // Re-read the changed keys: restore the new value, or drop the target's copy when
        // the key is gone here (deleted or expired meanwhile).
        let (again, gone): (Vec<Item>, Vec<Bytes>) = {
            let mut locked = Locked::new(shared);
            let st = locked.get();
            let mut again = Vec::new();
            let mut gone = Vec::new();
            for it in changed {
                match snapshot(st, &it.key) {
                    Some(fresh) => again.push(fresh),
                    None => gone.push(it.key),
                }
            }
            (again, gone)
        };
        let mut out = BytesMut::new();
        for it in &again {
            restore_cmd(&mut out, it, true);
        }
        for k in &gone {
            encode_command(&mut out, [b"ASKING".as_slice()].iter());
            encode_command(&mut out, [b"DEL".as_slice(), k].iter());
        }
        link.write(&out, job.timeout)
            .await
            .map_err(IoFailure::reply)?;
        for _ in 0..again.len() + 2 * gone.len() {
            let v = link.read(job.timeout).await.map_err(IoFailure::reply)?;
            if let Some(e) = v.error_text() {
                return Err(Value::error(format!(
                    "ERR Target instance replied with error: {e}"
                )));
            }
        }
        // A deleted key must still be absent next round (version 0), or it goes again.
        pending = again;
        pending.extend(gone.into_iter().map(|key| Item {
            key,
            ttl_ms: 0,
            payload: Bytes::new(),
            version: 0,
        }));
    }
    Err(Value::error(
        "TRYAGAIN keys kept changing during MIGRATE, try again",
    ))
}

/// `RESTORE-ASKING`: `RESTORE`, accepted by a node importing the slot (routing checks the
/// command's `asking` flag). Propagates what RESTORE propagates.
pub(crate) fn restore_asking(args: &[Bytes], st: &mut NodeState) -> Value {
    if !st.cluster.me().is_primary() {
        return Value::error("READONLY You can't write against a read only replica.");
    }
    let mut a = args.to_vec();
    a[0] = Bytes::from_static(b"RESTORE");
    let reply = registry::execute_db(&mut st.db, &a, &ctx());
    let props = st.db.take_propagation();
    if !props.is_empty() {
        st.repl.feed(props);
    }
    reply
}

/// MIGRATE (registry entry): the connection loop talks to the target without the lock.
pub(crate) fn migrate_command(c: &mut Call<'_, '_>) -> Outcome {
    match prepare(c.args, c.locked.get()) {
        Ok(job) => Outcome::Migrate(Box::new(job)),
        Err(reply) => Outcome::Reply(reply),
    }
}

/// RESTORE-ASKING (registry entry).
pub(crate) fn restore_asking_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(restore_asking(c.args, c.locked.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_like_atoi() {
        assert_eq!(atoi_port(b"7000"), 7000);
        assert_eq!(atoi_port(b"7000x"), 7000);
        assert_eq!(atoi_port(b"abc"), 0);
        assert_eq!(atoi_port(b"99999"), 0);
    }
}
