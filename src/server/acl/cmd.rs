//! The ACL command: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, LOG, DRYRUN,
//! GENPASS, HELP (LOAD/SAVE answer as a server without an ACL file does).

use bytes::Bytes;

use crate::command::{self, CommandSpec};
use crate::resp::Value;

use super::super::args::{help, not_integer, parse_i64};
use super::super::call::{Call, Outcome};
use super::super::clients::KillFilter;
use super::super::node::{NodeShared, NodeState};
use super::super::pubsub::Kind;
use super::cat::{self, universe, CATEGORIES};
use super::check::{self, Denied};
use super::user::Selector;

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

/// ACL <subcommand> (registry entry).
pub(crate) fn acl_command(c: &mut Call<'_, '_>) -> Outcome {
    let args = c.args;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let argc = args.len();
    let reply = match (sub.as_str(), argc) {
        ("setuser", 3..) => setuser(c),
        ("deluser", 3..) => return deluser(c),
        ("getuser", 3) => getuser(c, &args[2]),
        ("list", 2) | ("users", 2) => {
            let acl = &c.locked.get().acl;
            Value::Array(
                acl.users
                    .values()
                    .map(|u| {
                        if sub == "users" {
                            Value::bulk(&u.name)
                        } else {
                            Value::bulk(format!("user {} {}", u.name, u.describe()))
                        }
                    })
                    .collect(),
            )
        }
        ("whoami", 2) => Value::bulk(&c.conn.user),
        ("load" | "save", _) => Value::error(
            "ERR This Redis instance is not configured to use an ACL file. You may want to \
             specify users via the ACL SETUSER command and then issue a CONFIG REWRITE \
             (assuming you have a Redis configuration file set) in order to store users in the \
             Redis configuration.",
        ),
        ("cat", 2) => Value::Array(CATEGORIES.iter().map(Value::bulk).collect()),
        ("cat", 3) => match cat::category(&args[2]) {
            None => Value::error(format!(
                "ERR Unknown category '{}'",
                String::from_utf8_lossy(&args[2][..args[2].len().min(128)])
            )),
            Some(mask) => {
                let u = universe();
                Value::Array(
                    u.in_category(mask)
                        .map(|id| Value::bulk(u.cmds[id].spec.name))
                        .collect(),
                )
            }
        },
        ("genpass", 2 | 3) => genpass(args.get(2)),
        ("log", 2 | 3) => log(c),
        ("dryrun", 4..) => dryrun(c),
        ("help", 2) => help("ACL", HELP),
        _ => Value::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
        )),
    };
    Outcome::Reply(reply)
}

fn setuser(c: &mut Call<'_, '_>) -> Value {
    let name = &c.args[2];
    if name.iter().any(|&b| b.is_ascii_whitespace() || b == 0) {
        return Value::error("ERR Usernames can't contain spaces or null characters");
    }
    match set_user_on(c.locked.get(), c.shared, name, &c.args[3..]) {
        Ok(()) => Value::ok(),
        Err(e) => Value::error(format!("ERR {}", e.replace(['\r', '\n'], " "))),
    }
}

/// ACL SETUSER on one node; as Redis, the user's pub/sub connections subscribed to a channel
/// or pattern the new rules no longer allow are closed.
///
/// # Errors
/// Redis' SETUSER error text (without `ERR `); nothing changes then.
pub(crate) fn set_user_on(
    st: &mut NodeState,
    shared: &NodeShared,
    name: &[u8],
    rules: &[Bytes],
) -> Result<(), String> {
    let Some(allowed) = st.acl.set_user(name, rules)? else {
        return Ok(());
    };
    let ids = shared.clients.ids_of_user(&String::from_utf8_lossy(name));
    let mut doomed: Vec<u64> = shared
        .pubsub
        .subscriptions_of(&ids)
        .into_iter()
        .filter(|(_, kind, sub)| {
            !allowed.iter().any(|pat| match kind {
                Kind::Pattern => pat.as_slice() == sub.as_ref(),
                _ => super::super::db::glob_match(pat, sub),
            })
        })
        .map(|(id, _, _)| id)
        .collect();
    doomed.sort_unstable();
    doomed.dedup();
    for id in doomed {
        shared.clients.kill(&KillFilter {
            id: Some(id),
            ..Default::default()
        });
    }
    Ok(())
}

