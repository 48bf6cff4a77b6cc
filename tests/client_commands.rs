//! The client against a real 3+3 redis-server cluster shared by the tests of this binary
//! (each test uses its own keys): command families, routing, seeds, AUTH, cancellation.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use redcluster::{Client, ErrorKind, ReadFrom, Value};
use support::real_cluster::{free_port, RealCluster};

fn cluster() -> Option<&'static RealCluster> {
    static CLUSTER: OnceLock<Option<RealCluster>> = OnceLock::new();
    CLUSTER.get_or_init(|| RealCluster::start(3, 1)).as_ref()
}

async fn client(c: &RealCluster) -> Client {
    Client::builder(c.seeds())
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("client connects")
}

#[tokio::test]
async fn every_command_family_round_trips() {
    let Some(c) = cluster() else { return };
    for resp3 in [false, true] {
        let client = Client::builder(c.seeds())
            .resp3(resp3)
            .client_name("families")
            .build()
            .await
            .unwrap();
        let p = if resp3 { "r3" } else { "r2" };
        // strings
        client.set(format!("{p}:s"), "v1").await.unwrap();
        let v: Option<String> = client.get(format!("{p}:s")).await.unwrap();
        assert_eq!(v.as_deref(), Some("v1"));
        let missing: Option<String> = client.get(format!("{p}:nope")).await.unwrap();
        assert_eq!(missing, None);
        // The reply type alone in the turbofish.
        let v = client
            .get::<Option<String>>(format!("{p}:s"))
            .await
            .unwrap();
        assert_eq!(v.as_deref(), Some("v1"));
        client
            .set(format!("{p}:bin"), vec![0u8, 255, 13, 10])
            .await
            .unwrap();
        let b: Vec<u8> = client.get(format!("{p}:bin")).await.unwrap();
        assert_eq!(b, vec![0u8, 255, 13, 10]);
        assert_eq!(client.incr(format!("{p}:n")).await.unwrap(), 1);
        assert_eq!(client.incr_by(format!("{p}:n"), 41).await.unwrap(), 42);
        assert_eq!(client.decr(format!("{p}:n")).await.unwrap(), 41);
        let n: i64 = client
            .cmd("INCRBY")
            .arg(format!("{p}:n"))
            .arg(9)
            .query()
            .await
            .unwrap();
        assert_eq!(n, 50);
        let f: f64 = client
            .cmd("INCRBYFLOAT")
            .arg(format!("{p}:f"))
            .arg(1.5)
            .query()
            .await
            .unwrap();
        assert_eq!(f, 1.5);
        assert!(client.set_nx(format!("{p}:nx"), 1).await.unwrap());
        assert!(!client.set_nx(format!("{p}:nx"), 2).await.unwrap());
        // expiry
        client
            .set_ex(format!("{p}:ex"), "x", Duration::from_secs(100))
            .await
            .unwrap();
        let ttl = client.ttl(format!("{p}:ex")).await.unwrap();
        assert!((1..=100).contains(&ttl), "{ttl}");
        assert!(client
            .expire(format!("{p}:s"), Duration::from_secs(50))
            .await
            .unwrap());
        // Durations that are not whole seconds go as PX / PEXPIRE milliseconds.
        client
            .set_ex(format!("{p}:px"), "x", Duration::from_millis(1500))
            .await
            .unwrap();
        let pttl: i64 = client
            .cmd("PTTL")
            .arg(format!("{p}:px"))
            .query()
            .await
            .unwrap();
        assert!((1..=1500).contains(&pttl), "{pttl}");
        assert!(client
            .expire(format!("{p}:px"), Duration::from_millis(99_500))
            .await
            .unwrap());
        let pttl: i64 = client
            .cmd("PTTL")
            .arg(format!("{p}:px"))
            .query()
            .await
            .unwrap();
        assert!((1501..=99_500).contains(&pttl), "{pttl}");
        assert_eq!(client.ttl(format!("{p}:nope")).await.unwrap(), -2);
        assert!(client.exists(format!("{p}:s")).await.unwrap());
        assert_eq!(client.del(format!("{p}:s")).await.unwrap(), 1);
        assert!(!client.exists(format!("{p}:s")).await.unwrap());
        // hashes
        assert_eq!(client.hset(format!("{p}:h"), "a", 1).await.unwrap(), 1);
        assert_eq!(client.hset(format!("{p}:h"), "b", "two").await.unwrap(), 1);
        let a: i64 = client.hget(format!("{p}:h"), "a").await.unwrap();
        assert_eq!(a, 1);
        let all: HashMap<String, String> = client.hgetall(format!("{p}:h")).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["b"], "two");
        assert_eq!(client.hdel(format!("{p}:h"), "a").await.unwrap(), 1);
        // lists
        client.rpush(format!("{p}:l"), "b").await.unwrap();
        client.lpush(format!("{p}:l"), "a").await.unwrap();
        assert_eq!(client.rpush(format!("{p}:l"), "c").await.unwrap(), 3);
        let l: Vec<String> = client.lrange(format!("{p}:l"), 0, -1).await.unwrap();
        assert_eq!(l, ["a", "b", "c"]);
        let first: Option<String> = client.lpop(format!("{p}:l")).await.unwrap();
        assert_eq!(first.as_deref(), Some("a"));
        assert_eq!(client.llen(format!("{p}:l")).await.unwrap(), 2);
        // sets
        assert_eq!(client.sadd(format!("{p}:set"), "x").await.unwrap(), 1);
        assert_eq!(client.sadd(format!("{p}:set"), "x").await.unwrap(), 0);
        client.sadd(format!("{p}:set"), "y").await.unwrap();
        let s: HashSet<String> = client.smembers(format!("{p}:set")).await.unwrap();
        assert_eq!(s, HashSet::from(["x".to_string(), "y".to_string()]));
        assert!(client.sismember(format!("{p}:set"), "y").await.unwrap());
        assert_eq!(client.srem(format!("{p}:set"), "y").await.unwrap(), 1);
        // sorted sets
        client.zadd(format!("{p}:z"), 2.0, "two").await.unwrap();
        client.zadd(format!("{p}:z"), 1.0, "one").await.unwrap();
        let z: Vec<String> = client.zrange(format!("{p}:z"), 0, -1).await.unwrap();
        assert_eq!(z, ["one", "two"]);
        assert_eq!(
            client.zscore(format!("{p}:z"), "two").await.unwrap(),
            Some(2.0)
        );
        let with: Vec<(String, f64)> = client
            .cmd("ZRANGE")
            .arg(format!("{p}:z"))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query()
            .await
            .map_or_else(
                |_| Vec::new(),
                |v: Value| match v {
                    Value::Array(items) if items.iter().all(|i| matches!(i, Value::Array(_))) => {
                        redcluster::FromValue::from_value(Value::Array(items)).unwrap()
                    }
                    Value::Array(items) => items
                        .chunks(2)
                        .map(|c| {
                            (
                                redcluster::FromValue::from_value(c[0].clone()).unwrap(),
                                redcluster::FromValue::from_value(c[1].clone()).unwrap(),
                            )
                        })
                        .collect(),
                    other => panic!("{other:?}"),
                },
            );
        assert_eq!(
            with,
            vec![("one".to_string(), 1.0), ("two".to_string(), 2.0)]
        );
        // keyless and server errors
        assert_eq!(client.ping().await.unwrap(), "PONG");
        client.set(format!("{p}:str"), "x").await.unwrap();
        let e = client.lpush(format!("{p}:str"), "y").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.code(), Some("WRONGTYPE"));
        let e = client
            .cmd("NOSUCHCOMMAND")
            .arg("x")
            .query::<Value>()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ERR"));
        let e = client.get::<i64>(format!("{p}:str")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        // multi-key in one slot works; across slots is refused before sending
        let v: Vec<Option<String>> = client
            .cmd("MGET")
            .arg(format!("{{{p}}}a"))
            .arg(format!("{{{p}}}b"))
            .query()
            .await
            .unwrap();
        assert_eq!(v, vec![None, None]);
        // Across slots: MGET is split and merged, SUNIONSTORE (atomic) is refused.
        let v: Vec<Option<String>> = client.cmd("MGET").arg("a").arg("b").query().await.unwrap();
        assert_eq!(v, vec![None, None]);
        let e = client
            .cmd("SUNIONSTORE")
            .arg("a")
            .arg("b")
            .query::<Value>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CrossSlot);
    }
}

