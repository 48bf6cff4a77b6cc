use super::{bulk, int, ok, sorted, T};
use crate::resp::Value;

#[test]
fn del_exists_type_rename_copy() {
    let mut t = T::new();
    t.run("MSET a 1 b 2");
    t.run("RPUSH l x");
    assert_eq!(t.run("EXISTS a a nope l"), int(3));
    assert_eq!(t.run("TOUCH a nope"), int(1));
    assert_eq!(t.run("DEL a nope b"), int(2));
    assert_eq!(t.run("UNLINK a"), int(0));
    assert_eq!(t.run("TYPE l"), Value::simple("list"));
    assert_eq!(t.run("TYPE nope"), Value::simple("none"));
    t.err("RENAME nope x", "ERR no such key");
    t.run("SETEX s 100 v");
    assert_eq!(t.run("RENAME s s2"), ok());
    assert_eq!(t.run("TTL s2"), int(100));
    assert_eq!(t.run("EXISTS s"), int(0));
    assert_eq!(t.run("RENAME s2 s2"), ok());
    assert_eq!(t.run("RENAMENX s2 s2"), int(0));
    assert_eq!(t.run("RENAMENX s2 l"), int(0));
    assert_eq!(t.run("RENAMENX s2 s3"), int(1));
    assert_eq!(t.run("RENAME s3 l"), ok());
    assert_eq!(t.run("GET l"), bulk("v"));
    assert_eq!(t.run("COPY l c"), int(1));
    assert_eq!(t.run("TTL c"), int(100));
    assert_eq!(t.run("COPY l c"), int(0));
    assert_eq!(t.run("COPY l c REPLACE"), int(1));
    assert_eq!(t.run("COPY l c DB 0 REPLACE"), int(1));
    assert_eq!(t.run("COPY nope c"), int(0));
    t.err(
        "COPY l l",
        "ERR source and destination objects are the same",
    );
    t.err("COPY l c foo", "ERR syntax error");
    // A copy is independent of its source.
    t.run("RPUSH list a b");
    t.run("COPY list list2");
    t.run("RPUSH list c");
    assert_eq!(t.run("LLEN list2"), int(2));
}

#[test]
fn expire_family_and_options() {
    let mut t = T::new();
    t.run("SET k v");
    assert_eq!(t.run("EXPIRE nope 10"), int(0));
    assert_eq!(t.run("EXPIRE k 100 XX"), int(0));
    assert_eq!(t.run("EXPIRE k 100 GT"), int(0));
    assert_eq!(t.run("EXPIRE k 100 NX"), int(1));
    assert_eq!(t.run("EXPIRE k 100 NX"), int(0));
    assert_eq!(t.run("EXPIRE k 200 GT"), int(1));
    assert_eq!(t.run("EXPIRE k 100 GT"), int(0));
    assert_eq!(t.run("EXPIRE k 50 LT"), int(1));
    assert_eq!(t.run("TTL k"), int(50));
    assert_eq!(t.run("PEXPIRE k 1500"), int(1));
    assert_eq!(t.run("PTTL k"), int(1500));
    assert_eq!(t.run("TTL k"), int(2));
    let at = t.now / 1000 + 1000;
    assert_eq!(t.run(&format!("EXPIREAT k {at}")), int(1));
    assert_eq!(t.run("EXPIRETIME k"), int(at as i64));
    assert_eq!(t.run("PEXPIRETIME k"), int(at as i64 * 1000));
    // EXPIRETIME rounds to the nearest second, as Redis does.
    t.run("PEXPIREAT k 99999999999600");
    assert_eq!(t.run("EXPIRETIME k"), int(100_000_000_000));
    t.run("PEXPIREAT k 99999999999400");
    assert_eq!(t.run("EXPIRETIME k"), int(99_999_999_999));
    t.run(&format!("EXPIREAT k {at}"));
    assert_eq!(t.run(&format!("PEXPIREAT k {}", t.now + 10)), int(1));
    assert_eq!(t.run("PTTL k"), int(10));
    assert_eq!(t.run("PERSIST k"), int(1));
    assert_eq!(t.run("PERSIST k"), int(0));
    assert_eq!(t.run("TTL k"), int(-1));
    assert_eq!(t.run("EXPIRETIME k"), int(-1));
    assert_eq!(t.run("TTL nope"), int(-2));
    assert_eq!(t.run("PEXPIRETIME nope"), int(-2));
    // A persistent key counts as an infinite TTL for LT.
    assert_eq!(t.run("EXPIRE k 10 LT"), int(1));
    t.err(
        "EXPIRE k 10 NX XX",
        "ERR NX and XX, GT or LT options at the same time are not compatible",
    );
    t.err(
        "EXPIRE k 10 GT LT",
        "ERR GT and LT options at the same time are not compatible",
    );
    t.err("EXPIRE k 10 foo", "ERR Unsupported option foo");
    t.err(
        "EXPIRE k abc",
        "ERR value is not an integer or out of range",
    );
    t.err(
        "EXPIRE k 99999999999999999",
        "ERR invalid expire time in 'expire' command",
    );
    t.err(
        "PEXPIRE k 9223372036854775807",
        "ERR invalid expire time in 'pexpire' command",
    );
    // A time in the past deletes the key.
    assert_eq!(t.run("EXPIRE k -1"), int(1));
    assert_eq!(t.run("EXISTS k"), int(0));
}

