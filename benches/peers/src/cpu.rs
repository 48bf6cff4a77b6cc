//! The process's CPU time (user + system, every thread), for CPU time per operation.

use std::time::Duration;

/// User + system CPU time this process has used so far, from `/proc/self/stat` (Linux; in
/// clock ticks of `_SC_CLK_TCK`, 100 per second on every Linux this runs on: 10 ms
/// resolution, so runs last seconds). Zero where `/proc` is missing.
pub fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces, inside parentheses).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; the fields after ")" start at 3.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}
