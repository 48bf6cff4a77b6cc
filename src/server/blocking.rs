//! Blocking commands at the network layer: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
//! BZPOPMIN, BZPOPMAX, BZMPOP, and XREAD/XREADGROUP with BLOCK ([`run_stream`]).
//!
//! The keyspace knows how to serve them ([`Db::try_serve_blocking`]); this module makes the
//! client wait. A command that cannot be served at once becomes a [`Pending`] the connection
//! loop hands to [`wait`], which registers a waiter in the node's [`Waiters`] (under the
//! node's state lock) and keeps reading the socket, so a disconnect cancels the wait. Every
//! write command marks the keys it names as ready; after the command (after EXEC for a
//! transaction) [`serve_ready`] serves the waiters of those keys in the order they blocked,
//! as Redis does, and hands each reply to its connection's mailbox.
//!
//! Like Redis 7.0: a timeout answers a null array, a timeout of 0 waits for ever, inside
//! MULTI the commands do not block, `CLIENT UNBLOCK` ends a wait, a node that turns replica
//! ends its waits with `-UNBLOCKED`, and a wait whose slot moved away ends with `-MOVED`.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::args::{not_integer, parse_i64};
use super::call::{Call, Outcome};
use super::cluster::route;
use super::db::{Db, ExecCtx, Pops};
use super::node::{now_ms, Locked, NodeShared, NodeState};
use super::pubsub;
use super::registry;
use super::session::Conn;
use super::waiters::{is_move, Pending, Waiter};
use crate::command::CommandSpec;
use crate::resp::{Protocol, Value};
use crate::slot::key_slot;

/// What a blocked client may send before it is served (Redis' `client-query-buffer-limit`).
const QUERY_LIMIT: usize = 1024 * 1024 * 1024;

/// How often a blocked client checks that its slot is still served here.
const VALIDITY_CHECK: Duration = Duration::from_millis(100);

/// After a command: if it is a write, remember which of its keys blocked clients wait on.
/// (Cheap when nobody is blocked, so it runs after every command.)
pub(crate) fn mark_written(st: &mut NodeState, spec: &CommandSpec, args: &[Bytes]) {
    let w = &mut st.waiters;
    if w.clients.is_empty() || !spec.is_write() {
        return;
    }
    route::for_each_key(spec, args, |k| w.mark(k));
}

/// Serve now if possible, propagating what it changed.
fn serve(st: &mut NodeState, args: &[Bytes], resp3: bool) -> Option<Value> {
    let ctx = ExecCtx {
        now_ms: now_ms(),
        resp3,
    };
    let reply = st.db.try_serve_blocking(args, &ctx)?;
    let props = st.db.take_propagation();
    if !props.is_empty() {
        st.repl.feed(props);
    }
    Some(reply)
}

/// The type of `key` (`list`, `zset`, `none` ...).
fn type_of(db: &mut Db, key: &Bytes) -> Value {
    let args = [Bytes::from_static(b"TYPE"), key.clone()];
    let ctx = ExecCtx {
        now_ms: now_ms(),
        resp3: false,
    };
    registry::execute_db(db, &args, &ctx)
}

/// Serve the clients blocked on keys written since the last call, first blocked first
/// served, until nothing more can be served (a served BLMOVE may feed another waiter).
/// Cheap when no key is ready, so it runs after every command.
pub(crate) fn serve_ready(st: &mut NodeState) {
    if st.waiters.ready.is_empty() {
        return;
    }
    while !st.waiters.ready.is_empty() {
        for key in std::mem::take(&mut st.waiters.ready) {
            let Some(queue) = st.waiters.by_key.get(&key) else {
                continue;
            };
            for id in queue.iter().copied().collect::<Vec<_>>() {
                let Some(w) = st.waiters.clients.get(&id) else {
                    continue;
                };
                let (args, resp3) = (w.args.clone(), w.resp3);
                // The waiter's database (a standalone node's clients may use several).
                st.select_db(w.db);
                // Redis 7.0 serves a waiter only from a key of the type it pops. A stream
                // reader decides itself: XREADGROUP ends with an error when its stream or
                // group is gone, XREAD keeps waiting.
                let pops = Db::blocking_pops(&args).map(|(p, _)| p);
                if pops != Some(Pops::Stream) {
                    let want: &[u8] = if pops == Some(Pops::ZSet) {
                        b"zset"
                    } else {
                        b"list"
                    };
                    match type_of(&mut st.db, &key) {
                        Value::SimpleString(t) if t.as_ref() == want => {}
                        // (Others on this key may wait in another database.)
                        Value::SimpleString(t) if t.as_ref() == b"none" => continue,
                        _ => continue,
                    }
                }
                let Some(reply) = serve(st, &args, resp3) else {
                    continue;
                };
                if let Some(w) = st.waiters.remove(id) {
                    w.mail.reply(reply);
                }
                if is_move(&args) {
                    st.waiters.mark(&args[2]);
                }
            }
        }
    }
    // TYPE may have expired a key: replicas get that DEL too.
    let props = st.db.take_propagation();
    if !props.is_empty() {
        st.repl.feed(props);
    }
}

