//! The command table's lookups and [`classify`] over the commands whose keys, timeouts or
//! routing are easy to get wrong. Expected keys are what a real Redis 7.0 answers to
//! `COMMAND GETKEYS` for the same arguments.

use super::*;
use crate::slot::key_slot;

fn words(cmd: &str) -> Vec<&[u8]> {
    cmd.split(' ')
        .map(|w| if w == "\"\"" { "" } else { w })
        .map(str::as_bytes)
        .collect()
}

/// The keys classify finds, as text.
fn keys(cmd: &str) -> Vec<String> {
    let args = words(cmd);
    let class = classify(&args[..]);
    class
        .keys
        .iter()
        .map(|i| String::from_utf8(args[i].to_vec()).unwrap())
        .collect()
}

fn class(cmd: &str) -> Class {
    classify(&words(cmd)[..])
}

#[test]
fn lookup_ignores_case_and_finds_subcommands() {
    assert_eq!(lookup(b"gEt").unwrap().name, "get");
    assert!(lookup(b"nosuchcommand").is_none());
    let spec = lookup_args(&["CLUSTER", "slots"]).unwrap();
    assert_eq!(spec.name, "cluster|slots");
    assert!(lookup(b"SET").unwrap().is_write());
    assert!(lookup(b"get").unwrap().arity_ok(2));
    assert!(!lookup(b"get").unwrap().arity_ok(3));
    assert!(lookup(b"mset").unwrap().arity_ok(5));
    assert!(!lookup(b"mset").unwrap().arity_ok(2));
    assert!(all().windows(2).all(|w| w[0].name < w[1].name));
}

