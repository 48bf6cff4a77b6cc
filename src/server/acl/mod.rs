//! ACL users as Redis 7.0 has them: `ACL SETUSER` rules and their descriptions (`user`,
//! `cat`), permission checks on every command (`check`), the log of denials (`log`), the
//! `ACL` command (`cmd`), and AUTH / HELLO AUTH against the users.
//!
//! A node's [`Acl`] lives in its locked state; the `default` user follows `requirepass` as
//! in Redis (a password, or `nopass`), and the users a `TestCluster` builder names are
//! created on every node at start.

mod cat;
mod check;
pub(crate) mod cmd;
mod log;
mod sha256;
mod user;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::resp::Value;

use super::session::Conn;
use check::Denied;
pub(crate) use log::{Event, Reason};
use user::User;

/// The users of one node, and its ACL log.
#[derive(Debug)]
pub(crate) struct Acl {
    users: BTreeMap<String, User>,
    log: log::Log,
}

impl Acl {
    /// `default` per `requirepass`, then each named user with its rules (name, rules).
    ///
    /// # Errors
    /// Redis' SETUSER error for the first rule it refuses.
    pub(crate) fn new(
        requirepass: Option<&str>,
        users: &[(String, Vec<String>)],
    ) -> Result<Acl, String> {
        let mut acl = Acl::empty();
        acl.users
            .insert("default".to_string(), User::default_user(requirepass));
        for (name, rules) in users {
            let rules: Vec<Bytes> = rules.iter().map(|r| Bytes::from(r.clone())).collect();
            acl.set_user(name.as_bytes(), &rules)?;
            // (No connections yet: nothing to close.)
        }
        Ok(acl)
    }

    /// A placeholder with no users (what a stopped node keeps after handing its users on).
    pub(crate) fn empty() -> Acl {
        Acl {
            users: BTreeMap::new(),
            log: log::Log::default(),
        }
    }

    /// ACL SETUSER: apply every rule to a copy, then keep it (all or nothing).
    ///
    /// # Errors
    /// `Error in ACL SETUSER modifier '<rule>': <why>` (without the `ERR ` prefix).
    ///
    /// # Returns
    /// The user's new channel patterns when they no longer cover what it had (Redis then
    /// closes its pub/sub connections subscribed outside them: `cmd::set_user_on`).
    pub(crate) fn set_user(
        &mut self,
        name: &[u8],
        rules: &[Bytes],
    ) -> Result<Option<Vec<Vec<u8>>>, String> {
        let u = self.staged(name, rules)?;
        // Redis' ACLKillPubsubClientsIfNeeded: the new patterns of every selector must cover
        // every old one.
        let upcoming: Vec<Vec<u8>> = u.all_selectors().flat_map(|s| s.channels.clone()).collect();
        let narrowed = match self.users.get(&u.name) {
            Some(old) if !u.all_selectors().any(|s| s.allchannels) => old
                .all_selectors()
                .any(|s| s.allchannels || s.channels.iter().any(|c| !upcoming.contains(c))),
            _ => false,
        };
        self.users.insert(u.name.clone(), u);
        Ok(narrowed.then_some(upcoming))
    }

    /// The user `name` as `rules` would leave it, without changing anything.
    fn staged(&self, name: &[u8], rules: &[Bytes]) -> Result<User, String> {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut u = self
            .users
            .get(&name)
            .cloned()
            .unwrap_or_else(|| User::new(&name));
        for rule in &merge_selectors(rules)? {
            if let Err(e) = u.apply(rule) {
                return Err(format!(
                    "Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(rule),
                    e.text()
                ));
            }
        }
        Ok(u)
    }

    /// True when `set_user` would accept these rules here.
    ///
    /// # Errors
    /// As `set_user`.
    pub(crate) fn check_set_user(&self, name: &[u8], rules: &[Bytes]) -> Result<(), String> {
        self.staged(name, rules).map(|_| ())
    }

