use super::{bulk, int, ok, T};
use crate::resp::Value;

#[test]
fn set_get_and_options() {
    let mut t = T::new();
    assert_eq!(t.run("GET k"), Value::Null);
    assert_eq!(t.run("set k v"), ok());
    assert_eq!(t.run("get k"), bulk("v"));
    assert_eq!(t.run("SET k v2 NX"), Value::Null);
    assert_eq!(t.run("SET k v2 XX GET"), bulk("v"));
    assert_eq!(t.run("get k"), bulk("v2"));
    assert_eq!(t.run("SET nk v XX"), Value::Null);
    assert_eq!(t.run("exists nk"), int(0));
    assert_eq!(t.run("SET nk v NX GET"), Value::Null);
    assert_eq!(t.run("get nk"), bulk("v"));
    t.err("SET k v NX XX", "ERR syntax error");
    t.err("SET k v EX 10 PX 10", "ERR syntax error");
    t.err("SET k v KEEPTTL EX 10", "ERR syntax error");
    t.err("SET k v EX", "ERR syntax error");
    t.err("SET k v EX 0", "ERR invalid expire time in 'set' command");
    t.err(
        "SET k v EX abc",
        "ERR value is not an integer or out of range",
    );
    t.err("SET k v PX 9223372036854775807", "ERR invalid expire time");
    assert_eq!(t.run("SET k v EX 100"), ok());
    assert_eq!(t.run("TTL k"), int(100));
    assert_eq!(t.run("SET k v KEEPTTL"), ok());
    assert_eq!(t.run("TTL k"), int(100));
    assert_eq!(t.run("SET k v"), ok());
    assert_eq!(t.run("TTL k"), int(-1));
    assert_eq!(t.run(&format!("SET k v PXAT {}", t.now + 5000)), ok());
    assert_eq!(t.run("PTTL k"), int(5000));
    assert_eq!(t.run(&format!("SET k v EXAT {}", t.now / 1000 + 7)), ok());
    assert!(matches!(t.run("TTL k"), Value::Integer(6..=7)));
    t.run("LPUSH l a");
    t.err("SET l v GET", "WRONGTYPE");
    assert_eq!(t.run("SET l v"), ok());
    assert_eq!(t.run("TYPE l"), Value::simple("string"));
}

#[test]
fn multi_key_and_setnx_family() {
    let mut t = T::new();
    assert_eq!(t.run("MSET a 1 b 2"), ok());
    t.err(
        "MSET a 1 b",
        "ERR wrong number of arguments for 'mset' command",
    );
    t.run("LPUSH l x");
    assert_eq!(
        t.run("MGET a nope b l"),
        Value::Array(vec![bulk("1"), Value::Null, bulk("2"), Value::Null])
    );
    assert_eq!(t.run("MSETNX a 9 c 3"), int(0));
    assert_eq!(t.run("EXISTS c"), int(0));
    assert_eq!(t.run("MSETNX c 3 d 4"), int(1));
    assert_eq!(t.run("SETNX c x"), int(0));
    assert_eq!(t.run("SETNX e x"), int(1));
    assert_eq!(t.run("SETEX s 100 v"), ok());
    assert_eq!(t.run("TTL s"), int(100));
    t.err("SETEX s 0 v", "ERR invalid expire time in 'setex' command");
    t.err(
        "PSETEX s -5 v",
        "ERR invalid expire time in 'psetex' command",
    );
    assert_eq!(t.run("PSETEX s 1500 v"), ok());
    assert_eq!(t.run("PTTL s"), int(1500));
    assert_eq!(t.run("GETSET s new"), bulk("v"));
    assert_eq!(t.run("TTL s"), int(-1));
    assert_eq!(t.run("GETSET nope v"), Value::Null);
    assert_eq!(t.run("GETDEL s"), bulk("new"));
    assert_eq!(t.run("GETDEL s"), Value::Null);
    t.err("GETDEL l", "WRONGTYPE");
}

