//! From a decoded request to a reply: lookup, arity, auth, transactions, cluster routing,
//! execution, and counters, in the order Redis 7 applies them.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;

use crate::command::{self, CommandSpec};
use crate::resp::{Protocol, Value};

use super::cluster::route::{self, Traits};
use super::conn::{Conn, Multi};
use super::db::{Db, ExecCtx};
use super::node::{now_ms, Locked, NodeShared};

/// What the connection loop does with a command's result.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this reply.
    Reply(Value),
    /// Send nothing (REPLCONF ACK).
    NoReply,
    /// Send this reply, then close (QUIT).
    Quit(Value),
    /// WAIT: block, then reply with the number of replicas that acknowledged.
    Wait {
        /// Replicas to wait for.
        numreplicas: usize,
        /// Milliseconds; 0 waits for ever.
        timeout_ms: u64,
    },
    /// PSYNC/SYNC: turn the connection into a replication link.
    Sync,
    /// MIGRATE: talk to the target (no lock held), then reply.
    Migrate(Box<super::migrate::Job>),
    /// Send these replies in order ((P|S)SUBSCRIBE and the like answer once per channel).
    Replies(Vec<Value>),
    /// A blocking command (BLPOP ...) must wait for data.
    Block(Box<super::blocking::Pending>),
    /// EVAL/FCALL: run the script without the lock (it takes it per `redis.call`).
    Script(Box<super::scripting::Job>),
}

/// Who executes a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handler {
    /// The keyspace engine.
    Db,
    /// The server (connection, cluster, replication commands).
    Server,
}

/// Commands the server itself implements, with the subcommands it implements.
const SERVER_COMMANDS: &[(&str, &[&str])] = &[
    ("asking", &[]),
    ("auth", &[]),
    ("bgsave", &[]),
    (
        "client",
        &[
            "getname", "help", "id", "info", "kill", "list", "no-evict", "no-touch", "pause",
            "reply", "setinfo", "setname", "unblock", "unpause",
        ],
    ),
    (
        "cluster",
        &[
            "addslots",
            "addslotsrange",
            "bumpepoch",
            "count-failure-reports",
            "countkeysinslot",
            "delslots",
            "delslotsrange",
            "failover",
            "flushslots",
            "forget",
            "getkeysinslot",
            "help",
            "info",
            "keyslot",
            "links",
            "meet",
            "myid",
            "myshardid",
            "nodes",
            "replicas",
            "replicate",
            "reset",
            "saveconfig",
            "set-config-epoch",
            "setslot",
            "shards",
            "slaves",
            "slots",
        ],
    ),
    (
        "command",
        &[
            "count",
            "docs",
            "getkeys",
            "getkeysandflags",
            "help",
            "info",
            "list",
        ],
    ),
    ("config", &["get", "help", "resetstat", "rewrite", "set"]),
    ("dbsize", &[]),
    ("debug", &[]),
    ("discard", &[]),
    ("echo", &[]),
    ("exec", &[]),
    ("flushall", &[]),
    ("flushdb", &[]),
    ("hello", &[]),
    ("info", &[]),
    ("lastsave", &[]),
    ("migrate", &[]),
    ("multi", &[]),
    ("ping", &[]),
    ("psync", &[]),
    ("quit", &[]),
    ("readonly", &[]),
    ("readwrite", &[]),
    ("replconf", &[]),
    ("reset", &[]),
    ("restore-asking", &[]),
    ("role", &[]),
    ("save", &[]),
    ("select", &[]),
    ("shutdown", &[]),
    ("sync", &[]),
    ("time", &[]),
    ("unwatch", &[]),
    ("wait", &[]),
    ("watch", &[]),
];

struct Entry {
    spec: &'static CommandSpec,
    traits: Traits,
    handler: Handler,
    subcommands: &'static [&'static str],
}

impl Entry {
    /// True when subcommand `sub` (lower case) is implemented. The engine answers every
    /// subcommand of the commands it claims (OBJECT ENCODING ...).
    fn has_sub(&self, sub: &str) -> bool {
        self.handler == Handler::Db || self.subcommands.contains(&sub)
    }
}

fn table() -> &'static HashMap<&'static [u8], Entry> {
    static TABLE: OnceLock<HashMap<&'static [u8], Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        for spec in command::all() {
            let server = SERVER_COMMANDS
                .iter()
                .chain(super::pubsub::commands::COMMANDS)
                .chain(super::blocking::COMMANDS)
                .chain(super::cmd_misc::COMMANDS)
                .chain(super::scripting::COMMANDS)
                .find(|(n, _)| *n == spec.name);
            // The engine wins for data commands it implements (DBSIZE, FLUSHALL ...).
            let entry = if Db::supports(spec.name.as_bytes()) {
                Entry {
                    spec,
                    traits: Traits::of(spec),
                    handler: Handler::Db,
                    subcommands: &[],
                }
            } else if let Some((_, subs)) = server {
                Entry {
                    spec,
                    traits: Traits::of(spec),
                    handler: Handler::Server,
                    subcommands: subs,
                }
            } else {
                continue;
            };
            map.insert(spec.name.as_bytes(), entry);
        }
        map
    })
}

/// True when this server implements `spec` (for COMMAND listings).
pub(crate) fn implemented(spec: &CommandSpec) -> bool {
    let (top, sub) = match spec.name.split_once('|') {
        Some((t, s)) => (t, Some(s)),
        None => (spec.name, None),
    };
    match table().get(top.as_bytes()) {
        None => false,
        Some(e) => match sub {
            None => true,
            Some(s) => e.has_sub(s),
        },
    }
}

