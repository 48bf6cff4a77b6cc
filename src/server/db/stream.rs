//! The stream type: entries by ID, consumer groups with their pending-entries lists, and a
//! model of Redis' node layout (radix-tree keys holding listpacks of at most 100 entries or
//! 4096 bytes), kept because approximate trimming (`MAXLEN ~`) removes whole nodes only and
//! `XINFO STREAM` reports node counts: our replies then equal redis-server's.
//!
//! Node sizes follow the listpack encoding exactly (integer and string element sizes plus
//! back-lengths) so a node closes where Redis' would. Deleted entries stay counted in their
//! node until the whole node is empty, as Redis keeps them as tombstones.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

/// A stream entry ID: milliseconds and sequence, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl StreamId {
    pub(crate) const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub(crate) const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub(crate) fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, `None` after the last possible one.
    pub(crate) fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, `None` before 0-0.
    pub(crate) fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    pub(crate) fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// `ms-seq` as bytes (replies and propagation).
    pub(crate) fn to_bytes(self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One pending (delivered, not acknowledged) entry of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Nack {
    pub(crate) consumer: Bytes,
    pub(crate) delivery_time: u64,
    pub(crate) delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// Last time it read or claimed (ms since the epoch).
    pub(crate) seen_time: u64,
    /// Its pending entries (the details live in the group's PEL).
    pub(crate) pel: std::collections::BTreeSet<StreamId>,
}

/// `entries_read` value meaning "unknown".
pub(crate) const INVALID_READ: i64 = -1;

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) last_id: StreamId,
    pub(crate) entries_read: i64,
    pub(crate) pel: BTreeMap<StreamId, Nack>,
    /// Sorted by name, as Redis' radix tree lists them.
    pub(crate) consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub(crate) fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }
}

/// One modelled radix-tree node (a listpack in Redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// Fields of the node's first entry (the "master entry").
    master_fields: Vec<Bytes>,
    /// Live entries.
    live: u64,
    /// Tombstones.
    deleted: u64,
    /// Listpack bytes except the header/terminator and the two counters.
    rest: usize,
    /// ID of the last entry ever appended to this node (deleted or not).
    last: StreamId,
}

/// Redis' `stream-node-max-bytes` and `stream-node-max-entries` defaults.
const NODE_MAX_BYTES: usize = 4096;
const NODE_MAX_ENTRIES: u64 = 100;

/// Listpack bytes of one element holding `s` (integer-encoded when it parses as one).
fn lp_elem(s: &[u8]) -> usize {
    let body = match super::util::parse_i64(s) {
        Some(v) => lp_int_body(v),
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    body + backlen(body)
}

fn lp_int(v: i64) -> usize {
    let b = lp_int_body(v);
    b + backlen(b)
}

fn lp_int_body(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        4
    } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
        5
    } else {
        9
    }
}