/// Run a blocking command: its reply now, or [`Outcome::Block`] when it must wait.
pub(crate) fn run(conn: &Conn, args: &[Bytes], locked: &mut Locked<'_>) -> Outcome {
    let spec = match Db::block_spec(args) {
        Ok(spec) => spec,
        Err(e) => return Outcome::Reply(e),
    };
    if let Some(reply) = serve(locked.get(), args, conn.proto == Protocol::Resp3) {
        return Outcome::Reply(reply);
    }
    Outcome::Block(Box::new(Pending {
        args: args.to_vec(),
        keys: spec.keys,
        timeout_ms: spec.timeout_ms,
        started: Instant::now(),
    }))
}

/// Run XREAD/XREADGROUP with BLOCK: served at once as without BLOCK when entries are
/// there, otherwise [`Outcome::Block`] waiting (with `$` resolved to the stream's last ID now)
/// for an XADD, a deleted stream or group, a timeout, a failover or a slot move.
pub(crate) fn run_stream(conn: &Conn, args: &[Bytes], locked: &mut Locked<'_>) -> Outcome {
    let st = locked.get();
    let ctx = ExecCtx {
        now_ms: now_ms(),
        resp3: conn.proto == Protocol::Resp3,
    };
    let prepared = st.db.stream_block_args(args, ctx.now_ms);
    let reply = registry::execute_db(&mut st.db, args, &ctx);
    let props = st.db.take_propagation();
    if !props.is_empty() {
        st.repl.feed(props);
    }
    match (prepared, reply) {
        (Ok(Some((waiting, spec))), Value::NullArray) => Outcome::Block(Box::new(Pending {
            args: waiting,
            keys: spec.keys,
            timeout_ms: spec.timeout_ms,
            started: Instant::now(),
        })),
        (_, reply) => Outcome::Reply(reply),
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 when the client was blocked and is now answered.
pub(crate) fn client_unblock(args: &[Bytes], locked: &mut Locked<'_>) -> Value {
    let Some(id) = parse_i64(&args[2]) else {
        return not_integer();
    };
    let error = match args.get(3) {
        None => false,
        Some(r) if r.eq_ignore_ascii_case(b"timeout") && args.len() == 4 => false,
        Some(r) if r.eq_ignore_ascii_case(b"error") && args.len() == 4 => true,
        Some(_) => return Value::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Ok(id) = u64::try_from(id) else {
        return Value::Integer(0);
    };
    match locked.get().waiters.remove(id) {
        Some(w) => {
            w.mail.reply(if error {
                Value::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
            } else {
                Value::NullArray
            });
            Value::Integer(1)
        }
        None => Value::Integer(0),
    }
}

/// Why a wait can no longer be served here, checked while blocked as Redis'
/// `clusterRedirectBlockedClientIfNeeded` does (and its role-change unblocking).
fn invalidated(st: &NodeState, key: &Bytes, was_primary: bool) -> Option<Value> {
    let cl = &st.cluster;
    if was_primary && !cl.me().is_primary() {
        return Some(Value::error(
            "UNBLOCKED force unblock from blocking operation, instance state changed (master -> \
             replica?)",
        ));
    }
    if st.standalone {
        return None;
    }
    if !cl.ok {
        return Some(Value::error("CLUSTERDOWN The cluster is down"));
    }
    let slot = key_slot(key);
    match cl.slots[usize::from(slot)] {
        Some(owner) if owner == cl.myself => None,
        _ if cl.importing.contains_key(&slot) => None,
        Some(owner) => Some(match cl.nodes.get(&owner) {
            Some(node) => Value::error(format!("MOVED {slot} {}", cl.redirect_to(node))),
            None => Value::error("CLUSTERDOWN Hash slot not served"),
        }),
        None => Some(Value::error("CLUSTERDOWN Hash slot not served")),
    }
}

/// Removes the waiter when the wait ends, however it ends.
struct Registration<'a> {
    shared: &'a NodeShared,
    id: u64,
}

impl Registration<'_> {
    /// Take the waiter out; false when it was already served (its reply is in the mailbox).
    fn cancel(&self) -> bool {
        self.shared.lock().waiters.remove(self.id).is_some()
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Wait for a [`Pending`] command to be served. Replies of the batch so far (`out`) are
/// written first; pub/sub frames arriving meanwhile (RESP3) are written as they come; bytes
/// the client sends are kept in `rbuf` for after. `closed` resolves when the connection is
/// killed. `Ok(None)`: the connection is gone (or the node stopping).
///
/// # Errors
/// The socket's, or the output limit.
pub(crate) async fn wait(
    stream: &mut super::stream::Stream,
    conn: &mut Conn,
    rbuf: &mut BytesMut,
    out: &mut BytesMut,
    shared: &NodeShared,
    pending: Box<Pending>,
    closed: impl Future<Output = ()>,
) -> io::Result<Option<Value>> {
    if !out.is_empty() {
        pubsub::write_out(stream, out, &conn.pubsub).await?;
        out.clear();
    }
    let mail = conn.pubsub.mailbox();
    let resp3 = conn.proto == Protocol::Resp3;
    let was_primary = {
        let mut locked = Locked::new(shared);
        let st = locked.get();
        st.select_db(conn.db);
        if let Some(reply) = serve(st, &pending.args, resp3) {
            if is_move(&pending.args) {
                st.waiters.mark(&pending.args[2]);
                serve_ready(st);
            }
            return Ok(Some(reply));
        }
        let waiter = Waiter {
            args: pending.args.clone(),
            keys: pending.keys.clone(),
            resp3,
            mail,
            db: conn.db,
        };
        st.waiters.add(conn.id, waiter);
        st.cluster.me().is_primary()
    };
    let registration = Registration {
        shared,
        id: conn.id,
    };
    let deadline = pending
        .timeout_ms
        .map(|ms| pending.started + Duration::from_millis(ms));
    let mut check = tokio::time::interval_at(Instant::now() + VALIDITY_CHECK, VALIDITY_CHECK);
    let mut stop = shared.shutdown_rx();
    let first_key = pending.keys.first().cloned().unwrap_or_default();
    tokio::pin!(closed);
    loop {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            biased;
            wake = conn.pubsub.next() => {
                if let Some(reply) = pubsub::apply(conn, wake, out, shared)? {
                    return Ok(Some(reply));
                }
                if !out.is_empty() {
                    pubsub::write_out(stream, out, &conn.pubsub).await?;
                    out.clear();
                }
            }
            _ = timeout => {
                if registration.cancel() {
                    return Ok(Some(Value::NullArray));
                }
                // Served just now: the reply is in the mailbox.
            }
            read = stream.read_buf(rbuf) => {
                // Closed, or sending more than Redis' client-query-buffer-limit meanwhile.
                if read? == 0 || rbuf.len() > QUERY_LIMIT {
                    return Ok(None);
                }
            }
            _ = check.tick() => {
                let error = invalidated(&shared.lock(), &first_key, was_primary);
                if let Some(error) = error {
                    if registration.cancel() {
                        return Ok(Some(error));
                    }
                }
            }
            _ = &mut closed => return Ok(None),
            _ = crate::server::node::stopped(&mut stop) => return Ok(None),
        }
    }
}

/// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP (registry entry).
pub(crate) fn blocking_command(c: &mut Call<'_, '_>) -> Outcome {
    run(c.conn, c.args, c.locked)
}

/// CLIENT UNBLOCK (registry entry).
pub(crate) fn client_unblock_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(client_unblock(c.args, c.locked))
}
