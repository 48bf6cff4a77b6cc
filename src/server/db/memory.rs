//! MEMORY USAGE's estimate of one key: the key and value bytes plus the per-allocation
//! overheads Redis 7.0 pays for each encoding (dict entries, robj headers, sds headers,
//! listpack/quicklist/skiplist nodes). An estimate, as Redis' own is (it samples aggregates
//! and rounds through jemalloc size classes); it grows with the data the way Redis' does.

use super::stream::Stream;
use super::{Data, Db};

/// jemalloc rounds small allocations up to its size classes; mimic those under 4 KiB.
fn alloc(n: usize) -> usize {
    const CLASSES: [usize; 16] = [
        8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448,
    ];
    if let Some(c) = CLASSES.iter().find(|c| **c >= n) {
        return *c;
    }
    if n <= 4096 {
        return n.next_power_of_two().max(640);
    }
    n.div_ceil(4096) * 4096
}

/// An sds string of `len` bytes (header + NUL).
fn sds(len: usize) -> usize {
    let hdr = match len {
        0..=255 => 3,
        256..=65535 => 5,
        _ => 9,
    };
    alloc(len + hdr + 1)
}

fn stream_size(s: &Stream) -> usize {
    let entries: usize = s
        .entries
        .values()
        .map(|fv| fv.iter().map(|b| b.len() + 2).sum::<usize>() + 6)
        .sum();
    let groups: usize = s
        .groups
        .iter()
        .map(|(n, g)| sds(n.len()) + 64 + g.pel.len() * 48 + g.consumers.len() * 64)
        .sum();
    alloc(64) + s.node_count() * 48 + entries + groups
}

impl Db {
    /// Bytes the keyspace holds, estimated as MEMORY USAGE estimates each key, from up to
    /// `samples` random keys scaled to the key count (INFO `used_memory_dataset`): O(samples)
    /// however big the keyspace.
    pub(crate) fn dataset_bytes(&self, samples: usize) -> usize {
        let keys = self.map.len();
        let n = samples.min(keys);
        if n == 0 {
            return 0;
        }
        let sum: usize = (0..n)
            .filter_map(|_| self.random_entry())
            .filter_map(|(k, _)| self.memory_usage(k, 0))
            .sum();
        sum * keys / n
    }

    /// Bytes `key` and its value take, estimated (`None` when absent at `now_ms`).
    pub(crate) fn memory_usage(&self, key: &[u8], now_ms: u64) -> Option<usize> {
        let e = self.peek(key)?;
        if e.expire_at().is_some_and(|t| t <= now_ms) {
            return None;
        }
        // dictEntry + the key as Redis measures it (its embedded string allocation less the
        // object header), then the value with its object header.
        let base = 24 + alloc(16 + key.len() + 2) - 8 + 16;
        let value = match &e.data {
            Data::Str(v) => {
                if v.len() <= 20 && super::util::parse_i64(v).is_some() {
                    0
                } else if v.len() <= 44 {
                    alloc(v.len() + 3 + 1 + 16) - 16
                } else {
                    sds(v.len())
                }
            }
            Data::List(l) => {
                let bytes: usize = l.iter().map(|v| v.len() + 2).sum();
                48 + (bytes / 8192 + 1) * (32 + 16) + alloc(bytes.min(8192)) * (bytes / 8192 + 1)
            }
            Data::Hash(h) => {
                if h.len() <= 128 && h.iter().all(|(k, v)| k.len() <= 64 && v.len() <= 64) {
                    alloc(7 + h.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>())
                } else {
                    h.iter()
                        .map(|(k, v)| 24 + sds(k.len()) + sds(v.len()))
                        .sum::<usize>()
                        + alloc(h.len().next_power_of_two() * 8)
                }
            }
            Data::Set(s) => {
                s.iter().map(|m| 24 + sds(m.len())).sum::<usize>()
                    + alloc(s.len().next_power_of_two() * 8)
            }
            Data::Zset(z) => {
                if z.len() <= 128 && z.members().all(|m| m.len() <= 64) {
                    alloc(7 + z.iter().map(|(m, _)| m.len() + 12).sum::<usize>())
                } else {
                    z.iter().map(|(m, _)| 24 + 48 + sds(m.len())).sum::<usize>()
                        + alloc(z.len().next_power_of_two() * 8)
                }
            }
            Data::Stream(s) => stream_size(s),
        };
        Some(base + value)
    }
}
