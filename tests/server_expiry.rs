//! Active expiry at scale: a burst of short-lived keys is reclaimed within a few cron
//! periods, as Redis' adaptive `activeExpireCycle` does, instead of 200 keys per 100 ms.

mod support;

use std::time::Duration;

use redcluster::server::TestCluster;
use support::raw::{node_cmd, node_cmds, text};
use support::wait::eventually_within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_expiring_keys_is_reclaimed_quickly() {
    let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
    let addr = cluster.nodes()[0].addr.to_string();
    const N: usize = 50_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(5_000) {
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .map(|i| {
                vec![
                    "SET".into(),
                    format!("k{i}"),
                    "v".into(),
                    "PX".into(),
                    "200".into(),
                ]
            })
            .collect();
        node_cmds(&addr, &cmds).await;
    }
    // Nobody reads them: only active expiry can reclaim them. At the old fixed rate (200
    // keys per 100 ms) that would take 25 s.
    eventually_within(
        Duration::from_secs(10),
        "every expired key reclaimed",
        || async { !text(&node_cmd(&addr, &["INFO", "keyspace"]).await).contains("db0:") },
    )
    .await;
    let stats = text(&node_cmd(&addr, &["INFO", "stats"]).await);
    assert!(stats.contains(&format!("expired_keys:{N}\r\n")), "{stats}");
    cluster.shutdown().await;
}
