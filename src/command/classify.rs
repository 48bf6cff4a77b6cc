//! Everything the client's routing and the server's cluster routing need to know about one
//! request, worked out in one place: [`classify`].
//!
//! The facts come from the generated table (flags, key specs, tips). Where the table does not
//! carry a fact, it is derived here, once, with a comment saying why:
//! - which argument is a blocking command's timeout (Redis' command JSON has it, `COMMAND`
//!   does not),
//! - the keys of `SORT ... STORE dst` and `MIGRATE ... KEYS k...` (their key specs are
//!   `unknown`/`incomplete`; Redis falls back to `sortGetKeys`/`migrateGetKeys`),
//! - the pub/sub kind of a `pubsub` command and which commands are transaction state.

use super::{key_indexes, lookup, BeginSearch, CommandSpec, FindKeys};
use crate::slot::key_slot;

/// Read access to a command's arguments (the name at 0), whatever holds them: the client's
/// `Args`, the server's `[Bytes]`, a test's `[&str]`.
pub(crate) trait ArgList {
    /// Number of arguments, the name included.
    fn argc(&self) -> usize;
    /// Argument `i`, if present.
    fn arg(&self, i: usize) -> Option<&[u8]>;
}

impl<A: AsRef<[u8]>> ArgList for [A] {
    fn argc(&self) -> usize {
        self.len()
    }
    fn arg(&self, i: usize) -> Option<&[u8]> {
        self.get(i).map(AsRef::as_ref)
    }
}

impl ArgList for crate::types::Args {
    fn argc(&self) -> usize {
        self.len()
    }
    fn arg(&self, i: usize) -> Option<&[u8]> {
        self.get(i)
    }
}

/// Where a command's keys are among its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Keys {
    /// Every `step`-th argument from `first` to `last` inclusive (fixed key positions, no
    /// allocation); `first > last` means none.
    Range {
        /// First key index.
        first: usize,
        /// Last key index.
        last: usize,
        /// Distance between keys.
        step: usize,
    },
    /// Positions that depend on the arguments (EVAL numkeys, XREAD STREAMS ...).
    List(Vec<usize>),
}

impl Keys {
    const NONE: Keys = Keys::Range {
        first: 1,
        last: 0,
        step: 1,
    };

    /// The key indexes, in argument order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (range, list) = match self {
            Keys::Range { first, last, step } => {
                (Some((*first..=*last).step_by((*step).max(1))), None)
            }
            Keys::List(v) => (None, Some(v.iter().copied())),
        };
        range
            .into_iter()
            .flatten()
            .chain(list.into_iter().flatten())
    }
}

/// The slot of a command's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// No keys: any node (or every node, for a fan-out) may serve it.
    Keyless,
    /// Every key hashes to this slot.
    One(u16),
    /// Keys hash to different slots.
    Cross,
}

/// The unit a blocking command's timeout is given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Seconds, possibly fractional (BLPOP ... timeout).
    Seconds,
    /// Whole milliseconds (XREAD BLOCK ms, WAIT ... timeout).
    Millis,
}

/// A command that blocks on the server, and where its timeout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeout {
    /// Index of the timeout argument.
    pub(crate) index: usize,
    /// Its unit.
    pub(crate) unit: Unit,
    /// True when the command waits for the keyspace (BLPOP, XREAD BLOCK), so it must have a
    /// connection of its own; false for WAIT, which waits for replicas to acknowledge this
    /// connection's own writes and so must stay on the connection that wrote.
    pub(crate) keyspace: bool,
}

/// How long a command may block, as the server will read its timeout argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// It blocks up to this many milliseconds.
    Millis(u64),
    /// Timeout 0: until data comes.
    Forever,
    /// Not a valid timeout: the server refuses the command at once.
    Invalid,
}