fn backlen(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

fn lp_u64(v: u64) -> usize {
    lp_int(i64::try_from(v).unwrap_or(-1))
}

impl Node {
    fn bytes(&self) -> usize {
        7 + lp_u64(self.live) + lp_u64(self.deleted) + self.rest
    }
}

/// A stream value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stream {
    /// Live entries: flat field/value lists.
    pub(crate) entries: BTreeMap<StreamId, Vec<Bytes>>,
    /// Node model keyed by master ID.
    nodes: BTreeMap<StreamId, Node>,
    pub(crate) last_id: StreamId,
    pub(crate) max_deleted: StreamId,
    pub(crate) entries_added: u64,
    /// Groups by name (sorted, as Redis lists them).
    pub(crate) groups: BTreeMap<Bytes, Group>,
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

impl Stream {
    pub(crate) fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub(crate) fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// Radix-tree keys (nodes) of the modelled layout.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Radix-tree internal nodes Redis' rax would use for the node keys (16-byte big-endian
    /// IDs, compressed paths).
    pub(crate) fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .nodes
            .keys()
            .map(|id| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&id.ms.to_be_bytes());
                k[8..].copy_from_slice(&id.seq.to_be_bytes());
                k
            })
            .collect();
        if keys.is_empty() {
            return 1;
        }
        1 + rax_below(&keys, 0)
    }

    /// Append an entry with a valid (greater than last) ID. `fv` is field, value, ...
    pub(crate) fn append(&mut self, id: StreamId, fv: Vec<Bytes>) {
        let fields: Vec<&Bytes> = fv.iter().step_by(2).collect();
        let tot: usize = fv.iter().map(Bytes::len).sum();
        let tail = self.nodes.iter_mut().next_back();
        let reuse = match tail {
            Some((_, n)) => {
                n.bytes() + tot < NODE_MAX_BYTES && n.live + n.deleted < NODE_MAX_ENTRIES
            }
            None => false,
        };
        if reuse {
            let (master, n) = self.nodes.iter_mut().next_back().expect("tail");
            let same = n.master_fields.len() == fields.len()
                && n.master_fields.iter().zip(&fields).all(|(a, b)| a == *b);
            n.rest += entry_bytes(id, *master, &fv, same);
            n.live += 1;
            n.last = id;
        } else {
            let mut rest = lp_int(fields.len() as i64) + lp_int(0);
            rest += fields.iter().map(|f| lp_elem(f)).sum::<usize>();
            rest += entry_bytes(id, id, &fv, true);
            self.nodes.insert(
                id,
                Node {
                    master_fields: fields.into_iter().cloned().collect(),
                    live: 1,
                    deleted: 0,
                    rest,
                    last: id,
                },
            );
        }
        self.entries.insert(id, fv);
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Delete one entry; true when it existed.
    pub(crate) fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        let Some((&master, n)) = self.nodes.range_mut(..=id).next_back() else {
            return true;
        };
        n.live -= 1;
        n.deleted += 1;
        if n.live == 0 {
            self.nodes.remove(&master);
        }
        true
    }

    /// Trim as Redis' `streamTrim`; `limit` 0 means unlimited. Returns entries removed.
    pub(crate) fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        loop {
            if let Trim::MaxLen(max) = how {
                if self.len() <= max {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.iter().next() else {
                break;
            };
            let entries = node.live;
            if limit > 0 && removed + entries > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(max) => self.len() - entries >= max,
                Trim::MinId(min) => node.last < min,
            };
            let next_master = self
                .nodes
                .range((
                    std::ops::Bound::Excluded(master),
                    std::ops::Bound::Unbounded,
                ))
                .next()
                .map(|(k, _)| *k);
            let in_node: Vec<StreamId> = match next_master {
                Some(nm) => self.entries.range(master..nm).map(|(k, _)| *k).collect(),
                None => self.entries.range(master..).map(|(k, _)| *k).collect(),
            };
            if remove_node {
                for id in in_node {
                    self.entries.remove(&id);
                }
                self.nodes.remove(&master);
                removed += entries;
                continue;
            }
            if approx {
                break;
            }
            let mut gone = 0;
            for id in in_node {
                let stop = match how {
                    Trim::MaxLen(max) => self.len() <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                self.entries.remove(&id);
                gone += 1;
            }
            if let Some(n) = self.nodes.get_mut(&master) {
                n.live -= gone;
                n.deleted += gone;
            }
            removed += gone;
            break;
        }
        removed
    }

    /// Redis' `streamRangeHasTombstones` from `start` to the end.
    pub(crate) fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted.is_zero() {
            return false;
        }
        if self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// Redis' `streamEstimateDistanceFromFirstEverEntry`.
    pub(crate) fn estimate_read(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        let added = self.entries_added as i64;
        if self.entries.is_empty() && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        }
        if id > self.last_id {
            return INVALID_READ;
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            if id < first {
                return added - self.len() as i64;
            }
            if id == first {
                return added - self.len() as i64 + 1;
            }
        }
        INVALID_READ
    }

    /// A group's lag, `None` when it cannot be known.
    pub(crate) fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_READ && !self.has_tombstones_from(g.last_id) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_read(g.last_id);
        (read != INVALID_READ).then(|| self.entries_added as i64 - read)
    }
}

