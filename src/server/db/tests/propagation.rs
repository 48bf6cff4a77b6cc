use super::{bulk, T};

#[test]
fn relative_expiries_become_absolute() {
    let mut t = T::new();
    let now = t.now;
    t.run("SET k v EX 10");
    t.run("SET k v PX 500 GET");
    t.run("SETEX s 5 v");
    t.run("PSETEX s 5 v");
    t.run("EXPIRE k 100");
    t.run("PEXPIRE k 100");
    t.run("EXPIREAT k 99999999999");
    t.run("GETEX k EX 7");
    t.run("GETEX k PERSIST");
    t.run("GETEX k PERSIST");
    t.run("SET k v KEEPTTL");
    assert_eq!(
        t.prop(),
        [
            format!("SET k v PXAT {}", now + 10_000),
            format!("SET k v PXAT {}", now + 500),
            format!("SET s v PXAT {}", now + 5_000),
            format!("SET s v PXAT {}", now + 5),
            format!("PEXPIREAT k {}", now + 100_000),
            format!("PEXPIREAT k {}", now + 100),
            "PEXPIREAT k 99999999999000".to_string(),
            format!("PEXPIREAT k {}", now + 7_000),
            "PERSIST k".to_string(),
            "SET k v KEEPTTL".to_string(),
        ]
    );
}

#[test]
fn non_deterministic_commands_are_rewritten() {
    let mut t = T::new();
    t.run("SET f 1.5");
    t.run("INCRBYFLOAT f 1");
    t.run("HINCRBYFLOAT h x 0.5");
    t.run("SADD s a b c");
    t.prop();
    let popped = t.run("SPOP s 2");
    let p = t.prop();
    assert_eq!(p.len(), 1);
    let mut words: Vec<&str> = p[0].split(' ').collect();
    assert_eq!(&words[..2], ["SREM", "s"]);
    let mut members = super::sorted(popped);
    words.drain(..2);
    words.sort();
    members.sort();
    assert_eq!(words, members);
    t.run("GETDEL f");
    assert_eq!(t.prop(), ["DEL f"]);
    t.run("SET k v");
    t.run("EXPIRE k -1");
    assert_eq!(t.prop(), ["SET k v", "DEL k"]);
}

#[test]
fn float_increments_propagate_as_sets() {
    let mut t = T::new();
    t.run("SET f 1.5");
    t.run("INCRBYFLOAT f 1");
    t.run("HINCRBYFLOAT h x 0.5");
    assert_eq!(t.prop(), ["SET f 1.5", "SET f 2.5 KEEPTTL", "HSET h x 0.5"]);
}

#[test]
fn no_ops_propagate_nothing() {
    let mut t = T::new();
    t.run("SET k v");
    t.run("SADD s a");
    t.run("HSET h f v");
    t.prop();
    for cmd in [
        "SET k x NX",
        "SET nope x XX",
        "DEL nope",
        "SADD s a",
        "SREM s zz",
        "HDEL h zz",
        "EXPIRE nope 10",
        "PERSIST k",
        "LPOP nope",
        "ZREM nope a",
        "GET k",
        "GETDEL nope",
        "SETNX k v",
        "MSETNX k v",
        "ZADD z XX 1 a",
        "INCR k",
        "GETEX k",
    ] {
        t.run(cmd);
        assert_eq!(t.prop(), Vec::<String>::new(), "{cmd}");
    }
}

#[test]
fn replaying_propagation_gives_an_identical_replica() {
    let mut p = T::new();
    let mut r = T::new();
    r.db.set_replica(true);
    let script = [
        "SET a 1 EX 100",
        "INCR a",
        "INCRBYFLOAT f 0.1",
        "APPEND s hello",
        "SETRANGE s 1 EL",
        "RPUSH l a b c d",
        "LPOP l",
        "LMOVE l l2 LEFT RIGHT",
        "LTRIM l 0 0",
        "HSET h a 1 b 2",
        "HINCRBY h a 5",
        "HINCRBYFLOAT h c 2.5",
        "HDEL h b",
        "SADD s1 a b c d e",
        "SPOP s1",
        "SPOP s1 2",
        "SINTERSTORE s2 s1 s1",
        "SMOVE s1 s3 a",
        "ZADD z 1 a 2 b 3 c",
        "ZINCRBY z 5 a",
        "ZPOPMIN z",
        "ZUNIONSTORE z2 1 z WEIGHTS 2",
        "ZREMRANGEBYSCORE z 0 2",
        "RENAME z2 z3",
        "COPY z3 z4",
        "EXPIRE z4 50",
        "GETEX a PX 1000",
        "SET x 1 PX 5",
        "PEXPIRE a 3",
        "RESTORE r 0 bad",
    ];
    for cmd in script {
        p.run(cmd);
        p.now += 1;
        r.now = p.now;
        for c in p.db.take_propagation() {
            r.args(&c);
        }
    }
    // Time passes; the primary expires keys and the replica follows its DELs.
    p.now += 10;
    r.now = p.now;
    p.db.active_expire(p.now, 100);
    for c in p.db.take_propagation() {
        r.args(&c);
    }
    assert_eq!(p.db.encode_snapshot().len(), r.db.encode_snapshot().len());
    let mut pk = super::sorted(p.run("KEYS *"));
    let mut rk = super::sorted(r.run("KEYS *"));
    pk.sort();
    rk.sort();
    assert_eq!(pk, rk);
    for k in &pk {
        assert_eq!(
            p.db.dump_key(k.as_bytes(), p.now),
            r.db.dump_key(k.as_bytes(), r.now),
            "{k}"
        );
        assert_eq!(
            p.run(&format!("PEXPIRETIME {k}")),
            r.run(&format!("PEXPIRETIME {k}")),
            "{k}"
        );
    }
    assert_eq!(r.db.stats(), p.db.stats());
    assert_eq!(r.run("GET f"), bulk("0.1"));
}

#[test]
fn store_commands_propagate_only_real_changes() {
    let mut t = T::new();
    t.run("SADD a 1 2");
    t.run("ZADD z 1 m");
    t.run("RPUSH l x y");
    t.prop();
    for cmd in [
        "SINTERSTORE d a nope",
        "ZINTERSTORE d 2 z nope",
        "ZRANGESTORE d z 5 10",
        "ZDIFFSTORE d 2 z z",
        "LTRIM l 0 -1",
        "LTRIM nope 0 1",
    ] {
        t.run(cmd);
        assert_eq!(t.prop(), Vec::<String>::new(), "{cmd}");
    }
    t.run("SUNIONSTORE d a");
    assert_eq!(t.prop(), ["SUNIONSTORE d a"]);
    t.run("SINTERSTORE d a nope");
    assert_eq!(t.prop(), ["SINTERSTORE d a nope"], "deleting d is a change");
    t.run("LTRIM l 0 0");
    assert_eq!(t.prop(), ["LTRIM l 0 0"]);
}
