//! The shape of one command's metadata, as `COMMAND` describes it in Redis 7.

/// Where the search for a command's keys begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BeginSearch {
    /// At a fixed argument index (the command name is index 0).
    Index(i32),
    /// After the first match of `keyword`, searching from `start_from` (negative: from the end).
    Keyword {
        /// The keyword, lower case (`streams`).
        keyword: &'static str,
        /// Where the keyword search starts.
        start_from: i32,
    },
    /// Keys cannot be found from the arguments alone.
    Unknown,
}

/// How a command's keys are found once the search has begun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FindKeys {
    /// A range: `last_key` relative to the beginning (negative counts from the end),
    /// every `key_step`-th argument, `limit` dividing the remainder when `last_key` is -1.
    Range {
        /// Last key's offset from the begin index; -1 means the last argument.
        last_key: i32,
        /// Distance between keys.
        key_step: i32,
        /// When `last_key` is -1 and limit > 1, only 1/limit of the remaining arguments.
        limit: i32,
    },
    /// The number of keys is an argument (`EVAL script numkeys key...`).
    KeyNum {
        /// Offset of the argument holding the count, from the begin index.
        key_num_idx: i32,
        /// Offset of the first key, from the begin index.
        first_key: i32,
        /// Distance between keys.
        key_step: i32,
    },
    /// Keys cannot be found from the arguments alone.
    Unknown,
}

/// One key specification of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeySpec {
    /// Access flags (`RO`, `RW`, `OW`, `RM`, `access`, `update`, `insert`, `delete` ...).
    pub(crate) flags: &'static [&'static str],
    /// Where the search starts.
    pub(crate) begin: BeginSearch,
    /// How keys are found from there.
    pub(crate) find: FindKeys,
}

/// Everything Redis 7 says about one command or subcommand in its `COMMAND` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CommandSpec {
    /// Lower-case name; subcommands are `parent|sub`.
    pub(crate) name: &'static str,
    /// Argument count including the name; negative means "at least -arity".
    pub(crate) arity: i32,
    /// Command flags (`readonly`, `write`, `fast`, `noscript` ...).
    pub(crate) flags: &'static [&'static str],
    /// Legacy first key position (0: none).
    pub(crate) first_key: i32,
    /// Legacy last key position (-1: the last argument).
    pub(crate) last_key: i32,
    /// Legacy key step.
    pub(crate) step: i32,
    /// ACL categories (`@read`, `@string` ...).
    pub(crate) acl_categories: &'static [&'static str],
    /// Hints for clients (`request_policy:all_shards` ...).
    pub(crate) tips: &'static [&'static str],
    /// Key specifications.
    pub(crate) key_specs: &'static [KeySpec],
    /// Subcommands, sorted by name.
    pub(crate) subcommands: &'static [CommandSpec],
}