    /// True when `name` is a user.
    pub(crate) fn has_user(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// True when a connection must authenticate (the `default` user has a password or is
    /// off).
    pub(crate) fn auth_required(&self) -> bool {
        !self
            .users
            .get("default")
            .is_some_and(|u| u.nopass && !u.disabled)
    }

    /// True when the `default` user has `nopass` (AUTH with one argument is refused then).
    pub(crate) fn default_nopass(&self) -> bool {
        self.users.get("default").is_some_and(|u| u.nopass)
    }

    /// Check a login; a failure is logged (reason `auth`, object: the command as typed).
    pub(crate) fn login(&mut self, conn: &Conn, cmd_name: &[u8], user: &[u8], pass: &[u8]) -> bool {
        let name = String::from_utf8_lossy(user);
        let ok = self
            .users
            .get(name.as_ref())
            .is_some_and(|u| !u.disabled && u.password_ok(pass));
        if !ok {
            self.log.add(Event {
                reason: Reason::Auth,
                context: context(conn),
                object: cmd_name,
                username: &name,
                client_info: conn.info_line(),
                now_ms: super::node::now_ms(),
            });
        }
        ok
    }

    /// Check that `conn`'s user may run `args`; on refusal log it and return the NOPERM
    /// error Redis replies with.
    pub(crate) fn enforce(
        &mut self,
        conn: &Conn,
        spec: &CommandSpec,
        args: &[Bytes],
    ) -> Option<Value> {
        let denied = self.denied(conn, spec, args, context(conn))?;
        Some(Value::error(match denied {
            Denied::Command => format!(
                "NOPERM this user has no permissions to run the '{}' command",
                spec.name
            ),
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_string()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as \
                 arguments"
                    .to_string()
            }
        }))
    }

    /// EXEC's second look at a queued command (the rules may have changed since it was
    /// queued): Redis' error for a command no longer allowed.
    pub(crate) fn enforce_queued(
        &mut self,
        conn: &Conn,
        spec: &CommandSpec,
        args: &[Bytes],
    ) -> Option<Value> {
        let reason = match self.denied(conn, spec, args, "multi")? {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        Some(Value::error(format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and \
             the EXEC call. This command is no longer allowed for the following reason: {reason}"
        )))
    }

    fn denied(
        &mut self,
        conn: &Conn,
        spec: &CommandSpec,
        args: &[Bytes],
        context: &'static str,
    ) -> Option<Denied> {
        self.denied_as(&conn.user, || conn.info_line(), spec, args, context)
    }

    /// `redis.call` from a script run by `user` (whose connection's CLIENT INFO line is
    /// `client_info`): Redis' refusal text after "The user executing the script ", logged
    /// with context `lua`.
    pub(crate) fn enforce_script(
        &mut self,
        user: &str,
        client_info: &str,
        spec: &CommandSpec,
        args: &[Bytes],
    ) -> Option<&'static str> {
        let denied = self.denied_as(user, || client_info.to_string(), spec, args, "lua")?;
        Some(match denied {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        })
    }

    fn denied_as(
        &mut self,
        user: &str,
        client_info: impl FnOnce() -> String,
        spec: &CommandSpec,
        args: &[Bytes],
        context: &'static str,
    ) -> Option<Denied> {
        let Some(u) = self.users.get(user) else {
            // Deleted while this connection was being closed: nothing more runs.
            return Some(Denied::Command);
        };
        let sel = &u.sel;
        if sel.allcommands && sel.allkeys && sel.allchannels {
            return None;
        }
        let denied = check::check_user(u, spec, args).err()?;
        let (reason, object): (Reason, &[u8]) = match denied {
            Denied::Command => (Reason::Command, spec.name.as_bytes()),
            Denied::Key(i) => (Reason::Key, &args[i]),
            Denied::Channel(i) => (Reason::Channel, &args[i]),
        };
        self.log.add(Event {
            reason,
            context,
            object,
            username: user,
            client_info: client_info(),
            now_ms: super::node::now_ms(),
        });
        Some(denied)
    }
}

/// Redis' `ACLMergeSelectorArguments`: a `(...)` selector given over several arguments
/// becomes one rule.
fn merge_selectors(rules: &[Bytes]) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::with_capacity(rules.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, rule) in rules.iter().enumerate() {
        let closes = rule.last() == Some(&b')');
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(rule);
            if closes {
                out.extend(open.take().map(|(_, s)| Bytes::from(s)));
            }
        } else if rule.first() == Some(&b'(') && !closes {
            open = Some((i, rule.to_vec()));
        } else {
            out.push(rule.clone());
        }
    }
    match open {
        None => Ok(out),
        Some((i, _)) => Err(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(&rules[i])
        )),
    }
}

fn context(conn: &Conn) -> &'static str {
    if conn.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    }
}