#[test]
fn keys_glob_dbsize_flush_randomkey() {
    let mut t = T::new();
    t.run("MSET user:1 a user:2 b user:10 c other d");
    assert_eq!(sorted(t.run("KEYS user:?")), ["user:1", "user:2"]);
    assert_eq!(
        sorted(t.run("KEYS user:*")),
        ["user:1", "user:10", "user:2"]
    );
    assert_eq!(sorted(t.run("KEYS *")).len(), 4);
    assert_eq!(sorted(t.run("KEYS [ou]*r")), ["other"]);
    assert_eq!(t.run("DBSIZE"), int(4));
    match t.run("RANDOMKEY") {
        Value::BulkString(k) => assert!(t.db.version_of(&k, t.now) > 0),
        other => panic!("{other:?}"),
    }
    t.err("FLUSHALL foo", "ERR syntax error");
    assert_eq!(t.run("FLUSHALL ASYNC"), ok());
    assert_eq!(t.run("DBSIZE"), int(0));
    assert_eq!(t.run("RANDOMKEY"), Value::Null);
    t.run("SET a 1");
    assert_eq!(t.run("FLUSHDB"), ok());
    assert_eq!(t.db.stats().keys, 0);
}

#[test]
fn object_encoding() {
    let mut t = T::new();
    t.run("SET n 123");
    t.run("SET s hello");
    t.run(&format!("SET r {}", "x".repeat(45)));
    t.run("RPUSH l a");
    t.run("HSET h f v");
    t.run("SADD i 1 2");
    t.run("SADD t a");
    t.run("ZADD z 1 a");
    for (k, enc) in [
        ("n", "int"),
        ("s", "embstr"),
        ("r", "raw"),
        ("l", "quicklist"),
        ("h", "listpack"),
        ("i", "intset"),
        ("t", "hashtable"),
        ("z", "listpack"),
    ] {
        assert_eq!(t.run(&format!("OBJECT ENCODING {k}")), bulk(enc), "{k}");
    }
    assert_eq!(t.run("OBJECT ENCODING nope"), Value::Null);
    t.err(
        "OBJECT foo n",
        "ERR unknown subcommand 'foo'. Try OBJECT HELP.",
    );
    t.err(
        "OBJECT ENCODING",
        "ERR wrong number of arguments for 'object|encoding' command",
    );
    assert!(matches!(t.run("OBJECT HELP"), Value::Array(v) if v.len() > 5));
}

