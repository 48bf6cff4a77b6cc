//! Property tests: any value tree survives encode -> decode in RESP3, and a RESP2 peer gets
//! the downgrade Redis sends (maps flattened, doubles as bulk strings, booleans as integers).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redcluster::resp::internal::{
    command_ready, decode_command, decode_command_resumable, CommandScan,
};
use redcluster::resp::{
    decode, decode_resumable, encode_command, encode_value, format_double, FrameScan, Limits,
    Protocol, Value,
};

fn line_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..12,
    )
    .prop_map(Bytes::from)
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        line_bytes().prop_map(Value::SimpleString),
        line_bytes().prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        any_bytes().prop_map(Value::BulkString),
        Just(Value::Null),
        Just(Value::NullArray),
        prop_oneof![
            any::<f64>().prop_filter("NaN is never equal to itself", |d| !d.is_nan()),
            Just(f64::INFINITY),
            Just(1e300),
            Just(1.5e-7),
        ]
        .prop_map(Value::Double),
        any::<bool>().prop_map(Value::Boolean),
        "-?[0-9]{1,40}".prop_map(|s| Value::BigNumber(Bytes::from(s))),
        (proptest::collection::vec(any::<u8>(), 3), any_bytes()).prop_map(|(f, text)| {
            Value::Verbatim {
                format: Bytes::from(f),
                text,
            }
        }),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..4);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Push),
            pairs.clone().prop_map(Value::Map),
            (pairs, inner).prop_map(|(attributes, value)| Value::Attribute {
                attributes,
                value: Box::new(value)
            }),
        ]
    })
}

/// What a RESP3 peer reads back: both nulls are `_` in RESP3.
fn resp3_view(v: &Value) -> Value {
    let pairs = |p: &[(Value, Value)]| {
        p.iter()
            .map(|(k, v)| (resp3_view(k), resp3_view(v)))
            .collect()
    };
    let list = |l: &[Value]| l.iter().map(resp3_view).collect();
    match v {
        Value::NullArray => Value::Null,
        Value::Array(l) => Value::Array(list(l)),
        Value::Set(l) => Value::Set(list(l)),
        Value::Push(l) => Value::Push(list(l)),
        Value::Map(p) => Value::Map(pairs(p)),
        Value::Attribute { attributes, value } => Value::Attribute {
            attributes: pairs(attributes),
            value: Box::new(resp3_view(value)),
        },
        other => other.clone(),
    }
}

/// What a RESP2 peer reads back, per Redis' downgrade rules.
fn resp2_view(v: &Value) -> Value {
    match v {
        Value::Double(d) => Value::BulkString(Bytes::from(format_double(*d))),
        Value::Boolean(b) => Value::Integer(i64::from(*b)),
        Value::BigNumber(n) => Value::BulkString(n.clone()),
        Value::Verbatim { text, .. } => Value::BulkString(text.clone()),
        Value::Array(l) | Value::Set(l) | Value::Push(l) => {
            Value::Array(l.iter().map(resp2_view).collect())
        }
        Value::Map(p) => Value::Array(
            p.iter()
                .flat_map(|(k, v)| [resp2_view(k), resp2_view(v)])
                .collect(),
        ),
        Value::Attribute { value, .. } => resp2_view(value),
        other => other.clone(),
    }
}

fn round_trip(v: &Value, proto: Protocol) -> (Value, BytesMut) {
    let mut buf = BytesMut::new();
    encode_value(&mut buf, v, proto);
    let wire = buf.clone();
    let got = decode(&mut buf, &Limits::default())
        .unwrap_or_else(|e| panic!("{e} decoding {wire:?}"))
        .unwrap_or_else(|| panic!("incomplete: {wire:?}"));
    assert!(buf.is_empty(), "left over: {buf:?}");
    (got, wire)
}

