use bytes::Bytes;

use super::{arr, bulk, T};
use crate::resp::Value;
use crate::server::db::blocking::BlockSpec;
use crate::server::db::Db;

fn words(cmd: &str) -> Vec<Bytes> {
    cmd.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn serve(t: &mut T, cmd: &str) -> Option<Value> {
    let ctx = t.ctx();
    t.db.try_serve_blocking(&words(cmd), &ctx)
}

fn spec_err(cmd: &str) -> String {
    match Db::block_spec(&words(cmd)) {
        Err(Value::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("{cmd}: {other:?}"),
    }
}

#[test]
fn block_specs_and_their_errors() {
    let s = Db::block_spec(&words("BLPOP a b 0")).unwrap();
    assert_eq!(
        s,
        BlockSpec {
            keys: vec![Bytes::from("a"), Bytes::from("b")],
            timeout_ms: None
        }
    );
    assert_eq!(
        Db::block_spec(&words("brpop a 1.5")).unwrap().timeout_ms,
        Some(1500)
    );
    assert_eq!(
        Db::block_spec(&words("BLPOP a 0.0001")).unwrap().timeout_ms,
        None
    );
    assert_eq!(
        Db::block_spec(&words("BLMPOP 2 2 x y LEFT COUNT 3")).unwrap(),
        BlockSpec {
            keys: vec![Bytes::from("x"), Bytes::from("y")],
            timeout_ms: Some(2000)
        }
    );
    assert_eq!(
        Db::block_spec(&words("BZMPOP 0 1 z MIN")).unwrap().keys,
        vec![Bytes::from("z")]
    );
    assert_eq!(
        Db::block_spec(&words("BLMOVE s d LEFT RIGHT 0"))
            .unwrap()
            .keys,
        vec![Bytes::from("s")]
    );
    assert_eq!(
        spec_err("BLPOP l abc"),
        "ERR timeout is not a float or out of range"
    );
    assert_eq!(spec_err("BLPOP l -1"), "ERR timeout is negative");
    assert_eq!(spec_err("BLPOP l inf"), "ERR timeout is negative");
    assert_eq!(spec_err("BLPOP l 1e20"), "ERR timeout is negative");
    assert_eq!(
        spec_err("BLPOP l"),
        "ERR wrong number of arguments for 'blpop' command"
    );
    assert_eq!(spec_err("BLMOVE a b up right 0"), "ERR syntax error");
    assert_eq!(
        spec_err("BLMPOP 0 0 l LEFT"),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        spec_err("BLMPOP abc 1 l LEFT"),
        "ERR timeout is not a float or out of range"
    );
    assert_eq!(
        spec_err("BZMPOP 0 1 z MIN COUNT 0"),
        "ERR count should be greater than 0"
    );
}

#[test]
fn served_blocking_pops_reply_and_propagate_like_redis() {
    let mut t = T::new();
    t.run("RPUSH l a b c");
    t.prop();
    assert_eq!(serve(&mut t, "BLPOP nope 0"), None);
    assert_eq!(serve(&mut t, "BLPOP l 0"), Some(arr(&["l", "a"])));
    assert_eq!(serve(&mut t, "BRPOP nope l 0"), Some(arr(&["l", "c"])));
    assert_eq!(t.prop(), ["LPOP l", "RPOP l"]);
    t.run("SET s x");
    t.prop();
    assert_eq!(
        serve(&mut t, "BLPOP s 0"),
        Some(Value::error(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        ))
    );
    t.run("RPUSH l2 1 2 3");
    t.prop();
    assert_eq!(serve(&mut t, "BLMOVE l2 d LEFT RIGHT 0"), Some(bulk("1")));
    assert_eq!(serve(&mut t, "BRPOPLPUSH l2 d 0"), Some(bulk("3")));
    assert_eq!(serve(&mut t, "BLMOVE nope d LEFT RIGHT 0"), None);
    assert_eq!(t.prop(), ["LMOVE l2 d LEFT RIGHT", "RPOPLPUSH l2 d"]);
    assert_eq!(
        serve(&mut t, "BLMPOP 0 2 nope l2 LEFT COUNT 5"),
        Some(Value::Array(vec![bulk("l2"), arr(&["2"])]))
    );
    assert_eq!(t.prop(), ["LPOP l2 1"]);
    assert_eq!(serve(&mut t, "BLMPOP 0 1 l2 LEFT"), None);
    t.run("ZADD z 1 a 2 b 3 c");
    t.prop();
    assert_eq!(serve(&mut t, "BZPOPMIN z 0"), Some(arr(&["z", "a", "1"])));
    t.resp3 = true;
    assert_eq!(
        serve(&mut t, "BZPOPMAX nope z 0"),
        Some(Value::Array(vec![bulk("z"), bulk("c"), Value::Double(3.0)]))
    );
    assert_eq!(t.prop(), ["ZPOPMIN z", "ZPOPMAX z"]);
    assert_eq!(
        serve(&mut t, "BZMPOP 0 1 z MIN COUNT 3"),
        Some(Value::Array(vec![
            bulk("z"),
            Value::Array(vec![Value::Array(vec![bulk("b"), Value::Double(2.0)])])
        ]))
    );
    assert_eq!(serve(&mut t, "BZPOPMIN z 0"), None);
    assert_eq!(t.run("EXISTS z"), super::int(0));
    t.db.check_invariants();
}
