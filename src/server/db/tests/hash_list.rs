use super::{arr, bulk, int, ok, sorted, T};
use crate::resp::Value;

#[test]
fn hash_basics_keep_insertion_order() {
    let mut t = T::new();
    assert_eq!(t.run("HSET h a 1 b 2"), int(2));
    assert_eq!(t.run("HSET h c 3 a 9"), int(1));
    t.err(
        "HSET h a",
        "ERR wrong number of arguments for 'hset' command",
    );
    t.err(
        "HSET h a 1 b",
        "ERR wrong number of arguments for 'hset' command",
    );
    assert_eq!(
        t.run("HGETALL h"),
        Value::Map(vec![
            (bulk("a"), bulk("9")),
            (bulk("b"), bulk("2")),
            (bulk("c"), bulk("3")),
        ])
    );
    assert_eq!(t.run("HKEYS h"), arr(&["a", "b", "c"]));
    assert_eq!(t.run("HVALS h"), arr(&["9", "2", "3"]));
    assert_eq!(t.run("HMSET h d 4"), ok());
    assert_eq!(t.run("HSETNX h d 5"), int(0));
    assert_eq!(t.run("HSETNX h e 5"), int(1));
    assert_eq!(t.run("HGET h a"), bulk("9"));
    assert_eq!(t.run("HGET h zz"), Value::Null);
    assert_eq!(
        t.run("HMGET h a zz"),
        Value::Array(vec![bulk("9"), Value::Null])
    );
    assert_eq!(t.run("HMGET nope a"), Value::Array(vec![Value::Null]));
    assert_eq!(t.run("HEXISTS h a"), int(1));
    assert_eq!(t.run("HEXISTS h zz"), int(0));
    assert_eq!(t.run("HLEN h"), int(5));
    assert_eq!(t.run("HSTRLEN h a"), int(1));
    assert_eq!(t.run("HDEL h a zz"), int(1));
    assert_eq!(t.run("HKEYS h"), arr(&["b", "c", "d", "e"]));
    assert_eq!(t.run("HDEL h b c d e"), int(4));
    assert_eq!(t.run("EXISTS h"), int(0), "empty hashes are deleted");
    assert_eq!(t.run("HGETALL nope"), Value::Map(vec![]));
    t.run("SET s x");
    t.err("HGET s a", "WRONGTYPE");
    t.err("HSET s a b", "WRONGTYPE");
}

#[test]
fn hash_counters() {
    let mut t = T::new();
    assert_eq!(t.run("HINCRBY h n 5"), int(5));
    assert_eq!(t.run("HINCRBY h n -10"), int(-5));
    t.err(
        "HINCRBY h n abc",
        "ERR value is not an integer or out of range",
    );
    t.run("HSET h s str m 9223372036854775807");
    t.err("HINCRBY h s 1", "ERR hash value is not an integer");
    t.err("HINCRBY h m 1", "ERR increment or decrement would overflow");
    assert_eq!(t.run("HINCRBYFLOAT h f 0.1"), bulk("0.1"));
    assert_eq!(t.run("HINCRBYFLOAT h f 0.2"), bulk("0.3"));
    t.err("HINCRBYFLOAT h s 1", "ERR hash value is not a float");
    t.err("HINCRBYFLOAT h f x", "ERR value is not a valid float");
}

#[test]
fn hscan_and_hrandfield() {
    let mut t = T::new();
    t.run("HSET h f1 a f2 b g c");
    assert_eq!(
        t.run("HSCAN h 0 MATCH f*"),
        Value::Array(vec![bulk("0"), arr(&["f1", "a", "f2", "b"])])
    );
    t.err("HSCAN h abc", "ERR invalid cursor");
    assert_eq!(t.run("HRANDFIELD nope"), Value::Null);
    assert_eq!(t.run("HRANDFIELD nope 3"), Value::Array(vec![]));
    assert_eq!(sorted(t.run("HRANDFIELD h 10")), ["f1", "f2", "g"]);
    let Value::Array(v) = t.run("HRANDFIELD h -10") else {
        panic!()
    };
    assert_eq!(v.len(), 10);
    let Value::Array(v) = t.run("HRANDFIELD h 2 WITHVALUES") else {
        panic!()
    };
    assert_eq!(v.len(), 4);
    t.resp3 = true;
    let Value::Array(v) = t.run("HRANDFIELD h 2 WITHVALUES") else {
        panic!()
    };
    assert!(v
        .iter()
        .all(|p| matches!(p, Value::Array(kv) if kv.len() == 2)));
    t.err("HRANDFIELD h 1 foo", "ERR syntax error");
}