/// DELUSER: connections authenticated as a deleted user are closed (this one after the
/// reply).
fn deluser(c: &mut Call<'_, '_>) -> Outcome {
    if c.args[2..].iter().any(|n| n.as_ref() == b"default") {
        return Outcome::Reply(Value::error("ERR The 'default' user cannot be removed"));
    }
    let mut deleted = 0;
    let mut me = false;
    for name in &c.args[2..] {
        let name = String::from_utf8_lossy(name);
        if c.locked.get().acl.users.remove(name.as_ref()).is_some() {
            deleted += 1;
            c.shared.clients.kill_user(&name, c.conn.id);
            me |= c.conn.user == name;
        }
    }
    let reply = Value::Integer(deleted);
    if me {
        c.conn.user = "default".to_string();
        c.conn.authed = false;
        return Outcome::Quit(reply);
    }
    Outcome::Reply(reply)
}

fn getuser(c: &mut Call<'_, '_>, name: &[u8]) -> Value {
    let acl = &c.locked.get().acl;
    let Some(u) = acl.users.get(String::from_utf8_lossy(name).as_ref()) else {
        return Value::Null;
    };
    let field = |k: &str, v: Value| (Value::bulk(k), v);
    let describe = |sel: &Selector| {
        vec![
            field("commands", Value::bulk(sel.describe_commands())),
            field("keys", Value::bulk(sel.describe_keys())),
            field("channels", Value::bulk(sel.describe_channels())),
        ]
    };
    let mut fields = vec![
        field(
            "flags",
            Value::Set(u.flags().into_iter().map(Value::bulk).collect()),
        ),
        field(
            "passwords",
            Value::Array(u.passwords.iter().map(Value::bulk).collect()),
        ),
    ];
    fields.extend(describe(&u.sel));
    let selectors = u.selectors.iter().map(|s| Value::Map(describe(s)));
    fields.push(field("selectors", Value::Array(selectors.collect())));
    Value::Map(fields)
}

fn genpass(bits: Option<&Bytes>) -> Value {
    let bits = match bits.map(|b| parse_i64(b)) {
        None => 256,
        Some(None) => return not_integer(),
        Some(Some(b)) => b,
    };
    if !(1..=4096).contains(&bits) {
        return Value::error(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a \
             positive number up to 4096",
        );
    }
    let chars = (bits as usize).div_ceil(4);
    let hex: String = (0..chars)
        .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
        .collect();
    Value::bulk(hex)
}

fn log(c: &mut Call<'_, '_>) -> Value {
    let acl = &mut c.locked.get().acl;
    let count = match c.args.get(2) {
        None => 10,
        Some(a) if a.eq_ignore_ascii_case(b"reset") => {
            acl.log.reset();
            return Value::ok();
        }
        Some(a) => match parse_i64(a) {
            None => return not_integer(),
            Some(n) => n.max(0) as usize,
        },
    };
    acl.log.reply(count, super::super::node::now_ms())
}

/// Redis' `lookupCommand`: the subcommand's spec when the command has subcommands.
fn lookup(args: &[Bytes]) -> Option<&'static CommandSpec> {
    let spec = command::lookup(&args[0])?;
    if args.len() == 1 || spec.subcommands.is_empty() {
        return Some(spec);
    }
    spec.subcommand(&args[1])
}

fn dryrun(c: &mut Call<'_, '_>) -> Value {
    let acl = &c.locked.get().acl;
    let name = String::from_utf8_lossy(&c.args[2]);
    let Some(u) = acl.users.get(name.as_ref()) else {
        return Value::error(format!("ERR User '{name}' not found"));
    };
    let cmd = &c.args[3..];
    let Some(spec) = lookup(cmd) else {
        return Value::error(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&cmd[0])
        ));
    };
    if !spec.arity_ok(cmd.len()) {
        return Value::error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        ));
    }
    match check::check_user(u, spec, cmd) {
        Ok(()) => Value::ok(),
        Err(Denied::Command) => Value::bulk(format!(
            "This user has no permissions to run the '{}' command",
            spec.name
        )),
        Err(Denied::Key(i)) => Value::bulk(format!(
            "This user has no permissions to access the '{}' key",
            String::from_utf8_lossy(&cmd[i])
        )),
        Err(Denied::Channel(i)) => Value::bulk(format!(
            "This user has no permissions to access the '{}' channel",
            String::from_utf8_lossy(&cmd[i])
        )),
    }
}
