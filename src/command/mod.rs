//! Command knowledge shared by the client and the bundled server: arity, flags, and where the
//! keys are, for every command a Redis 7 node knows.
//!
//! The table (`table.rs`) is generated from a real `redis-server` 7 `COMMAND` reply by
//! `tools/gen_command_table.py`, so routing (client) and `COMMAND`/arity/key checks (server)
//! come from one source and cannot drift apart.
//!
//! ```
//! use redcluster::command;
//! let spec = command::lookup(b"GET").unwrap();
//! assert!(spec.is_readonly());
//! let args: Vec<&[u8]> = vec![b"MSET", b"a", b"1", b"b", b"2"];
//! assert_eq!(command::key_indexes(command::lookup(b"mset").unwrap(), &args), vec![1, 3]);
//! ```

mod spec;
mod table;

pub use spec::{BeginSearch, CommandSpec, FindKeys, KeySpec};

/// Every known command, sorted by name.
pub fn all() -> &'static [CommandSpec] {
    table::COMMANDS
}

fn find_in(
    specs: &'static [CommandSpec],
    name: &[u8],
    skip: usize,
) -> Option<&'static CommandSpec> {
    specs
        .binary_search_by(|spec| {
            let candidate = &spec.name.as_bytes()[skip..];
            candidate
                .iter()
                .map(|b| b.to_ascii_lowercase())
                .cmp(name.iter().map(|b| b.to_ascii_lowercase()))
        })
        .ok()
        .map(|i| &specs[i])
}

/// Find a top-level command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    find_in(table::COMMANDS, name, 0)
}

/// Find the spec that governs `args` (name first): the subcommand's when the command has
/// subcommands and `args[1]` names one, otherwise the command's own.
pub fn lookup_args<A: AsRef<[u8]>>(args: &[A]) -> Option<&'static CommandSpec> {
    let spec = lookup(args.first()?.as_ref())?;
    if spec.subcommands.is_empty() {
        return Some(spec);
    }
    match args.get(1) {
        Some(sub) => spec.subcommand(sub.as_ref()).or(Some(spec)),
        None => Some(spec),
    }
}

impl CommandSpec {
    /// The subcommand `name` of this command (`INFO` of `CLUSTER`), ignoring case.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let prefix = self.name.len() + 1;
        find_in(self.subcommands, name, prefix)
    }

    /// True when the command has `flag` (`readonly`, `write`, `noscript` ...).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// True for commands that never write: these may be served by replicas.
    pub fn is_readonly(&self) -> bool {
        self.has_flag("readonly")
    }

    /// True for commands that may modify the keyspace.
    pub fn is_write(&self) -> bool {
        self.has_flag("write")
    }

    /// True when `argc` (the name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// The request policy tip (`all_shards`, `all_nodes`, `multi_shard` ...), if any.
    pub fn request_policy(&self) -> Option<&'static str> {
        self.tips
            .iter()
            .find_map(|t| t.strip_prefix("request_policy:"))
    }

    /// The response policy tip (`all_succeeded`, `agg_sum` ...), if any.
    pub fn response_policy(&self) -> Option<&'static str> {
        self.tips
            .iter()
            .find_map(|t| t.strip_prefix("response_policy:"))
    }
}

