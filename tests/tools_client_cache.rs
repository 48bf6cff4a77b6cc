//! A real client's server-assisted cache, unchanged but for its version gate: Python's
//! redis-py 8 (`RedisCluster(protocol=3, cache=...)`) against a real redis-server 7.0.15
//! cluster node and against the `redcluster-server` binary — a cached read that does not
//! reach the node, another client's write, the invalidation push, the new value
//! (tests/python/client_cache.py).

mod support;

use std::time::Duration;

use support::real_cluster::{cli, redis_available, RealCluster};
use support::server_bin::{python_redis_available, run_tool, ServerProcess};
use support::wait::wait_until;

fn run_script(port: u16) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_cache.py");
    let run = run_tool(
        "python3",
        &[script, "127.0.0.1", &port.to_string()],
        Duration::from_secs(60),
    );
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "port {port}: {out}");
    out
}

#[test]
fn python_client_side_cache_works_against_redis_and_the_bundled_server() {
    if !redis_available() || !python_redis_available() {
        return;
    }
    let real = RealCluster::single().expect("redis-server");
    let out = run_script(real.nodes[0].addr().port());
    assert!(out.contains("python client-side cache: ok"), "{out}");

    let server = ServerProcess::start(3, &["--primaries", "3"]);
    wait_until(Duration::from_secs(20), || {
        server
            .ports()
            .all(|p| cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    });
    let out = run_script(server.base_port);
    assert!(out.contains("python client-side cache: ok"), "{out}");
}