#[test]
fn list_push_pop_range() {
    let mut t = T::new();
    assert_eq!(t.run("RPUSH l a b c"), int(3));
    assert_eq!(t.run("LPUSH l y z"), int(5));
    assert_eq!(t.run("LRANGE l 0 -1"), arr(&["z", "y", "a", "b", "c"]));
    assert_eq!(t.run("LRANGE l -2 -1"), arr(&["b", "c"]));
    assert_eq!(t.run("LRANGE l 5 1"), arr(&[]));
    assert_eq!(t.run("LRANGE l -100 100").clone(), t.run("LRANGE l 0 -1"));
    assert_eq!(t.run("LPUSHX nope a"), int(0));
    assert_eq!(t.run("EXISTS nope"), int(0));
    assert_eq!(t.run("RPUSHX l w"), int(6));
    assert_eq!(t.run("LLEN l"), int(6));
    assert_eq!(t.run("LINDEX l -1"), bulk("w"));
    assert_eq!(t.run("LINDEX l 100"), Value::Null);
    assert_eq!(t.run("LSET l 0 Z"), ok());
    t.err("LSET l 100 x", "ERR index out of range");
    t.err("LSET nope 0 x", "ERR no such key");
    assert_eq!(t.run("LPOP l"), bulk("Z"));
    assert_eq!(t.run("RPOP l 2"), arr(&["w", "c"]));
    assert_eq!(t.run("LPOP l 0"), arr(&[]));
    t.err("LPOP l -1", "ERR value is out of range, must be positive");
    assert_eq!(t.run("LPOP nope"), Value::Null);
    assert_eq!(t.run("LPOP nope 2"), Value::NullArray);
    assert_eq!(t.run("LPOP l 10"), arr(&["y", "a", "b"]));
    assert_eq!(t.run("EXISTS l"), int(0));
    t.run("SET s x");
    t.err("LPUSH s a", "WRONGTYPE");
    t.err("LRANGE s 0 1", "WRONGTYPE");
}

#[test]
fn list_edits() {
    let mut t = T::new();
    t.run("RPUSH r a b a c a");
    assert_eq!(t.run("LREM r 2 a"), int(2));
    assert_eq!(t.run("LRANGE r 0 -1"), arr(&["b", "c", "a"]));
    t.run("RPUSH r a a");
    assert_eq!(t.run("LREM r -1 a"), int(1));
    assert_eq!(t.run("LRANGE r 0 -1"), arr(&["b", "c", "a", "a"]));
    assert_eq!(t.run("LREM r 0 a"), int(2));
    t.run("RPUSH t 1 2 3 4 5");
    assert_eq!(t.run("LTRIM t 1 -2"), ok());
    assert_eq!(t.run("LRANGE t 0 -1"), arr(&["2", "3", "4"]));
    assert_eq!(t.run("LTRIM t 5 10"), ok());
    assert_eq!(t.run("EXISTS t"), int(0));
    t.run("RPUSH i a b c");
    assert_eq!(t.run("LINSERT i BEFORE b X"), int(4));
    assert_eq!(t.run("LINSERT i after c Y"), int(5));
    assert_eq!(t.run("LINSERT i AFTER zz Y"), int(-1));
    assert_eq!(t.run("LINSERT nope AFTER zz Y"), int(0));
    t.err("LINSERT i foo b X", "ERR syntax error");
    assert_eq!(t.run("LRANGE i 0 -1"), arr(&["a", "X", "b", "c", "Y"]));
}

#[test]
fn lpos_options() {
    let mut t = T::new();
    t.run("RPUSH p a b c a b c a");
    assert_eq!(t.run("LPOS p a"), int(0));
    assert_eq!(t.run("LPOS p a RANK 2"), int(3));
    assert_eq!(t.run("LPOS p a RANK -1"), int(6));
    let ints = |v: &[i64]| Value::Array(v.iter().map(|&n| int(n)).collect());
    assert_eq!(t.run("LPOS p a COUNT 0"), ints(&[0, 3, 6]));
    assert_eq!(t.run("LPOS p a COUNT 2 RANK 2"), ints(&[3, 6]));
    assert_eq!(t.run("LPOS p a COUNT 0 MAXLEN 3"), ints(&[0]));
    assert_eq!(t.run("LPOS p a RANK -1 MAXLEN 2"), int(6));
    assert_eq!(t.run("LPOS p b RANK -1 MAXLEN 2"), Value::Null);
    assert_eq!(t.run("LPOS p zz"), Value::Null);
    assert_eq!(t.run("LPOS p zz COUNT 1"), ints(&[]));
    assert_eq!(t.run("LPOS nope a"), Value::Null);
    t.err("LPOS p a RANK 0", "ERR RANK can't be zero");
    t.err("LPOS p a COUNT -1", "ERR COUNT can't be negative");
    t.err("LPOS p a MAXLEN -1", "ERR MAXLEN can't be negative");
    t.err("LPOS p a foo 1", "ERR syntax error");
    t.err("LPOS p a RANK", "ERR syntax error");
}

#[test]
fn lmove_and_rpoplpush() {
    let mut t = T::new();
    t.run("RPUSH a 1 2 3");
    assert_eq!(t.run("LMOVE a b LEFT RIGHT"), bulk("1"));
    assert_eq!(t.run("LMOVE a b right left"), bulk("3"));
    assert_eq!(t.run("LRANGE b 0 -1"), arr(&["3", "1"]));
    assert_eq!(t.run("LMOVE b b LEFT RIGHT"), bulk("3"));
    assert_eq!(t.run("LRANGE b 0 -1"), arr(&["1", "3"]));
    assert_eq!(t.run("LMOVE nope b LEFT LEFT"), Value::Null);
    t.err("LMOVE a b up LEFT", "ERR syntax error");
    t.run("SET s x");
    t.err("LMOVE a s LEFT LEFT", "WRONGTYPE");
    assert_eq!(
        t.run("LRANGE a 0 -1"),
        arr(&["2"]),
        "nothing popped on WRONGTYPE"
    );
    assert_eq!(t.run("RPOPLPUSH a b"), bulk("2"));
    assert_eq!(t.run("EXISTS a"), int(0));
    assert_eq!(t.run("LRANGE b 0 -1"), arr(&["2", "1", "3"]));
}
