//! The same slot-migration script run against a real redis-server 7 cluster and the bundled
//! cluster: every reply must be identical (addresses and ids replaced by role names).

mod support;

use std::net::SocketAddr;

use redcluster::server::TestCluster;
use support::raw::Client;
use support::real_cluster::RealCluster;

/// The three primaries of a cluster: `src` serves slot 15495 (`{a}` keys), `dst` will import
/// it, `other` takes no part.
struct Roles {
    src: SocketAddr,
    dst: SocketAddr,
    other: SocketAddr,
}

async fn myid(addr: SocketAddr) -> String {
    Client::connect(addr).await.text(&["CLUSTER", "MYID"]).await
}

/// Run the script; one line per reply, with addresses and ids replaced by role names.
async fn script(r: &Roles) -> Vec<String> {
    let (src_id, dst_id) = (myid(r.src).await, myid(r.dst).await);
    let names = [
        (r.src.to_string(), "SRC".to_string()),
        (r.dst.to_string(), "DST".to_string()),
        (r.other.to_string(), "OTHER".to_string()),
        (src_id.clone(), "SRC_ID".to_string()),
        (dst_id.clone(), "DST_ID".to_string()),
        (r.dst.port().to_string(), "DST_PORT".to_string()),
    ];
    let (mut src, mut dst, mut other) = (
        Client::connect(r.src).await,
        Client::connect(r.dst).await,
        Client::connect(r.other).await,
    );
    let dst_port = r.dst.port().to_string();
    let mut out = Vec::new();
    macro_rules! run {
        ($c:expr, $($a:expr),+) => {{
            let args: Vec<&str> = vec![$($a),+];
            let reply = format!("{:?}", $c.cmd(&args).await);
            let mut line = format!("{} -> {}", args.join(" "), reply);
            for (from, to) in &names {
                line = line.replace(from.as_str(), to);
            }
            out.push(line);
        }};
    }
    run!(src, "MSET", "{a}1", "1", "{a}2", "2", "{a}3", "3", "{a}4", "4");
    run!(dst, "CLUSTER", "SETSLOT", "15495", "IMPORTING", &src_id);
    run!(src, "CLUSTER", "SETSLOT", "15495", "MIGRATING", &dst_id);
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "",
        "0",
        "5000",
        "KEYS",
        "{a}1"
    );
    // Source side.
    run!(src, "GET", "{a}1");
    run!(src, "GET", "{a}2");
    run!(src, "MGET", "{a}1", "{a}2");
    run!(src, "MGET", "{a}2", "{a}3");
    run!(src, "MGET", "{a}1", "{a}9");
    run!(src, "SET", "{a}new", "x");
    run!(src, "DEL", "{a}1", "{a}2");
    run!(src, "EXISTS", "{a}9");
    run!(other, "GET", "{a}1");
    // Target side.
    run!(dst, "GET", "{a}1");
    run!(dst, "ASKING");
    run!(dst, "GET", "{a}1");
    run!(dst, "GET", "{a}1");
    run!(dst, "ASKING");
    run!(dst, "MGET", "{a}1", "{a}2");
    run!(dst, "ASKING");
    run!(dst, "MGET", "{a}8", "{a}9");
    run!(dst, "ASKING");
    run!(dst, "MGET", "{a}1", "{a}1");
    run!(dst, "ASKING");
    run!(dst, "MULTI");
    run!(dst, "SET", "{a}m", "1");
    run!(dst, "GET", "{a}1");
    run!(dst, "EXEC");
    run!(dst, "ASKING");
    run!(dst, "MULTI");
    run!(dst, "DISCARD");
    run!(dst, "GET", "{a}1");
    // MIGRATE replies and errors.
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "{a}nokey",
        "0",
        "5000"
    );
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "{a}2",
        "0",
        "5000",
        "KEYS",
        "{a}3"
    );
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "{a}2",
        "0",
        "5000",
        "BOGUS"
    );
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "{a}2",
        "0",
        "5000",
        "AUTH2",
        "u"
    );
    run!(src, "MIGRATE", "127.0.0.1", &dst_port, "{a}2", "0", "x");
    run!(src, "MIGRATE", "127.0.0.1", &dst_port, "{a}2", "1", "5000");
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "",
        "0",
        "5000",
        "COPY",
        "KEYS",
        "{a}2"
    );
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "",
        "0",
        "5000",
        "KEYS",
        "{a}2",
        "{a}3"
    );
    run!(src, "EXISTS", "{a}2", "{a}3");
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "",
        "0",
        "5000",
        "REPLACE",
        "KEYS",
        "{a}2",
        "{a}3",
        "{a}4"
    );
    run!(src, "CLUSTER", "COUNTKEYSINSLOT", "15495");
    run!(dst, "CLUSTER", "COUNTKEYSINSLOT", "15495");
    run!(
        src,
        "MIGRATE",
        "127.0.0.1",
        &dst_port,
        "",
        "0",
        "5000",
        "KEYS",
        "{a}2",
        "x"
    );
    // SETSLOT replies and errors.
    let unknown = "0000000000000000000000000000000000000000";
    run!(dst, "CLUSTER", "SETSLOT", "15495", "NODE", unknown);
    run!(dst, "CLUSTER", "SETSLOT", "15495", "MIGRATING", unknown);
    run!(dst, "CLUSTER", "SETSLOT", "15495", "BOGUS");
    run!(dst, "CLUSTER", "SETSLOT", "99999", "STABLE");
    run!(dst, "CLUSTER", "SETSLOT", "15495", "NODE", &dst_id);
    run!(dst, "GET", "{a}1");
    run!(dst, "CLUSTER", "SETSLOT", "15495", "IMPORTING", &src_id);
    run!(src, "CLUSTER", "SETSLOT", "15495", "NODE", &dst_id);
    run!(src, "GET", "{a}1");
    run!(src, "CLUSTER", "SETSLOT", "15495", "MIGRATING", &dst_id);
    run!(src, "CLUSTER", "GETKEYSINSLOT", "15495", "-1");
    run!(src, "CLUSTER", "COUNTKEYSINSLOT", "x");
    out
}

#[tokio::test]
async fn slot_migration_replies_match_redis_server() {
    let Some(real) = RealCluster::start(3, 0) else {
        return;
    };
    let src = real.primary_index_for_slot(15495);
    let mut rest = (0..3).filter(|&i| i != src);
    let (dst, other) = (rest.next().unwrap(), rest.next().unwrap());
    let want = script(&Roles {
        src: real.nodes[src].addr(),
        dst: real.nodes[dst].addr(),
        other: real.nodes[other].addr(),
    })
    .await;

    let ours = TestCluster::builder().primaries(3).start().await.unwrap();
    let a = ours.seeds();
    let got = script(&Roles {
        src: a[2],
        dst: a[0],
        other: a[1],
    })
    .await;
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len());
}