#[tokio::test]
async fn keys_across_all_slots_land_on_their_owners() {
    let Some(c) = cluster() else { return };
    let client = client(c).await;
    let topo = client.topology();
    assert_eq!(topo.covered_slots(), 16384);
    assert_eq!(topo.shards().len(), 3);
    assert!(topo.shards().iter().all(|s| s.replicas.len() == 1));
    assert!(topo.epoch() > 0);
    // 400 keys spread over the slot space, written concurrently.
    let keys: Vec<String> = (0..400).map(|i| format!("spread:{i}")).collect();
    let writes = keys.iter().map(|k| client.set(k.as_str(), k.as_str()));
    for r in futures::future::join_all(writes).await {
        r.unwrap();
    }
    let mut owners = HashSet::new();
    for k in keys.iter().step_by(20) {
        let slot = redcluster::slot::key_slot(k.as_bytes());
        let kslot: u16 = c.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", k])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(slot, kslot);
        let owner = c.primary_index_for_slot(slot);
        owners.insert(owner);
        assert_eq!(
            topo.primary_for_slot(slot),
            Some(format!("127.0.0.1:{}", c.nodes[owner].port).as_str())
        );
        // Asked directly (no redirect following), the owner has the key.
        assert_eq!(c.nodes[owner].cli(&["GET", k]).trim(), k.as_str());
    }
    assert_eq!(owners.len(), 3, "keys reached every primary");
    let reads = keys.iter().map(|k| client.get::<String>(k.as_str()));
    for (k, r) in keys.iter().zip(futures::future::join_all(reads).await) {
        assert_eq!(&r.unwrap(), k);
    }
    assert_eq!(
        client.stats().moved,
        0,
        "a fresh topology needs no redirect"
    );
}

