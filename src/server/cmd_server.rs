//! Connection and server commands: PING, ECHO, SELECT, HELLO, AUTH, CLIENT, QUIT, RESET,
//! READONLY/READWRITE/ASKING, WAIT, REPLCONF/PSYNC, TIME, ROLE and the server-side fallbacks
//! of DBSIZE/FLUSHALL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::resp::{Protocol, Value};

use super::conn::Conn;
use super::dispatch::Outcome;
use super::node::{now_ms, Locked, NodeShared};
use super::{auth, cmd_command, cmd_config, cmd_info, cmd_multi};

/// Parse a decimal integer argument as Redis does.
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// `ERR value is not an integer or out of range`.
pub(crate) fn not_integer() -> Value {
    Value::error("ERR value is not an integer or out of range")
}

/// `ERR syntax error`.
pub(crate) fn syntax_error() -> Value {
    Value::error("ERR syntax error")
}

/// Dispatch a server command by its full name.
pub(crate) fn run(
    conn: &mut Conn,
    spec: &'static CommandSpec,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Outcome {
    let reply = match spec.name {
        "ping" => match args.get(1) {
            None => Value::simple("PONG"),
            Some(m) => Value::BulkString(m.clone()),
        },
        "echo" => Value::BulkString(args[1].clone()),
        "select" => match parse_i64(&args[1]) {
            None => not_integer(),
            Some(0) => Value::ok(),
            Some(_) => Value::error("ERR SELECT is not allowed in cluster mode"),
        },
        "hello" => hello(conn, args, locked, shared),
        "auth" => {
            let (reply, user) = auth::auth(&shared.config, args);
            if let Some(user) = user {
                conn.authed = true;
                conn.user = user;
            }
            reply
        }
        "quit" => return Outcome::Quit(Value::ok()),
        "migrate" => match super::migrate::prepare(args, locked.get()) {
            Ok(job) => return Outcome::Migrate(Box::new(job)),
            Err(reply) => reply,
        },
        "restore-asking" => super::migrate::restore_asking(args, locked.get()),
        "reset" => {
            *conn = Conn::new(
                conn.id,
                conn.peer,
                conn.local,
                !shared.config.auth_required(),
            );
            Value::simple("RESET")
        }
        "readonly" => {
            conn.readonly = true;
            Value::ok()
        }
        "readwrite" => {
            conn.readonly = false;
            Value::ok()
        }
        "asking" => {
            conn.asking = true;
            Value::ok()
        }
        "wait" => return wait_command(args, locked),
        "replconf" => return replconf(conn, args),
        "psync" | "sync" => {
            if locked.get().cluster.me().is_primary() {
                return Outcome::Sync;
            }
            Value::error("NOMASTERLINK Can't SYNC while not connected with my master")
        }
        "time" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Value::Array(vec![
                Value::bulk(now.as_secs().to_string()),
                Value::bulk(now.subsec_micros().to_string()),
            ])
        }
        "lastsave" => Value::Integer((now_ms() / 1000) as i64),
        "save" => Value::ok(),
        "bgsave" => Value::simple("Background saving started"),
        "role" => role(locked),
        "debug" => super::cmd_fault::debug(args, shared),
        "shutdown" => match super::cmd_fault::shutdown(args, shared) {
            Some(reply) => reply,
            None => return Outcome::NoReply,
        },
        "dbsize" => Value::Integer(locked.get().db.dbsize(now_ms()) as i64),
        "flushall" | "flushdb" => {
            let st = locked.get();
            if !st.cluster.me().is_primary() {
                return Outcome::Reply(Value::error(
                    "READONLY You can't write against a read only replica.",
                ));
            }
            st.db.flush();
            st.repl.feed(vec![vec![Bytes::from_static(b"FLUSHALL")]]);
            Value::ok()
        }
        "info" => cmd_info::info(conn, args, locked, shared),
        "multi" | "exec" | "discard" | "watch" | "unwatch" => {
            cmd_multi::run(conn, spec, args, locked, shared)
        }
        "client|unblock" => super::blocking::client_unblock(args, locked),
        name if name.starts_with("client|") => client(conn, &name[7..], args, shared),
        name if super::pubsub::commands::handles(name) => {
            return super::pubsub::commands::run(conn, spec, args, locked, shared)
        }
        name if super::blocking::handles(name) => return super::blocking::run(conn, args, locked),
        name if super::cmd_misc::handles(name) => {
            super::cmd_misc::run(conn, spec, args, locked, shared)
        }
        name if name.starts_with("command|") || name == "command" => {
            cmd_command::run(conn, spec, args)
        }
        name if name.starts_with("config|") => {
            cmd_config::run(conn, &name[7..], args, locked, shared)
        }
        name if name.starts_with("cluster|") => {
            super::cluster::commands::run(conn, &name[8..], args, locked, shared)
        }
        _ => Value::error(format!("ERR unknown command '{}'", spec.name)),
    };
    Outcome::Reply(reply)
}