#[test]
fn counters() {
    let mut t = T::new();
    assert_eq!(t.run("INCR n"), int(1));
    assert_eq!(t.run("INCRBY n 10"), int(11));
    assert_eq!(t.run("DECR n"), int(10));
    assert_eq!(t.run("DECRBY n 4"), int(6));
    assert_eq!(t.run("INCRBY n -6"), int(0));
    t.err(
        "INCRBY n abc",
        "ERR value is not an integer or out of range",
    );
    for bad in ["01", "+1", "-0", "1.0", "1e3", "99999999999999999999"] {
        t.err(&format!("INCRBY n {bad}"), "ERR value is not an integer");
    }
    t.run("SET s hello");
    t.err("INCR s", "ERR value is not an integer or out of range");
    t.run("SET m 9223372036854775807");
    t.err("INCR m", "ERR increment or decrement would overflow");
    t.run("SET m -9223372036854775808");
    t.err("DECR m", "ERR increment or decrement would overflow");
    t.err(
        "DECRBY m -9223372036854775808",
        "ERR decrement would overflow",
    );
    t.run("LPUSH l a");
    t.err("INCR l", "WRONGTYPE");
    // INCR keeps the TTL.
    t.run("SET e 5 EX 100");
    assert_eq!(t.run("INCR e"), int(6));
    assert_eq!(t.run("TTL e"), int(100));
}

#[test]
fn float_counters() {
    let mut t = T::new();
    t.run("SET f 10.5");
    assert_eq!(t.run("INCRBYFLOAT f 0.1"), bulk("10.6"));
    assert_eq!(t.run("INCRBYFLOAT f -5"), bulk("5.6"));
    t.run("SET f 0.1");
    assert_eq!(t.run("INCRBYFLOAT f 0.2"), bulk("0.3"));
    assert_eq!(t.run("INCRBYFLOAT nf 3"), bulk("3"));
    assert_eq!(t.run("INCRBYFLOAT nf 1.5e3"), bulk("1503"));
    t.err("INCRBYFLOAT f abc", "ERR value is not a valid float");
    t.err("INCRBYFLOAT f nan", "ERR value is not a valid float");
    t.run("SET s hello");
    t.err("INCRBYFLOAT s 1", "ERR value is not a valid float");
    t.run("SET big 1.7e308");
    t.err(
        "INCRBYFLOAT big 1.7e308",
        "ERR increment would produce NaN or Infinity",
    );
    t.run("LPUSH l a");
    t.err("INCRBYFLOAT l 1", "WRONGTYPE");
}

#[test]
fn append_ranges_and_lengths() {
    let mut t = T::new();
    assert_eq!(t.run("APPEND k hello"), int(5));
    assert_eq!(t.run("APPEND k _world"), int(11));
    assert_eq!(t.run("GET k"), bulk("hello_world"));
    assert_eq!(t.run("STRLEN k"), int(11));
    assert_eq!(t.run("STRLEN nope"), int(0));
    assert_eq!(t.run("GETRANGE k 0 4"), bulk("hello"));
    assert_eq!(t.run("GETRANGE k -5 -1"), bulk("world"));
    assert_eq!(t.run("GETRANGE k -1 -3"), bulk(""));
    assert_eq!(t.run("GETRANGE k 20 30"), bulk(""));
    assert_eq!(t.run("GETRANGE k 0 100"), bulk("hello_world"));
    assert_eq!(t.run("SUBSTR k 6 100"), bulk("world"));
    assert_eq!(t.run("GETRANGE nope 0 1"), bulk(""));
    assert_eq!(t.run("SETRANGE k 6 WORLD"), int(11));
    assert_eq!(t.run("GET k"), bulk("hello_WORLD"));
    assert_eq!(t.run("SETRANGE pad 3 ab"), int(5));
    assert_eq!(t.run("GET pad"), bulk("\0\0\0ab"));
    assert_eq!(t.run("SETRANGE empty 0 "), int(0));
    assert_eq!(t.run("EXISTS empty"), int(0));
    t.err("SETRANGE k -1 x", "ERR offset is out of range");
    t.err(
        "SETRANGE k 536870912 x",
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
    );
    t.run("LPUSH l a");
    t.err("APPEND l x", "WRONGTYPE");
    t.err("STRLEN l", "WRONGTYPE");
}