#[test]
fn key_specs_find_keys_like_command_getkeys() {
    let ks = |cmd: &str| {
        let args = words(cmd);
        let spec = lookup_args(&args).unwrap();
        key_indexes(spec, &args[..])
            .into_iter()
            .map(|i| String::from_utf8(args[i].to_vec()).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ks("MSET a 1 b 2"), ["a", "b"]);
    assert_eq!(ks("EVAL s 0 arg"), Vec::<String>::new());
    assert_eq!(ks("LMOVE a b LEFT RIGHT"), ["a", "b"]);
}

#[test]
fn classify_finds_keys_like_command_getkeys() {
    let none = Vec::<String>::new();
    assert_eq!(keys("GET a"), ["a"]);
    assert_eq!(keys("MSET a 1 b 2"), ["a", "b"]);
    assert_eq!(keys("MGET a b c"), ["a", "b", "c"]);
    assert_eq!(keys("BLPOP l1 l2 0"), ["l1", "l2"]);
    assert_eq!(keys("PING"), none);
    // numkeys
    assert_eq!(keys("EVAL s 2 k1 k2 arg"), ["k1", "k2"]);
    assert_eq!(keys("EVAL s 0 arg"), none);
    assert_eq!(keys("FCALL f 1 k"), ["k"]);
    assert_eq!(keys("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), ["d", "a", "b"]);
    assert_eq!(keys("BLMPOP 0 2 a b LEFT"), ["a", "b"]);
    assert_eq!(keys("LMPOP 2 a b LEFT"), ["a", "b"]);
    // keyword
    assert_eq!(keys("XREAD COUNT 2 STREAMS s1 s2 0 0"), ["s1", "s2"]);
    assert_eq!(
        keys("XREADGROUP GROUP g c COUNT 1 BLOCK 5 STREAMS s1 s2 0 0"),
        ["s1", "s2"]
    );
    assert_eq!(keys("GEORADIUS a 0 0 1 m STORE b"), ["a", "b"]);
    assert_eq!(keys("GEORADIUS a 0 0 1 m STOREDIST b"), ["a", "b"]);
    // subcommands
    assert_eq!(keys("OBJECT ENCODING k"), ["k"]);
    assert_eq!(keys("XINFO STREAM s"), ["s"]);
    assert_eq!(keys("MEMORY USAGE k"), ["k"]);
    // derived: SORT's STORE and MIGRATE's KEYS
    assert_eq!(keys("SORT a STORE b"), ["a", "b"]);
    assert_eq!(keys("SORT a BY x LIMIT 0 1 STORE b"), ["a", "b"]);
    assert_eq!(keys("SORT a GET store STORE b"), ["a", "b"]);
    assert_eq!(keys("SORT a BY store"), ["a"]);
    assert_eq!(keys("SORT_RO a BY x"), ["a"]);
    assert_eq!(keys("MIGRATE h 1 \"\" 0 5 KEYS a b"), ["a", "b"]);
    assert_eq!(keys("MIGRATE h 1 k 0 5"), ["k"]);
    assert_eq!(keys("MIGRATE h 1 k 0 5 COPY REPLACE"), ["k"]);
    assert_eq!(keys("MIGRATE h 1 \"\" 0 5 AUTH keys KEYS a"), ["a"]);
    assert_eq!(keys("MIGRATE h 1 \"\" 0 5 AUTH2 u keys KEYS a"), ["a"]);
    assert_eq!(keys("MIGRATE h 1 k 0 5 KEYS a b"), none);
    assert_eq!(keys("MIGRATE h 1 \"\" 0 5 COPY KEYS"), none);
    // variable flags, still one key
    assert_eq!(keys("SET k v GET"), ["k"]);
    assert_eq!(keys("BITFIELD k GET u8 0"), ["k"]);
    // too few arguments: no key rather than an index past the end
    assert_eq!(keys("GET"), none);
    assert_eq!(keys("BLPOP"), none);
    assert_eq!(keys("SORT"), none);
}

#[test]
fn slot_and_read_only() {
    let c = class("GET foo");
    assert_eq!(c.slot, Slot::One(key_slot(b"foo")));
    assert!(c.readonly && !c.write);
    let c = class("set foo 1");
    assert_eq!(c.slot, Slot::One(12182));
    assert!(c.write && !c.readonly);
    assert_eq!(class("MGET {u}a {u}b").slot, Slot::One(key_slot(b"u")));
    assert_eq!(class("MGET a b").slot, Slot::Cross);
    // Values are no keys.
    assert_eq!(class("MSET {x}a a {x}b b").slot, Slot::One(key_slot(b"x")));
    assert_eq!(
        class("EVAL s 2 {t}1 {t}2 x").slot,
        Slot::One(key_slot(b"t"))
    );
    assert_eq!(class("EVAL s 2 a b").slot, Slot::Cross);
    assert_eq!(class("SORT a STORE b").slot, Slot::Cross);
    assert_eq!(class("ZUNIONSTORE d 2 a b").slot, Slot::Cross);
    let c = class("OBJECT ENCODING k");
    assert_eq!(c.spec.unwrap().name, "object|encoding");
    assert_eq!(c.slot, Slot::One(key_slot(b"k")));
    assert!(c.readonly);
    let c = class("NOSUCHCMD a");
    assert_eq!(c.spec, None);
    assert_eq!(c.slot, Slot::Keyless);
    assert!(!c.readonly && c.fanout.is_none() && c.block.is_none());
}

#[test]
fn blocking_commands_and_their_timeouts() {
    let wait = |cmd: &str| {
        let args = words(cmd);
        classify(&args[..]).block.map(|t| t.wait(&args[..]))
    };
    assert_eq!(wait("GET k"), None);
    assert_eq!(wait("BLPOP a b 1.5"), Some(Wait::Millis(1500)));
    assert_eq!(wait("brpop a 0"), Some(Wait::Forever));
    // Truncated to whole milliseconds, as Redis does: 0 ms waits for ever.
    assert_eq!(wait("BLPOP a 0.0001"), Some(Wait::Forever));
    assert_eq!(wait("BLPOP a x"), Some(Wait::Invalid));
    assert_eq!(wait("BLPOP a -1"), Some(Wait::Invalid));
    assert_eq!(wait("BLMOVE a b LEFT RIGHT 2"), Some(Wait::Millis(2000)));
    assert_eq!(wait("BRPOPLPUSH a b 3"), Some(Wait::Millis(3000)));
    assert_eq!(wait("BZPOPMIN z 0.25"), Some(Wait::Millis(250)));
    assert_eq!(wait("BLMPOP 3 1 a LEFT"), Some(Wait::Millis(3000)));
    assert_eq!(wait("BZMPOP 0 1 z MIN"), Some(Wait::Forever));
    assert_eq!(wait("XREAD COUNT 1 STREAMS s 0"), None);
    // BLOCK after STREAMS is an id, not the option.
    assert_eq!(wait("XREAD STREAMS block 0"), None);
    assert_eq!(wait("XREAD BLOCK 250 STREAMS s $"), Some(Wait::Millis(250)));
    assert_eq!(wait("XREAD BLOCK 0 STREAMS s $"), Some(Wait::Forever));
    assert_eq!(wait("XREAD BLOCK 1.5 STREAMS s $"), Some(Wait::Invalid));
    assert_eq!(
        wait("XREADGROUP GROUP g c BLOCK 10 STREAMS s >"),
        Some(Wait::Millis(10))
    );
    let c = class("BLPOP a 1");
    assert_eq!(
        c.block,
        Some(Timeout {
            index: 2,
            unit: Unit::Seconds,
            keyspace: true
        })
    );
    // WAIT holds the connection that wrote: it blocks, but not on the keyspace.
    let c = class("WAIT 1 100");
    assert_eq!(
        c.block,
        Some(Timeout {
            index: 2,
            unit: Unit::Millis,
            keyspace: false
        })
    );
}

#[test]
fn fan_out_follows_the_tips() {
    let f = |cmd: &str| class(cmd).fanout;
    assert_eq!(f("DBSIZE"), Some((Targets::Primaries, FanoutMerge::Sum)));
    assert_eq!(f("KEYS *"), Some((Targets::Primaries, FanoutMerge::Concat)));
    assert_eq!(
        f("FLUSHALL"),
        Some((Targets::Primaries, FanoutMerge::AllSucceeded))
    );
    assert_eq!(
        f("SCRIPT FLUSH"),
        Some((Targets::AllNodes, FanoutMerge::AllSucceeded))
    );
    assert_eq!(
        f("SCRIPT KILL"),
        Some((Targets::Primaries, FanoutMerge::OneSucceeded))
    );
    assert_eq!(
        f("CONFIG SET x y"),
        Some((Targets::AllNodes, FanoutMerge::AllSucceeded))
    );
    assert_eq!(
        f("RANDOMKEY"),
        Some((Targets::Primaries, FanoutMerge::AnyNonNil))
    );
    // `special` and `agg_min` merges stay on one node.
    assert_eq!(f("INFO"), None);
    assert_eq!(f("WAIT 1 0"), None);
    assert_eq!(f("SCAN 0"), None);
    assert_eq!(f("GET k"), None);
}

#[test]
fn split_follows_multi_shard() {
    let s = |cmd: &str| class(cmd).split;
    let split = |step, merge| Some(Split { step, merge });
    assert_eq!(s("MGET a b"), split(1, SplitMerge::Positional));
    assert_eq!(s("MSET a 1 b 2"), split(2, SplitMerge::AllOk));
    for cmd in ["DEL a b", "UNLINK a b", "EXISTS a b", "TOUCH a b"] {
        assert_eq!(s(cmd), split(1, SplitMerge::Sum), "{cmd}");
    }
    // All or nothing: must stay atomic.
    assert_eq!(s("MSETNX a 1 b 2"), None);
    assert_eq!(s("RENAME a b"), None);
    assert_eq!(s("SUNIONSTORE d a b"), None);
}

#[test]
fn pubsub_kinds() {
    let p = |cmd: &str| class(cmd).pubsub;
    let ps = |op, sharded| Some(PubSub { op, sharded });
    assert_eq!(p("SUBSCRIBE a"), ps(PubSubOp::Subscribe, false));
    assert_eq!(p("PSUBSCRIBE a*"), ps(PubSubOp::Subscribe, false));
    assert_eq!(p("SSUBSCRIBE a"), ps(PubSubOp::Subscribe, true));
    assert_eq!(p("UNSUBSCRIBE"), ps(PubSubOp::Unsubscribe, false));
    assert_eq!(p("SUNSUBSCRIBE a"), ps(PubSubOp::Unsubscribe, true));
    assert_eq!(p("PUBLISH c m"), ps(PubSubOp::Publish, false));
    assert_eq!(p("SPUBLISH c m"), ps(PubSubOp::Publish, true));
    assert_eq!(p("PUBSUB NUMSUB c"), ps(PubSubOp::Introspect, false));
    assert_eq!(p("GET k"), None);
    // Shard channels route by their slot; plain channels go anywhere.
    assert_eq!(class("SPUBLISH {c}x m").slot, Slot::One(key_slot(b"c")));
    assert_eq!(class("PUBLISH c m").slot, Slot::Keyless);
}

#[test]
fn atomic_commands() {
    let a = |cmd: &str| class(cmd).atomic;
    for cmd in ["MULTI", "EXEC", "DISCARD", "WATCH k", "UNWATCH"] {
        assert_eq!(a(cmd), Some(Atomic::Transaction), "{cmd}");
    }
    for cmd in [
        "EVAL s 0",
        "EVALSHA x 0",
        "EVAL_RO s 0",
        "FCALL f 0",
        "FCALL_RO f 0",
    ] {
        assert_eq!(a(cmd), Some(Atomic::Script), "{cmd}");
    }
    assert_eq!(a("SCRIPT LOAD s"), None);
    assert_eq!(a("GET k"), None);
}

#[test]
fn classify_reads_every_argument_holder_alike() {
    let mut args = crate::types::Args::new("MSET");
    for w in ["{a}1", "x", "{a}2", "y"] {
        args.push(w);
    }
    let from_args = classify(&args);
    let from_slice = class("MSET {a}1 x {a}2 y");
    assert_eq!(from_args, from_slice);
    let bytes: Vec<bytes::Bytes> = words("MSET {a}1 x {a}2 y")
        .into_iter()
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    assert_eq!(classify(&bytes[..]), from_slice);
    let spec = lookup(b"mset").unwrap();
    assert_eq!(classify_spec(spec, &bytes[..]), from_slice);
}
