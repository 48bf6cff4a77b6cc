//! Three bundled Sentinels fail over a bundled `TestReplicaSet`: kill the primary ->
//! `+switch-master` (down-after + election), the new primary's ROLE is master, the other
//! replica follows it, and the old primary, restarted, is converted into a replica.
#![cfg(feature = "server")]

mod support;

use std::time::{Duration, Instant};

use redcluster::server::{TestReplicaSet, TestSentinels};
use support::raw::{node_cmd, parts, text};
use support::sentinel::{any_event, wait_sentinel_ready, Events, MASTER_NAME};
use support::wait::eventually_within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bundled_sentinels_fail_over_a_test_replica_set() {
    let set = TestReplicaSet::builder().replicas(2).start().await.unwrap();
    let old = set.primary();
    let sentinels = TestSentinels::builder()
        .sentinels(3)
        .quorum(2)
        .failover_timeout(Duration::from_secs(5))
        .monitor(MASTER_NAME, &set)
        .start()
        .await
        .unwrap();
    for i in 0..3 {
        wait_sentinel_ready(sentinels.addr(i), 2, 2).await;
    }
    let mut feeds = Vec::new();
    for i in 0..3 {
        feeds.push(Events::subscribe(sentinels.addr(i)).await);
    }
    let old_index = set.index_of(old).unwrap();
    let killed = Instant::now();
    set.kill_node(old_index).await;
    let switch = feeds[0]
        .until("+switch-master", Duration::from_secs(30))
        .await;
    println!(
        "bundled Sentinels, TestReplicaSet: primary killed -> +switch-master in {:?}",
        killed.elapsed()
    );
    println!("events: {:#?}", feeds[0].seen);
    let words: Vec<&str> = switch.split(' ').collect();
    assert_eq!(
        words[..3],
        [MASTER_NAME, "127.0.0.1", &old.port().to_string()[..]]
    );
    let new: std::net::SocketAddr = format!("{}:{}", words[3], words[4]).parse().unwrap();
    assert_ne!(new, old);
    let role = parts(&node_cmd(&new.to_string(), &["ROLE"]).await);
    assert_eq!(role[0], "master", "{role:?}");
    for i in 0..3 {
        let s = sentinels.addr(i).to_string();
        eventually_within(
            Duration::from_secs(20),
            "every Sentinel names the new primary",
            || {
                let s = s.clone();
                async move {
                    let p = parts(
                        &node_cmd(&s, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).await,
                    );
                    p.get(1).map(String::as_str) == Some(&new.port().to_string()[..])
                }
            },
        )
        .await;
    }
    let other = set
        .replicas()
        .into_iter()
        .chain([old])
        .find(|a| *a != new && *a != old);
    if let Some(other) = other {
        eventually_within(
            Duration::from_secs(20),
            "the other replica follows the new primary",
            || async move {
                let info = text(&node_cmd(&other.to_string(), &["INFO", "replication"]).await);
                info.contains(&format!("master_port:{}", new.port()))
                    && info.contains("master_link_status:up")
            },
        )
        .await;
    }
    // The old primary returns and is converted into a replica of the new one.
    set.restart_node(old_index, true).await.unwrap();
    let back = Instant::now();
    // Whichever Sentinel sees it first converts it.
    any_event(&mut feeds, "+convert-to-slave", Duration::from_secs(40)).await;
    eventually_within(
        Duration::from_secs(20),
        "the old primary replicates the new one",
        || async move {
            let info = text(&node_cmd(&old.to_string(), &["INFO", "replication"]).await);
            info.contains("role:slave") && info.contains(&format!("master_port:{}", new.port()))
        },
    )
    .await;
    println!(
        "old primary restarted -> replica of the new one in {:?}",
        back.elapsed()
    );
}