#[test]
fn getex_options() {
    let mut t = T::new();
    t.run("SET k v");
    assert_eq!(t.run("GETEX k"), bulk("v"));
    assert_eq!(t.run("GETEX k EX 50"), bulk("v"));
    assert_eq!(t.run("TTL k"), int(50));
    assert_eq!(t.run("GETEX k PX 5000"), bulk("v"));
    assert_eq!(t.run("PTTL k"), int(5000));
    assert_eq!(t.run("GETEX k PERSIST"), bulk("v"));
    assert_eq!(t.run("TTL k"), int(-1));
    assert_eq!(t.run(&format!("GETEX k PXAT {}", t.now + 100)), bulk("v"));
    assert_eq!(t.run("PTTL k"), int(100));
    t.err("GETEX k foo", "ERR syntax error");
    t.err("GETEX k PERSIST EX 10", "ERR syntax error");
    t.err("GETEX k EX 0", "ERR invalid expire time in 'getex' command");
    assert_eq!(t.run("GETEX nope EX 10"), Value::Null);
    t.run("SADD s a");
    t.err("GETEX s", "WRONGTYPE");
    // An absolute time in the past deletes the key.
    assert_eq!(t.run("GETEX k PXAT 1"), bulk("v"));
    assert_eq!(t.run("EXISTS k"), int(0));
}

#[test]
fn wrong_arity_and_unknown_commands_are_errors_not_panics() {
    let mut t = T::new();
    t.err("GET", "ERR wrong number of arguments for 'get' command");
    t.err("SET k", "ERR wrong number of arguments for 'set' command");
    t.err("get a b", "ERR wrong number of arguments for 'get' command");
    t.err("NOSUCHCMD a", "ERR unknown command");
    assert_eq!(t.args(&[]), Value::error("ERR empty command"));
    assert!(super::Db::supports(b"gEt"));
    assert!(super::Db::supports(b"ZRANGEBYSCORE"));
    assert!(!super::Db::supports(b"blpop"));
    assert!(!super::Db::supports(b"averyveryverylongcommandname"));
    assert_eq!(t.run("mget a"), Value::Array(vec![Value::Null]));
}

#[test]
fn bit_commands() {
    let mut t = T::new();
    assert_eq!(t.run("SETBIT b 7 1"), int(0));
    assert_eq!(t.run("SETBIT b 7 1"), int(1));
    assert_eq!(t.run("SETBIT b 12 1"), int(0));
    assert_eq!(t.run("GET b"), bulk("\x01\x08"));
    t.err(
        "SETBIT b -1 1",
        "ERR bit offset is not an integer or out of range",
    );
    t.err(
        "SETBIT b 4294967296 1",
        "ERR bit offset is not an integer or out of range",
    );
    t.err("SETBIT b 1 2", "ERR bit is not an integer or out of range");
    assert_eq!(t.run("GETBIT b 7"), int(1));
    assert_eq!(t.run("GETBIT b 100"), int(0));
    assert_eq!(t.run("GETBIT nope 0"), int(0));
    assert_eq!(t.run("BITCOUNT b"), int(2));
    assert_eq!(t.run("BITCOUNT b 1 1 BYTE"), int(1));
    assert_eq!(t.run("BITCOUNT b 0 8 BIT"), int(1));
    assert_eq!(t.run("BITCOUNT b -1 -1"), int(1));
    assert_eq!(t.run("BITCOUNT nope"), int(0));
    assert_eq!(t.run("BITCOUNT b -1 -3"), int(0));
    assert_eq!(t.run("BITPOS b 1 -2 -100"), int(7));
    t.err("BITCOUNT b 0", "ERR syntax error");
    t.err("BITCOUNT b 0 1 foo", "ERR syntax error");
    assert_eq!(t.run("BITPOS b 1"), int(7));
    assert_eq!(t.run("BITPOS b 1 1"), int(12));
    assert_eq!(t.run("BITPOS b 1 2"), int(-1));
    assert_eq!(t.run("BITPOS b 1 8 20 BIT"), int(12));
    assert_eq!(t.run("BITPOS nope 0"), int(0));
    assert_eq!(t.run("BITPOS nope 1"), int(-1));
    t.err("BITPOS b 2", "ERR The bit argument must be 1 or 0.");
    t.run("SET ones \u{7f}");
    t.args(&[
        bytes::Bytes::from("SET"),
        bytes::Bytes::from("ff"),
        bytes::Bytes::from(vec![0xffu8; 40]),
    ]);
    assert_eq!(
        t.run("BITPOS ff 0"),
        int(320),
        "padding bit after the string"
    );
    assert_eq!(
        t.run("BITPOS ff 0 0 -1"),
        int(-1),
        "explicit end: not found"
    );
    assert_eq!(t.run("BITCOUNT ff 3 321 BIT"), int(317));
    t.run("LPUSH l a");
    t.err("SETBIT l 1 1", "WRONGTYPE");
}