fn hello(conn: &mut Conn, args: &[Bytes], locked: &mut Locked<'_>, shared: &NodeShared) -> Value {
    let mut proto = conn.proto;
    let mut i = 1;
    if let Some(ver) = args.get(1) {
        match parse_i64(ver) {
            None => return Value::error("ERR Protocol version is not an integer or out of range"),
            Some(2) => proto = Protocol::Resp2,
            Some(3) => proto = Protocol::Resp3,
            Some(_) => return Value::error("NOPROTO unsupported protocol version"),
        }
        i = 2;
    }
    let mut name = None;
    let mut authed_as = None;
    while i < args.len() {
        let opt = args[i].to_ascii_lowercase();
        let more = args.len() - i - 1;
        if opt == b"auth" && more >= 2 {
            if !auth::check(&shared.config, &args[i + 1], &args[i + 2]) {
                return auth::wrongpass();
            }
            authed_as = Some(String::from_utf8_lossy(&args[i + 1]).into_owned());
            i += 3;
        } else if opt == b"setname" && more >= 1 {
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Value::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if let Some(user) = authed_as {
        conn.authed = true;
        conn.user = user;
    }
    if !conn.authed {
        return Value::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time",
        );
    }
    if let Some(name) = name {
        if !valid_name(&name) {
            return bad_name();
        }
        conn.name = (!name.is_empty()).then_some(name);
        shared.clients.set_name(conn.id, conn.name.clone());
    }
    conn.proto = proto;
    let primary = locked.get().cluster.me().is_primary();
    Value::Map(vec![
        (Value::bulk("server"), Value::bulk("redis")),
        (Value::bulk("version"), Value::bulk(super::REDIS_VERSION)),
        (
            Value::bulk("proto"),
            Value::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Value::bulk("id"), Value::Integer(conn.id as i64)),
        (Value::bulk("mode"), Value::bulk("cluster")),
        (
            Value::bulk("role"),
            Value::bulk(if primary { "master" } else { "replica" }),
        ),
        (Value::bulk("modules"), Value::Array(Vec::new())),
    ])
}

fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn bad_name() -> Value {
    Value::error("ERR Client names cannot contain spaces, newlines or special characters.")
}

fn client(conn: &mut Conn, sub: &str, args: &[Bytes], shared: &NodeShared) -> Value {
    match sub {
        "setname" => {
            if !valid_name(&args[2]) {
                return bad_name();
            }
            conn.name = (!args[2].is_empty()).then(|| args[2].clone());
            shared.clients.set_name(conn.id, conn.name.clone());
            Value::ok()
        }
        "getname" => conn
            .name
            .as_ref()
            .map_or(Value::Null, |n| Value::BulkString(n.clone())),
        "id" => Value::Integer(conn.id as i64),
        "info" => Value::Verbatim {
            format: Bytes::from_static(b"txt"),
            text: Bytes::from(conn.info_line() + "\n"),
        },
        "list" => Value::Verbatim {
            format: Bytes::from_static(b"txt"),
            text: Bytes::from(shared.clients.list(conn.id, &conn.info_line())),
        },
        "setinfo" => {
            let attr = args[2].to_ascii_lowercase();
            match attr.as_slice() {
                b"lib-name" | b"lib-ver" => {
                    if !valid_name(&args[3]) {
                        return Value::error(format!(
                            "ERR {} cannot contain spaces, newlines or special characters.",
                            String::from_utf8_lossy(&args[2])
                        ));
                    }
                    let v = (!args[3].is_empty()).then(|| args[3].clone());
                    if attr == b"lib-name" {
                        conn.lib_name = v;
                    } else {
                        conn.lib_ver = v;
                    }
                    Value::ok()
                }
                _ => Value::error(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(&args[2])
                )),
            }
        }
        "no-evict" | "no-touch" | "reply" => match args[2].to_ascii_lowercase().as_slice() {
            b"on" | b"off" => Value::ok(),
            _ => syntax_error(),
        },
        "kill" => client_kill(conn, args, shared),
        "pause" => super::cmd_fault::client_pause(args, shared),
        "unpause" => super::cmd_fault::client_unpause(shared),
        "help" => Value::Array(vec![Value::simple(
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are: ID, INFO, LIST, GETNAME, SETNAME, SETINFO, NO-EVICT, NO-TOUCH",
        )]),
        _ => syntax_error(),
    }
}

