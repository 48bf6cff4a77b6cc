//! Connection and server commands: PING, ECHO, SELECT, HELLO, AUTH, CLIENT, QUIT, RESET,
//! READONLY/READWRITE/ASKING, WAIT, REPLCONF/PSYNC, TIME, ROLE, SAVE/BGSAVE/LASTSAVE.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::resp::{Protocol, Value};

use super::args::{not_integer, parse_i64, syntax_error};
use super::auth;
use super::call::{Call, Outcome};
use super::node::{now_ms, Locked, NodeShared};
use super::session::Conn;

/// PING [message].
pub(crate) fn ping(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(match c.args.get(1) {
        None => Value::simple("PONG"),
        Some(m) => Value::BulkString(m.clone()),
    })
}

/// ECHO message.
pub(crate) fn echo(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(Value::BulkString(c.args[1].clone()))
}

/// HELLO [protover [AUTH user pass] [SETNAME name]].
pub(crate) fn hello_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(hello(c.conn, c.args, c.locked, c.shared))
}

/// AUTH [user] password.
pub(crate) fn auth_command(c: &mut Call<'_, '_>) -> Outcome {
    let acl = &mut c.locked.get().acl;
    Outcome::Reply(auth::auth(c.conn, acl, &c.shared.clients, c.args))
}

/// QUIT: reply, then close.
pub(crate) fn quit(_c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Quit(Value::ok())
}

/// RESET: the connection's state as when it was accepted.
pub(crate) fn reset(c: &mut Call<'_, '_>) -> Outcome {
    // As Redis: back to the `default` user, authenticated only when it needs no password.
    let open = !c.locked.get().acl.auth_required();
    if c.conn.tracking.is_some() {
        let st = c.locked.get();
        st.tracking.disable(c.conn.id);
        st.sync_tracking();
    }
    *c.conn = Conn::new(c.conn.id, c.conn.peer, c.conn.local, open);
    c.shared.clients.set_user(c.conn.id, "default");
    Outcome::Reply(Value::simple("RESET"))
}

/// Redis' answer to READONLY, READWRITE and ASKING with cluster mode off.
fn cluster_disabled(c: &Call<'_, '_>) -> Option<Outcome> {
    c.shared.config.standalone.then(|| {
        Outcome::Reply(Value::error(
            "ERR This instance has cluster support disabled",
        ))
    })
}

/// READONLY: this connection may read from a replica.
pub(crate) fn readonly(c: &mut Call<'_, '_>) -> Outcome {
    if let Some(refused) = cluster_disabled(c) {
        return refused;
    }
    c.conn.readonly = true;
    Outcome::Reply(Value::ok())
}

/// READWRITE: back to reading from primaries only.
pub(crate) fn readwrite(c: &mut Call<'_, '_>) -> Outcome {
    if let Some(refused) = cluster_disabled(c) {
        return refused;
    }
    c.conn.readonly = false;
    Outcome::Reply(Value::ok())
}

/// ASKING: the next command may touch an importing slot.
pub(crate) fn asking(c: &mut Call<'_, '_>) -> Outcome {
    if let Some(refused) = cluster_disabled(c) {
        return refused;
    }
    c.conn.asking = true;
    Outcome::Reply(Value::ok())
}

/// WAIT numreplicas timeout.
pub(crate) fn wait_command(c: &mut Call<'_, '_>) -> Outcome {
    wait_request(c.args, c.locked)
}

/// REPLCONF option value ...
pub(crate) fn replconf_command(c: &mut Call<'_, '_>) -> Outcome {
    replconf(c.conn, c.args)
}

/// PSYNC / SYNC: the connection becomes a replication link (primaries only).
pub(crate) fn sync(c: &mut Call<'_, '_>) -> Outcome {
    if c.locked.get().cluster.me().is_primary() {
        return Outcome::Sync;
    }
    Outcome::Reply(Value::error(
        "NOMASTERLINK Can't SYNC while not connected with my master",
    ))
}