/// Listpack bytes of one entry appended to a node whose master ID is `master`.
fn entry_bytes(id: StreamId, master: StreamId, fv: &[Bytes], same: bool) -> usize {
    let nf = fv.len() / 2;
    let ms = id.ms.wrapping_sub(master.ms) as i64;
    let seq = id.seq.wrapping_sub(master.seq) as i64;
    let mut n = lp_int(if same { 2 } else { 0 }) + lp_int(ms) + lp_int(seq);
    let mut count = nf as i64 + 3;
    if !same {
        n += lp_int(nf as i64);
        count += nf as i64 + 1;
    }
    for (i, e) in fv.iter().enumerate() {
        if same && i % 2 == 0 {
            continue;
        }
        n += lp_elem(e);
    }
    n + lp_int(count)
}

/// Rax nodes strictly below a position at `depth` that is itself a node, for sorted keys
/// sharing their first `depth` bytes.
fn rax_below(keys: &[[u8; 16]], depth: usize) -> usize {
    if depth == 16 {
        return 0;
    }
    let (first, last) = (&keys[0], &keys[keys.len() - 1]);
    if first[depth] == last[depth] {
        // One child: a compressed path down to the next branch or leaf.
        let mut end = depth;
        while end < 16 && first[end] == last[end] {
            end += 1;
        }
        return 1 + rax_below(keys, end);
    }
    let mut total = 0;
    let mut start = 0;
    for i in 1..=keys.len() {
        if i == keys.len() || keys[i][depth] != keys[start][depth] {
            // Each child of a branch is a node of its own.
            total += 1 + rax_below(&keys[start..i], depth + 1);
            start = i;
        }
    }
    total
}

/// The node model's parts, for the value encoding (so a copy keeps Redis' layout).
pub(crate) struct NodeParts {
    pub(crate) master: StreamId,
    pub(crate) fields: Vec<Bytes>,
    pub(crate) live: u64,
    pub(crate) deleted: u64,
    pub(crate) rest: u64,
    pub(crate) last: StreamId,
}

impl Stream {
    /// The node model, oldest first.
    pub(crate) fn node_parts(&self) -> Vec<NodeParts> {
        self.nodes
            .iter()
            .map(|(m, n)| NodeParts {
                master: *m,
                fields: n.master_fields.clone(),
                live: n.live,
                deleted: n.deleted,
                rest: n.rest as u64,
                last: n.last,
            })
            .collect()
    }

    /// Replace the node model; `None` when it does not account for exactly the entries
    /// (a corrupt payload).
    pub(crate) fn set_node_parts(&mut self, parts: Vec<NodeParts>) -> Option<()> {
        let mut nodes = BTreeMap::new();
        let masters: Vec<StreamId> = parts.iter().map(|p| p.master).collect();
        for (i, p) in parts.into_iter().enumerate() {
            let upto = masters.get(i + 1).copied();
            let live = match upto {
                Some(u) if u > p.master => self.entries.range(p.master..u).count(),
                Some(_) => return None,
                None => self.entries.range(p.master..).count(),
            };
            if live as u64 != p.live || p.last < p.master {
                return None;
            }
            nodes.insert(
                p.master,
                Node {
                    master_fields: p.fields,
                    live: p.live,
                    deleted: p.deleted,
                    rest: usize::try_from(p.rest).ok()?,
                    last: p.last,
                },
            );
        }
        if let Some(first) = self.entries.keys().next() {
            if masters.first().map_or(true, |m| m > first) {
                return None;
            }
        }
        self.nodes = nodes;
        Some(())
    }
}