/// Feed `wire` into a buffer in chunks of the sizes in `cuts` (cycled), calling `take` after
/// each chunk; returns what is left in the buffer.
fn feed_in_chunks(wire: &[u8], cuts: &[usize], mut take: impl FnMut(&mut BytesMut)) -> BytesMut {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut cut = cuts.iter().cycle();
    while fed < wire.len() {
        let n = (*cut.next().unwrap()).min(wire.len() - fed);
        buf.extend_from_slice(&wire[fed..fed + n]);
        fed += n;
        take(&mut buf);
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resp3_round_trips(v in value()) {
        let (got, _) = round_trip(&v, Protocol::Resp3);
        prop_assert_eq!(got, resp3_view(&v));
    }

    #[test]
    fn resp2_gets_the_downgraded_value(v in value()) {
        let (got, _) = round_trip(&v, Protocol::Resp2);
        prop_assert_eq!(got, resp2_view(&v));
    }

    #[test]
    fn every_prefix_of_an_encoded_frame_is_incomplete(v in value()) {
        let (_, wire) = round_trip(&v, Protocol::Resp3);
        for split in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            prop_assert_eq!(decode(&mut buf, &Limits::default()), Ok(None));
        }
    }

    #[test]
    fn a_resumed_scan_decodes_what_one_pass_does(
        a in value(),
        b in value(),
        cuts in proptest::collection::vec(1usize..40, 1..20),
    ) {
        // Two frames back to back, arriving in chunks of arbitrary sizes; the scan resumes
        // across chunks and starts afresh after each decoded frame.
        let (_, wa) = round_trip(&a, Protocol::Resp3);
        let (_, wb) = round_trip(&b, Protocol::Resp3);
        let wire = [wa.as_ref(), wb.as_ref()].concat();
        let mut scan = FrameScan::default();
        let mut got = Vec::new();
        let rest = feed_in_chunks(&wire, &cuts, |buf| {
            while let Some(v) = decode_resumable(buf, &Limits::default(), &mut scan).unwrap() {
                got.push(v);
            }
        });
        prop_assert!(rest.is_empty());
        prop_assert_eq!(got, vec![resp3_view(&a), resp3_view(&b)]);
    }

    #[test]
    fn commands_round_trip(args in proptest::collection::vec(any_bytes(), 1..8)) {
        let mut buf = BytesMut::new();
        encode_command(&mut buf, &args);
        let got = decode_command(&mut buf, &Limits::default()).unwrap();
        prop_assert_eq!(got, Some(args));
    }

    #[test]
    fn commands_fed_in_pieces_decode_as_sent(
        a in proptest::collection::vec(any_bytes(), 1..8),
        b in proptest::collection::vec(any_bytes(), 1..8),
        cuts in proptest::collection::vec(1usize..30, 1..20),
    ) {
        // A server's view: two commands arriving in chunks; `command_ready` and the decoder
        // share one scan, as the bundled server's connection loop does.
        let mut wire = BytesMut::new();
        encode_command(&mut wire, &a);
        encode_command(&mut wire, &b);
        let limits = Limits::default();
        let mut scan = CommandScan::default();
        let mut got = Vec::new();
        let rest = feed_in_chunks(&wire, &cuts, |buf| {
            while command_ready(buf, &limits, &mut scan).unwrap() {
                got.push(decode_command_resumable(buf, &limits, &mut scan).unwrap().unwrap());
            }
        });
        prop_assert!(rest.is_empty());
        prop_assert_eq!(got, vec![a, b]);
    }

    #[test]
    fn doubles_print_as_text_that_parses_back(d in any::<f64>().prop_filter("finite", |d| d.is_finite())) {
        let text = format_double(d);
        prop_assert_eq!(text.parse::<f64>().unwrap(), d);
        prop_assert!(text.len() <= 24, "{} is too long", text);
    }
}

#[test]
fn doubles_are_laid_out_like_redis() {
    for (d, want) in [
        (3.0, "3"),
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        (1e300, "1e+300"),
        (1e-10, "1e-10"),
        (0.0001, "0.0001"),
        (1e16, "10000000000000000"),
        (1.2345678901234568e17, "1.2345678901234568e+17"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ] {
        assert_eq!(format_double(d), want);
    }
}

#[test]
fn error_and_status_lines_never_break_framing() {
    let mut buf = BytesMut::new();
    encode_value(&mut buf, &Value::error("ERR bad\r\nthing"), Protocol::Resp2);
    assert_eq!(&buf[..], b"-ERR bad  thing\r\n");
}
