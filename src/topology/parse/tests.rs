//! Parsers against literal replies captured from a real Redis 7.0 cluster of 3 primaries and
//! 3 replicas (ports 23000-23005), in both protocol versions.

use bytes::BytesMut;

use super::*;
use crate::resp::{decode, Limits};
use crate::topology::Topology;

fn reply(raw: &[u8]) -> Value {
    let mut buf = BytesMut::from(raw);
    decode(&mut buf, &Limits::default())
        .expect("valid RESP")
        .expect("whole frame")
}

const SHARDS2: &[u8] = include_bytes!("../testdata/shards2.bin");
const SHARDS3: &[u8] = include_bytes!("../testdata/shards3.bin");
const SLOTS2: &[u8] = include_bytes!("../testdata/slots2.bin");
const SLOTS3: &[u8] = include_bytes!("../testdata/slots3.bin");
const NODES2: &[u8] = include_bytes!("../testdata/nodes2.bin");

fn expect_reference(shards: &[Shard]) {
    let t = Topology::from_shards(shards.to_vec());
    assert_eq!(t.covered_slots(), 16384);
    assert_eq!(t.primary_for_slot(0), Some("127.0.0.1:23000"));
    assert_eq!(t.primary_for_slot(5460), Some("127.0.0.1:23000"));
    assert_eq!(t.primary_for_slot(5461), Some("127.0.0.1:23001"));
    assert_eq!(t.primary_for_slot(16383), Some("127.0.0.1:23002"));
    let s0 = t.shard_for_slot(0).unwrap();
    assert_eq!(s0.slot_ranges, vec![(0, 5460)]);
    assert_eq!(s0.replicas.len(), 1);
    assert_eq!(s0.replicas[0].addr, "127.0.0.1:23004");
    assert_eq!(
        s0.primary.id.as_deref(),
        Some("25543d9761915afaad53d002f5f2b5f74dc9ef41")
    );
    assert_eq!(
        t.shard_for_slot(6000).unwrap().replicas[0].addr,
        "127.0.0.1:23005"
    );
    assert_eq!(
        t.shard_for_slot(16000).unwrap().replicas[0].addr,
        "127.0.0.1:23003"
    );
}

#[test]
fn cluster_shards_resp2_and_resp3() {
    for raw in [SHARDS2, SHARDS3] {
        let shards = parse_shards(&reply(raw), "127.0.0.1:23000").unwrap();
        assert_eq!(shards.len(), 3);
        expect_reference(&shards);
        assert!(shards
            .iter()
            .all(|s| s.primary.health == NodeHealth::Online));
    }
}

#[test]
fn cluster_slots_resp2_and_resp3() {
    for raw in [SLOTS2, SLOTS3] {
        let shards = parse_slots(&reply(raw), "127.0.0.1:23000").unwrap();
        assert_eq!(shards.len(), 3);
        expect_reference(&shards);
    }
}

#[test]
fn cluster_nodes_with_epochs() {
    let v = reply(NODES2);
    let text = std::str::from_utf8(v.as_bytes().unwrap()).unwrap();
    let shards = parse_nodes(text, "127.0.0.1:23000").unwrap();
    assert_eq!(shards.len(), 3);
    expect_reference(&shards);
    let t = Topology::from_shards(shards);
    assert_eq!(t.shard_for_slot(0).unwrap().config_epoch, 1);
    assert_eq!(t.shard_for_slot(16383).unwrap().config_epoch, 3);
    assert_eq!(t.epoch(), 3);
    let epochs = epochs_from_nodes(text);
    assert_eq!(epochs["849717c68ac5c0dc8290061da6682bd677357f7f"], 3);
    assert_eq!(epochs.len(), 3);
}

