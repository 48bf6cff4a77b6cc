//! The per-node state of SLOWLOG and LATENCY: a leaf kept in the node state; the commands
//! are `cmd_misc.rs`.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// One SLOWLOG entry.
#[derive(Debug)]
pub(crate) struct SlowEntry {
    /// Its id (SLOWLOG's unique, growing number).
    pub(crate) id: u64,
    /// When it ran (Unix seconds).
    pub(crate) time_s: u64,
    /// How long it took.
    pub(crate) usec: u64,
    /// Its arguments (as SLOWLOG trims them).
    pub(crate) args: Vec<Bytes>,
    /// The client's address.
    pub(crate) peer: String,
    /// The client's name.
    pub(crate) name: Bytes,
}

/// Per-node SLOWLOG and latency histograms.
#[derive(Debug, Default)]
pub(crate) struct MiscState {
    /// The log, newest first.
    pub(crate) slowlog: VecDeque<SlowEntry>,
    /// The next entry's id.
    pub(crate) next_id: u64,
    /// Command name -> (calls, log2 buckets of microseconds).
    pub(crate) hist: HashMap<&'static str, (u64, [u64; 40])>,
}