impl Timeout {
    /// Read the timeout the way Redis' `getTimeoutFromObjectOrReply` does: seconds are
    /// multiplied by 1000 and truncated, and a result of 0 ms means "for ever".
    pub(crate) fn wait<A: ArgList + ?Sized>(&self, args: &A) -> Wait {
        let Some(text) = args
            .arg(self.index)
            .and_then(|a| std::str::from_utf8(a).ok())
        else {
            return Wait::Invalid;
        };
        let ms = match self.unit {
            Unit::Seconds => match text.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => (s * 1000.0).min(9.0e15) as u64,
                _ => return Wait::Invalid,
            },
            Unit::Millis => match text.parse::<i64>() {
                Ok(ms) if ms >= 0 => ms as u64,
                _ => return Wait::Invalid,
            },
        };
        if ms == 0 {
            Wait::Forever
        } else {
            Wait::Millis(ms)
        }
    }
}

/// Which nodes a keyless cluster-wide command goes to (its `request_policy` tip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Targets {
    /// Every shard's primary (`all_shards`).
    Primaries,
    /// Every node, replicas included (`all_nodes`).
    AllNodes,
}

/// How the replies of a fanned-out command become one (its `response_policy` tip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FanoutMerge {
    /// Sum of integer replies (`agg_sum`: DBSIZE).
    Sum,
    /// Every node must succeed; the first reply is returned (`all_succeeded`: FLUSHALL).
    AllSucceeded,
    /// One success is enough (`one_succeeded`: SCRIPT KILL).
    OneSucceeded,
    /// Arrays concatenated (no response tip: KEYS).
    Concat,
    /// A random node's non-nil reply (RANDOMKEY).
    AnyNonNil,
}

/// How the parts of a multi-key command split by slot merge back (request policy
/// `multi_shard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SplitMerge {
    /// Values back at their keys' positions (no response tip: MGET).
    Positional,
    /// Integer replies summed (`agg_sum`: DEL, UNLINK, EXISTS, TOUCH).
    Sum,
    /// Every part must answer OK (`all_succeeded`: MSET).
    AllOk,
}

/// A command that may be split by slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    /// Arguments per key (2 for MSET's key/value pairs).
    pub(crate) step: usize,
    /// How the parts' replies merge.
    pub(crate) merge: SplitMerge,
}

/// What a pub/sub command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PubSubOp {
    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE.
    Unsubscribe,
    /// PUBLISH, SPUBLISH.
    Publish,
    /// PUBSUB CHANNELS/NUMSUB/...
    Introspect,
}

/// A pub/sub command's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PubSub {
    /// What it does.
    pub(crate) op: PubSubOp,
    /// Shard channels (SSUBSCRIBE, SPUBLISH ...): routed by the channel's slot, and served
    /// by replicas without READONLY.
    pub(crate) sharded: bool,
}

/// Why a command must not be split or moved to another connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Atomic {
    /// Transaction state on the connection (MULTI, EXEC, DISCARD, WATCH, UNWATCH).
    Transaction,
    /// A script or function: all its keys in one slot, run as one.
    Script,
}

/// Everything routing needs about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Class {
    /// The spec that governs it (a subcommand's for `OBJECT ENCODING`); `None` when unknown.
    pub(crate) spec: Option<&'static CommandSpec>,
    /// Its key positions.
    pub(crate) keys: Keys,
    /// The slot of its keys.
    pub(crate) slot: Slot,
    /// Never writes: a replica may serve it.
    pub(crate) readonly: bool,
    /// May modify the keyspace.
    pub(crate) write: bool,
    /// Blocks on the server, and where its timeout is.
    pub(crate) block: Option<Timeout>,
    /// A keyless command sent to every primary/node, and how the replies merge.
    pub(crate) fanout: Option<(Targets, FanoutMerge)>,
    /// A multi-key command that may be split by slot.
    pub(crate) split: Option<Split>,
    /// Pub/sub kind.
    pub(crate) pubsub: Option<PubSub>,
    /// Must stay atomic on one connection.
    pub(crate) atomic: Option<Atomic>,
}

/// Classify `args` (name first). Unknown commands (modules, newer servers) are keyless
/// writes with no other trait.
pub(crate) fn classify<A: ArgList + ?Sized>(args: &A) -> Class {
    let spec =
        args.arg(0)
            .and_then(lookup)
            .map(|top| match (top.subcommands.is_empty(), args.arg(1)) {
                (false, Some(sub)) => top.subcommand(sub).unwrap_or(top),
                _ => top,
            });
    match spec {
        Some(spec) => classify_spec(spec, args),
        None => Class {
            spec: None,
            keys: Keys::NONE,
            slot: Slot::Keyless,
            readonly: false,
            write: false,
            block: None,
            fanout: None,
            split: None,
            pubsub: None,
            atomic: None,
        },
    }
}

