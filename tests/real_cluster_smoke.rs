//! The real-cluster test support itself works: 3 primaries + 3 replicas, all slots covered.

mod support;

use support::real_cluster::RealCluster;

#[test]
fn real_cluster_starts_with_all_slots_covered() {
    let Some(cluster) = RealCluster::start(3, 1) else {
        return;
    };
    let info = cluster.nodes[0].cli(&["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    let slot = redcluster::slot::key_slot(b"foo");
    let owner = cluster.primary_index_for_slot(slot);
    assert_eq!(
        cluster.nodes[owner].cli(&["SET", "foo", "bar"]).trim(),
        "OK"
    );
}
