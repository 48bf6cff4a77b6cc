//! May this user run this command on these keys and channels? Redis 7.0's checks in its
//! order: the command (or an allowed first argument), then each key against the patterns
//! that grant the access the key spec needs, then each channel.

use bytes::Bytes;

use crate::command::{self, CommandSpec};

use super::cat::universe;
use super::user::{Selector, User};

/// Why a command was refused, with the argument index of the key or channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The command (or subcommand) is not allowed.
    Command,
    /// The key at this argument index is not allowed.
    Key(usize),
    /// The channel at this argument index is not allowed.
    Channel(usize),
}

/// Check `args` against every selector of `u`: allowed when one allows it; otherwise the
/// refusal Redis reports (a channel over a key over the command, the later argument on a
/// tie).
pub(crate) fn check_user(u: &User, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
    let rank = |d: Denied| match d {
        Denied::Command => (1, 0),
        Denied::Key(i) => (2, i),
        Denied::Channel(i) => (4, i),
    };
    let mut worst = Denied::Command;
    for sel in u.all_selectors() {
        match check(sel, spec, args) {
            Ok(()) => return Ok(()),
            Err(d) if rank(d) > rank(worst) => worst = d,
            Err(_) => {}
        }
    }
    Err(worst)
}

/// Check `args` (name first, arity already checked) against `sel`.
pub(crate) fn check(sel: &Selector, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
    if !sel.allcommands && !spec.has_flag("no_auth") {
        let id = universe().id_of(spec).ok_or(Denied::Command)?;
        if !sel.bit(id) {
            let idx = if spec.name.contains('|') { 2 } else { 1 };
            let allowed = match (sel.firstargs.get(&id), args.get(idx)) {
                (Some(list), Some(arg)) => list.iter().any(|a| a.eq_ignore_ascii_case(arg)),
                _ => false,
            };
            if !allowed {
                return Err(Denied::Command);
            }
        }
    }
    if !sel.allkeys && !spec.key_specs.is_empty() {
        for (idx, read, write) in keys(spec, args) {
            if !key_ok(sel, &args[idx], read, write) {
                return Err(Denied::Key(idx));
            }
        }
    }
    if !sel.allchannels {
        for (idx, pattern) in channels(spec, args) {
            if !channel_ok(sel, &args[idx], pattern) {
                return Err(Denied::Channel(idx));
            }
        }
    }
    Ok(())
}

/// The keys of a command with the access each needs (read, write), as Redis' key specs
/// say; SET and BITFIELD decide from their arguments (`variable_flags`).
fn keys(spec: &CommandSpec, args: &[Bytes]) -> Vec<(usize, bool, bool)> {
    let mut out = Vec::new();
    for (idx, ks) in command::key_refs(spec, args) {
        let has = |f: &str| ks.flags.contains(&f);
        if has("not_key") {
            continue;
        }
        let (read, write) = match spec.name {
            "set" => {
                let get = args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
                (get, true)
            }
            "bitfield" => {
                let ro = bitfield_read_only(args);
                (true, !ro)
            }
            _ => (
                has("access"),
                has("insert") || has("delete") || has("update"),
            ),
        };
        out.push((idx, read, write));
    }
    out
}

/// Redis' `bitfieldGetKeys`: only GET and OVERFLOW sub-operations.
fn bitfield_read_only(args: &[Bytes]) -> bool {
    let mut i = 2;
    while i < args.len() {
        let rem = args.len() - i - 1;
        let arg = &args[i];
        if arg.eq_ignore_ascii_case(b"get") && rem >= 2 {
            i += 3;
        } else if arg.eq_ignore_ascii_case(b"overflow") && rem >= 1 {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

fn key_ok(sel: &Selector, key: &[u8], read: bool, write: bool) -> bool {
    sel.patterns
        .iter()
        .any(|p| (p.read || !read) && (p.write || !write) && glob(&p.pattern, key))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    super::super::db::glob_match(pattern, text)
}

/// The channels a pub/sub command names that ACLs check (not the unsubscribing ones), and
/// whether each is a pattern (PSUBSCRIBE: compared literally).
fn channels(spec: &CommandSpec, args: &[Bytes]) -> Vec<(usize, bool)> {
    match spec.name {
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        "publish" | "spublish" if args.len() > 1 => vec![(1, false)],
        _ => Vec::new(),
    }
}

fn channel_ok(sel: &Selector, channel: &[u8], pattern: bool) -> bool {
    sel.channels.iter().any(|c| {
        if pattern {
            c.as_slice() == channel
        } else {
            glob(c, channel)
        }
    })
}
