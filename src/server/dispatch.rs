//! From a decoded request to a reply: lookup, arity, auth, transactions, cluster routing,
//! execution, and counters, in the order Redis 7 applies them.

use std::time::Instant;

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::resp::{Protocol, Value};

use super::call::{Call, Outcome};
use super::cluster::route;
use super::db::{DbCommand, ExecCtx};
use super::monitor::{self, Origin};
use super::node::{now_ms, Locked, NodeShared};
use super::registry::{self, Handler, Resolved};
use super::session::{Conn, Multi};

fn is(spec: &CommandSpec, name: &str) -> bool {
    spec.name == name
}

/// Handle one request.
pub(crate) fn process(
    conn: &mut Conn,
    args: Vec<Bytes>,
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Outcome {
    // CLIENT CACHING lasts one command (a whole transaction), CLIENT commands aside.
    let keeps_caching = args[0].eq_ignore_ascii_case(b"client");
    let st = locked.get();
    let outcome = if st.db.tracks() {
        // Tracking: the table's size limit first (as Redis, before each command); the
        // invalidations of this client's own keys go after its reply.
        st.tracking.begin(conn.id, true);
        st.tracking.limit(&shared.clients);
        let outcome = process_command(conn, args, locked, shared);
        let st = locked.get();
        st.invalidate_changed(&shared.clients, Some(conn.id));
        st.tracking.end(&shared.clients);
        outcome
    } else {
        process_command(conn, args, locked, shared)
    };
    if conn.caching && conn.multi.is_none() && !keeps_caching {
        conn.caching = false;
    }
    outcome
}

fn process_command(
    conn: &mut Conn,
    args: Vec<Bytes>,
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Outcome {
    let Resolved {
        spec,
        traits,
        handler,
    } = match registry::resolve(&args) {
        Ok(found) => found,
        Err(e) => {
            if let Some(m) = conn.multi.as_mut() {
                m.aborted = true;
            }
            if let Some(name) = registry::known_name(&args[0]) {
                locked.get().cmdstats.rejected(name);
            }
            return Outcome::Reply(e);
        }
    };
    if !conn.authed && !traits.no_auth && locked.get().acl.auth_required() {
        if let Some(m) = conn.multi.as_mut() {
            m.aborted = true;
        }
        locked.get().cmdstats.rejected(spec.name);
        return Outcome::Reply(Value::error("NOAUTH Authentication required."));
    }
    // The user's permissions: the command, its keys and channels (logged when refused).
    if let Some(e) = locked.get().acl.enforce(conn, spec, &args) {
        locked.get().cmdstats.rejected(spec.name);
        if is(spec, "exec") {
            // As Redis' rejectCommand: a refused EXEC discards the transaction.
            conn.multi = None;
            conn.watched.clear();
            let why = e.error_text().unwrap_or_default().into_owned();
            return Outcome::Reply(Value::error(format!(
                "EXECABORT Transaction discarded because of: {why}"
            )));
        }
        if let Some(m) = conn.multi.as_mut() {
            m.aborted = true;
        }
        return Outcome::Reply(e);
    }
    // Cluster routing of commands with keys (EXEC routes what it queued itself); with
    // cluster mode off every key is served here.
    if traits.has_keys && !shared.config.standalone {
        let st = locked.get();
        // As Redis, ASKING lasts one command, or a whole transaction (until EXEC/DISCARD).
        let asking = if conn.multi.is_some() {
            conn.asking
        } else {
            std::mem::take(&mut conn.asking)
        };
        // Replicas serve shard pub/sub without READONLY (Redis' `pubsubshard_included`).
        let readonly = conn.readonly || traits.pubsub;
        if let Err(e) = route::check_one(st, spec, traits, &args, readonly, asking) {
            if let Some(m) = conn.multi.as_mut() {
                m.aborted = true;
            }
            st.cmdstats.rejected(spec.name);
            return Outcome::Reply(e);
        }
    } else if !is(spec, "asking")
        && ((conn.multi.is_none() && !is(spec, "multi")) || is(spec, "discard"))
    {
        // (EXEC, inside the transaction, keeps it: it routes what was queued.)
        conn.asking = false;
    }
    // A replica loading a full sync's snapshot, or cut off from its primary with
    // replica-serve-stale-data no, refuses what Redis refuses.
    if let Some(e) = replica_gate(locked.get(), spec) {
        if let Some(m) = conn.multi.as_mut() {
            m.aborted = true;
        }
        return Outcome::Reply(e);
    }
    // A replica refuses writes that reach it (keyless ones, or READONLY slipping a write).
    if traits.write && matches!(handler, Handler::Db(_)) {
        let st = locked.get();
        if st.refuses_writes() {
            st.cmdstats.rejected(spec.name);
            if let Some(m) = conn.multi.as_mut() {
                m.aborted = true;
            }
            return Outcome::Reply(Value::error(
                "READONLY You can't write against a read only replica.",
            ));
        }
    }
    if let Some(reply) = super::pubsub::commands::context_check(conn, spec, &args) {
        if let (Some(m), true) = (conn.multi.as_mut(), reply.is_error()) {
            m.aborted = true;
        }
        return Outcome::Reply(reply);
    }
    if let Some(m) = conn.multi.as_mut() {
        let control = matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        );
        if !control {
            m.queued.push((spec, args));
            return Outcome::Reply(Value::simple("QUEUED"));
        }
    }
    let outcome = run(conn, spec, handler, &args, locked, shared);
    // Serve clients blocked on keys this command (or transaction) wrote.
    super::blocking::serve_ready(locked.get());
    outcome
}

fn replica_gate(st: &mut super::node::NodeState, spec: &CommandSpec) -> Option<Value> {
    let link = st.repl.link.as_ref()?;
    if link.loading && !spec.has_flag("loading") {
        return Some(Value::error(
            "LOADING Redis is loading the dataset in memory",
        ));
    }
    if !link.up && !st.repl.serve_stale_data && !spec.has_flag("stale") {
        return Some(Value::error(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        ));
    }
    None
}

/// Execute a command that passed every check, counting it.
fn run(
    conn: &mut Conn,
    spec: &'static CommandSpec,
    handler: Handler,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Outcome {
    let start = Instant::now();
    conn.last_cmd = spec.name;
    // The connection's database in `NodeState.db` (a compare unless it selected another).
    let st = locked.get();
    if st.dbs.current() != conn.db {
        st.select_db(conn.db);
    }
    if monitor::fed_before(spec) {
        locked.get().feed_monitors(Origin::Client(conn.peer), args);
    }
    let outcome = match handler {
        // XREAD/XREADGROUP with BLOCK (the keyspace's only blocking commands).
        Handler::Db(_)
            if spec.has_flag("blocking")
                && crate::command::classify_spec(spec, args).block.is_some() =>
        {
            super::blocking::run_stream(conn, args, locked)
        }
        Handler::Db(command) => Outcome::Reply(run_db(conn, command, args, locked)),
        Handler::Server(command) => command(&mut Call {
            conn,
            spec,
            args,
            locked,
            shared,
        }),
    };
    super::blocking::mark_written(locked.get(), spec, args);
    let st = locked.get();
    if st.db.tracks() {
        st.invalidate_changed(&shared.clients, Some(conn.id));
        if conn.tracking.is_some() && tracks_reads(spec) {
            let keys = crate::command::key_indexes(spec, args);
            let keys = keys.iter().filter_map(|&i| args.get(i));
            st.tracking.remember(conn.id, conn.caching, keys);
        }
    }
    let failed = matches!(&outcome, Outcome::Reply(v) if v.is_error());
    let usec = start.elapsed().as_micros() as u64;
    locked.get().cmdstats.executed(spec.name, usec, failed);
    super::cmd_misc::record(locked.get(), spec, args, usec, conn);
    if monitor::fed_after(spec) {
        locked.get().feed_monitors(Origin::Client(conn.peer), args);
    }
    outcome
}

/// Whether a client tracking keys may cache what `spec` reads (Redis: read-only commands
/// except shard pub/sub, whose "keys" are channels, and the read-only script commands, whose
/// keys count when the script reads).
fn tracks_reads(spec: &CommandSpec) -> bool {
    spec.is_readonly()
        && !spec.has_flag("pubsub")
        && !matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
}

fn run_db(conn: &Conn, command: DbCommand, args: &[Bytes], locked: &mut Locked<'_>) -> Value {
    let st = locked.get();
    let ctx = ExecCtx {
        now_ms: now_ms(),
        resp3: conn.proto == Protocol::Resp3,
    };
    let reply = st.db.run(command, args, &ctx);
    st.after_db_command(args, &reply);
    let props = st.db.take_propagation();
    if !props.is_empty() {
        st.repl.feed(props);
    }
    reply
}

/// Run the commands a transaction queued (EXEC), in order; the replies as one array.
pub(crate) fn run_queued(
    conn: &mut Conn,
    multi: Multi,
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Value {
    let mut replies = Vec::with_capacity(multi.queued.len());
    for (spec, args) in multi.queued {
        let Some(handler) = registry::handler_of(spec) else {
            replies.push(Value::error(format!("ERR unknown command '{}'", spec.name)));
            continue;
        };
        // The rules may have changed since the command was queued.
        if let Some(e) = locked.get().acl.enforce_queued(conn, spec, &args) {
            replies.push(e);
            continue;
        }
        if spec.name == "monitor" {
            // EXEC runs its commands as a client that may not block (Redis' DENY_BLOCKING).
            replies.push(Value::error(
                "ERR MONITOR isn't allowed for DENY BLOCKING client",
            ));
            continue;
        }
        let reply = match run(conn, spec, handler, &args, locked, shared) {
            Outcome::Reply(v) | Outcome::Quit(v) => v,
            Outcome::NoReply => Value::ok(),
            Outcome::Wait { .. } => {
                // Inside a transaction WAIT cannot block: it reports what is acknowledged now.
                let st = locked.get();
                let offset = st.repl.offset;
                Value::Integer(st.repl.acked(offset) as i64)
            }
            Outcome::Sync => Value::error("ERR PSYNC not allowed in a transaction"),
            Outcome::Migrate(job) => {
                job.abandon(locked.get());
                Value::error("ERR MIGRATE is not supported in a transaction")
            }
            // Inside a transaction blocking commands do not block.
            // Inside a transaction a script runs at once, under the transaction's lock.
            Outcome::Script(job) => job.run_inline(locked.get(), &shared.scripting),
            Outcome::Block(pending) => pending.nonblocking_reply(),
            Outcome::Replies(mut frames) => {
                let last = frames.pop().unwrap_or(Value::NullArray);
                replies.extend(frames);
                last
            }
        };
        replies.push(reply);
    }
    Value::Array(replies)
}
