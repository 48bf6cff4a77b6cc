//! Arbitrary bytes through `decode` and `decode_command` with small limits: nothing may panic,
//! and whatever decodes must re-encode to bytes that decode to the same thing.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redcluster::resp::internal::decode_command;
use redcluster::resp::{decode, encode_command, encode_value, Limits, Protocol};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default()
        .with_max_bulk_len(1024)
        .with_max_elements(64)
        .with_max_depth(8)
        .with_max_line_len(256);

    let mut buf = BytesMut::from(data);
    while let Ok(Some(value)) = decode(&mut buf, &limits) {
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let mut wire = BytesMut::new();
            encode_value(&mut wire, &value, proto);
            let once = wire.clone();
            let again = decode(&mut wire, &Limits::default())
                .expect("re-encoded value must decode")
                .expect("re-encoded value must be complete");
            assert!(wire.is_empty(), "re-encoded value left bytes over");
            let mut twice = BytesMut::new();
            encode_value(&mut twice, &again, proto);
            assert_eq!(once, twice, "encoding is not stable for {value:?}");
            if proto == Protocol::Resp3 {
                // NaN is the one value not equal to itself; the bytes above cover it.
                if !format!("{value:?}").contains("NaN") {
                    assert_eq!(again, value_for_resp3(&value));
                }
            }
        }
    }

    let mut buf = BytesMut::from(data);
    while let Ok(Some(args)) = decode_command(&mut buf, &limits) {
        if args.is_empty() {
            continue;
        }
        let mut wire = BytesMut::new();
        encode_command(&mut wire, &args);
        let again = decode_command(&mut wire, &Limits::default()).expect("command must decode");
        assert_eq!(again, Some(args));
    }
});

/// What a RESP3 peer reads back: `*-1` and `$-1` are both `_`, blob errors simple errors.
fn value_for_resp3(v: &redcluster::resp::Value) -> redcluster::resp::Value {
    use redcluster::resp::Value;
    let pairs = |p: &[(Value, Value)]| {
        p.iter()
            .map(|(k, v)| (value_for_resp3(k), value_for_resp3(v)))
            .collect()
    };
    let list = |l: &[Value]| l.iter().map(value_for_resp3).collect();
    match v {
        Value::NullArray => Value::Null,
        Value::Error(e) => Value::Error(
            e.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect::<Vec<u8>>()
                .into(),
        ),
        Value::Array(l) => Value::Array(list(l)),
        Value::Set(l) => Value::Set(list(l)),
        Value::Push(l) => Value::Push(list(l)),
        Value::Map(p) => Value::Map(pairs(p)),
        Value::Attribute { attributes, value } => Value::Attribute {
            attributes: pairs(attributes),
            value: Box::new(value_for_resp3(value)),
        },
        other => other.clone(),
    }
}
