//! Real tools against the `redcluster-server` binary, unchanged, as a new user would try them:
//! `redis-cli --cluster check`, `redis-cli -c`, `redis-benchmark --cluster`, the reference
//! set-up (`--cluster create` then `add-node --cluster-slave`), and Python's `RedisCluster`.

mod support;

use std::time::Duration;

use support::real_cluster::{cli, redis_available};
use support::server_bin::{python_redis_available, run_tool, ServerProcess};
use support::wait::wait_until;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn started_cluster() -> ServerProcess {
    let server = ServerProcess::start(6, &["--primaries", "3", "--replicas-per-primary", "1"]);
    wait_until(Duration::from_secs(20), || {
        server
            .ports()
            .all(|p| cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    });
    server
}

#[test]
fn redis_cli_cluster_check_redirects_and_benchmark() {
    if !redis_available() {
        return;
    }
    let server = started_cluster();
    let seed = server.addr(0);

    let check = run_tool(
        "redis-cli",
        &["--cluster", "check", &seed],
        Duration::from_secs(30),
    );
    let out = text(&check);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(!out.contains("[ERR]"), "{out}");
    assert_eq!(out.matches("M: ").count(), 3, "{out}");
    assert_eq!(out.matches("S: ").count(), 3, "{out}");

    // `redis-cli -c` follows MOVED: keys on every primary are written and read back through
    // the first node.
    let port = server.base_port.to_string();
    for i in 0..30 {
        let key = format!("cli:{i}");
        let set = run_tool(
            "redis-cli",
            &["-c", "-p", &port, "SET", &key, &format!("v{i}")],
            Duration::from_secs(10),
        );
        assert_eq!(text(&set).trim(), "OK");
        let get = run_tool(
            "redis-cli",
            &["-c", "-p", &port, "GET", &key],
            Duration::from_secs(10),
        );
        assert_eq!(text(&get).trim(), format!("v{i}"));
    }

    for pipeline in ["1", "16"] {
        let bench = run_tool(
            "redis-benchmark",
            &[
                "--cluster",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "set,get",
                "-n",
                "20000",
                "-c",
                "20",
                "-P",
                pipeline,
                "-q",
            ],
            Duration::from_secs(120),
        );
        let out = text(&bench);
        assert!(bench.status.success(), "{out}");
        assert!(out.contains("SET: ") && out.contains("GET: "), "{out}");
        assert!(out.contains("requests per second"), "{out}");
        assert!(!out.to_lowercase().contains("error"), "{out}");
    }
}

#[test]
fn reference_setup_create_then_add_replicas() {
    if !redis_available() {
        return;
    }
    let server = ServerProcess::start(6, &["--empty", "--nodes", "6"]);
    let addrs: Vec<String> = (0..6).map(|i| server.addr(i)).collect();
    let create = run_tool(
        "redis-cli",
        &[
            "--cluster",
            "create",
            &addrs[0],
            &addrs[1],
            &addrs[2],
            "--cluster-yes",
        ],
        Duration::from_secs(60),
    );
    let out = text(&create);
    assert!(create.status.success(), "{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    for new in &addrs[3..] {
        let add = run_tool(
            "redis-cli",
            &["--cluster", "add-node", new, &addrs[0], "--cluster-slave"],
            Duration::from_secs(60),
        );
        let out = text(&add);
        assert!(add.status.success(), "{out}");
        assert!(out.contains("[OK] New node added correctly."), "{out}");
    }
    // Every primary ends with exactly one replica, and every node agrees.
    wait_until(Duration::from_secs(20), || {
        let nodes = cli(server.base_port, &["CLUSTER", "NODES"]);
        let masters: Vec<&str> = nodes
            .lines()
            .filter(|l| l.contains("master"))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        masters.len() == 3
            && masters.iter().all(|id| {
                nodes
                    .lines()
                    .filter(|l| l.contains("slave") && l.split(' ').nth(3) == Some(id))
                    .count()
                    == 1
            })
    });
    let check = run_tool(
        "redis-cli",
        &["--cluster", "check", &addrs[0]],
        Duration::from_secs(30),
    );
    let out = text(&check);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert_eq!(out.matches("S: ").count(), 3, "{out}");
}

#[test]
fn python_redis_cluster_client_works_unchanged() {
    if !redis_available() || !python_redis_available() {
        return;
    }
    let server = started_cluster();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/cluster_smoke.py");
    let run = run_tool(
        "python3",
        &[script, "127.0.0.1", &server.base_port.to_string()],
        Duration::from_secs(120),
    );
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(out.contains("python RedisCluster: ok"), "{out}");
}
