//! The command registry: from a command name to its spec (the generated `command` table),
//! its routing traits and its handler. The list of implemented commands is
//! `super::COMMANDS` (one line per command in `server/mod.rs`); this file builds the lookup
//! from it and resolves a request to what runs it, checking arity once.
//!
//! Naming rule: `"name"` registers a command; for a command with subcommands it also
//! handles every subcommand not registered on its own (`OBJECT`, `CONFIG`); `"name|sub"`
//! registers one subcommand (only the listed `CLIENT` and `CLUSTER` subcommands exist).

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::command::{self, CommandSpec};
use crate::resp::Value;

use super::args::arity_error;
use super::call::{Call, Outcome};
use super::db::{Db, DbCommand, ExecCtx};

/// A server command: gets the request and everything it may touch, returns what the
/// connection loop does next.
pub(crate) type ServerCommand = fn(&mut Call<'_, '_>) -> Outcome;

/// Who executes a command.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// The keyspace engine (a pure function of the keyspace and the arguments).
    Db(DbCommand),
    /// The server (connection, cluster, replication, pub/sub, blocking commands).
    Server(ServerCommand),
}

/// The flags routing and dispatch test on every request, computed once per command.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Traits {
    /// May modify the keyspace.
    pub(crate) write: bool,
    /// Implies ASKING (RESTORE-ASKING).
    pub(crate) asking: bool,
    /// Allowed before authentication.
    pub(crate) no_auth: bool,
    /// Goes through routing (it can have keys).
    pub(crate) has_keys: bool,
    /// MIGRATE: served wherever a slot is open.
    pub(crate) migrate: bool,
    /// Shard pub/sub: its channels are no keys for migration checks.
    pub(crate) pubsub: bool,
}

impl Traits {
    /// Read them from the command table.
    pub(crate) fn of(spec: &CommandSpec) -> Traits {
        Traits {
            write: spec.is_write(),
            asking: spec.has_flag("asking"),
            no_auth: spec.has_flag("no_auth"),
            has_keys: !spec.key_specs.is_empty() || spec.has_flag("movablekeys"),
            migrate: spec.name == "migrate",
            pubsub: spec.has_flag("pubsub"),
        }
    }
}

/// A registered command or subcommand, ready to run.
#[derive(Clone, Copy)]
pub(crate) struct Resolved {
    /// Its spec (the subcommand's, for a subcommand).
    pub(crate) spec: &'static CommandSpec,
    /// Flags routing and dispatch test.
    pub(crate) traits: Traits,
    /// What runs it.
    pub(crate) handler: Handler,
}

/// One top-level command and what is registered under it.
struct Top {
    spec: &'static CommandSpec,
    traits: Traits,
    /// Registered as `"name"`: runs the command and its unregistered subcommands.
    handler: Option<Handler>,
    /// Registered as `"name|sub"`: sub name (lower case) and handler.
    subs: Vec<(&'static str, Handler)>,
}

impl Top {
    /// The handler of subcommand `sub` (lower case), when implemented.
    fn sub_handler(&self, sub: &str) -> Option<Handler> {
        self.subs
            .iter()
            .find(|(name, _)| *name == sub)
            .map(|(_, h)| *h)
            .or(self.handler)
    }
}

fn table() -> &'static HashMap<&'static [u8], Top> {
    static TABLE: OnceLock<HashMap<&'static [u8], Top>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map: HashMap<&'static [u8], Top> = HashMap::new();
        for &(name, handler) in super::COMMANDS {
            let (top, sub) = match name.split_once('|') {
                Some((t, s)) => (t, Some(s)),
                None => (name, None),
            };
            let Some(spec) = command::lookup(top.as_bytes()) else {
                panic!("registered command {name} is not in the command table");
            };
            let entry = map.entry(spec.name.as_bytes()).or_insert_with(|| Top {
                spec,
                traits: Traits::of(spec),
                handler: None,
                subs: Vec::new(),
            });
            match sub {
                None => entry.handler = Some(handler),
                Some(sub) => entry.subs.push((sub, handler)),
            }
        }
        map
    })
}

fn find(name: &[u8]) -> Option<&'static Top> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    table().get(&buf[..name.len()])
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
            Some(s) => e.sub_handler(s).is_some(),
        },
    }
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

/// The name stats count a refused request under: its top-level command, when known.
pub(crate) fn known_name(name: &[u8]) -> Option<&'static str> {
    find(name).map(|e| e.spec.name)
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

/// Find what runs `args` (non-empty) and check its arity: the error reply Redis gives for an
/// unknown command or subcommand or a wrong argument count otherwise.
pub(crate) fn resolve(args: &[Bytes]) -> Result<Resolved, Value> {
    let Some(entry) = find(&args[0]) else {
        return Err(unknown_command(args));
    };
    let (spec, traits, handler) = match (entry.spec.subcommands.is_empty(), args.get(1)) {
        (false, Some(sub)) => {
            let sub_spec = subcommand(entry.spec, sub);
            match sub_spec.and_then(|s| Some((s, entry.sub_handler(short_name(s))?))) {
                Some((s, handler)) => (s, Traits::of(s), Some(handler)),
                None => {
                    return Err(Value::error(format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        String::from_utf8_lossy(&sub[..sub.len().min(128)]),
                        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
                    )))
                }
            }
        }
        _ => (entry.spec, entry.traits, entry.handler),
    };
    if !spec.arity_ok(args.len()) {
        return Err(arity_error(spec));
    }
    // (A container such as CLIENT sent bare fails its arity check above.)
    let handler = handler.ok_or_else(|| arity_error(spec))?;
    Ok(Resolved {
        spec,
        traits,
        handler,
    })
}

