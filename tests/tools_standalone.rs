//! `redcluster-server --standalone --replicas 2` driven by `redis-cli` as an operator would:
//! ROLE on each node, INFO replication, writes replicated, `replicaof no one` and
//! `replicaof HOST PORT` to swap the primary.

mod support;

use std::time::Duration;

use support::real_cluster::{cli, tools_available};
use support::server_bin::ServerProcess;
use support::wait::wait_until;

#[test]
fn redis_cli_role_and_replicaof_against_the_standalone_binary() {
    if !tools_available(&["redis-cli"]) {
        return;
    }
    let server = ServerProcess::start(3, &["--standalone", "--replicas", "2"]);
    let (p, r1, r2) = (server.base_port, server.base_port + 1, server.base_port + 2);
    let role = cli(p, &["role"]);
    let lines: Vec<&str> = role.lines().collect();
    assert_eq!(lines[0], "master", "{role}");
    assert!(
        role.contains(&r1.to_string()) && role.contains(&r2.to_string()),
        "{role}"
    );
    let role = cli(r1, &["role"]);
    let lines: Vec<&str> = role.lines().collect();
    assert_eq!(
        lines[..4],
        ["slave", "127.0.0.1", &p.to_string(), "connected"],
        "{role}"
    );
    assert_eq!(cli(p, &["-n", "4", "set", "k", "v"]).trim(), "OK");
    assert_eq!(cli(p, &["wait", "2", "5000"]).trim(), "2");
    assert_eq!(cli(r2, &["-n", "4", "get", "k"]).trim(), "v");
    assert_eq!(
        cli(r2, &["set", "k", "w"]).trim(),
        "READONLY You can't write against a read only replica."
    );
    // Swap: r1 becomes the primary, r2 and the old primary follow it.
    assert_eq!(cli(r1, &["replicaof", "no", "one"]).trim(), "OK");
    let r1s = r1.to_string();
    assert_eq!(cli(r2, &["replicaof", "127.0.0.1", &r1s]).trim(), "OK");
    assert_eq!(cli(p, &["replicaof", "127.0.0.1", &r1s]).trim(), "OK");
    assert_eq!(cli(r1, &["-n", "4", "set", "k", "new"]).trim(), "OK");
    wait_until(Duration::from_secs(10), || {
        cli(r1, &["info", "replication"]).contains("connected_slaves:2")
            && cli(p, &["-n", "4", "get", "k"]).trim() == "new"
            && cli(r2, &["-n", "4", "get", "k"]).trim() == "new"
    });
    let info = cli(p, &["info", "replication"]);
    assert!(
        info.contains("role:slave") && info.contains(&format!("master_port:{r1}")),
        "{info}"
    );
    assert_eq!(
        cli(p, &["cluster", "info"]).trim(),
        "ERR This instance has cluster support disabled"
    );
}