#[test]
fn scan_returns_whole_slots_and_filters() {
    let mut t = T::new();
    for i in 0..200 {
        t.run(&format!("SET k{i} v"));
    }
    t.run("RPUSH list a");
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let Value::Array(parts) = t.run(&format!("SCAN {cursor} COUNT 20 MATCH k*")) else {
            panic!()
        };
        let Value::BulkString(c) = &parts[0] else {
            panic!()
        };
        cursor = String::from_utf8_lossy(c).into_owned();
        for k in sorted(parts[1].clone()) {
            assert!(seen.insert(k), "duplicate key");
        }
        calls += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 200);
    assert!(calls > 5, "COUNT should split the scan, took {calls} calls");
    let Value::Array(parts) = t.run("SCAN 0 COUNT 100000 TYPE list") else {
        panic!()
    };
    assert_eq!(parts[0], bulk("0"));
    assert_eq!(parts[1], Value::Array(vec![bulk("list")]));
    t.err("SCAN abc", "ERR invalid cursor");
    t.err("SCAN 0 COUNT 0", "ERR syntax error");
    t.err("SCAN 0 TYPE", "ERR syntax error");
    t.err("SCAN 0 foo bar", "ERR syntax error");
    assert_eq!(
        t.run("SCAN 99999"),
        Value::Array(vec![bulk("0"), Value::Array(vec![])])
    );
}

