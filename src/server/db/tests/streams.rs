//! Streams, HyperLogLog, geo and bitfield in the engine: what replicas replay reproduces the
//! primary's value exactly, DUMP/RESTORE keeps it, and the stream-specific propagation
//! rewrites (`*` ids, `~` trimming, group reads as XCLAIM/XGROUP SETID) are what Redis emits.

use super::{bulk, int, T};
use crate::resp::Value;

/// Run `cmds` on a primary, feed its propagation to a replica, and compare every key.
fn replay_equal(cmds: &[&str]) -> (T, T) {
    let mut p = T::new();
    let mut r = T::new();
    r.db.set_replica(true);
    for (i, c) in cmds.iter().enumerate() {
        p.now += 7;
        r.now = p.now;
        p.run(c);
        for cmd in p.db.take_propagation() {
            r.args(&cmd);
        }
        assert_eq!(p.db.stats().keys, r.db.stats().keys, "after #{i} {c}");
    }
    for (k, e) in p.db.entries() {
        let re = r.db.peek(k).expect("key on replica");
        assert_eq!(
            super::super::snapshot::encode_payload(&e.data),
            super::super::snapshot::encode_payload(&re.data),
            "{k:?}"
        );
    }
    (p, r)
}

#[test]
fn stream_group_reads_claims_and_trims_replay_identically() {
    let mut cmds = vec!["XGROUP CREATE s g $ MKSTREAM"];
    let adds: Vec<String> = (0..250).map(|i| format!("XADD s * f {i} g x")).collect();
    cmds.extend(adds.iter().map(String::as_str));
    cmds.extend([
        "XREADGROUP GROUP g alice COUNT 10 STREAMS s >",
        "XREADGROUP GROUP g bob COUNT 5 NOACK STREAMS s >",
        "XACK s g 1700000000007-0",
        "XCLAIM s g bob 0 1700000000014-0 1700000000021-0",
        "XAUTOCLAIM s g carol 0 0 COUNT 3",
        "XDEL s 1700000000028-0",
        "XTRIM s MAXLEN ~ 120",
        "XADD s MAXLEN ~ 50 * f last",
        "XGROUP CREATECONSUMER s g dave",
        "XGROUP DELCONSUMER s g bob",
        "XSETID s 9999999999999-0",
        "XGROUP SETID s g 0 ENTRIESREAD 3",
    ]);
    let (mut p, mut r) = replay_equal(&cmds);
    // Nodes of 100 entries: [99 live after XDEL, 100, 50]. `~ 120` drops the first whole
    // node (150 left); the XADD makes 151 and `~ 50` drops the second (51 left), never
    // cutting into a node. Replicas got `=` with the resulting length.
    assert_eq!(p.run("XLEN s"), int(51));
    assert_eq!(p.run("XINFO STREAM s"), r.run("XINFO STREAM s"));
    assert_eq!(p.run("XPENDING s g"), r.run("XPENDING s g"));
}

#[test]
fn stream_propagation_rewrites_like_redis() {
    let mut t = T::new();
    assert_eq!(t.run("XADD s 5-* a 1"), bulk("5-0"));
    assert_eq!(t.prop(), vec!["XADD s 5-0 a 1"]);
    t.run("XADD s * a 2");
    assert_eq!(t.prop(), vec![format!("XADD s {}-0 a 2", t.now)]);
    t.run("XGROUP CREATE s g 0");
    t.prop();
    t.run("XREADGROUP GROUP g c COUNT 1 STREAMS s >");
    assert_eq!(
        t.prop(),
        vec![format!(
            "XCLAIM s g c 0 5-0 TIME {} RETRYCOUNT 1 FORCE JUSTID LASTID 5-0",
            t.now
        )]
    );
    t.run("XREADGROUP GROUP g d NOACK STREAMS s >");
    let last = format!("{}-0", t.now);
    assert_eq!(
        t.prop(),
        vec![
            "XGROUP CREATECONSUMER s g d".to_string(),
            format!("XGROUP SETID s g {last} ENTRIESREAD 2"),
        ]
    );
    // A read that delivers nothing changes nothing and propagates nothing.
    assert_eq!(t.run("XREADGROUP GROUP g d STREAMS s >"), Value::NullArray);
    assert!(t.prop().is_empty());
    assert_eq!(t.run("XTRIM s MAXLEN ~ 5"), int(0));
    assert!(t.prop().is_empty());
}

#[test]
fn stream_dump_restore_keeps_entries_groups_and_layout() {
    let mut t = T::new();
    for i in 0..130 {
        t.run(&format!("XADD s {}-1 k v{i}", i + 1));
    }
    t.run("XDEL s 3-1 4-1");
    t.run("XGROUP CREATE s g 0");
    t.run("XREADGROUP GROUP g c COUNT 2 STREAMS s >");
    let payload = match t.run("DUMP s") {
        Value::BulkString(b) => b,
        other => panic!("{other:?}"),
    };
    let info = t.run("XINFO STREAM s FULL");
    let mut args: Vec<bytes::Bytes> = ["RESTORE", "s2", "0"]
        .iter()
        .map(|s| bytes::Bytes::from_static(s.as_bytes()))
        .collect();
    args.push(payload.clone());
    assert_eq!(t.args(&args), Value::ok());
    assert_eq!(t.run("XINFO STREAM s2 FULL"), info);
    // A corrupt payload is refused, never half-loaded.
    let mut bad = payload.to_vec();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    args[1] = bytes::Bytes::from_static(b"s3");
    args[3] = bytes::Bytes::from(bad);
    assert!(matches!(t.args(&args), Value::Error(_)));
    assert_eq!(t.run("EXISTS s3"), int(0));
}

#[test]
fn hll_geo_bitfield_sort_replay_identically() {
    let mut cmds: Vec<String> = Vec::new();
    for i in 0..300 {
        cmds.push(format!("PFADD h e{i} f{i} g{}", i * 7));
    }
    cmds.push("PFCOUNT h".into());
    cmds.push("PFMERGE h2 h".into());
    for i in 0..50 {
        cmds.push(format!("GEOADD geo {} {} m{i}", -170 + i * 6, -80 + i * 3));
    }
    cmds.push("GEOSEARCHSTORE dst geo FROMLONLAT 0 0 BYRADIUS 5000 km STOREDIST".into());
    cmds.push("BITFIELD b SET u8 0 200 INCRBY i5 100 1 OVERFLOW SAT INCRBY u2 102 7".into());
    cmds.push("BITOP XOR b2 b h".into());
    cmds.push("RPUSH l 3 1 2".into());
    cmds.push("SORT l DESC STORE l2".into());
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let (mut p, _) = replay_equal(&refs);
    match p.run("PFCOUNT h") {
        Value::Integer(n) => assert!((880..=920).contains(&n), "estimate {n} for 900"),
        other => panic!("{other:?}"),
    }
    // 900 elements fit the sparse form (under 3000 bytes); 5000 more force the dense one.
    assert_eq!(p.run("PFDEBUG ENCODING h"), Value::simple("sparse"));
    for i in 0..5000 {
        p.run(&format!("PFADD h x{i}"));
    }
    assert_eq!(p.run("PFDEBUG ENCODING h"), Value::simple("dense"));
}
