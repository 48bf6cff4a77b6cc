//! INFO: the sections clients and tools parse, in Redis 7's format.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::resp::Value;

use super::call::{Call, Outcome};
use super::node::{now_ms, Locked, NodeShared, NodeState};
use super::session::Conn;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// INFO [section ...].
pub(crate) fn info(
    conn: &Conn,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Value {
    let _ = conn;
    let mut wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
        wanted.extend(DEFAULT.iter().map(|s| s.to_string()));
    }
    if wanted.iter().any(|w| w == "all" || w == "everything") {
        wanted.extend(DEFAULT.iter().map(|s| s.to_string()));
        wanted.push("commandstats".into());
        wanted.push("latencystats".into());
    }
    let st = locked.get();
    let mut out = String::new();
    let order = [
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "cpu",
        "modules",
        "errorstats",
        "commandstats",
        "latencystats",
        "cluster",
        "keyspace",
    ];
    for section in order {
        if !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        write_section(&mut out, section, st, shared);
    }
    Value::Verbatim {
        format: Bytes::from_static(b"txt"),
        text: Bytes::from(out),
    }
}

fn write_section(out: &mut String, section: &str, st: &NodeState, shared: &NodeShared) {
    let uptime = shared.started.elapsed().as_secs();
    match section {
        "server" => {
            let _ =
                write!(
                out,
                "# Server\r\nredis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n\
                 redis_build_id:0\r\nredis_mode:{}\r\nos:{} {}\r\narch_bits:64\r\n\
                 multiplexing_api:tokio\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\n\
                 tcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\n\
                 uptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nexecutable:redcluster\r\n\
                 config_file:\r\nio_threads_active:0\r\n",
                super::REDIS_VERSION,
                if st.standalone { "standalone" } else { "cluster" },
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                shared.run_id,
                shared.addr.port(),
                now_ms() * 1000,
                uptime / 86400,
            );
        }
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\n\
                 client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n\
                 blocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
                shared.connected_clients.load(Ordering::Relaxed),
                shared.limits.maxclients(),
                st.waiters.len(),
                st.tracking.clients_count(),
            );
        }
        "memory" => {
            // The dataset from per-key accounting (sampled, as MEMORY USAGE estimates each
            // key), on top of Redis' own start-up figure; RSS is the whole process's (all its
            // nodes), read from the OS.
            const STARTUP: usize = 862_000;
            let dataset = st.db.dataset_bytes(1000);
            let used = STARTUP + dataset + st.repl.pending_bytes();
            let rss = process_rss().unwrap_or(used as u64);
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{:.2}M\r\n\
                 used_memory_rss:{rss}\r\nused_memory_rss_human:{:.2}M\r\n\
                 used_memory_startup:{STARTUP}\r\nused_memory_dataset:{dataset}\r\n\
                 maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
                 mem_fragmentation_ratio:{:.2}\r\nmem_allocator:libc\r\n\
                 lazyfree_pending_objects:0\r\n",
                used as f64 / 1_048_576.0,
                rss as f64 / 1_048_576.0,
                rss as f64 / used as f64,
            );
        }
        "persistence" => {
            let _ = write!(
                out,
                "# Persistence\r\nloading:{}\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\n\
                 rdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\n\
                 aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_last_bgrewrite_status:ok\r\n",
                u8::from(st.repl.link.as_ref().is_some_and(|l| l.loading)),
                now_ms() / 1000
            );
        }
        "stats" => {
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 instantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:0\r\ntotal_net_output_bytes:0\r\n\
                 rejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\n\
                 expired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:0\r\nkeyspace_misses:0\r\n\
                 pubsub_channels:{}\r\npubsub_patterns:{}\r\ntracking_total_keys:{}\r\n\
                 tracking_total_items:{}\r\ntracking_total_prefixes:{}\r\n\
                 total_error_replies:{}\r\n",
                shared.total_connections.load(Ordering::Relaxed),
                st.cmdstats.total_commands,
                shared.rejected_connections.load(Ordering::Relaxed),
                st.repl.sync_full,
                st.db.expired_keys(),
                shared.pubsub.active(super::pubsub::Kind::Channel, None).len(),
                shared.pubsub.numpat(),
                st.tracking.totals().0,
                st.tracking.totals().1,
                st.tracking.totals().2,
                st.cmdstats.total_errors,
            );
        }
        "replication" => super::replication::standalone::info(out, st),
        "cpu" => out.push_str(
            "# CPU\r\nused_cpu_sys:0.000000\r\nused_cpu_user:0.000000\r\n\
             used_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n",
        ),
        "modules" => out.push_str("# Modules\r\n"),
        "errorstats" => out.push_str("# Errorstats\r\n"),
        "latencystats" => out.push_str("# Latencystats\r\n"),
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            st.cmdstats.info_lines(out);
        }
        "cluster" => {
            let enabled = u8::from(!st.standalone);
            let _ = write!(out, "# Cluster\r\ncluster_enabled:{enabled}\r\n");
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            st.keyspace_lines(out);
        }
        _ => {}
    }
}

/// The process's resident set size in bytes (Linux; `None` elsewhere).
fn process_rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// INFO (registry entry).
pub(crate) fn info_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(info(c.conn, c.args, c.locked, c.shared))
}
