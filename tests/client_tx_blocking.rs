//! Transactions (MULTI/EXEC with WATCH on a connection of their own) and blocking commands
//! (on dedicated connections, never stalling multiplexed traffic) on a real cluster.

mod support;

use std::time::Duration;

use redcluster::{Client, ErrorKind};
use support::real_cluster::RealCluster;
use support::wait::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_watch_conflicts_and_cross_slot_refusal() {
    let Some(c) = RealCluster::start(3, 0) else {
        return;
    };
    let client = Client::builder(c.seeds()).build().await.unwrap();

    // A plain transaction: replies of every queued command, in order.
    let mut tx = client.transaction();
    tx.cmd("SET").arg("{acct}:bal").arg(100);
    tx.cmd("INCRBY").arg("{acct}:bal").arg(5);
    tx.cmd("RPUSH").arg("{acct}:log").arg("+5");
    let r: Option<((), i64, i64)> = tx.exec().await.unwrap();
    assert_eq!(r, Some(((), 105, 1)));

    // WATCH, then another client changes the key: EXEC applies nothing -> Ok(None).
    let mut tx = client.transaction();
    tx.watch(["{acct}:bal"]).await.unwrap();
    let bal: i64 = tx.now("GET").arg("{acct}:bal").query().await.unwrap();
    assert_eq!(bal, 105);
    client.incr("{acct}:bal").await.unwrap(); // multiplexed traffic, another connection
    tx.cmd("SET").arg("{acct}:bal").arg(bal - 10);
    let r: Option<Vec<redcluster::Value>> = tx.exec().await.unwrap();
    assert_eq!(r, None, "the watched key changed");
    let bal: i64 = client.get("{acct}:bal").await.unwrap();
    assert_eq!(bal, 106, "nothing was applied");

    // WATCH without a conflict applies.
    let mut tx = client.transaction();
    tx.watch(["{acct}:bal"]).await.unwrap();
    tx.cmd("DECRBY").arg("{acct}:bal").arg(6);
    let r: Option<(i64,)> = tx.exec().await.unwrap();
    assert_eq!(r, Some((100,)));

    // Keys in two slots: refused before anything is sent.
    let mut tx = client.transaction();
    tx.cmd("SET").arg("{a}x").arg(1);
    tx.cmd("SET").arg("{b}x").arg(1);
    let e = tx.exec::<()>().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CrossSlot);
    assert!(!client.exists("{a}x").await.unwrap());
    let mut tx = client.transaction();
    tx.watch(["{a}x"]).await.unwrap();
    tx.cmd("SET").arg("{b}x").arg(1);
    assert_eq!(
        tx.exec::<()>().await.unwrap_err().kind(),
        ErrorKind::CrossSlot
    );

    // A command the server refuses to queue aborts the whole transaction (EXECABORT).
    let mut tx = client.transaction();
    tx.cmd("SET").arg("{acct}:y").arg(1);
    tx.cmd("INCR"); // wrong arity
    let e = tx.exec::<()>().await.unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
    assert!(!client.exists("{acct}:y").await.unwrap(), "nothing applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_do_not_stall_other_requests() {
    let Some(c) = RealCluster::start(3, 0) else {
        return;
    };
    let client = Client::builder(c.seeds())
        .request_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    client.set("{q}other", "v").await.unwrap();
    // BLPOP for 3 s (past request_timeout: the deadline adds the command's own timeout) on
    // the same node as the GETs below.
    let blocked = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .cmd("BLPOP")
                .arg("{q}list")
                .arg(3)
                .query::<Option<(String, String)>>()
                .await
        })
    };
    let owner = c.primary_index_for_slot(redcluster::slot::key_slot(b"{q}list"));
    wait_until(Duration::from_secs(10), || {
        c.nodes[owner]
            .cli(&["INFO", "clients"])
            .lines()
            .any(|l| l.trim() == "blocked_clients:1")
    });
    for _ in 0..50 {
        let v: String = client.get("{q}other").await.unwrap();
        assert_eq!(v, "v");
    }
    assert!(!blocked.is_finished(), "BLPOP is still waiting");
    client.rpush("{q}list", "item").await.unwrap();
    let got = blocked.await.unwrap().unwrap();
    assert_eq!(got, Some(("{q}list".to_string(), "item".to_string())));

    // A timeout longer than request_timeout that passes with no data: nil, not a client
    // timeout.
    let r: Option<(String, String)> = client
        .cmd("BRPOP")
        .arg("{q}empty")
        .arg(2.5)
        .query()
        .await
        .unwrap();
    assert_eq!(r, None);
    // Timeout 0 with data arriving later.
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .cmd("BLMOVE")
                .arg("{q}src")
                .arg("{q}dst")
                .arg("LEFT")
                .arg("RIGHT")
                .arg(0)
                .query::<String>()
                .await
        })
    };
    // The sleep is what is tested: the waiter must outlast request_timeout (2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !waiter.is_finished(),
        "timeout 0 waits past request_timeout"
    );
    client.rpush("{q}src", "late").await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), "late");
}
