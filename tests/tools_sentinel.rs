//! Real tools against `redcluster-server --sentinel` (three Sentinel processes configured
//! with redis sentinel.conf syntax, watching real `redis-server` nodes): `redis-cli -p
//! SENTINEL_PORT sentinel get-master-addr-by-name mymaster`, the Python `redis` package's
//! `Sentinel(...).master_for(...)` / `slave_for(...)` (tests/python/sentinel_smoke.py), and
//! the address redis-cli reports after the primary is killed.

mod support;

use std::time::{Duration, Instant};

use support::real_cluster::{cli, redis_available};
use support::real_standalone::{RealReplicaSet, MASTER_NAME};
use support::server_bin::{free_port_run, python_redis_available, run_tool, ServerProcess};
use support::wait::wait_until;

fn primary_port_by_cli(sentinel_port: u16) -> Option<u16> {
    let out = cli(
        sentinel_port,
        &["sentinel", "get-master-addr-by-name", MASTER_NAME],
    );
    let mut lines = out.lines();
    (lines.next()?.trim() == "127.0.0.1").then_some(())?;
    lines.next()?.trim().parse().ok()
}

#[test]
fn redis_cli_and_python_sentinel_client_against_the_binary() {
    if !redis_available() || !python_redis_available() {
        return;
    }
    let Some(mut set) = RealReplicaSet::start(2) else {
        return;
    };
    let primary: u16 = set.nodes[0].port;
    let dir = std::env::temp_dir().join(format!("redcluster-sentinel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "# redis sentinel.conf syntax\nsentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 5000\ndaemonize no\n"
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let sentinels: Vec<ServerProcess> = (0..3)
        .map(|_| ServerProcess::start(1, &[&conf, "--sentinel"]))
        .collect();
    let ports: Vec<u16> = sentinels.iter().map(|s| s.base_port).collect();

    assert_eq!(primary_port_by_cli(ports[0]), Some(primary));
    // Every Sentinel finds the replicas and the two others (through the hello channel).
    wait_until(Duration::from_secs(30), || {
        ports.iter().all(|&p| {
            let info = cli(p, &["info", "sentinel"]);
            info.contains(&format!("address=127.0.0.1:{primary},slaves=2,sentinels=3"))
        })
    });

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/sentinel_smoke.py"
    );
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let run = run_tool("python3", &[script, &list], Duration::from_secs(60));
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success() && out.contains("python sentinel: ok"),
        "{out}"
    );

    // Kill the primary: redis-cli soon reports the promoted replica.
    let killed = Instant::now();
    set.nodes[0].kill();
    wait_until(Duration::from_secs(30), || {
        ports
            .iter()
            .all(|&p| primary_port_by_cli(p).is_some_and(|n| n != primary))
    });
    let new = primary_port_by_cli(ports[0]).unwrap();
    println!(
        "binary Sentinels: primary killed -> redis-cli names {new} after {:?}",
        killed.elapsed()
    );
    let i = set.index_of_port(new).expect("a replica was promoted");
    assert!(set.nodes[i].cli(&["ROLE"]).starts_with("master"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn standalone_binary_with_sentinels_on_sentinel_port() {
    if !redis_available() || !python_redis_available() {
        return;
    }
    let sbase = free_port_run(3);
    let server = ServerProcess::start(
        3,
        &[
            "--standalone",
            "--replicas",
            "2",
            "--sentinels",
            "3",
            "--sentinel-port",
            &sbase.to_string(),
        ],
    );
    let ports: Vec<u16> = (sbase..sbase + 3).collect();
    wait_until(Duration::from_secs(30), || {
        ports
            .iter()
            .all(|&p| primary_port_by_cli(p) == Some(server.base_port))
            && ports.iter().all(|&p| {
                cli(p, &["info", "sentinel"]).contains(&format!(
                    "address=127.0.0.1:{},slaves=2,sentinels=3",
                    server.base_port
                ))
            })
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/sentinel_smoke.py"
    );
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let run = run_tool("python3", &[script, &list], Duration::from_secs(60));
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success() && out.contains("python sentinel: ok"),
        "{out}"
    );
}
