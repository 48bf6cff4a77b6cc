use super::{bulk, int, T};
use crate::resp::Value;

#[test]
fn lazy_expiry_on_primary_deletes_and_propagates_del() {
    let mut t = T::new();
    t.run("SET k v PX 100");
    t.run("SET p v");
    t.prop();
    t.now += 99;
    assert_eq!(t.run("GET k"), bulk("v"));
    t.now += 1;
    assert_eq!(t.run("DBSIZE"), int(1), "expired keys are not counted");
    assert_eq!(t.db.stats().keys, 2, "but still stored until touched");
    assert_eq!(t.run("GET k"), Value::Null);
    assert_eq!(t.prop(), ["DEL k"]);
    assert_eq!(t.db.stats().keys, 1);
    assert_eq!(t.db.stats().expires, 0);
    assert_eq!(t.run("TTL k"), int(-2));
    assert!(t.prop().is_empty(), "nothing left to delete");
}

#[test]
fn writes_see_expired_keys_as_absent() {
    let mut t = T::new();
    t.run("RPUSH l a b");
    t.run("PEXPIRE l 10");
    t.run("SET n 5 PX 10");
    t.now += 10;
    assert_eq!(t.run("RPUSH l c"), int(1));
    assert_eq!(t.run("TTL l"), int(-1));
    assert_eq!(t.run("INCR n"), int(1));
    assert_eq!(t.run("SET x 1 PX 5"), Value::ok());
    t.now += 5;
    assert_eq!(t.run("SET x 2 NX"), Value::ok());
    assert_eq!(t.run("EXISTS x"), int(1));
}

#[test]
fn active_expiry_deletes_in_batches_and_propagates() {
    let mut t = T::new();
    for i in 0..50 {
        t.run(&format!("SET k{i} v PX {}", 10 + i));
    }
    t.run("SET keep v");
    t.run("SET later v EX 1000");
    t.prop();
    t.now += 30; // k0..k20 expired (expire_at <= now)
    assert_eq!(t.db.active_expire(t.now, 5), 5);
    assert_eq!(t.db.active_expire(t.now, 1000), 16);
    assert_eq!(t.db.active_expire(t.now, 1000), 0);
    let dels = t.prop();
    assert_eq!(dels.len(), 21);
    assert!(dels.iter().all(|d| d.starts_with("DEL k")));
    assert_eq!(t.run("DBSIZE"), int(31));
    assert_eq!(t.db.stats().expires, 30);
}

#[test]
fn an_expiry_cycle_runs_until_no_expired_key_is_left_or_its_time_is_up() {
    let mut t = T::new();
    for i in 0..1000 {
        t.run(&format!("SET k{i} v PX 10"));
    }
    t.run("SET later v EX 1000");
    t.prop();
    t.now += 10;
    let past = std::time::Instant::now();
    assert!(
        t.db.active_expire_until(t.now, past),
        "out of time, keys remain"
    );
    assert_eq!(
        t.db.stats().keys,
        1001 - 16,
        "one batch of 16 per time check"
    );
    let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
    assert!(
        !t.db.active_expire_until(t.now, later),
        "all expired keys gone"
    );
    assert_eq!(t.db.stats().keys, 1);
    assert_eq!(t.db.expired_keys(), 1000);
    assert_eq!(t.prop().len(), 1000);
}

#[test]
fn replica_hides_expired_keys_but_never_deletes_them() {
    let mut t = T::new();
    t.db.set_replica(true);
    t.run("SET k v PX 100");
    t.run("SET n 1 PX 100");
    t.prop();
    t.now += 100;
    assert_eq!(t.run("GET k"), Value::Null);
    assert_eq!(t.run("EXISTS k"), int(0));
    assert_eq!(t.run("TTL k"), int(-2));
    assert_eq!(t.run("DBSIZE"), int(0));
    assert_eq!(t.db.active_expire(t.now, 100), 0);
    assert_eq!(t.db.stats().keys, 2, "still stored");
    assert!(t.prop().iter().all(|p| !p.starts_with("DEL")));
    // The primary's stream still applies to the (logically expired) key.
    assert_eq!(t.run("INCR n"), int(2));
    // ... and the primary's DEL removes it.
    assert_eq!(t.run("DEL k"), int(1));
    t.db.set_replica(false);
    assert_eq!(t.run("GET k"), Value::Null);
    assert_eq!(t.db.stats().keys, 1);
}

#[test]
fn replica_keeps_already_expired_writes_from_primary() {
    let mut t = T::new();
    t.db.set_replica(true);
    let past = t.now - 10;
    t.run(&format!("SET k v PXAT {past}"));
    assert_eq!(t.db.stats().keys, 1);
    assert_eq!(t.run("GET k"), Value::Null);
    t.run("SET j v");
    t.run(&format!("PEXPIREAT j {past}"));
    assert_eq!(
        t.db.stats().keys,
        2,
        "a replica waits for the primary's DEL"
    );
}

#[test]
fn expired_keys_are_invisible_to_reads_of_every_type() {
    let mut t = T::new();
    t.run("HSET h f v");
    t.run("SADD s m");
    t.run("ZADD z 1 m");
    t.run("RPUSH l a");
    for k in ["h", "s", "z", "l"] {
        t.run(&format!("PEXPIRE {k} 1"));
    }
    t.now += 1;
    assert_eq!(t.run("HGET h f"), Value::Null);
    assert_eq!(t.run("SCARD s"), int(0));
    assert_eq!(t.run("ZSCORE z m"), Value::Null);
    assert_eq!(t.run("LLEN l"), int(0));
    assert_eq!(t.run("KEYS *"), Value::Array(vec![]));
    assert_eq!(t.db.dump_key(b"h", t.now), None);
}