#[tokio::test]
async fn pipelines_span_nodes_and_keep_order() {
    let Some(c) = cluster() else { return };
    let client = client(c).await;
    let mut p = client.pipeline();
    for i in 0..50 {
        p.cmd("SET").arg(format!("pipe:{i}")).arg(i);
    }
    p.cmd("GET").arg("pipe:7").cmd("INCR").arg("pipe:8");
    let replies: Vec<Value> = p.query().await.unwrap();
    assert_eq!(replies.len(), 52);
    assert_eq!(replies[50], Value::bulk("7"));
    assert_eq!(replies[51], Value::Integer(9));
    let mut p = client.pipeline();
    p.cmd("SET").arg("pipe:a").arg(1).cmd("GET").arg("pipe:b");
    let ((), b): ((), Option<i64>) = p.query().await.unwrap();
    assert_eq!(b, None);
}

#[tokio::test]
async fn some_seeds_down_at_start_do_not_matter() {
    let Some(c) = cluster() else { return };
    let dead = format!("127.0.0.1:{}", free_port());
    let mut seeds = vec![dead.clone(), "127.0.0.1:1".to_string()];
    seeds.push(c.seeds()[4].clone());
    let client = Client::builder(seeds)
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    client.set("seeds:k", "v").await.unwrap();
    assert_eq!(client.get::<String>("seeds:k").await.unwrap(), "v");
    assert_eq!(client.topology().covered_slots(), 16384);
    // All seeds down: a clear error, not a hang.
    let e = Client::builder([dead])
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("no cluster node answered"), "{e}");
}

