//! Command knowledge shared by the client and the bundled server: arity, flags, and where the
//! keys are, for every command a Redis 7 node knows. Crate-private: it is routing's data, not
//! part of the client's API.
//!
//! The table (`table.rs`) is generated from a real `redis-server` 7 `COMMAND` reply by
//! `tools/gen_command_table.py`, so routing (client) and `COMMAND`/arity/key checks (server)
//! come from one source and cannot drift apart. [`classify`] turns a request into everything
//! both sides route by.

mod classify;
mod spec;
mod table;

pub(crate) use classify::{
    classify, ArgList, Atomic, Class, FanoutMerge, PubSubOp, Slot, SplitMerge, Targets, Wait,
};
// The bundled server's side: it resolves the spec itself and walks the keys.
#[cfg(any(feature = "server", test))]
pub(crate) use classify::{classify_spec, key_positions};
#[cfg(test)]
pub(crate) use classify::{PubSub, Split, Timeout, Unit};
pub(crate) use spec::{BeginSearch, CommandSpec, FindKeys, KeySpec};

/// Every known command, sorted by name.
#[cfg(any(feature = "server", test))]
pub(crate) fn all() -> &'static [CommandSpec] {
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
pub(crate) fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    find_in(table::COMMANDS, name, 0)
}

/// Find the spec that governs `args` (name first): the subcommand's when the command has
/// subcommands and `args[1]` names one, otherwise the command's own.
#[cfg(any(feature = "server", test))]
pub(crate) fn lookup_args<A: AsRef<[u8]>>(args: &[A]) -> Option<&'static CommandSpec> {
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
    pub(crate) fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let prefix = self.name.len() + 1;
        find_in(self.subcommands, name, prefix)
    }

    /// True when the command has `flag` (`readonly`, `write`, `noscript` ...).
    pub(crate) fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// True for commands that never write: these may be served by replicas.
    pub(crate) fn is_readonly(&self) -> bool {
        self.has_flag("readonly")
    }

    /// True for commands that may modify the keyspace.
    pub(crate) fn is_write(&self) -> bool {
        self.has_flag("write")
    }

    /// True when `argc` (the name included) satisfies the arity.
    #[cfg(any(feature = "server", test))]
    pub(crate) fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// The request policy tip (`all_shards`, `all_nodes`, `multi_shard` ...), if any.
    pub(crate) fn request_policy(&self) -> Option<&'static str> {
        self.tips
            .iter()
            .find_map(|t| t.strip_prefix("request_policy:"))
    }

    /// The response policy tip (`all_succeeded`, `agg_sum` ...), if any.
    pub(crate) fn response_policy(&self) -> Option<&'static str> {
        self.tips
            .iter()
            .find_map(|t| t.strip_prefix("response_policy:"))
    }
}

/// Indexes into `args` (name at 0) of the keys of a command, in argument order, found with
/// the command's key specs the way Redis' `COMMAND GETKEYS` does. Arguments too few for a
/// spec yield no keys from that spec rather than an error.
pub(crate) fn key_indexes<A: ArgList + ?Sized>(spec: &CommandSpec, args: &A) -> Vec<usize> {
    key_refs(spec, args).into_iter().map(|(i, _)| i).collect()
}

/// Like [`key_indexes`], each key with the key spec that found it (its access flags: the
/// server's ACL checks read and write permissions by them).
pub(crate) fn key_refs<A: ArgList + ?Sized>(
    spec: &CommandSpec,
    args: &A,
) -> Vec<(usize, &'static KeySpec)> {
    let argc = args.argc() as i64;
    let mut out = Vec::new();
    let specs: &'static [KeySpec] = spec.key_specs;
    for ks in specs {
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
                        && args
                            .arg(at as usize)
                            .is_some_and(|a| a.eq_ignore_ascii_case(keyword.as_bytes()))
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
                    .arg(idx as usize)
                    .and_then(|a| std::str::from_utf8(a).ok())
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
                out.push((i as usize, ks));
            }
            i += step;
        }
    }
    out
}

#[cfg(test)]
mod tests;
