//! The command universe ACL bitmaps index, and the categories: every command and subcommand
//! of the generated table (what redis-server 7.0 knows, implemented here or not), each with
//! an id and the categories its spec lists.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::command::{self, CommandSpec};

/// Redis' category names, in the order `ACL CAT` lists them (and rules are described in).
pub(crate) const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// One command or subcommand of the universe.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its spec (`name` is the full name: `get`, `client|id`).
    pub(crate) spec: &'static CommandSpec,
    /// Bit `1 << i` for each `CATEGORIES[i]` it belongs to.
    pub(crate) cats: u32,
    /// Ids of its subcommands (empty for a plain command or a subcommand).
    pub(crate) subs: std::ops::Range<usize>,
    /// True for a subcommand.
    pub(crate) is_sub: bool,
}

/// Every command and subcommand, a container followed by its subcommands.
#[derive(Debug)]
pub(crate) struct Universe {
    /// Indexed by command id.
    pub(crate) cmds: Vec<Entry>,
    by_name: HashMap<&'static str, usize>,
}

/// Subcommands added after Redis 7.0 that this server answers (clients send them on connect)
/// have no id of their own in a 7.0 universe: they are allowed with the subcommand standing
/// in for them.
const STAND_INS: &[(&str, &str)] = &[
    ("client|setinfo", "client|setname"),
    ("client|no-touch", "client|no-evict"),
    ("cluster|myshardid", "cluster|myid"),
];

/// The category bit of `name` (without `@`, any case), or `None` when unknown.
pub(crate) fn category(name: &[u8]) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

fn cats_of(spec: &CommandSpec) -> u32 {
    spec.acl_categories
        .iter()
        .filter_map(|c| category(c.trim_start_matches('@').as_bytes()))
        .fold(0, |acc, bit| acc | bit)
}

/// The universe, built once from the generated table.
pub(crate) fn universe() -> &'static Universe {
    static U: OnceLock<Universe> = OnceLock::new();
    U.get_or_init(|| {
        let mut cmds = Vec::new();
        for spec in command::all() {
            let at = cmds.len();
            let first_sub = at + 1;
            cmds.push(Entry {
                spec,
                cats: cats_of(spec),
                subs: first_sub..first_sub + spec.subcommands.len(),
                is_sub: false,
            });
            for sub in spec.subcommands {
                cmds.push(Entry {
                    spec: sub,
                    cats: cats_of(sub),
                    subs: 0..0,
                    is_sub: true,
                });
            }
        }
        let by_name = cmds
            .iter()
            .enumerate()
            .map(|(i, e)| (e.spec.name, i))
            .collect();
        Universe { cmds, by_name }
    })
}

impl Universe {
    /// Number of ids.
    pub(crate) fn len(&self) -> usize {
        self.cmds.len()
    }

    /// The id of a command by its full name as an ACL rule gives it (`GET`, `config|get`,
    /// any case); `None` when unknown or with more than one `|`.
    pub(crate) fn lookup(&self, name: &[u8]) -> Option<usize> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        if lower.matches('|').count() > 1 {
            return None;
        }
        self.by_name.get(lower.as_str()).copied()
    }

    /// The id a dispatched spec is checked under (its own, or its stand-in's).
    pub(crate) fn id_of(&self, spec: &CommandSpec) -> Option<usize> {
        self.by_name.get(spec.name).copied().or_else(|| {
            let (_, stand_in) = STAND_INS.iter().find(|(n, _)| *n == spec.name)?;
            self.by_name.get(stand_in).copied()
        })
    }

    /// Ids of the commands in the categories of `mask`, in table order.
    pub(crate) fn in_category(&self, mask: u32) -> impl Iterator<Item = usize> + '_ {
        (0..self.cmds.len()).filter(move |&i| self.cmds[i].cats & mask != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universe_has_commands_subcommands_and_categories() {
        let u = universe();
        let get = u.lookup(b"GET").unwrap();
        assert_eq!(u.cmds[get].spec.name, "get");
        assert_ne!(u.cmds[get].cats & category(b"string").unwrap(), 0);
        let cfg = u.lookup(b"config").unwrap();
        assert!(!u.cmds[cfg].subs.is_empty());
        let sub = u.lookup(b"Config|Get").unwrap();
        assert!(u.cmds[cfg].subs.contains(&sub) && u.cmds[sub].is_sub);
        assert_eq!(u.lookup(b"config|get|x"), None);
        assert_eq!(u.lookup(b"nosuch"), None);
        assert_eq!(category(b"SortedSet"), Some(1 << 4));
        assert_eq!(category(b"all"), None);
        let setinfo = crate::command::CommandSpec {
            name: "client|setinfo",
            ..*u.cmds[sub].spec
        };
        assert_eq!(u.id_of(&setinfo), u.lookup(b"client|setname"));
    }
}
