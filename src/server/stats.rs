//! Per-command counters behind INFO commandstats and INFO stats.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes the address of a `&'static str` command name: names come from the static table,
/// so the address identifies the command and hashing it is one multiply.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type ByAddr = HashMap<usize, (&'static str, CmdStat), BuildHasherDefault<AddrHasher>>;

/// Counters of one command.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CmdStat {
    /// Executions (errors included, as Redis counts them).
    pub(crate) calls: u64,
    /// Total microseconds spent executing.
    pub(crate) usec: u64,
    /// Refused before execution (arity, NOAUTH, MOVED ...).
    pub(crate) rejected: u64,
    /// Executed but answered with an error.
    pub(crate) failed: u64,
}

/// Counters by full command name (`get`, `cluster|info`).
#[derive(Debug, Default)]
pub(crate) struct CmdStats {
    by_name: ByAddr,
    /// Commands executed in total.
    pub(crate) total_commands: u64,
    /// Replies that were errors.
    pub(crate) total_errors: u64,
}

impl CmdStats {
    /// Count one execution.
    pub(crate) fn executed(&mut self, name: &'static str, usec: u64, failed: bool) {
        let stat = &mut self
            .by_name
            .entry(name.as_ptr() as usize)
            .or_insert((name, CmdStat::default()))
            .1;
        stat.calls += 1;
        stat.usec += usec;
        self.total_commands += 1;
        if failed {
            stat.failed += 1;
            self.total_errors += 1;
        }
    }

    /// Count one refusal.
    pub(crate) fn rejected(&mut self, name: &'static str) {
        self.by_name
            .entry(name.as_ptr() as usize)
            .or_insert((name, CmdStat::default()))
            .1
            .rejected += 1;
        self.total_errors += 1;
    }

    /// CONFIG RESETSTAT.
    pub(crate) fn reset(&mut self) {
        *self = CmdStats::default();
    }

    /// The lines of INFO commandstats.
    pub(crate) fn info_lines(&self, out: &mut String) {
        let mut names: Vec<_> = self.by_name.values().collect();
        names.sort_by_key(|(n, _)| *n);
        for (name, s) in names {
            let per = if s.calls > 0 {
                s.usec as f64 / s.calls as f64
            } else {
                0.0
            };
            let _ = write!(
                out,
                "cmdstat_{name}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
                s.calls, s.usec, s.rejected, s.failed
            );
        }
    }
}