#[test]
fn scan_sees_every_key_present_throughout_despite_churn() {
    let mut t = T::new();
    for i in 0..500 {
        t.run(&format!("SET stable{i} v"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let Value::Array(parts) = t.run(&format!("SCAN {cursor} COUNT 30")) else {
            panic!()
        };
        let Value::BulkString(c) = &parts[0] else {
            panic!()
        };
        cursor = String::from_utf8_lossy(c).into_owned();
        seen.extend(sorted(parts[1].clone()));
        // Churn between calls: add and remove other keys.
        for j in 0..20 {
            t.run(&format!("SET churn{round}_{j} v"));
            t.run(&format!("DEL churn{}_{j}", round.max(1) - 1));
        }
        round += 1;
        if cursor == "0" {
            break;
        }
    }
    for i in 0..500 {
        assert!(seen.contains(&format!("stable{i}")), "stable{i} missed");
    }
}

#[test]
fn slot_index_tracks_creates_and_deletes() {
    let mut t = T::new();
    let slot = crate::slot::key_slot(b"{tag}a");
    t.run("SET {tag}a 1");
    t.run("RPUSH {tag}b x");
    t.run("SET {tag}a 2");
    assert_eq!(t.db.count_keys_in_slot(slot), 2);
    assert_eq!(t.db.keys_in_slot(slot, 1).len(), 1);
    assert_eq!(t.db.keys_in_slot(slot, 10).len(), 2);
    t.run("LPOP {tag}b");
    assert_eq!(t.db.count_keys_in_slot(slot), 1);
    t.run("RENAME {tag}a {tag}c");
    assert_eq!(
        t.db.keys_in_slot(slot, 10),
        vec![bytes::Bytes::from("{tag}c")]
    );
    t.run("SET other 1");
    assert_eq!(t.db.delete_keys_in_slot(slot), 1);
    assert_eq!(t.db.count_keys_in_slot(slot), 0);
    assert_eq!(t.run("DBSIZE"), int(1));
    assert_eq!(t.db.count_keys_in_slot(16384), 0);
}

/// What one string key costs in the map, guarded: the entry (value header, expiry, version,
/// slot place) and the inline key name. Growing either grows every key (see BENCHMARKS.md,
/// "Memory per key").
#[test]
fn a_string_entry_stays_small() {
    assert_eq!(std::mem::size_of::<super::super::Data>(), 40);
    assert_eq!(std::mem::size_of::<super::super::Entry>(), 64);
    assert_eq!(std::mem::size_of::<super::super::Key>(), 24);
}

/// Deletes move the map's last entry and a slot list's last position: after every kind of
/// delete (DEL, lazy and active expiry, a whole slot, RENAME, a flush) each slot lists
/// exactly its keys, long names (stored apart) and short ones (inline) alike.
#[test]
fn slot_and_ttl_indexes_survive_deletes_in_any_order() {
    let mut t = T::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let name = |i: u64| {
        let tag = ["a", "b", "c"][(i % 3) as usize];
        if i % 4 == 0 {
            format!("{{{tag}}}a-key-name-longer-than-22-bytes-{i}")
        } else {
            format!("{{{tag}}}{i}")
        }
    };
    for round in 0..2_000 {
        let i = next(300);
        match next(8) {
            0..=2 => t.run(&format!("SET {} v", name(i))),
            3 => t.run(&format!("SET {} v PX {}", name(i), 1 + next(50))),
            4 => t.run(&format!("DEL {} {}", name(i), name(next(300)))),
            5 => t.run(&format!("RENAME {} {}", name(i), name(next(300)))),
            6 => {
                t.now += next(20);
                t.run(&format!("GET {}", name(i)))
            }
            _ => Value::Integer(t.db.active_expire(t.now, 1 + next(5) as usize) as i64),
        };
        t.db.check_invariants();
        if round % 500 == 499 {
            let slot = crate::slot::key_slot(name(next(3)).as_bytes());
            let n = t.db.count_keys_in_slot(slot);
            assert_eq!(t.db.keys_in_slot(slot, usize::MAX).len(), n);
            assert_eq!(t.db.delete_keys_in_slot(slot), n);
            assert_eq!(t.db.count_keys_in_slot(slot), 0);
            t.db.check_invariants();
        }
    }
    let total: usize = ["{a}", "{b}", "{c}"]
        .iter()
        .map(|tag| {
            t.db.count_keys_in_slot(crate::slot::key_slot(tag.as_bytes()))
        })
        .sum();
    assert_eq!(total, t.db.stats().keys);
    t.run("FLUSHALL");
    t.db.check_invariants();
    assert_eq!(t.db.stats().keys, 0);
}

#[test]
fn version_changes_on_every_modification() {
    let mut t = T::new();
    assert_eq!(t.db.version_of(b"k", t.now), 0);
    t.run("SET k 1");
    let v1 = t.db.version_of(b"k", t.now);
    assert!(v1 > 0);
    t.run("GET k");
    assert_eq!(t.db.version_of(b"k", t.now), v1, "reads do not change it");
    t.run("INCR k");
    let v2 = t.db.version_of(b"k", t.now);
    assert_ne!(v2, v1);
    t.run("EXPIRE k 10");
    let v3 = t.db.version_of(b"k", t.now);
    assert_ne!(v3, v2);
    t.now += 11_000;
    assert_eq!(t.db.version_of(b"k", t.now), 0, "expired");
    t.run("SET k 1");
    assert!(![0, v1, v2, v3].contains(&t.db.version_of(b"k", t.now)));
    t.run("DEL k");
    assert_eq!(t.db.version_of(b"k", t.now), 0);
    t.run("HSET h f v");
    let h1 = t.db.version_of(b"h", t.now);
    t.run("HSET h g v");
    assert_ne!(t.db.version_of(b"h", t.now), h1);
}

#[test]
fn db_can_live_behind_a_mutex_shared_across_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<crate::server::db::Db>();
    assert_send::<crate::server::db::ExecCtx>();
}

#[test]
fn version_ignores_writes_that_changed_nothing() {
    let mut t = T::new();
    t.run("SADD s a");
    t.run("ZADD z 1 m");
    t.run("RPUSH l x");
    t.run("HSET h f v");
    let before: Vec<u64> = ["s", "z", "l", "h"]
        .iter()
        .map(|k| t.db.version_of(k.as_bytes(), t.now))
        .collect();
    for cmd in [
        "SREM s nope",
        "ZADD z 1 m",
        "LSET l 99 y",
        "LREM l 0 nope",
        "HDEL h nope",
        "LTRIM l 0 -1",
    ] {
        t.run(cmd);
    }
    let after: Vec<u64> = ["s", "z", "l", "h"]
        .iter()
        .map(|k| t.db.version_of(k.as_bytes(), t.now))
        .collect();
    assert_eq!(before, after);
    t.run("SREM s a");
    assert_eq!(t.db.version_of(b"s", t.now), 0);
    t.run("ZADD z 2 m");
    assert_ne!(t.db.version_of(b"z", t.now), before[1]);
}