#[test]
fn nodes_with_migration_markers_failed_flags_and_unknown_host() {
    let text = "\
aaa :7000@17000 myself,master - 0 0 5 connected 0-99 [100->-bbb]
bbb 10.0.0.2:7001@17001 master,fail - 0 0 6 connected 100-200 [101-<-aaa]
ccc 10.0.0.3:7002@17002,host.example slave bbb 0 0 6 connected
";
    let shards = parse_nodes(text, "10.0.0.1:7000").unwrap();
    assert_eq!(shards[0].primary.addr, "10.0.0.1:7000");
    assert_eq!(shards[0].slot_ranges, vec![(0, 99)]);
    assert_eq!(shards[1].primary.health, NodeHealth::Failed);
    assert_eq!(shards[1].replicas[0].addr, "10.0.0.3:7002");
    assert_eq!(shards[1].config_epoch, 6);
}

#[test]
fn malformed_replies_are_errors_not_panics() {
    let cases = [
        Value::Integer(1),
        Value::Array(vec![Value::Integer(1)]),
        Value::Array(vec![Value::Array(vec![
            Value::Integer(0),
            Value::Integer(99999),
            Value::Array(vec![Value::bulk("h"), Value::Integer(1)]),
        ])]),
        Value::Array(vec![Value::Array(vec![Value::Integer(0)])]),
    ];
    for c in &cases {
        assert!(parse_slots(c, "x:1").is_err(), "{c:?}");
        assert!(parse_shards(c, "x:1").is_err(), "{c:?}");
    }
    assert!(parse_nodes("abc def", "x:1").is_err());
    assert!(parse_nodes("a h:1@2 master - 0 0 1 connected 0-99999", "x:1").is_err());
}

#[test]
fn ipv6_and_unknown_endpoints() {
    assert_eq!(join_addr("::1", 7000, "q:1").unwrap(), "[::1]:7000");
    assert_eq!(
        join_addr("?", 7000, "10.1.1.1:6379").unwrap(),
        "10.1.1.1:7000"
    );
    assert_eq!(join_addr("", 7000, "[::1]:6379").unwrap(), "[::1]:7000");
    assert!(join_addr("h", 0, "q:1").is_none());
}

/// Replies of nodes with `cluster-preferred-endpoint-type hostname` (one node announcing no
/// hostname) and `unknown-endpoint`, in the shapes of Redis 7.0's `addNodeToNodeReply` and
/// `addNodeDetailsToShardReply`.
#[test]
fn hostname_endpoints_question_marks_and_unknown_endpoints() {
    let slots = reply(
        b"*1\r\n*4\r\n:0\r\n:16383\r\n\
          *4\r\n$12\r\nnode-a.local\r\n:7000\r\n$2\r\nid\r\n*2\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n\
          *4\r\n$1\r\n?\r\n:7001\r\n$3\r\nid2\r\n*2\r\n$2\r\nip\r\n$8\r\n10.0.0.2\r\n",
    );
    let shards = parse_slots(&slots, "seed.local:7000").unwrap();
    assert_eq!(shards[0].primary.addr, "node-a.local:7000");
    assert_eq!(shards[0].replicas[0].addr, "10.0.0.2:7001");

    // unknown-endpoint: NULL endpoint, the queried host is reused.
    let slots = reply(
        b"*1\r\n*3\r\n:0\r\n:16383\r\n\
          *4\r\n$-1\r\n:7002\r\n$2\r\nid\r\n*2\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n",
    );
    let shards = parse_slots(&slots, "lb.example.com:7000").unwrap();
    assert_eq!(shards[0].primary.addr, "lb.example.com:7002");

    let shards_reply = |endpoint: &str, port_field: &str| {
        let raw = format!(
            "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n\
             $2\r\nid\r\n$2\r\nid\r\n${}\r\n{port_field}\r\n:7000\r\n$2\r\nip\r\n$8\r\n10.0.0.1\r\n\
             $8\r\nendpoint\r\n${}\r\n{endpoint}\r\n$8\r\nhostname\r\n$6\r\nnode-a\r\n\
             $4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nonline\r\n",
            port_field.len(),
            endpoint.len()
        );
        parse_shards(&reply(raw.as_bytes()), "seed:7000").unwrap()
    };
    assert_eq!(
        shards_reply("node-a", "port")[0].primary.addr,
        "node-a:7000"
    );
    assert_eq!(shards_reply("?", "port")[0].primary.addr, "10.0.0.1:7000");
    assert_eq!(shards_reply("", "tls-port")[0].primary.addr, "seed:7000");
}
