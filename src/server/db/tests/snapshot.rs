use super::{bulk, int, ok, T};
use crate::resp::Value;
use crate::server::db::Db;
use bytes::Bytes;

fn fill(t: &mut T) {
    t.run("SET s hello");
    t.run("SET e v EX 100");
    t.run("RPUSH l a b c");
    t.run("HSET h f1 v1 f2 v2");
    t.run("SADD set x y z");
    t.run("ZADD z 1.5 a -2 b");
}

#[test]
fn snapshot_round_trip_keeps_values_and_ttls() {
    let mut t = T::new();
    fill(&mut t);
    let data = t.db.encode_snapshot();
    let db = Db::decode_snapshot(&data).unwrap();
    let mut r = T {
        db,
        now: t.now,
        resp3: false,
    };
    assert_eq!(r.run("DBSIZE"), int(6));
    assert_eq!(r.run("GET s"), bulk("hello"));
    assert_eq!(r.run("TTL e"), int(100));
    assert_eq!(r.run("LRANGE l 0 -1"), t.run("LRANGE l 0 -1"));
    assert_eq!(r.run("HGETALL h"), t.run("HGETALL h"));
    assert_eq!(r.run("SMEMBERS set"), t.run("SMEMBERS set"));
    assert_eq!(
        r.run("ZRANGE z 0 -1 WITHSCORES"),
        t.run("ZRANGE z 0 -1 WITHSCORES")
    );
    assert_eq!(r.db.stats(), t.db.stats());
    assert_eq!(r.db.count_keys_in_slot(crate::slot::key_slot(b"s")), 1);
    // Clone is a point-in-time snapshot: later writes do not show in it.
    let snap = t.db.clone();
    t.run("SET s changed");
    assert_eq!(snap.dump_key(b"s", t.now), r.db.dump_key(b"s", t.now));
}

#[test]
fn snapshot_decoding_rejects_garbage_without_panicking() {
    let mut t = T::new();
    fill(&mut t);
    let data = t.db.encode_snapshot();
    assert!(Db::decode_snapshot(&[]).is_err());
    assert!(Db::decode_snapshot(b"RCDB").is_err());
    assert!(Db::decode_snapshot(&data[..data.len() - 1]).is_err());
    for i in 0..data.len() {
        let mut bad = data.clone();
        bad[i] ^= 0x41;
        assert!(Db::decode_snapshot(&bad).is_err(), "flipped byte {i}");
    }
    let mut x: u64 = 42;
    for len in 0..300 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                (x >> 33) as u8
            })
            .collect();
        assert!(Db::decode_snapshot(&junk).is_err());
    }
    let empty = Db::new().encode_snapshot();
    assert_eq!(Db::decode_snapshot(&empty).unwrap().dbsize(0), 0);
}

#[test]
fn dump_and_restore() {
    let mut t = T::new();
    fill(&mut t);
    assert_eq!(t.run("DUMP nope"), Value::Null);
    for k in ["s", "l", "h", "set", "z"] {
        let Value::BulkString(payload) = t.run(&format!("DUMP {k}")) else {
            panic!()
        };
        let dst = Bytes::from(format!("{k}_copy"));
        let args = [
            Bytes::from("RESTORE"),
            dst.clone(),
            Bytes::from("0"),
            payload.clone(),
        ];
        assert_eq!(t.args(&args), ok(), "{k}");
        assert_eq!(t.db.dump_key(&dst, t.now).unwrap(), payload.to_vec());
        assert_eq!(
            t.args(&args),
            Value::error("BUSYKEY Target key name already exists."),
        );
        let mut with = args.to_vec();
        with[2] = Bytes::from("5000");
        with.push(Bytes::from("REPLACE"));
        assert_eq!(t.args(&with), ok());
        assert_eq!(t.run(&format!("PTTL {k}_copy")), int(5000));
        let mut bad = payload.to_vec();
        bad[1] ^= 1;
        let args = [
            Bytes::from("RESTORE"),
            Bytes::from("new"),
            Bytes::from("0"),
            Bytes::from(bad),
        ];
        assert_eq!(
            t.args(&args),
            Value::error("ERR DUMP payload version or checksum are wrong")
        );
    }
    t.err(
        "RESTORE x 0 junk",
        "ERR DUMP payload version or checksum are wrong",
    );
    t.err("RESTORE x -1 junk", "ERR Invalid TTL value, must be >= 0");
    t.err("RESTORE x 0 junk foo", "ERR syntax error");
    t.err(
        "RESTORE s 0 junk",
        "BUSYKEY Target key name already exists.",
    );
    t.err(
        "RESTORE x 0 junk FREQ 300",
        "ERR Invalid FREQ value, must be >= 0 and <= 255",
    );
    // ABSTTL and the API form.
    let payload = t.db.dump_key(b"s", t.now).unwrap();
    let at = t.now + 777;
    let args = [
        Bytes::from("RESTORE"),
        Bytes::from("abs"),
        Bytes::from(at.to_string()),
        Bytes::from(payload.clone()),
        Bytes::from("ABSTTL"),
    ];
    assert_eq!(t.args(&args), ok());
    assert_eq!(t.run("PTTL abs"), int(777));
}