/// TIME: seconds and microseconds.
pub(crate) fn time(_c: &mut Call<'_, '_>) -> Outcome {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Outcome::Reply(Value::Array(vec![
        Value::bulk(now.as_secs().to_string()),
        Value::bulk(now.subsec_micros().to_string()),
    ]))
}

/// LASTSAVE: nothing is saved to disk, so "now".
pub(crate) fn lastsave(_c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(Value::Integer((now_ms() / 1000) as i64))
}

/// SAVE: accepted (nothing is persisted).
pub(crate) fn save(_c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(Value::ok())
}

/// BGSAVE: accepted (nothing is persisted).
pub(crate) fn bgsave(_c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(Value::simple("Background saving started"))
}

/// BGREWRITEAOF: this server keeps no append-only file; it answers as Redis does when a
/// rewrite starts, so tools that trigger one carry on.
pub(crate) fn bgrewriteaof(_c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(Value::simple(
        "Background append only file rewriting started",
    ))
}

/// ROLE.
pub(crate) fn role_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(super::replication::standalone::role(c.locked.get()))
}

/// `CLIENT <sub>` (UNBLOCK lives with the blocking commands).
pub(crate) fn client_command(c: &mut Call<'_, '_>) -> Outcome {
    if c.spec.name == "client|kill" {
        // CLIENT KILL USER <name>: the user must exist.
        let users = c.args.chunks(2).skip(1).filter(|p| p.len() == 2);
        for pair in users.filter(|p| p[0].eq_ignore_ascii_case(b"user")) {
            let name = String::from_utf8_lossy(&pair[1]);
            if !c.locked.get().acl.has_user(&name) {
                return Outcome::Reply(Value::error(format!("ERR No such user '{name}'")));
            }
        }
    }
    let broken = c.conn.tracking.is_some()
        && c.locked
            .get()
            .tracking
            .tracker(c.conn.id)
            .is_some_and(|t| t.broken);
    Outcome::Reply(client(c.conn, &c.spec.name[7..], c.args, c.shared, broken))
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
    while i < args.len() {
        let opt = args[i].to_ascii_lowercase();
        let more = args.len() - i - 1;
        if opt == b"auth" && more >= 2 {
            // As Redis: the login takes effect even if a later option is refused.
            let acl = &mut locked.get().acl;
            if !auth::login(
                conn,
                acl,
                &shared.clients,
                &args[0],
                &args[i + 1],
                &args[i + 2],
            ) {
                return auth::wrongpass();
            }
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
    if proto == Protocol::Resp3 {
        // A RESP3 connection can receive tracking invalidations (its own or redirected).
        conn.pubsub.mailbox();
    }
    let primary = locked.get().cluster.me().is_primary();
    Value::Map(vec![
        (Value::bulk("server"), Value::bulk("redis")),
        (Value::bulk("version"), Value::bulk(super::REDIS_VERSION)),
        (
            Value::bulk("proto"),
            Value::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Value::bulk("id"), Value::Integer(conn.id as i64)),
        (
            Value::bulk("mode"),
            Value::bulk(if shared.config.standalone {
                "standalone"
            } else {
                "cluster"
            }),
        ),
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

/// `broken`: the connection's tracking redirect is broken (CLIENT INFO/LIST flag `R`).
fn client(conn: &mut Conn, sub: &str, args: &[Bytes], shared: &NodeShared, broken: bool) -> Value {
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
            text: Bytes::from(conn.info_line_with(broken) + "\n"),
        },
        "list" => Value::Verbatim {
            format: Bytes::from_static(b"txt"),
            text: Bytes::from(shared.clients.list(conn.id, &conn.info_line_with(broken))),
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
            b"user" => filter.user = Some(text),
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

fn wait_request(args: &[Bytes], locked: &mut Locked<'_>) -> Outcome {
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
