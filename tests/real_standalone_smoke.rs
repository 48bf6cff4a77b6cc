//! The real standalone/Sentinel test support itself works: a primary with two replicas and
//! three Sentinels come up healthy, a killed primary is replaced by a replica the Sentinels
//! promote, and the old primary returns as a replica of the new one.

mod support;

use support::real_standalone::{RealReplicaSet, MASTER_NAME};

#[test]
fn real_replica_set_fails_over_under_sentinels() {
    let Some(mut set) = RealReplicaSet::with_sentinels(2, 3) else {
        return;
    };
    assert_eq!(set.primary_index(), Some(0));
    assert_eq!(set.nodes[0].cli(&["SET", "k", "v"]).trim(), "OK");
    set.wait_replicas_synced();
    for replica in &set.nodes[1..] {
        assert_eq!(replica.cli(&["GET", "k"]).trim(), "v");
        assert!(replica.cli(&["SET", "k", "w"]).contains("READONLY"));
    }
    let old = set.nodes[0].port;
    assert_eq!(set.sentinel_primary_port(), Some(old));

    set.nodes[0].kill();
    let (new, took) = set.wait_failover_from(old);
    assert_ne!(new, 0);
    eprintln!("real Sentinel failover: a new primary named {took:?} after the kill");
    assert_eq!(set.nodes[new].cli(&["GET", "k"]).trim(), "v");

    set.nodes[0].restart();
    set.wait_healthy();
    assert_eq!(set.primary_index(), Some(new));
    assert_eq!(
        set.nodes[0].info_field("replication", "master_port"),
        Some(set.nodes[new].port.to_string())
    );
    let masters = set.sentinels[0].cli(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME]);
    assert!(
        masters.contains(&set.nodes[new].port.to_string()),
        "{masters}"
    );
}
