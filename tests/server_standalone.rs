//! The bundled server with cluster mode off (`TestReplicaSet`): no slot routing, databases
//! 0-15 (SELECT, MOVE, SWAPDB, FLUSHDB/FLUSHALL, INFO keyspace), replication of every
//! database, REPLICAOF/ROLE/INFO replication, READONLY and MASTERDOWN refusals.

mod support;

use redcluster::server::TestReplicaSet;
use support::raw::{parts, text, Client};
use support::wait::eventually;

fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim_end().to_string())
}

#[tokio::test]
async fn cluster_mode_off_serves_every_key_and_refuses_cluster_commands() {
    let set = TestReplicaSet::builder().replicas(0).start().await.unwrap();
    let mut c = Client::connect(set.primary()).await;
    // Keys of different slots together: no CROSSSLOT, no MOVED.
    assert_eq!(c.text(&["MSET", "a", "1", "b", "2", "c", "3"]).await, "OK");
    assert_eq!(
        parts(&c.cmd(&["MGET", "a", "b", "c"]).await),
        ["1", "2", "3"]
    );
    for cmd in [
        &["CLUSTER", "INFO"][..],
        &["CLUSTER", "SLOTS"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
    ] {
        assert_eq!(
            c.text(cmd).await,
            "ERR This instance has cluster support disabled",
            "{cmd:?}"
        );
    }
    let info = c.text(&["INFO", "cluster"]).await;
    assert_eq!(field(&info, "cluster_enabled").as_deref(), Some("0"));
    let info = c.text(&["INFO", "server"]).await;
    assert_eq!(field(&info, "redis_mode").as_deref(), Some("standalone"));
    let hello = parts(&c.cmd(&["HELLO", "2"]).await);
    let mode = hello.iter().position(|f| f == "mode").unwrap();
    assert_eq!(hello[mode + 1], "standalone");
}

#[tokio::test]
async fn databases_select_move_swapdb_flush_and_keyspace() {
    let set = TestReplicaSet::builder().replicas(0).start().await.unwrap();
    let mut c = Client::connect(set.primary()).await;
    assert_eq!(
        c.text(&["SELECT", "16"]).await,
        "ERR DB index is out of range"
    );
    assert_eq!(
        c.text(&["SELECT", "-1"]).await,
        "ERR DB index is out of range"
    );
    assert_eq!(
        c.text(&["SELECT", "x"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c.text(&["SET", "k", "zero"]).await, "OK");
    assert_eq!(c.text(&["SELECT", "3"]).await, "OK");
    assert_eq!(c.text(&["GET", "k"]).await, "(nil)");
    assert_eq!(c.text(&["SET", "k", "three"]).await, "OK");
    assert_eq!(c.text(&["SET", "only3", "x", "EX", "100"]).await, "OK");
    assert_eq!(c.text(&["DBSIZE"]).await, "2");
    // Another connection stays in db 0.
    let mut other = Client::connect(set.primary()).await;
    assert_eq!(other.text(&["GET", "k"]).await, "zero");
    assert_eq!(other.text(&["DBSIZE"]).await, "1");
    let info = other.text(&["INFO", "keyspace"]).await;
    assert!(
        info.contains("db0:keys=1,expires=0,avg_ttl=0\r\n"),
        "{info}"
    );
    assert!(
        info.contains("db3:keys=2,expires=1,avg_ttl=0\r\n"),
        "{info}"
    );
    let me = c.text(&["CLIENT", "INFO"]).await;
    assert!(me.contains(" db=3 "), "{me}");
    // MOVE: same db, out of range, missing, present at the target, moved with its TTL.
    assert_eq!(
        c.text(&["MOVE", "k", "3"]).await,
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        c.text(&["MOVE", "k", "16"]).await,
        "ERR DB index is out of range"
    );
    assert_eq!(c.text(&["MOVE", "nope", "0"]).await, "0");
    assert_eq!(c.text(&["MOVE", "k", "0"]).await, "0");
    assert_eq!(c.text(&["MOVE", "only3", "0"]).await, "1");
    assert_eq!(other.text(&["GET", "only3"]).await, "x");
    let ttl: i64 = other.text(&["TTL", "only3"]).await.parse().unwrap();
    assert!((1..=100).contains(&ttl), "{ttl}");
    // SWAPDB: the two databases trade contents, for every connection.
    assert_eq!(
        c.text(&["SWAPDB", "a", "1"]).await,
        "ERR invalid first DB index"
    );
    assert_eq!(
        c.text(&["SWAPDB", "0", "b"]).await,
        "ERR invalid second DB index"
    );
    assert_eq!(
        c.text(&["SWAPDB", "0", "16"]).await,
        "ERR DB index is out of range"
    );
    assert_eq!(c.text(&["SWAPDB", "0", "3"]).await, "OK");
    assert_eq!(other.text(&["GET", "k"]).await, "three");
    assert_eq!(c.text(&["GET", "k"]).await, "zero");
    assert_eq!(c.text(&["GET", "only3"]).await, "x");
    // FLUSHDB empties one database, FLUSHALL all of them.
    assert_eq!(c.text(&["FLUSHDB"]).await, "OK");
    assert_eq!(c.text(&["DBSIZE"]).await, "0");
    assert_eq!(other.text(&["DBSIZE"]).await, "1");
    assert_eq!(c.text(&["SET", "again", "1"]).await, "OK");
    assert_eq!(other.text(&["FLUSHALL"]).await, "OK");
    assert_eq!(c.text(&["DBSIZE"]).await, "0");
    assert_eq!(other.text(&["DBSIZE"]).await, "0");
}

#[tokio::test]
async fn writes_in_several_databases_replicate_and_a_new_replica_gets_them_all() {
    let set = TestReplicaSet::builder().replicas(1).start().await.unwrap();
    let mut p = Client::connect(set.primary()).await;
    for db in ["0", "5", "15"] {
        assert_eq!(p.text(&["SELECT", db]).await, "OK");
        assert_eq!(p.text(&["SET", "k", &format!("in{db}")]).await, "OK");
        assert_eq!(p.text(&["RPUSH", "l", db, "x"]).await, "2");
    }
    assert_eq!(p.text(&["SELECT", "5"]).await, "OK");
    assert_eq!(p.text(&["MOVE", "l", "7"]).await, "1");
    assert_eq!(p.text(&["WAIT", "1", "5000"]).await, "1");
    let replica = set.replicas()[0];
    let mut r = Client::connect(replica).await;
    for (db, want) in [("0", "in0"), ("5", "in5"), ("15", "in15")] {
        assert_eq!(r.text(&["SELECT", db]).await, "OK");
        assert_eq!(r.text(&["GET", "k"]).await, want, "db {db}");
    }
    assert_eq!(r.text(&["SELECT", "7"]).await, "OK");
    assert_eq!(parts(&r.cmd(&["LRANGE", "l", "0", "-1"]).await), ["5", "x"]);
    // A replica attached now loads every database from the snapshot.
    let late = TestReplicaSet::builder().replicas(0).start().await.unwrap();
    let mut l = Client::connect(late.primary()).await;
    let (ip, port) = (
        set.primary().ip().to_string(),
        set.primary().port().to_string(),
    );
    assert_eq!(l.text(&["REPLICAOF", &ip, &port]).await, "OK");
    eventually("the late replica synced", || async {
        let mut l = Client::connect(late.primary()).await;
        field(
            &l.text(&["INFO", "replication"]).await,
            "master_link_status",
        )
        .as_deref()
            == Some("up")
    })
    .await;
    assert_eq!(l.text(&["SELECT", "15"]).await, "OK");
    assert_eq!(l.text(&["GET", "k"]).await, "in15");
    // The stream after the snapshot names its database again.
    assert_eq!(p.text(&["SELECT", "9"]).await, "OK");
    assert_eq!(p.text(&["SET", "after", "9"]).await, "OK");
    assert_eq!(l.text(&["SELECT", "9"]).await, "OK");
    eventually("the write in db 9 reached the late replica", || async {
        let mut l = Client::connect(late.primary()).await;
        l.text(&["SELECT", "9"]).await;
        l.text(&["GET", "after"]).await == "9"
    })
    .await;
    let mut l0 = Client::connect(late.primary()).await;
    assert_eq!(l0.text(&["GET", "after"]).await, "(nil)");
}

#[tokio::test]
async fn replicas_refuse_writes_and_role_reports_both_sides() {
    let set = TestReplicaSet::builder().replicas(2).start().await.unwrap();
    let primary = set.primary();
    let replicas = set.replicas();
    assert_eq!(replicas.len(), 2);
    let mut p = Client::connect(primary).await;
    assert_eq!(p.text(&["SET", "k", "v"]).await, "OK");
    assert_eq!(p.text(&["WAIT", "2", "5000"]).await, "2");
    let mut r = Client::connect(replicas[0]).await;
    assert_eq!(r.text(&["GET", "k"]).await, "v");
    for cmd in [
        &["SET", "k", "w"][..],
        &["DEL", "k"],
        &["MOVE", "k", "1"],
        &["SWAPDB", "0", "1"],
    ] {
        assert_eq!(
            r.text(cmd).await,
            "READONLY You can't write against a read only replica.",
            "{cmd:?}"
        );
    }
    let role = r.cmd(&["ROLE"]).await;
    let role = parts(&role);
    assert_eq!(
        role[..4],
        [
            "slave",
            "127.0.0.1",
            &primary.port().to_string(),
            "connected"
        ]
    );
    let role = p.cmd(&["ROLE"]).await;
    let redcluster::resp::Value::Array(items) = &role else {
        panic!("{role:?}")
    };
    assert_eq!(text(&items[0]), "master");
    let redcluster::resp::Value::Array(listed) = &items[2] else {
        panic!("{role:?}")
    };
    let mut ports: Vec<String> = listed.iter().map(|r| parts(r)[1].clone()).collect();
    ports.sort();
    let mut want: Vec<String> = replicas.iter().map(|a| a.port().to_string()).collect();
    want.sort();
    assert_eq!(ports, want);
    assert_eq!(
        r.text(&["CONFIG", "SET", "replica-priority", "7"]).await,
        "OK"
    );
    let info = r.text(&["INFO", "replication"]).await;
    assert_eq!(field(&info, "slave_priority").as_deref(), Some("7"));
    assert_eq!(field(&info, "role").as_deref(), Some("slave"));
    assert_eq!(field(&info, "master_link_status").as_deref(), Some("up"));
    assert_eq!(field(&info, "slave_read_only").as_deref(), Some("1"));
    let info = p.text(&["INFO", "replication"]).await;
    assert_eq!(field(&info, "connected_slaves").as_deref(), Some("2"));
    assert!(
        field(&info, "slave1").is_some_and(|l| l.contains("state=online")),
        "{info}"
    );
}

#[tokio::test]
async fn replicaof_no_one_promotes_and_replicaof_repoints() {
    let set = TestReplicaSet::builder().replicas(2).start().await.unwrap();
    let old = set.primary();
    let (a, b) = (set.replicas()[0], set.replicas()[1]);
    let mut p = Client::connect(old).await;
    assert_eq!(p.text(&["SET", "k", "1"]).await, "OK");
    assert_eq!(p.text(&["WAIT", "2", "5000"]).await, "2");
    let mut ca = Client::connect(a).await;
    assert_eq!(ca.text(&["REPLICAOF", "NO", "ONE"]).await, "OK");
    assert_eq!(ca.text(&["REPLICAOF", "NO", "ONE"]).await, "OK");
    assert_eq!(ca.text(&["SET", "k", "2"]).await, "OK");
    let info = ca.text(&["INFO", "replication"]).await;
    assert_eq!(field(&info, "role").as_deref(), Some("master"));
    assert_ne!(
        field(&info, "master_replid2").as_deref(),
        Some("0000000000000000000000000000000000000000"),
        "{info}"
    );
    // b and the old primary follow the new one.
    let (ip, port) = (a.ip().to_string(), a.port().to_string());
    let mut cb = Client::connect(b).await;
    assert_eq!(cb.text(&["REPLICAOF", &ip, &port]).await, "OK");
    assert_eq!(
        cb.text(&["REPLICAOF", &ip, &port]).await,
        "OK Already connected to specified master"
    );
    assert_eq!(
        cb.text(&["REPLICAOF", &ip, "x"]).await,
        "ERR Invalid master port"
    );
    assert_eq!(p.text(&["REPLICAOF", &ip, &port]).await, "OK");
    assert_eq!(ca.text(&["WAIT", "2", "5000"]).await, "2");
    assert_eq!(cb.text(&["GET", "k"]).await, "2");
    assert_eq!(p.text(&["GET", "k"]).await, "2");
    assert_eq!(set.primary(), a);
    assert_eq!(
        p.text(&["SET", "k", "3"]).await,
        "READONLY You can't write against a read only replica."
    );
}

#[tokio::test]
async fn masterdown_when_the_link_is_down_and_stale_data_is_off() {
    let set = TestReplicaSet::builder()
        .replicas(1)
        .config("replica-serve-stale-data", "no")
        .start()
        .await
        .unwrap();
    let replica = set.replicas()[0];
    let mut r = Client::connect(replica).await;
    assert_eq!(r.text(&["GET", "k"]).await, "(nil)");
    set.kill_node(0).await;
    eventually("the replica saw its link drop", || async {
        let mut r = Client::connect(replica).await;
        r.text(&["GET", "k"]).await
            == "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
    })
    .await;
    let info = r.text(&["INFO", "replication"]).await;
    assert_eq!(field(&info, "master_link_status").as_deref(), Some("down"));
    assert!(
        field(&info, "master_link_down_since_seconds").is_some(),
        "{info}"
    );
    set.restart_node(0, true).await.unwrap();
    set.wait_synced(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.text(&["GET", "k"]).await, "(nil)");
}

#[tokio::test]
async fn failover_hands_over_to_a_caught_up_replica() {
    let set = TestReplicaSet::builder().replicas(2).start().await.unwrap();
    let old = set.primary();
    let target = set.replicas()[0];
    let mut p = Client::connect(old).await;
    assert_eq!(
        p.text(&["FAILOVER", "ABORT"]).await,
        "ERR No failover in progress."
    );
    assert_eq!(
        p.text(&["FAILOVER", "TO", "127.0.0.1", "1"]).await,
        "ERR FAILOVER target HOST and PORT is not a replica."
    );
    assert_eq!(
        p.text(&["FAILOVER", "FORCE"]).await,
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    assert_eq!(
        p.text(&["FAILOVER", "TIMEOUT", "0"]).await,
        "ERR FAILOVER timeout must be greater than 0"
    );
    let mut r = Client::connect(target).await;
    assert_eq!(
        r.text(&["FAILOVER"]).await,
        "ERR FAILOVER is not valid when server is a replica."
    );
    for i in 0..200 {
        assert_eq!(p.text(&["SET", &format!("k{i}"), "v"]).await, "OK");
    }
    let port = target.port().to_string();
    assert_eq!(p.text(&["FAILOVER", "TO", "127.0.0.1", &port]).await, "OK");
    eventually(
        "the target was promoted and the old primary follows it",
        || async {
            let mut r = Client::connect(target).await;
            let mut p = Client::connect(old).await;
            parts(&r.cmd(&["ROLE"]).await)[0] == "master"
                && parts(&p.cmd(&["ROLE"]).await)[..3] == ["slave", "127.0.0.1", port.as_str()]
        },
    )
    .await;
    let info = r.text(&["INFO", "replication"]).await;
    assert_eq!(
        field(&info, "master_failover_state").as_deref(),
        Some("no-failover")
    );
    assert_eq!(r.text(&["DBSIZE"]).await, "200");
    // Writes now go to the new primary and reach the old one.
    assert_eq!(r.text(&["SET", "after", "1"]).await, "OK");
    assert_eq!(
        p.text(&["SET", "k", "v"]).await,
        "READONLY You can't write against a read only replica."
    );
    eventually("the old primary has the new write", || async {
        let mut p = Client::connect(old).await;
        p.text(&["GET", "after"]).await == "1"
    })
    .await;
}
