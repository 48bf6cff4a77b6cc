use super::{arr, bulk, int, sorted, T};
use crate::resp::Value;

fn set(items: &[&str]) -> Value {
    Value::Set(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn set_basics() {
    let mut t = T::new();
    assert_eq!(t.run("SADD s 3 1 2"), int(3));
    assert_eq!(t.run("SADD s 2 4"), int(1));
    assert_eq!(
        t.run("SMEMBERS s"),
        set(&["1", "2", "3", "4"]),
        "intsets are sorted"
    );
    assert_eq!(t.run("SREM s 1 9"), int(1));
    assert_eq!(t.run("SISMEMBER s 2"), int(1));
    assert_eq!(t.run("SISMEMBER nope 2"), int(0));
    assert_eq!(
        t.run("SMISMEMBER s 2 9"),
        Value::Array(vec![int(1), int(0)])
    );
    assert_eq!(t.run("SCARD s"), int(3));
    assert_eq!(t.run("SMEMBERS nope"), set(&[]));
    assert_eq!(
        t.run("SSCAN s 0 MATCH [23]"),
        Value::Array(vec![bulk("0"), arr(&["2", "3"])])
    );
    t.run("SET str x");
    t.err("SADD str a", "WRONGTYPE");
    t.err("SINTER s str", "WRONGTYPE");
}

#[test]
fn set_random_and_pop() {
    let mut t = T::new();
    assert_eq!(t.run("SPOP nope"), Value::Null);
    assert_eq!(t.run("SPOP nope 2"), set(&[]));
    assert_eq!(t.run("SRANDMEMBER nope"), Value::Null);
    assert_eq!(t.run("SRANDMEMBER nope 2"), arr(&[]));
    t.run("SADD s a b c");
    assert_eq!(sorted(t.run("SRANDMEMBER s 10")), ["a", "b", "c"]);
    let Value::Array(v) = t.run("SRANDMEMBER s -7") else {
        panic!()
    };
    assert_eq!(v.len(), 7);
    assert!(matches!(t.run("SRANDMEMBER s"), Value::BulkString(_)));
    t.err("SPOP s -1", "ERR value is out of range, must be positive");
    let Value::Set(popped) = t.run("SPOP s 2") else {
        panic!()
    };
    assert_eq!(popped.len(), 2);
    assert_eq!(t.run("SCARD s"), int(1));
    assert!(matches!(t.run("SPOP s"), Value::BulkString(_)));
    assert_eq!(t.run("EXISTS s"), int(0));
}

#[test]
fn set_algebra() {
    let mut t = T::new();
    t.run("SADD a 1 2 3 4");
    t.run("SADD b 3 4 5");
    assert_eq!(t.run("SINTER a b"), set(&["3", "4"]));
    assert_eq!(t.run("SINTER a nope"), set(&[]));
    assert_eq!(t.run("SUNION a b nope"), set(&["1", "2", "3", "4", "5"]));
    assert_eq!(t.run("SDIFF a b"), set(&["1", "2"]));
    assert_eq!(t.run("SDIFF nope a"), set(&[]));
    assert_eq!(t.run("SINTERCARD 2 a b"), int(2));
    assert_eq!(t.run("SINTERCARD 2 a b LIMIT 1"), int(1));
    t.err("SINTERCARD 0 a", "ERR numkeys should be greater than 0");
    t.err(
        "SINTERCARD 3 a b",
        "ERR Number of keys can't be greater than number of args",
    );
    t.err("SINTERCARD 2 a b LIMIT -1", "ERR LIMIT can't be negative");
    t.err("SINTERCARD 2 a b foo", "ERR syntax error");
    assert_eq!(t.run("SINTERSTORE d a b"), int(2));
    assert_eq!(t.run("SMEMBERS d"), set(&["3", "4"]));
    assert_eq!(t.run("SUNIONSTORE d a b"), int(5));
    assert_eq!(t.run("SDIFFSTORE d a b"), int(2));
    assert_eq!(t.run("SMEMBERS d"), set(&["1", "2"]));
    assert_eq!(t.run("SINTERSTORE d a nope"), int(0));
    assert_eq!(t.run("EXISTS d"), int(0));
    assert_eq!(t.run("SMOVE a b 1"), int(1));
    assert_eq!(t.run("SMOVE a b 9"), int(0));
    assert_eq!(t.run("SMOVE a a 2"), int(1));
    assert_eq!(t.run("SMEMBERS b"), set(&["1", "3", "4", "5"]));
    t.run("SET str x");
    t.err("SMOVE a str 2", "WRONGTYPE");
    assert_eq!(t.run("SISMEMBER a 2"), int(1));
}

#[test]
fn zadd_flags() {
    let mut t = T::new();
    assert_eq!(t.run("ZADD z 1 a 2 b 3 c"), int(3));
    assert_eq!(t.run("ZADD z 1 a"), int(0));
    assert_eq!(t.run("ZADD z CH 5 a"), int(1));
    assert_eq!(t.run("ZADD z NX 6 a 4 d"), int(1));
    assert_eq!(t.run("ZSCORE z a"), bulk("5"));
    assert_eq!(t.run("ZADD z XX CH 7 a 8 e"), int(1));
    assert_eq!(t.run("ZSCORE z e"), Value::Null);
    assert_eq!(t.run("ZADD z GT CH 1 a"), int(0));
    assert_eq!(t.run("ZADD z LT CH 1 a"), int(1));
    assert_eq!(t.run("ZADD z INCR 2 a"), bulk("3"));
    assert_eq!(t.run("ZADD z NX INCR 2 a"), Value::Null);
    assert_eq!(t.run("ZADD z XX INCR 2 nope"), Value::Null);
    t.err(
        "ZADD z NX XX 1 a",
        "ERR XX and NX options at the same time are not compatible",
    );
    t.err(
        "ZADD z GT LT 1 a",
        "ERR GT, LT, and/or NX options at the same time are not compatible",
    );
    t.err("ZADD z NX GT 1 a", "ERR GT, LT, and/or NX");
    t.err(
        "ZADD z INCR 1 a 2 b",
        "ERR INCR option supports a single increment-element pair",
    );
    t.err("ZADD z 1 a 2", "ERR syntax error");
    t.err("ZADD z abc a", "ERR value is not a valid float");
    t.err("ZADD z nan a", "ERR value is not a valid float");
    t.run("ZADD inf +inf a");
    t.err(
        "ZADD inf INCR -inf a",
        "ERR resulting score is not a number (NaN)",
    );
    assert_eq!(t.run("ZSCORE inf a"), bulk("inf"));
    t.run("SET str x");
    t.err("ZADD str 1 a", "WRONGTYPE");
}

#[test]
fn zset_scores_are_formatted_like_redis_7_0() {
    let mut t = T::new();
    t.run("ZADD z 0.1 a 2.5e1 b 1e20 c");
    assert_eq!(t.run("ZSCORE z a"), bulk("0.10000000000000001"));
    assert_eq!(t.run("ZSCORE z b"), bulk("25"));
    assert_eq!(t.run("ZSCORE z c"), bulk("1e+20"));
    assert_eq!(
        t.run("ZMSCORE z a nope"),
        Value::Array(vec![bulk("0.10000000000000001"), Value::Null])
    );
    t.resp3 = true;
    assert_eq!(t.run("ZSCORE z b"), Value::Double(25.0));
    assert_eq!(t.run("ZINCRBY z 1 b"), Value::Double(26.0));
    assert_eq!(
        t.run("ZRANGE z 1 1 WITHSCORES"),
        Value::Array(vec![Value::Array(vec![bulk("b"), Value::Double(26.0)])])
    );
    assert_eq!(
        t.run("ZPOPMIN z"),
        Value::Array(vec![bulk("a"), Value::Double(0.1)])
    );
    assert_eq!(
        t.run("ZPOPMIN z 1"),
        Value::Array(vec![Value::Array(vec![bulk("b"), Value::Double(26.0)])])
    );
}

#[test]
fn zset_ranges() {
    let mut t = T::new();
    t.run("ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(t.run("ZRANGE z 0 -1"), arr(&["a", "b", "c", "d"]));
    assert_eq!(t.run("ZRANGE z 0 1 WITHSCORES"), arr(&["a", "1", "b", "2"]));
    assert_eq!(t.run("ZRANGE z 0 1 REV"), arr(&["d", "c"]));
    assert_eq!(t.run("ZRANGE z (1 3 BYSCORE"), arr(&["b", "c"]));
    assert_eq!(t.run("ZRANGE z 3 0 BYSCORE REV"), arr(&["c", "b", "a"]));
    assert_eq!(
        t.run("ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2"),
        arr(&["c", "b"])
    );
    t.err(
        "ZRANGE z 0 -1 LIMIT 0 1",
        "ERR syntax error, LIMIT is only supported",
    );
    t.err(
        "ZRANGE z a b BYLEX WITHSCORES",
        "ERR syntax error, WITHSCORES not supported",
    );
    t.err("ZRANGE z a b BYSCORE", "ERR min or max is not a float");
    assert_eq!(
        t.run("ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 1 1"),
        arr(&["b", "2"])
    );
    assert_eq!(t.run("ZREVRANGEBYSCORE z 4 (2"), arr(&["d", "c"]));
    assert_eq!(t.run("ZREVRANGE z 0 1"), arr(&["d", "c"]));
    assert_eq!(t.run("ZCOUNT z (1 4"), int(3));
    t.err("ZCOUNT z a b", "ERR min or max is not a float");
    assert_eq!(t.run("ZRANK z c"), int(2));
    assert_eq!(t.run("ZREVRANK z c"), int(1));
    assert_eq!(t.run("ZRANK z nope"), Value::Null);
    assert_eq!(t.run("ZCARD z"), int(4));
    t.run("ZADD lex 0 a 0 b 0 c 0 d 0 e");
    assert_eq!(t.run("ZRANGEBYLEX lex [b (d"), arr(&["b", "c"]));
    assert_eq!(t.run("ZRANGEBYLEX lex (b [d LIMIT 1 1"), arr(&["d"]));
    assert_eq!(t.run("ZREVRANGEBYLEX lex [d (a"), arr(&["d", "c", "b"]));
    assert_eq!(
        t.run("ZRANGE lex - + BYLEX"),
        arr(&["a", "b", "c", "d", "e"])
    );
    t.err(
        "ZRANGEBYLEX lex a b",
        "ERR min or max not valid string range item",
    );
    assert_eq!(t.run("ZLEXCOUNT lex [b [c"), int(2));
    assert_eq!(t.run("ZREMRANGEBYLEX lex [a [b"), int(2));
    assert_eq!(t.run("ZREMRANGEBYRANK lex 0 0"), int(1));
    assert_eq!(t.run("ZRANGE lex 0 -1"), arr(&["d", "e"]));
    assert_eq!(t.run("ZREMRANGEBYSCORE z 2 3"), int(2));
    assert_eq!(t.run("ZREM z a d nope"), int(2));
    assert_eq!(t.run("EXISTS z"), int(0));
}

#[test]
fn zset_pop_store_random_scan() {
    let mut t = T::new();
    t.run("ZADD z 1 x 2 y 3 w");
    assert_eq!(t.run("ZPOPMIN z 2"), arr(&["x", "1", "y", "2"]));
    assert_eq!(t.run("ZPOPMAX z"), arr(&["w", "3"]));
    assert_eq!(t.run("ZPOPMIN nope"), arr(&[]));
    t.err(
        "ZPOPMAX z -1",
        "ERR value is out of range, must be positive",
    );
    t.run("ZADD u1 1 a 2 b");
    t.run("ZADD u2 3 b 4 c");
    t.run("SADD us a c");
    assert_eq!(t.run("ZUNIONSTORE d 2 u1 u2"), int(3));
    assert_eq!(
        t.run("ZRANGE d 0 -1 WITHSCORES"),
        arr(&["a", "1", "c", "4", "b", "5"])
    );
    assert_eq!(
        t.run("ZUNIONSTORE d 2 u1 u2 WEIGHTS 2 3 AGGREGATE MAX"),
        int(3)
    );
    assert_eq!(
        t.run("ZRANGE d 0 -1 WITHSCORES"),
        arr(&["a", "2", "b", "9", "c", "12"])
    );
    assert_eq!(t.run("ZINTERSTORE d 2 u1 u2"), int(1));
    assert_eq!(t.run("ZINTERSTORE d 2 u1 us AGGREGATE MIN"), int(1));
    assert_eq!(t.run("ZRANGE d 0 -1 WITHSCORES"), arr(&["a", "1"]));
    assert_eq!(t.run("ZINTERSTORE d 2 u1 nope"), int(0));
    assert_eq!(t.run("EXISTS d"), int(0));
    t.err(
        "ZUNIONSTORE d 0 u1",
        "ERR at least 1 input key is needed for 'zunionstore' command",
    );
    t.err("ZUNIONSTORE d 3 u1", "ERR syntax error");
    t.err(
        "ZUNIONSTORE d 1 u1 WEIGHTS x",
        "ERR weight value is not a float",
    );
    t.err("ZUNIONSTORE d 1 u1 AGGREGATE foo", "ERR syntax error");
    t.run("SET str x");
    t.err("ZUNIONSTORE d 1 str", "WRONGTYPE");
    assert_eq!(t.run("ZRANDMEMBER nope"), Value::Null);
    assert_eq!(t.run("ZRANDMEMBER nope 1"), arr(&[]));
    assert_eq!(sorted(t.run("ZRANDMEMBER u1 5")), ["a", "b"]);
    let Value::Array(v) = t.run("ZRANDMEMBER u1 -3 WITHSCORES") else {
        panic!()
    };
    assert_eq!(v.len(), 6, "three repeats, each with its score");
    assert_eq!(
        t.run("ZSCAN u1 0"),
        Value::Array(vec![bulk("0"), arr(&["a", "1", "b", "2"])])
    );
}

#[test]
fn huge_repeated_random_counts_are_refused_not_fatal() {
    let mut t = T::new();
    t.run("SADD s a");
    t.run("HSET h f v");
    t.run("ZADD z 1 a");
    t.err(
        "SRANDMEMBER s -4611686018427387904",
        "ERR value is out of range",
    );
    t.err("SRANDMEMBER s -100000000000", "ERR value is out of range");
    t.err("HRANDFIELD h -100000000000", "ERR value is out of range");
    t.err("ZRANDMEMBER z -100000000000", "ERR value is out of range");
    // Large positive counts are bounded by the set's size.
    assert_eq!(
        t.run("SRANDMEMBER s 9223372036854775807"),
        super::arr(&["a"])
    );
}

#[test]
fn zset_algebra_read_forms_and_rangestore() {
    let mut t = T::new();
    t.run("ZADD a 1 x 2 y");
    t.run("ZADD b 5 y 1 z");
    assert_eq!(
        t.run("ZUNION 2 a b WITHSCORES"),
        arr(&["x", "1", "z", "1", "y", "7"])
    );
    assert_eq!(
        t.run("ZINTER 2 a b WEIGHTS 2 1 AGGREGATE MAX WITHSCORES"),
        arr(&["y", "5"])
    );
    assert_eq!(t.run("ZDIFF 2 a b WITHSCORES"), arr(&["x", "1"]));
    t.err("ZDIFF 1 a WEIGHTS 1", "ERR syntax error");
    t.err(
        "ZUNION 0 a",
        "ERR at least 1 input key is needed for 'zunion' command",
    );
    t.err(
        "ZINTERCARD 0 a",
        "ERR at least 1 input key is needed for 'zintercard' command",
    );
    t.err("ZINTERCARD 3 a b", "ERR syntax error");
    assert_eq!(t.run("ZINTERCARD 2 a b"), int(1));
    assert_eq!(t.run("ZDIFFSTORE d 2 a b"), int(1));
    assert_eq!(t.run("ZDIFFSTORE d 2 a a"), int(0));
    assert_eq!(t.run("EXISTS d"), int(0));
    assert_eq!(t.run("ZRANGESTORE d a 0 (2 BYSCORE"), int(1));
    assert_eq!(t.run("ZRANGE d 0 -1"), arr(&["x"]));
    t.err("ZRANGESTORE d a 0 -1 WITHSCORES", "ERR syntax error");
    assert_eq!(t.run("ZRANGESTORE d a 5 10"), int(0));
    assert_eq!(t.run("EXISTS d"), int(0));
    t.resp3 = true;
    assert_eq!(
        t.run("ZUNION 1 a WITHSCORES"),
        Value::Array(vec![
            Value::Array(vec![bulk("x"), Value::Double(1.0)]),
            Value::Array(vec![bulk("y"), Value::Double(2.0)]),
        ])
    );
}

#[test]
fn mpop_commands_and_their_propagation() {
    let mut t = T::new();
    t.run("RPUSH l 1 2 3");
    t.run("ZADD z 1 a 2 b");
    t.prop();
    assert_eq!(
        t.run("LMPOP 2 nope l LEFT COUNT 2"),
        Value::Array(vec![bulk("l"), arr(&["1", "2"])])
    );
    assert_eq!(t.prop(), ["LPOP l 2"]);
    assert_eq!(t.run("LMPOP 1 nope RIGHT"), Value::NullArray);
    t.err("LMPOP 1 l middle", "ERR syntax error");
    t.err(
        "LMPOP 1 l LEFT COUNT 0",
        "ERR count should be greater than 0",
    );
    t.err("LMPOP 0 l LEFT", "ERR numkeys should be greater than 0");
    t.err("LMPOP 2 l LEFT", "ERR syntax error");
    t.err("LMPOP 1 l LEFT COUNT 1 COUNT 2", "ERR syntax error");
    assert_eq!(
        t.run("ZMPOP 1 z MAX COUNT 5"),
        Value::Array(vec![
            bulk("z"),
            Value::Array(vec![arr(&["b", "2"]), arr(&["a", "1"])])
        ])
    );
    assert_eq!(t.prop(), ["ZPOPMAX z 2"]);
    assert_eq!(t.run("EXISTS z"), int(0));
    assert_eq!(t.run("ZMPOP 1 z MIN"), Value::NullArray);
}
