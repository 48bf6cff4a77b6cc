//! Where a command goes: its slot (from its keys) and whether it only reads.
//!
//! Keys in different slots are an [`ErrorKind::CrossSlot`] error here, before anything is
//! sent; the router then splits the commands that may be split (MGET, MSET, DEL ... see
//! [`split`](super::split)) and returns the error for the others (MSETNX and other commands
//! that must stay atomic).

use super::fanout::{self, Merge, Targets};
use crate::command::{self, CommandSpec};
use crate::error::{Error, ErrorKind};
use crate::slot::key_slot;
use crate::types::Args;

/// The routing facts of one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// The slot of the command's keys; `None` for keyless commands (any primary serves them).
    pub(crate) slot: Option<u16>,
    /// True when the command never writes, so a replica may serve it.
    pub(crate) readonly: bool,
    /// For keyless cluster-wide commands (DBSIZE, KEYS, FLUSHALL ...): where they go and how
    /// the replies merge.
    pub(crate) fanout: Option<(Targets, Merge)>,
}

/// Indexes of the keys of `args` under `spec`. Commands with fixed key positions are read
/// from the legacy first/last/step triple without allocating a list of argument slices.
fn for_each_key(spec: &CommandSpec, args: &Args, mut f: impl FnMut(&[u8])) {
    if !spec.has_flag("movablekeys") {
        if spec.first_key <= 0 {
            return;
        }
        let argc = args.len() as i64;
        let first = i64::from(spec.first_key);
        let last = if spec.last_key < 0 {
            argc + i64::from(spec.last_key)
        } else {
            i64::from(spec.last_key)
        };
        let step = i64::from(spec.step.max(1));
        let mut i = first;
        while i <= last && i < argc {
            if let Some(k) = args.get(i as usize) {
                f(k);
            }
            i += step;
        }
        return;
    }
    let all: Vec<&[u8]> = args.iter().collect();
    for i in command::key_indexes(spec, &all) {
        if let Some(k) = all.get(i) {
            f(k);
        }
    }
}

/// Route a command.
///
/// Unknown commands (modules, newer servers) are treated as keyless writes: they go to a
/// primary, and a MOVED reply still takes them to the right node.
///
/// # Errors
/// [`ErrorKind::CrossSlot`] when the keys hash to more than one slot.
pub(crate) fn route(args: &Args) -> Result<Route, Error> {
    let Some(name) = args.get(0) else {
        return Err(Error::new(ErrorKind::Config, "empty command"));
    };
    let spec = match command::lookup(name) {
        Some(top) if !top.subcommands.is_empty() => match args.get(1) {
            Some(sub) => top.subcommand(sub).unwrap_or(top),
            None => top,
        },
        Some(top) => top,
        None => {
            return Ok(Route {
                slot: None,
                readonly: false,
                fanout: None,
            })
        }
    };
    let mut slot: Option<u16> = None;
    let mut cross = false;
    for_each_key(spec, args, |k| {
        let s = key_slot(k);
        match slot {
            None => slot = Some(s),
            Some(prev) if prev != s => cross = true,
            _ => {}
        }
    });
    if cross {
        return Err(Error::new(
            ErrorKind::CrossSlot,
            format!(
                "CROSSSLOT keys of {} hash to different slots; the command must run on one node, so it is not split (use hash tags like {{user1}}:a, {{user1}}:b to keep them together)",
                spec.name.to_ascii_uppercase()
            ),
        ));
    }
    Ok(Route {
        slot,
        readonly: spec.is_readonly(),
        fanout: if slot.is_none() {
            fanout::plan(spec)
        } else {
            None
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &str) -> Args {
        let mut it = cmd.split(' ');
        let mut a = Args::new(it.next().unwrap());
        for x in it {
            a.push(x);
        }
        a
    }

    #[test]
    fn single_key_commands_route_by_key() {
        let r = route(&args("GET foo")).unwrap();
        assert_eq!(r.slot, Some(key_slot(b"foo")));
        assert!(r.readonly);
        let r = route(&args("set foo 1")).unwrap();
        assert_eq!(r.slot, Some(12182));
        assert!(!r.readonly);
    }

    #[test]
    fn multi_key_commands_need_one_slot() {
        let r = route(&args("MGET {u}a {u}b")).unwrap();
        assert_eq!(r.slot, Some(key_slot(b"u")));
        let e = route(&args("MGET a b")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CrossSlot);
        let e = route(&args("MSET a 1 b 2")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CrossSlot);
        // Values are not keys.
        assert!(route(&args("MSET {x}a a {x}b b")).is_ok());
    }

    #[test]
    fn movable_keys_and_keyless_and_unknown() {
        let r = route(&args("EVAL s 2 {t}1 {t}2 x")).unwrap();
        assert_eq!(r.slot, Some(key_slot(b"t")));
        assert!(route(&args("EVAL s 2 a b")).is_err());
        let r = route(&args("PING")).unwrap();
        assert_eq!(r.slot, None);
        let r = route(&args("NOSUCHCMD a")).unwrap();
        assert_eq!(
            r,
            Route {
                slot: None,
                readonly: false,
                fanout: None
            }
        );
        let r = route(&args("DBSIZE")).unwrap();
        assert_eq!(r.fanout, Some((Targets::Primaries, Merge::Sum)));
        assert_eq!(route(&args("GET k")).unwrap().fanout, None);
        let r = route(&args("OBJECT ENCODING k")).unwrap();
        assert_eq!(r.slot, Some(key_slot(b"k")));
        assert!(r.readonly);
    }
}
