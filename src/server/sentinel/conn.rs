//! A client connection to a Sentinel: the small command set Sentinel mode has (PING,
//! HELLO, AUTH, CLIENT, INFO, ROLE, PUBLISH of hellos, SHUTDOWN, QUIT, `SENTINEL`) and
//! pub/sub of its events (`+sdown`, `+switch-master` ...), with Redis 7.0's replies.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, Notify};

use crate::resp::{decode_command, encode_reply, Limits, Protocol, Value};
use crate::server::cmd_config::glob_match;

use super::{command, info, reply, Core};

/// A connected client, for CLIENT KILL and INFO.
pub(crate) struct ClientEntry {
    pub(crate) id: u64,
    pub(crate) addr: String,
    pub(crate) pubsub: Arc<AtomicBool>,
    pub(crate) kill: Arc<Notify>,
}

struct Session {
    id: u64,
    name: Option<Bytes>,
    proto: Protocol,
    authed: bool,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    events: Option<broadcast::Receiver<super::state::Event>>,
    pubsub: Arc<AtomicBool>,
    close: bool,
}

impl Session {
    fn subs(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// Serve one client until it quits, is killed, or the Sentinel stops.
pub(crate) async fn serve(core: Arc<Core>, mut stream: TcpStream, peer: SocketAddr) {
    let id = core.next_client.fetch_add(1, Ordering::Relaxed);
    let kill = Arc::new(Notify::new());
    let pubsub = Arc::new(AtomicBool::new(false));
    core.clients().push(ClientEntry {
        id,
        addr: peer.to_string(),
        pubsub: pubsub.clone(),
        kill: kill.clone(),
    });
    let mut s = Session {
        id,
        name: None,
        proto: Protocol::Resp2,
        authed: core.requirepass.is_none(),
        channels: BTreeSet::new(),
        patterns: BTreeSet::new(),
        events: None,
        pubsub,
        close: false,
    };
    let mut stop = core.stop.subscribe();
    let limits = Limits::default().with_max_bulk_len(64 * 1024 * 1024);
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = BytesMut::new();
    loop {
        tokio::select! {
            r = stream.read_buf(&mut buf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    break;
                }
                loop {
                    match decode_command(&mut buf, &limits) {
                        Ok(Some(args)) if args.is_empty() => continue,
                        Ok(Some(args)) => {
                            core.commands.fetch_add(1, Ordering::Relaxed);
                            for v in execute(&core, &mut s, &args) {
                                encode_reply(&mut out, &v, s.proto);
                            }
                            if s.close {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let v = Value::error(format!("ERR Protocol error: {}", e.message()));
                            encode_reply(&mut out, &v, s.proto);
                            s.close = true;
                            break;
                        }
                    }
                }
            }
            ev = next_event(&mut s.events) => {
                if let Some((channel, msg)) = ev {
                    deliver(&s, &channel, &msg, &mut out);
                }
            }
            _ = kill.notified() => break,
            _ = stop.wait_for(|v| *v) => break,
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
        if s.close {
            break;
        }
    }
    core.clients().retain(|c| c.id != id);
}

async fn next_event(
    rx: &mut Option<broadcast::Receiver<super::state::Event>>,
) -> Option<super::state::Event> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    loop {
        match r.recv().await {
            Ok(e) => return Some(e),
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

fn push(s: &Session, items: Vec<Value>) -> Value {
    match s.proto {
        Protocol::Resp3 => Value::Push(items),
        _ => Value::Array(items),
    }
}

fn deliver(s: &Session, channel: &str, msg: &str, out: &mut BytesMut) {
    if s.channels.contains(channel.as_bytes()) {
        let v = push(
            s,
            vec![
                Value::bulk("message"),
                Value::bulk(channel),
                Value::bulk(msg),
            ],
        );
        encode_reply(out, &v, s.proto);
    }
    for p in &s.patterns {
        if glob_match(p, channel.as_bytes(), false) {
            let v = push(
                s,
                vec![
                    Value::bulk("pmessage"),
                    Value::BulkString(p.clone()),
                    Value::bulk(channel),
                    Value::bulk(msg),
                ],
            );
            encode_reply(out, &v, s.proto);
        }
    }
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

fn arity_error(name: &str) -> Value {
    Value::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// Answer one command: its replies (one per channel for (P)(UN)SUBSCRIBE, none for
/// SHUTDOWN).
fn execute(core: &Arc<Core>, s: &mut Session, args: &[Bytes]) -> Vec<Value> {
    let name = lower(&args[0]);
    if !s.authed && !matches!(name.as_str(), "auth" | "hello" | "quit") {
        return vec![Value::error("NOAUTH Authentication required.")];
    }
    let subscribed = s.subs() > 0 && s.proto == Protocol::Resp2;
    if subscribed
        && !matches!(
            name.as_str(),
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
    {
        return vec![Value::error(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
             RESET are allowed in this context"
        ))];
    }
    let n = args.len();
    let v = match name.as_str() {
        "ping" if n > 2 => arity_error("ping"),
        "ping" => {
            let msg = args.get(1).cloned();
            if subscribed {
                Value::Array(vec![
                    Value::bulk("pong"),
                    Value::BulkString(msg.unwrap_or_default()),
                ])
            } else {
                msg.map_or_else(|| Value::simple("PONG"), Value::BulkString)
            }
        }
        "quit" => {
            s.close = true;
            Value::ok()
        }
        "auth" if !(2..=3).contains(&n) => arity_error("auth"),
        "auth" => auth(core, s, args),
        "hello" => hello(core, s, args),
        "client" => client(core, s, args),
        "info" => Value::bulk(info_text(core, args)),
        "role" if n != 1 => arity_error("role"),
        "role" => reply::role(&core.lock()),
        "sentinel" => command::sentinel(&mut core.lock(), args),
        "publish" if n != 3 => arity_error("publish"),
        "publish" => {
            if &args[1][..] != super::state::HELLO_CHANNEL.as_bytes() {
                Value::error("ERR Only HELLO messages are accepted by Sentinel instances.")
            } else {
                info::process_hello(&mut core.lock(), &String::from_utf8_lossy(&args[2]));
                Value::Integer(1)
            }
        }
        "subscribe" | "psubscribe" if n < 2 => arity_error(&name),
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" => {
            return subscribe(core, s, &name, &args[1..]);
        }
        "shutdown" => {
            super::shutdown(core);
            s.close = true;
            return Vec::new();
        }
        _ => unknown(args),
    };
    vec![v]
}

fn unknown(args: &[Bytes]) -> Value {
    let mut list = String::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let t = String::from_utf8_lossy(a);
        list.push('\'');
        list.push_str(
            &t.chars()
                .take(128 - list.len().min(127))
                .collect::<String>(),
        );
        list.push_str("' ");
    }
    let name: String = String::from_utf8_lossy(&args[0])
        .chars()
        .take(128)
        .collect();
    Value::error(format!(
        "ERR unknown command '{name}', with args beginning with: {list}"
    ))
}

fn auth(core: &Arc<Core>, s: &mut Session, args: &[Bytes]) -> Value {
    let Some(pass) = &core.requirepass else {
        if args.len() == 2 {
            return Value::error(
                "ERR AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?",
            );
        }
        s.authed = &args[1][..] == b"default";
        return if s.authed { Value::ok() } else { wrongpass() };
    };
    let (user, given) = if args.len() == 3 {
        (&args[1][..], &args[2])
    } else {
        (&b"default"[..], &args[1])
    };
    if user == b"default" && given[..] == *pass.as_bytes() {
        s.authed = true;
        Value::ok()
    } else {
        wrongpass()
    }
}

fn wrongpass() -> Value {
    Value::error("WRONGPASS invalid username-password pair or user is disabled.")
}

fn hello(core: &Arc<Core>, s: &mut Session, args: &[Bytes]) -> Value {
    let mut proto = s.proto;
    if let Some(v) = args.get(1) {
        match std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
        {
            None => return Value::error("ERR Protocol version is not an integer or out of range"),
            Some(2) => proto = Protocol::Resp2,
            Some(3) => proto = Protocol::Resp3,
            Some(_) => return Value::error("NOPROTO unsupported protocol version"),
        }
    }
    let mut j = 2;
    while j < args.len() {
        let opt = lower(&args[j]);
        if opt == "auth" && j + 2 < args.len() {
            let r = auth(
                core,
                s,
                &[args[0].clone(), args[j + 1].clone(), args[j + 2].clone()],
            );
            if r.is_error() {
                return r;
            }
            j += 3;
        } else if opt == "setname" && j + 1 < args.len() {
            s.name = Some(args[j + 1].clone());
            j += 2;
        } else {
            return Value::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[j])
            ));
        }
    }
    if !s.authed {
        return Value::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
    }
    s.proto = proto;
    Value::Map(vec![
        (Value::bulk("server"), Value::bulk("redis")),
        (
            Value::bulk("version"),
            Value::bulk(crate::server::REDIS_VERSION),
        ),
        (
            Value::bulk("proto"),
            Value::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Value::bulk("id"), Value::Integer(s.id as i64)),
        (Value::bulk("mode"), Value::bulk("sentinel")),
        (Value::bulk("modules"), Value::Array(Vec::new())),
    ])
}

fn client(core: &Arc<Core>, s: &mut Session, args: &[Bytes]) -> Value {
    if args.len() < 2 {
        return arity_error("client");
    }
    let sub = lower(&args[1]);
    let n = args.len();
    match sub.as_str() {
        "setname" if n != 3 => arity_error("client|setname"),
        "setname" => {
            if args[2].iter().any(|&b| b <= b' ' || b > b'~') {
                return Value::error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            s.name = (!args[2].is_empty()).then(|| args[2].clone());
            Value::ok()
        }
        "getname" if n != 2 => arity_error("client|getname"),
        "getname" => s.name.clone().map_or(Value::Null, Value::BulkString),
        "id" if n != 2 => arity_error("client|id"),
        "id" => Value::Integer(s.id as i64),
        "kill" if n < 3 => arity_error("client|kill"),
        "kill" => kill(core, s, &args[2..]),
        _ => Value::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// `CLIENT KILL addr` or `CLIENT KILL [ID id] [ADDR addr] [TYPE normal|pubsub] [SKIPME yes|no]`.
fn kill(core: &Arc<Core>, s: &mut Session, args: &[Bytes]) -> Value {
    let clients = core.clients();
    if args.len() == 1 {
        let addr = String::from_utf8_lossy(&args[0]);
        return match clients.iter().find(|c| c.addr == addr) {
            Some(c) => {
                c.kill.notify_one();
                if c.id == s.id {
                    s.close = true;
                }
                Value::ok()
            }
            None => Value::error("ERR No such client"),
        };
    }
    if args.len() % 2 != 0 {
        return Value::error("ERR syntax error");
    }
    let (mut id, mut addr, mut kind, mut skipme) = (None, None, None, true);
    // TYPE master/replica: a Sentinel has no such clients.
    let mut none = false;
    for pair in args.chunks(2) {
        let v = String::from_utf8_lossy(&pair[1]).into_owned();
        match lower(&pair[0]).as_str() {
            "id" => match v.parse::<u64>() {
                Ok(x) => id = Some(x),
                Err(_) => return Value::error("ERR client-id should be greater than 0"),
            },
            "addr" => addr = Some(v),
            "type" => match v.to_ascii_lowercase().as_str() {
                "normal" => kind = Some(false),
                "pubsub" => kind = Some(true),
                "master" | "replica" | "slave" => none = true,
                _ => return Value::error(format!("ERR Unknown client type '{v}'")),
            },
            "skipme" => skipme = !v.eq_ignore_ascii_case("no"),
            _ => return Value::error("ERR syntax error"),
        }
    }
    let mut n = 0;
    for c in clients.iter() {
        let matches = !none
            && id.map_or(true, |i| i == c.id)
            && addr.as_ref().map_or(true, |a| *a == c.addr)
            && kind.map_or(true, |k| k == c.pubsub.load(Ordering::Relaxed))
            && !(skipme && c.id == s.id);
        if matches {
            c.kill.notify_one();
            if c.id == s.id {
                s.close = true;
            }
            n += 1;
        }
    }
    Value::Integer(n)
}

fn subscribe(core: &Arc<Core>, s: &mut Session, name: &str, targets: &[Bytes]) -> Vec<Value> {
    let pattern = name.starts_with('p');
    let adding = !name.contains("unsub");
    let word = name.to_string();
    let mut replies = Vec::new();
    let list: Vec<Bytes> = if targets.is_empty() && !adding {
        let set = if pattern { &s.patterns } else { &s.channels };
        set.iter().cloned().collect()
    } else {
        targets.to_vec()
    };
    if list.is_empty() {
        replies.push(push(
            s,
            vec![
                Value::bulk(&word),
                Value::Null,
                Value::Integer(s.subs() as i64),
            ],
        ));
    }
    for t in list {
        let set = if pattern {
            &mut s.patterns
        } else {
            &mut s.channels
        };
        if adding {
            set.insert(t.clone());
        } else {
            set.remove(&t);
        }
        replies.push(push(
            s,
            vec![
                Value::bulk(&word),
                Value::BulkString(t),
                Value::Integer(s.subs() as i64),
            ],
        ));
    }
    if s.subs() > 0 && s.events.is_none() {
        s.events = Some(core.events.subscribe());
    } else if s.subs() == 0 {
        s.events = None;
    }
    s.pubsub.store(s.subs() > 0, Ordering::Relaxed);
    replies
}

fn info_text(core: &Arc<Core>, args: &[Bytes]) -> String {
    let wanted: Vec<String> = args[1..].iter().map(|a| lower(a)).collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let want = |sec: &str| all || wanted.iter().any(|w| w == sec);
    let st = core.lock();
    let mut parts = Vec::new();
    if want("server") {
        let up = core.started.elapsed().as_secs();
        parts.push(format!(
            "# Server\r\nredis_version:{}\r\nredis_mode:sentinel\r\nos:{}\r\narch_bits:64\r\n\
             multiplexing_api:tokio\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\n\
             uptime_in_seconds:{up}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\n",
            crate::server::REDIS_VERSION,
            std::env::consts::OS,
            std::process::id(),
            st.myid,
            st.port,
            up / 86400
        ));
    }
    if want("clients") {
        parts.push(format!(
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:10000\r\n\
             blocked_clients:0\r\ntracking_clients:0\r\n",
            core.clients().len()
        ));
    }
    if want("stats") {
        parts.push(format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
            core.connections.load(Ordering::Relaxed),
            core.commands.load(Ordering::Relaxed)
        ));
    }
    if want("sentinel") {
        parts.push(reply::info_section(&st));
    }
    parts.join("\r\n")
}