/// `sub` of `name|sub`.
fn short_name(spec: &CommandSpec) -> &'static str {
    let name: &'static str = spec.name;
    name.split_once('|').map_or("", |(_, b)| b)
}

/// Run a keyspace command by name, outside a client's request (a replica applying its
/// primary's stream, MIGRATE, routing checks, serving a blocked client). Its arity is checked
/// here, as dispatch checks it for requests; anything but a keyspace command is refused.
pub(crate) fn execute_db(db: &mut Db, args: &[Bytes], ctx: &ExecCtx) -> Value {
    let Some(name) = args.first() else {
        return Value::error("ERR empty command");
    };
    let Some((spec, Some(Handler::Db(run)))) = find(name).map(|e| (e.spec, e.handler)) else {
        return Value::error(format!(
            "ERR unknown command '{}'",
            String::from_utf8_lossy(name)
        ));
    };
    if !spec.arity_ok(args.len()) {
        return arity_error(spec);
    }
    db.run(run, args, ctx)
}

/// The handler of a command `resolve` accepted earlier (a queued transaction's command).
pub(crate) fn handler_of(spec: &CommandSpec) -> Option<Handler> {
    let (top, sub) = match spec.name.split_once('|') {
        Some((t, s)) => (t, Some(s)),
        None => (spec.name, None),
    };
    let entry = table().get(top.as_bytes())?;
    match sub {
        Some(sub) => entry.sub_handler(sub),
        None => entry.handler,
    }
}

/// True when `name` (any case) is registered as a keyspace command (scripts may call those).
pub(crate) fn is_db_command(name: &[u8]) -> bool {
    find(name).is_some_and(|e| matches!(e.handler, Some(Handler::Db(_))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn every_registered_name_is_a_known_command_and_registered_once() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in super::super::COMMANDS {
            assert!(seen.insert(*name), "{name} registered twice");
            let (top, sub) = name
                .split_once('|')
                .map_or((*name, None), |(t, s)| (t, Some(s)));
            let spec = command::lookup(top.as_bytes()).expect(name);
            if let Some(sub) = sub {
                assert!(subcommand(spec, sub.as_bytes()).is_some(), "{name}");
            }
        }
        let db = super::super::COMMANDS
            .iter()
            .filter(|(_, h)| matches!(h, Handler::Db(_)))
            .count();
        assert!(db >= 133, "only {db} keyspace commands");
    }

    #[test]
    fn resolve_checks_arity_once_from_the_spec_and_finds_subcommands() {
        let ok = |w: &[&str]| resolve(&args(w)).map(|r| r.spec.name);
        assert_eq!(ok(&["GeT", "k"]), Ok("get"));
        assert_eq!(
            ok(&["get"]),
            Err(Value::error(
                "ERR wrong number of arguments for 'get' command"
            ))
        );
        assert_eq!(ok(&["client", "SETNAME", "n"]), Ok("client|setname"));
        assert_eq!(ok(&["object", "encoding", "k"]), Ok("object|encoding"));
        assert_eq!(
            ok(&["object", "encoding"]),
            Err(Value::error(
                "ERR wrong number of arguments for 'object|encoding' command"
            ))
        );
        // Registered subcommands only: SCRIPT DEBUG exists in Redis, not here.
        assert_eq!(
            ok(&["script", "debug", "yes"]),
            Err(Value::error(
                "ERR unknown subcommand 'debug'. Try SCRIPT HELP."
            ))
        );
        assert_eq!(ok(&["client", "tracking", "on"]), Ok("client|tracking"));
        assert_eq!(
            ok(&["client"]),
            Err(Value::error(
                "ERR wrong number of arguments for 'client' command"
            ))
        );
        assert_eq!(ok(&["cluster", "myshardid"]), Ok("cluster|myshardid"));
        assert!(ok(&["nosuch", "a"]).is_err());
        assert!(implemented(command::lookup(b"get").unwrap()));
        assert!(!implemented(
            command::lookup(b"script")
                .unwrap()
                .subcommand(b"debug")
                .unwrap()
        ));
        assert!(implemented(
            command::lookup(b"config")
                .unwrap()
                .subcommand(b"get")
                .unwrap()
        ));
    }

    #[test]
    fn a_queued_command_finds_its_handler_again() {
        let r = resolve(&args(&["client", "id"])).unwrap();
        assert!(matches!(handler_of(r.spec), Some(Handler::Server(_))));
        let r = resolve(&args(&["object", "freq", "k"])).unwrap();
        assert!(matches!(handler_of(r.spec), Some(Handler::Db(_))));
    }
}