#[tokio::test]
async fn auth_with_a_named_user_and_no_password_in_errors() {
    let Some(c) = cluster() else { return };
    for n in &c.nodes {
        let out = n.cli(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">s3cret-pw",
            "~*",
            "&*",
            "+@all",
        ]);
        assert_eq!(out.trim(), "OK");
    }
    for resp3 in [false, true] {
        let client = Client::builder(c.seeds())
            .credentials(Some("app"), "s3cret-pw")
            .resp3(resp3)
            .build()
            .await
            .unwrap();
        client.set("auth:k", "v").await.unwrap();
        let who: String = client.cmd("ACL").arg("WHOAMI").query().await.unwrap();
        assert_eq!(who, "app");
        let builder = Client::builder(c.seeds())
            .credentials(Some("app"), "wrong-pw-123")
            .resp3(resp3);
        assert!(!format!("{builder:?}").contains("wrong-pw-123"));
        let e = builder.build().await.unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("wrong-pw-123"), "{shown}");
        assert!(shown.contains("WRONGPASS"), "{shown}");
    }
}

#[tokio::test]
async fn a_cancelled_request_leaves_the_connection_in_step() {
    let Some(c) = cluster() else { return };
    let client = Client::builder(c.seeds())
        .pool_size(1)
        .build()
        .await
        .unwrap();
    client.set("{cancel}k", "kv").await.unwrap();
    client.set("{cancel}j", "jv").await.unwrap();
    // BLPOP holds the connection's next reply for 0.5 s; give up on it after 50 ms.
    let blocked = client
        .cmd("BLPOP")
        .arg("{cancel}list")
        .arg(0.5)
        .query::<Value>();
    assert!(tokio::time::timeout(Duration::from_millis(50), blocked)
        .await
        .is_err());
    // The next requests on the same connection get their own replies, not BLPOP's nil.
    let (k, j, n) = tokio::join!(
        client.get::<Option<String>>("{cancel}k"),
        client.get::<Option<String>>("{cancel}j"),
        client.incr("{cancel}n"),
    );
    assert_eq!(k.unwrap().as_deref(), Some("kv"));
    assert_eq!(j.unwrap().as_deref(), Some("jv"));
    assert_eq!(n.unwrap(), 1);
    let more: Vec<Option<String>> = client
        .cmd("MGET")
        .arg("{cancel}j")
        .arg("{cancel}k")
        .query()
        .await
        .unwrap();
    assert_eq!(more, vec![Some("jv".into()), Some("kv".into())]);
}

#[tokio::test]
async fn read_from_policies_all_answer_reads() {
    let Some(c) = cluster() else { return };
    let writer = client(c).await;
    writer.set("policy:k", "v").await.unwrap();
    for rf in [
        ReadFrom::Primary,
        ReadFrom::PrimaryPreferred,
        ReadFrom::ReplicaPreferred,
        ReadFrom::Replica,
        ReadFrom::Nearest,
        ReadFrom::Any,
    ] {
        let client = Client::builder(c.seeds())
            .read_from(rf)
            .build()
            .await
            .unwrap();
        let mut got = None;
        for _ in 0..50 {
            got = client.get::<Option<String>>("policy:k").await.unwrap();
            if got.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(got.as_deref(), Some("v"), "{rf:?}");
        // Writes always reach the primary, whatever the policy.
        client.set("policy:w", "x").await.unwrap();
    }
}

#[tokio::test]
async fn keys_gathers_every_primary() {
    let Some(c) = cluster() else { return };
    let client = client(c).await;
    for i in 0..30 {
        client.set(format!("fanreal:{i}"), i).await.unwrap();
    }
    let mut keys: Vec<String> = client.cmd("KEYS").arg("fanreal:*").query().await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 30);
    let n: i64 = client.cmd("DBSIZE").query().await.unwrap();
    assert!(n >= 30, "{n}");
}