/// [`classify`] when the spec is already known (the server resolved it, with subcommands
/// newer than the table).
pub(crate) fn classify_spec<A: ArgList + ?Sized>(spec: &'static CommandSpec, args: &A) -> Class {
    let keys = key_positions(spec, args);
    let mut slot = Slot::Keyless;
    for i in keys.iter() {
        let Some(k) = args.arg(i) else { continue };
        let s = key_slot(k);
        match slot {
            Slot::Keyless => slot = Slot::One(s),
            Slot::One(prev) if prev != s => {
                slot = Slot::Cross;
                break;
            }
            _ => {}
        }
    }
    Class {
        spec: Some(spec),
        slot,
        readonly: spec.is_readonly(),
        write: spec.is_write(),
        block: timeout_of(spec, args),
        fanout: if slot == Slot::Keyless {
            fanout_of(spec)
        } else {
            None
        },
        split: split_of(spec),
        pubsub: pubsub_of(spec),
        atomic: atomic_of(spec),
        keys,
    }
}

/// The key part of [`classify_spec`] on its own, for callers that need only the keys (the
/// server iterating them per request): where the keys of `args` are under `spec`, as Redis'
/// `COMMAND GETKEYS` finds them.
pub(crate) fn key_positions<A: ArgList + ?Sized>(spec: &CommandSpec, args: &A) -> Keys {
    let argc = args.argc();
    if !spec.has_flag("movablekeys") {
        // Fixed positions: the legacy first/last/step triple says it all.
        if spec.first_key <= 0 {
            return Keys::NONE;
        }
        let first = spec.first_key as usize;
        let last = if spec.last_key < 0 {
            let back = spec.last_key.unsigned_abs() as usize;
            match argc.checked_sub(back) {
                Some(l) => l,
                None => return Keys::NONE,
            }
        } else {
            (spec.last_key as usize).min(argc.saturating_sub(1))
        };
        return Keys::Range {
            first,
            last,
            step: spec.step.max(1) as usize,
        };
    }
    match spec.name {
        // Derived: MIGRATE's KEYS spec is `incomplete`; Redis routes by `migrateGetKeys`.
        "migrate" => migrate_keys(args),
        // Derived: SORT's STORE destination has an `unknown` spec; Redis uses `sortGetKeys`.
        "sort" => sort_keys(args),
        _ => Keys::List(key_indexes(spec, args)),
    }
}

/// Redis' `migrateGetKeys`: the `key` argument (3), or every argument after `KEYS` when
/// `key` is empty (a non-empty `key` with `KEYS` has no keys at all: the command fails).
fn migrate_keys<A: ArgList + ?Sized>(args: &A) -> Keys {
    let argc = args.argc();
    let mut i = 6;
    while i < argc {
        let a = args.arg(i).unwrap_or_default();
        if a.eq_ignore_ascii_case(b"keys") {
            if args.arg(3).is_some_and(|k| !k.is_empty()) {
                return Keys::NONE;
            }
            return Keys::Range {
                first: i + 1,
                last: argc - 1,
                step: 1,
            };
        }
        if a.eq_ignore_ascii_case(b"auth") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            i += 2;
        }
        i += 1;
    }
    if argc > 3 {
        Keys::Range {
            first: 3,
            last: 3,
            step: 1,
        }
    } else {
        Keys::NONE
    }
}

/// Redis' `sortGetKeys`: the sorted key, and the last `STORE` destination (LIMIT skips two
/// arguments, GET and BY one).
fn sort_keys<A: ArgList + ?Sized>(args: &A) -> Keys {
    let argc = args.argc();
    if argc < 2 {
        return Keys::NONE;
    }
    let mut store = None;
    let mut i = 2;
    while i < argc {
        let a = args.arg(i).unwrap_or_default();
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argc {
            store = Some(i + 1);
        }
        i += 1;
    }
    Keys::List(std::iter::once(1).chain(store).collect())
}