fn client_kill(conn: &Conn, args: &[Bytes], shared: &NodeShared) -> Value {
    use super::clients::KillFilter;
    if args.len() == 3 {
        // Old form: CLIENT KILL ip:port.
        let filter = KillFilter {
            addr: Some(String::from_utf8_lossy(&args[2]).into_owned()),
            ..KillFilter::default()
        };
        return if shared.clients.kill(&filter) > 0 {
            Value::ok()
        } else {
            Value::error("ERR No such client")
        };
    }
    let mut filter = KillFilter {
        skip: Some(conn.id),
        ..KillFilter::default()
    };
    for pair in args[2..].chunks(2) {
        let [opt, value] = pair else {
            return syntax_error();
        };
        let text = String::from_utf8_lossy(value).into_owned();
        match opt.to_ascii_lowercase().as_slice() {
            b"id" => match parse_i64(value) {
                Some(id) if id > 0 => filter.id = Some(id as u64),
                _ => return Value::error("ERR client-id should be greater than 0"),
            },
            b"addr" => filter.addr = Some(text),
            b"laddr" => filter.laddr = Some(text),
            b"skipme" => match text.to_ascii_lowercase().as_str() {
                "yes" => filter.skip = Some(conn.id),
                "no" => filter.skip = None,
                _ => return syntax_error(),
            },
            _ => return syntax_error(),
        }
    }
    Value::Integer(shared.clients.kill(&filter) as i64)
}

fn replconf(conn: &mut Conn, args: &[Bytes]) -> Outcome {
    let mut i = 1;
    while i + 1 < args.len() {
        match args[i].to_ascii_lowercase().as_slice() {
            b"listening-port" => {
                match parse_i64(&args[i + 1]).and_then(|p| u16::try_from(p).ok()) {
                    Some(p) => conn.repl_port = Some(p),
                    None => return Outcome::Reply(not_integer()),
                }
            }
            b"ack" | b"getack" => return Outcome::NoReply,
            b"capa" | b"ip-address" | b"rdb-only" => {}
            _ => {
                return Outcome::Reply(Value::error(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(&args[i])
                )))
            }
        }
        i += 2;
    }
    if i != args.len() {
        return Outcome::Reply(syntax_error());
    }
    Outcome::Reply(Value::ok())
}

fn role(locked: &mut Locked<'_>) -> Value {
    let st = locked.get();
    match &st.repl.link {
        Some(link) if !st.cluster.me().is_primary() => Value::Array(vec![
            Value::bulk("slave"),
            Value::bulk(link.addr.ip().to_string()),
            Value::Integer(i64::from(link.addr.port())),
            Value::bulk(if link.up { "connected" } else { "connect" }),
            Value::Integer(link.offset as i64),
        ]),
        _ => Value::Array(vec![
            Value::bulk("master"),
            Value::Integer(st.repl.offset as i64),
            Value::Array(
                st.repl
                    .replicas
                    .iter()
                    .map(|r| {
                        Value::Array(vec![
                            Value::bulk(r.ip.to_string()),
                            Value::bulk(r.port.to_string()),
                            Value::bulk(r.ack_offset.to_string()),
                        ])
                    })
                    .collect(),
            ),
        ]),
    }
}

fn wait_command(args: &[Bytes], locked: &mut Locked<'_>) -> Outcome {
    let Some(n) = parse_i64(&args[1]) else {
        return Outcome::Reply(not_integer());
    };
    let Some(timeout) = parse_i64(&args[2]) else {
        return Outcome::Reply(Value::error(
            "ERR timeout is not an integer or out of range",
        ));
    };
    if timeout < 0 {
        return Outcome::Reply(Value::error("ERR timeout is negative"));
    }
    if !locked.get().cluster.me().is_primary() {
        return Outcome::Reply(Value::error(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis \
             4.0 if a replica is configured to be writable (which is not the default) writes to \
             replicas are just local and are not propagated.",
        ));
    }
    Outcome::Wait {
        numreplicas: n.max(0) as usize,
        timeout_ms: timeout as u64,
    }
}

/// WAIT: block until `numreplicas` replicas acknowledged everything written so far, or the
/// timeout (0: none) passes; the number that did.
pub(crate) async fn wait(shared: &NodeShared, numreplicas: usize, timeout_ms: u64) -> Value {
    let target = {
        let mut st = shared.lock();
        let target = st.repl.offset;
        if st.repl.acked(target) >= numreplicas {
            return Value::Integer(st.repl.acked(target) as i64);
        }
        // Ask replicas to acknowledge now rather than at their next periodic ACK.
        st.repl.feed(vec![[&b"REPLCONF"[..], b"GETACK", b"*"]
            .map(Bytes::from_static)
            .to_vec()]);
        st.repl.flush();
        target
    };
    let deadline =
        (timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
    let mut stop = shared.shutdown_rx();
    loop {
        let notified = shared.acks.notified();
        let acked = shared.lock().repl.acked(target);
        if acked >= numreplicas {
            return Value::Integer(acked as i64);
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = sleep => return Value::Integer(shared.lock().repl.acked(target) as i64),
            _ = crate::server::node::stopped(&mut stop) => return Value::Integer(acked as i64),
        }
    }
}
