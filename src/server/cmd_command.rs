//! COMMAND, COMMAND COUNT/INFO/DOCS/LIST/GETKEYS/GETKEYSANDFLAGS: Redis 7's replies, built
//! from the shared command table (DOCS from Redis' own docs, `cmd_docs`) and listing only what
//! this server implements.

use bytes::Bytes;

use crate::command::{self, BeginSearch, CommandSpec, FindKeys, KeySpec};
use crate::resp::Value;

use super::args::syntax_error;
use super::call::{Call, Outcome};
use super::cmd_docs::docs;
use super::registry::implemented;
use super::session::Conn;

fn status_set(items: &[&str]) -> Value {
    Value::Set(items.iter().map(|s| Value::simple_owned(s)).collect())
}

trait SimpleOwned {
    fn simple_owned(s: &str) -> Value;
}

impl SimpleOwned for Value {
    fn simple_owned(s: &str) -> Value {
        Value::SimpleString(Bytes::copy_from_slice(s.as_bytes()))
    }
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::bulk(k), v))
            .collect(),
    )
}

fn key_spec(ks: &KeySpec) -> Value {
    let begin = match ks.begin {
        BeginSearch::Index(i) => map(vec![
            ("type", Value::bulk("index")),
            ("spec", map(vec![("index", Value::Integer(i64::from(i)))])),
        ]),
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => map(vec![
            ("type", Value::bulk("keyword")),
            (
                "spec",
                map(vec![
                    ("keyword", Value::bulk(keyword.to_ascii_uppercase())),
                    ("startfrom", Value::Integer(i64::from(start_from))),
                ]),
            ),
        ]),
        BeginSearch::Unknown => map(vec![
            ("type", Value::bulk("unknown")),
            ("spec", Value::Map(Vec::new())),
        ]),
    };
    let find = match ks.find {
        FindKeys::Range {
            last_key,
            key_step,
            limit,
        } => map(vec![
            ("type", Value::bulk("range")),
            (
                "spec",
                map(vec![
                    ("lastkey", Value::Integer(i64::from(last_key))),
                    ("keystep", Value::Integer(i64::from(key_step))),
                    ("limit", Value::Integer(i64::from(limit))),
                ]),
            ),
        ]),
        FindKeys::KeyNum {
            key_num_idx,
            first_key,
            key_step,
        } => map(vec![
            ("type", Value::bulk("keynum")),
            (
                "spec",
                map(vec![
                    ("keynumidx", Value::Integer(i64::from(key_num_idx))),
                    ("firstkey", Value::Integer(i64::from(first_key))),
                    ("keystep", Value::Integer(i64::from(key_step))),
                ]),
            ),
        ]),
        FindKeys::Unknown => map(vec![
            ("type", Value::bulk("unknown")),
            ("spec", Value::Map(Vec::new())),
        ]),
    };
    map(vec![
        ("flags", status_set(ks.flags)),
        ("begin_search", begin),
        ("find_keys", find),
    ])
}

/// One 10-element COMMAND entry.
pub(crate) fn entry(spec: &CommandSpec) -> Value {
    Value::Array(vec![
        Value::bulk(spec.name),
        Value::Integer(i64::from(spec.arity)),
        status_set(spec.flags),
        Value::Integer(i64::from(spec.first_key)),
        Value::Integer(i64::from(spec.last_key)),
        Value::Integer(i64::from(spec.step)),
        status_set(spec.acl_categories),
        Value::Set(spec.tips.iter().map(Value::bulk).collect()),
        // Redis 7 sends key specs as a set, and subcommands as an array unless there are
        // none (then an empty set).
        Value::Set(spec.key_specs.iter().map(key_spec).collect()),
        if spec.subcommands.is_empty() {
            Value::Set(Vec::new())
        } else {
            Value::Array(
                spec.subcommands
                    .iter()
                    .filter(|s| implemented(s))
                    .map(entry)
                    .collect(),
            )
        },
    ])
}

fn implemented_top() -> impl Iterator<Item = &'static CommandSpec> {
    command::all().iter().filter(|s| implemented(s))
}