/// Derived: which argument is the timeout (the table only flags `blocking`). XREAD and
/// XREADGROUP block only with a BLOCK option before STREAMS; WAIT is not flagged `blocking`
/// but holds its connection up to its timeout too.
fn timeout_of<A: ArgList + ?Sized>(spec: &CommandSpec, args: &A) -> Option<Timeout> {
    let argc = args.argc();
    let keyspace = |index: usize, unit: Unit| {
        Some(Timeout {
            index,
            unit,
            keyspace: true,
        })
    };
    if spec.name == "wait" {
        return Some(Timeout {
            index: 2,
            unit: Unit::Millis,
            keyspace: false,
        });
    }
    if !spec.has_flag("blocking") {
        return None;
    }
    match spec.name {
        "blmpop" | "bzmpop" => keyspace(1, Unit::Seconds),
        "xread" | "xreadgroup" => {
            let mut i = 1;
            while let Some(a) = args.arg(i) {
                if a.eq_ignore_ascii_case(b"streams") {
                    return None;
                }
                if a.eq_ignore_ascii_case(b"block") {
                    return keyspace(i + 1, Unit::Millis);
                }
                i += 1;
            }
            None
        }
        // BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX: the last argument.
        _ => keyspace(argc.saturating_sub(1), Unit::Seconds),
    }
}

fn fanout_of(spec: &CommandSpec) -> Option<(Targets, FanoutMerge)> {
    // Derived: RANDOMKEY's tips send it to one shard, but an empty shard would then answer
    // nil for a cluster that has keys.
    if spec.name == "randomkey" {
        return Some((Targets::Primaries, FanoutMerge::AnyNonNil));
    }
    let targets = match spec.request_policy()? {
        "all_shards" => Targets::Primaries,
        "all_nodes" => Targets::AllNodes,
        _ => return None,
    };
    // Only policies with a well-defined merge fan out; `special`, `agg_min` ... stay on one
    // node.
    let merge = match spec.response_policy() {
        Some("agg_sum") => FanoutMerge::Sum,
        Some("all_succeeded") => FanoutMerge::AllSucceeded,
        Some("one_succeeded") => FanoutMerge::OneSucceeded,
        None => FanoutMerge::Concat,
        Some(_) => return None,
    };
    Some((targets, merge))
}

fn split_of(spec: &CommandSpec) -> Option<Split> {
    if spec.request_policy()? != "multi_shard" {
        return None;
    }
    let merge = match spec.response_policy() {
        None => SplitMerge::Positional,
        Some("agg_sum") => SplitMerge::Sum,
        Some("all_succeeded") => SplitMerge::AllOk,
        // `agg_min` (MSETNX): all or nothing, so it must stay on one node.
        Some(_) => return None,
    };
    let step = match spec.key_specs.first()?.find {
        FindKeys::Range { key_step, .. } => key_step.max(1) as usize,
        FindKeys::KeyNum { .. } | FindKeys::Unknown => return None,
    };
    match spec.key_specs.first()?.begin {
        BeginSearch::Index(1) => Some(Split { step, merge }),
        _ => None,
    }
}

/// Derived from the names: the table flags these `pubsub` without saying what they do.
fn pubsub_of(spec: &CommandSpec) -> Option<PubSub> {
    if !spec.has_flag("pubsub") {
        return None;
    }
    let name = spec.name;
    let op = if name.starts_with("pubsub|") {
        PubSubOp::Introspect
    } else if name.ends_with("unsubscribe") {
        PubSubOp::Unsubscribe
    } else if name.ends_with("subscribe") {
        PubSubOp::Subscribe
    } else {
        PubSubOp::Publish
    };
    // Shard channels are the only pub/sub arguments with a key spec (flagged `not_key`).
    Some(PubSub {
        op,
        sharded: !spec.key_specs.is_empty(),
    })
}

fn atomic_of(spec: &CommandSpec) -> Option<Atomic> {
    match spec.name {
        // Derived: the table has no flag for transaction state.
        "multi" | "exec" | "discard" | "watch" | "unwatch" => Some(Atomic::Transaction),
        // EVAL*, EVALSHA*, FCALL*: scripting commands that name keys.
        _ if spec.acl_categories.contains(&"@scripting") && spec.has_flag("movablekeys") => {
            Some(Atomic::Script)
        }
        _ => None,
    }
}