/// Indexes into `args` (name at 0) of the keys of a command, in argument order, found with
/// the command's key specs the way Redis' `COMMAND GETKEYS` does. Arguments too few for a
/// spec yield no keys from that spec rather than an error.
pub fn key_indexes<A: AsRef<[u8]>>(spec: &CommandSpec, args: &[A]) -> Vec<usize> {
    let argc = args.len() as i64;
    let mut out = Vec::new();
    for ks in spec.key_specs {
        let begin = match ks.begin {
            BeginSearch::Index(i) => i64::from(i),
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => {
                let start = i64::from(start_from);
                let (from, step, stop): (i64, i64, i64) = if start >= 0 {
                    (start, 1, argc)
                } else {
                    (argc + start, -1, 0)
                };
                let mut at = from;
                let mut found = None;
                while (step > 0 && at < stop) || (step < 0 && at > stop) {
                    if at >= 1
                        && at < argc
                        && args[at as usize]
                            .as_ref()
                            .eq_ignore_ascii_case(keyword.as_bytes())
                    {
                        found = Some(at + 1);
                        break;
                    }
                    at += step;
                }
                match found {
                    Some(b) => b,
                    None => continue,
                }
            }
            BeginSearch::Unknown => continue,
        };
        if begin >= argc || begin < 1 {
            continue;
        }
        let (first, last, step) = match ks.find {
            FindKeys::Range {
                last_key,
                key_step,
                limit,
            } => {
                let last = if last_key >= 0 {
                    begin + i64::from(last_key)
                } else if last_key == -1 && limit > 1 {
                    begin + (argc - 1 - begin) / i64::from(limit)
                } else {
                    argc + i64::from(last_key)
                };
                (begin, last, i64::from(key_step.max(1)))
            }
            FindKeys::KeyNum {
                key_num_idx,
                first_key,
                key_step,
            } => {
                let idx = begin + i64::from(key_num_idx);
                let Some(n) = args
                    .get(idx as usize)
                    .and_then(|a| std::str::from_utf8(a.as_ref()).ok())
                    .and_then(|s| s.parse::<i64>().ok())
                else {
                    continue;
                };
                if n <= 0 {
                    continue;
                }
                let first = begin + i64::from(first_key);
                let step = i64::from(key_step.max(1));
                (first, first + (n - 1) * step, step)
            }
            FindKeys::Unknown => continue,
        };
        let mut i = first;
        while i <= last && i < argc {
            if i >= 1 {
                out.push(i as usize);
            }
            i += step;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cmd: &str) -> Vec<String> {
        let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        let spec = lookup_args(&args).expect("known command");
        key_indexes(spec, &args)
            .into_iter()
            .map(|i| cmd.split(' ').nth(i).unwrap().to_string())
            .collect()
    }

    #[test]
    fn lookup_ignores_case_and_finds_subcommands() {
        assert_eq!(lookup(b"gEt").unwrap().name, "get");
        assert!(lookup(b"nosuchcommand").is_none());
        let spec = lookup_args(&["CLUSTER", "slots"]).unwrap();
        assert_eq!(spec.name, "cluster|slots");
        assert!(lookup(b"SET").unwrap().is_write());
        assert!(lookup(b"get").unwrap().arity_ok(2));
        assert!(!lookup(b"get").unwrap().arity_ok(3));
        assert!(lookup(b"mset").unwrap().arity_ok(5));
        assert!(!lookup(b"mset").unwrap().arity_ok(2));
    }

    #[test]
    fn finds_keys_like_command_getkeys() {
        assert_eq!(keys("GET a"), ["a"]);
        assert_eq!(keys("MSET a 1 b 2"), ["a", "b"]);
        assert_eq!(keys("MGET a b c"), ["a", "b", "c"]);
        assert_eq!(keys("EVAL s 2 k1 k2 arg"), ["k1", "k2"]);
        assert_eq!(keys("EVAL s 0 arg"), Vec::<String>::new());
        assert_eq!(keys("ZUNIONSTORE dst 2 a b WEIGHTS 1 2"), ["dst", "a", "b"]);
        assert_eq!(keys("XREAD COUNT 2 STREAMS s1 s2 0 0"), ["s1", "s2"]);
        assert_eq!(keys("BLPOP l1 l2 0"), ["l1", "l2"]);
        assert_eq!(keys("LMOVE a b LEFT RIGHT"), ["a", "b"]);
        assert_eq!(keys("PING"), Vec::<String>::new());
        assert_eq!(keys("OBJECT ENCODING k"), ["k"]);
    }
}