/// Run COMMAND or one of its subcommands.
pub(crate) fn run(conn: &Conn, spec: &CommandSpec, args: &[Bytes]) -> Value {
    let _ = conn;
    match spec.name {
        "command" => Value::Array(implemented_top().map(entry).collect()),
        "command|count" => Value::Integer(implemented_top().count() as i64),
        "command|list" => list(args),
        "command|info" => {
            if args.len() == 2 {
                return Value::Array(implemented_top().map(entry).collect());
            }
            Value::Array(
                args[2..]
                    .iter()
                    .map(|name| match find_spec(name) {
                        Some(s) => entry(s),
                        None => Value::Null,
                    })
                    .collect(),
            )
        }
        "command|docs" => {
            let specs: Vec<&CommandSpec> = if args.len() == 2 {
                implemented_top().collect()
            } else {
                args[2..].iter().filter_map(|n| find_spec(n)).collect()
            };
            Value::Map(
                specs
                    .into_iter()
                    .map(|s| (Value::bulk(s.name), docs(s)))
                    .collect(),
            )
        }
        "command|getkeys" | "command|getkeysandflags" => {
            let with_flags = spec.name == "command|getkeysandflags";
            let target = &args[2..];
            let Some(cmd) = command::lookup_args(target).filter(|s| implemented(s)) else {
                return Value::error("ERR Invalid command specified");
            };
            // Redis' `doesCommandHaveKeys`: a key spec that is not `not_key`, or a getkeys
            // procedure (every `movablekeys` command has one).
            let has_keys = cmd.has_flag("movablekeys")
                || cmd.key_specs.iter().any(|k| !k.flags.contains(&"not_key"));
            if !has_keys {
                return Value::error("ERR The command has no key arguments");
            }
            if !cmd.arity_ok(target.len()) {
                return Value::error("ERR Invalid number of arguments specified for command");
            }
            // The keys the cluster routes by: the same positions the client's routing uses.
            let keys: Vec<usize> = command::key_positions(cmd, target).iter().collect();
            if keys.is_empty() {
                if cmd.has_flag("no_mandatory_keys") {
                    return Value::Array(Vec::new());
                }
                return Value::error("ERR Invalid arguments specified for command");
            }
            Value::Array(
                keys.into_iter()
                    .map(|i| {
                        let key = Value::BulkString(target[i].clone());
                        if with_flags {
                            let flags = cmd.key_specs.first().map_or(&[][..], |k| k.flags);
                            Value::Array(vec![key, status_set(flags)])
                        } else {
                            key
                        }
                    })
                    .collect(),
            )
        }
        "command|help" => Value::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|s| Value::simple(s))
            .collect(),
        ),
        _ => Value::error("ERR unknown subcommand"),
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every
/// implemented command and subcommand (`config|get`), as Redis 7.0 lists them.
fn list(args: &[Bytes]) -> Value {
    enum Filter {
        None,
        Module,
        AclCat(String),
        Pattern(Vec<u8>),
    }
    let mut filter = Filter::None;
    let mut i = 2;
    while i < args.len() {
        if !(args[i].eq_ignore_ascii_case(b"filterby") && args.len() - 1 - i == 2) {
            return syntax_error();
        }
        let arg = &args[i + 2];
        filter = match args[i + 1].to_ascii_lowercase().as_slice() {
            b"module" => Filter::Module,
            b"aclcat" => Filter::AclCat(format!("@{}", String::from_utf8_lossy(arg))),
            b"pattern" => Filter::Pattern(arg.to_ascii_lowercase()),
            _ => return syntax_error(),
        };
        i += 3;
    }
    let keep = |s: &CommandSpec| match &filter {
        Filter::None => true,
        // No modules here.
        Filter::Module => false,
        Filter::AclCat(cat) => s.acl_categories.iter().any(|c| c.eq_ignore_ascii_case(cat)),
        Filter::Pattern(p) => super::db::glob::matches(p, s.name.as_bytes()),
    };
    let mut out = Vec::new();
    for top in implemented_top() {
        let subs = top.subcommands.iter().filter(|s| implemented(s));
        for spec in std::iter::once(top).chain(subs) {
            if keep(spec) {
                out.push(Value::bulk(spec.name));
            }
        }
    }
    Value::Array(out)
}

/// A command or `parent|sub` name, if implemented.
fn find_spec(name: &[u8]) -> Option<&'static CommandSpec> {
    let text = String::from_utf8_lossy(name).to_ascii_lowercase();
    let spec = match text.split_once('|') {
        Some((top, sub)) => command::lookup(top.as_bytes())?.subcommand(sub.as_bytes())?,
        None => command::lookup(text.as_bytes())?,
    };
    implemented(spec).then_some(spec)
}

/// COMMAND and its subcommands (registry entry).
pub(crate) fn command_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(run(c.conn, c.spec, c.args))
}