fn find(name: &[u8]) -> Option<&'static Entry> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    table().get(&buf[..name.len()])
}

/// The full name stats count a replicated command under (`set`, `object|encoding`), or
/// `None` for commands this server does not know.
pub(crate) fn stat_name(args: &[Bytes]) -> Option<&'static str> {
    let entry = find(args.first()?)?;
    match args.get(1) {
        Some(sub) if !entry.spec.subcommands.is_empty() => {
            subcommand(entry.spec, sub).map(|s| s.name)
        }
        _ => Some(entry.spec.name),
    }
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `, as Redis words it.
fn unknown_command(args: &[Bytes]) -> Value {
    let mut list = String::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let text = String::from_utf8_lossy(a);
        let cut: String = text.chars().take(room).collect();
        list.push('\'');
        list.push_str(&cut);
        list.push_str("' ");
    }
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    Value::error(format!(
        "ERR unknown command '{name}', with args beginning with: {list}"
    ))
}

/// The error for a wrong argument count.
pub(crate) fn arity_error(spec: &CommandSpec) -> Value {
    Value::error(format!(
        "ERR wrong number of arguments for '{}' command",
        spec.name
    ))
}

/// A subcommand added after Redis 7.0 (so missing from the generated table) that clients
/// send anyway: CLIENT SETINFO and NO-TOUCH on connect, CLUSTER MYSHARDID.
const fn later_subcommand(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
    }
}

static LATER_SUBCOMMANDS: &[CommandSpec] = &[
    later_subcommand("client|no-touch", 3, &["noscript", "loading", "stale"]),
    later_subcommand("client|setinfo", 4, &["noscript", "loading", "stale"]),
    later_subcommand("cluster|myshardid", 2, &["loading", "stale"]),
];

fn subcommand(spec: &'static CommandSpec, sub: &[u8]) -> Option<&'static CommandSpec> {
    spec.subcommand(sub).or_else(|| {
        LATER_SUBCOMMANDS.iter().find(|s| {
            s.name.split_once('|').is_some_and(|(top, name)| {
                top == spec.name && name.as_bytes().eq_ignore_ascii_case(sub)
            })
        })
    })
}

fn resolve(args: &[Bytes]) -> Result<(&'static CommandSpec, Traits, Handler), Value> {
    let Some(entry) = find(&args[0]) else {
        return Err(unknown_command(args));
    };
    let mut spec = entry.spec;
    let mut traits = entry.traits;
    if let (false, Some(sub)) = (spec.subcommands.is_empty(), args.get(1)) {
        match subcommand(spec, sub) {
            Some(s) if entry.has_sub(s.name.split_once('|').map_or("", |(_, b)| b)) => {
                spec = s;
                traits = Traits::of(s);
            }
            _ => {
                return Err(Value::error(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    String::from_utf8_lossy(&sub[..sub.len().min(128)]),
                    String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
                )))
            }
        }
    }
    if !spec.arity_ok(args.len()) {
        return Err(arity_error(spec));
    }
    Ok((spec, traits, entry.handler))
}

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
    let (spec, traits, handler) = match resolve(&args) {
        Ok(found) => found,
        Err(e) => {
            if let Some(m) = conn.multi.as_mut() {
                m.aborted = true;
            }
            if let Some(entry) = find(&args[0]) {
                locked.get().cmdstats.rejected(entry.spec.name);
            }
            return Outcome::Reply(e);
        }
    };
    if !conn.authed && !traits.no_auth {
        if let Some(m) = conn.multi.as_mut() {
            m.aborted = true;
        }
        locked.get().cmdstats.rejected(spec.name);
        return Outcome::Reply(Value::error("NOAUTH Authentication required."));
    }
    // Cluster routing of commands with keys (EXEC routes what it queued itself).
    if traits.has_keys {
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
    if traits.write && handler == Handler::Db {
        let st = locked.get();
        if !st.cluster.me().is_primary() {
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
    let outcome = match handler {
        Handler::Db if Db::is_stream_block(args) => super::blocking::run_stream(conn, args, locked),
        Handler::Db => Outcome::Reply(run_db(conn, args, locked)),
        Handler::Server if super::scripting::handles(spec.name.split('|').next().unwrap_or("")) => {
            super::scripting::run(conn, spec, args, locked, shared)
        }
        Handler::Server => super::cmd_server::run(conn, spec, args, locked, shared),
    };
    super::blocking::mark_written(locked.get(), spec, args);
    let failed = matches!(&outcome, Outcome::Reply(v) if v.is_error());
    let usec = start.elapsed().as_micros() as u64;
    locked.get().cmdstats.executed(spec.name, usec, failed);
    super::cmd_misc::record(locked.get(), spec, args, usec, conn);
    outcome
}

fn run_db(conn: &Conn, args: &[Bytes], locked: &mut Locked<'_>) -> Value {
    let st = locked.get();
    let ctx = ExecCtx {
        now_ms: now_ms(),
        resp3: conn.proto == Protocol::Resp3,
    };
    let reply = st.db.execute(args, &ctx);
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
        let handler = find(spec.name.split('|').next().unwrap_or("").as_bytes())
            .map_or(Handler::Server, |e| e.handler);
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
            // Inside a transaction a script runs at once, under the transaction's lock.
            Outcome::Script(job) => job.run_inline(locked.get(), &shared.scripting),
            // Inside a transaction blocking commands do not block.
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
