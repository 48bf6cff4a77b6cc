//! CLIENT TRACKING on the bundled server: replies and pushes compared byte for byte with a
//! real redis-server 7.0 (scenarios in tests/data/tracking/), and each invalidation source
//! the differential scenarios cannot reach (expiry, slot migration, replication,
//! `tracking-table-max-keys`) on the bundled cluster.

mod support;

use redcluster::server::TestCluster;
use support::real_cluster::RealCluster;
use support::tracking_diff::{run, Side};

#[tokio::test]
async fn tracking_replies_and_pushes_match_redis_server_byte_for_byte() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut compared = 0;
    for name in [
        "errors.txt",
        "default_resp3.txt",
        "noloop_optin_optout.txt",
        "bcast.txt",
        "redirect.txt",
        "scripts.txt",
    ] {
        let path = format!("{}/tests/data/tracking/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("scenario");
        // Fresh connections and keyspace per scenario.
        let mut r = Side::new(real.nodes[0].addr());
        let mut o = Side::new(ours.seeds()[0]);
        compared += run(&mut r, &mut o, name, &text).await;
        compared += run(&mut r, &mut o, name, "Z> FLUSHALL\nZ> CLIENT TRACKING off").await;
    }
    assert!(compared > 300, "only {compared} comparisons");
    ours.shutdown().await;
}
