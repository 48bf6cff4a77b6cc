//! RESP decoding: incremental framing, malformed input, limits and declared-huge lengths,
//! inline commands and the command decoder's Redis error messages.

use bytes::{Bytes, BytesMut};
use redcluster::resp::internal::decode_command;
use redcluster::resp::{decode, Limits, ProtocolError, Value};

fn decode_all(wire: &[u8]) -> Result<Option<Value>, ProtocolError> {
    let mut buf = BytesMut::from(wire);
    decode(&mut buf, &Limits::default())
}

fn err(wire: &[u8], limits: &Limits) -> String {
    let mut buf = BytesMut::from(wire);
    match decode(&mut buf, limits) {
        Err(e) => e.message().to_string(),
        Ok(v) => panic!(
            "{:?} decoded to {v:?}, expected an error",
            String::from_utf8_lossy(wire)
        ),
    }
}

fn cmd_err(wire: &[u8], limits: &Limits) -> String {
    let mut buf = BytesMut::from(wire);
    match decode_command(&mut buf, limits) {
        Err(e) => e.message().to_string(),
        Ok(v) => panic!(
            "{:?} decoded to {v:?}, expected an error",
            String::from_utf8_lossy(wire)
        ),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// One frame of every type, nested ones included, with the value each decodes to.
fn samples() -> Vec<(&'static [u8], Value)> {
    vec![
        (b"+OK\r\n", Value::ok()),
        (
            b"-ERR unknown command\r\n",
            Value::error("ERR unknown command"),
        ),
        (b":-42\r\n", Value::Integer(-42)),
        (b":+7\r\n", Value::Integer(7)),
        (b":9223372036854775807\r\n", Value::Integer(i64::MAX)),
        (b":-9223372036854775808\r\n", Value::Integer(i64::MIN)),
        (b"$5\r\nhe\r\no\r\n", Value::bulk("he\r\no")),
        (b"$0\r\n\r\n", Value::bulk("")),
        (b"$-1\r\n", Value::Null),
        (b"*-1\r\n", Value::NullArray),
        (b"_\r\n", Value::Null),
        (b",1.5\r\n", Value::Double(1.5)),
        (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
        (b"#t\r\n", Value::Boolean(true)),
        (b"#f\r\n", Value::Boolean(false)),
        (
            b"(-3492890328409238509324850943850943825024385\r\n",
            Value::BigNumber(b("-3492890328409238509324850943850943825024385")),
        ),
        (
            b"!21\r\nSYNTAX invalid syntax\r\n",
            Value::error("SYNTAX invalid syntax"),
        ),
        (
            b"=15\r\ntxt:Some string\r\n",
            Value::Verbatim {
                format: b("txt"),
                text: b("Some string"),
            },
        ),
        (b"*0\r\n", Value::Array(vec![])),
        (
            b"*3\r\n:1\r\n$3\r\nfoo\r\n*2\r\n+a\r\n_\r\n",
            Value::Array(vec![
                Value::Integer(1),
                Value::bulk("foo"),
                Value::Array(vec![Value::simple("a"), Value::Null]),
            ]),
        ),
        (
            b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n~1\r\n#t\r\n",
            Value::Map(vec![
                (Value::simple("first"), Value::Integer(1)),
                (
                    Value::bulk("second"),
                    Value::Set(vec![Value::Boolean(true)]),
                ),
            ]),
        ),
        (
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            Value::Push(vec![
                Value::bulk("message"),
                Value::bulk("ch"),
                Value::bulk("hi"),
            ]),
        ),
        (
            b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*1\r\n:2039123\r\n",
            Value::Attribute {
                attributes: vec![(
                    Value::simple("key-popularity"),
                    Value::Map(vec![(Value::bulk("a"), Value::Double(0.1923))]),
                )],
                value: Box::new(Value::Array(vec![Value::Integer(2039123)])),
            },
        ),
    ]
}

#[test]
fn every_frame_type_decodes_to_its_value() {
    for (wire, want) in samples() {
        assert_eq!(
            decode_all(wire).unwrap(),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn a_frame_split_at_every_byte_is_incomplete_until_its_last_byte() {
    let limits = Limits::default();
    for (wire, want) in samples() {
        for split in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            assert_eq!(
                decode(&mut buf, &limits).unwrap(),
                None,
                "split {split} of {wire:?}"
            );
            assert_eq!(buf.len(), split, "an incomplete frame must consume nothing");
            buf.extend_from_slice(&wire[split..]);
            assert_eq!(decode(&mut buf, &limits).unwrap(), Some(want.clone()));
            assert!(buf.is_empty());
        }
        // Byte by byte, as a slow peer would send it.
        let mut buf = BytesMut::new();
        for (i, &byte) in wire.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            let got = decode(&mut buf, &limits).unwrap();
            if i + 1 < wire.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some(want.clone()));
            }
        }
    }
}

#[test]
fn pipelined_frames_decode_one_at_a_time_and_leave_the_rest() {
    let mut buf = BytesMut::from(&b"+OK\r\n:1\r\n$3\r\nab"[..]);
    let limits = Limits::default();
    assert_eq!(decode(&mut buf, &limits).unwrap(), Some(Value::ok()));
    assert_eq!(decode(&mut buf, &limits).unwrap(), Some(Value::Integer(1)));
    assert_eq!(decode(&mut buf, &limits).unwrap(), None);
    assert_eq!(&buf[..], b"$3\r\nab");
}

#[test]
fn bulk_strings_are_slices_of_the_read_buffer() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let Some(Value::Array(items)) = decode(&mut buf, &Limits::default()).unwrap() else {
        panic!("expected an array");
    };
    let Value::BulkString(foo) = &items[0] else {
        panic!()
    };
    assert_eq!(
        foo.as_ptr() as usize,
        base + 8,
        "bulk strings must not be copied"
    );
}

#[test]
fn a_lone_bulk_reply_is_a_slice_of_the_read_buffer() {
    let mut buf = BytesMut::from(&b"$3\r\nfoo\r\n+OK\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let Some(Value::BulkString(foo)) = decode(&mut buf, &Limits::default()).unwrap() else {
        panic!("expected a bulk string");
    };
    assert_eq!(foo, b("foo"));
    assert_eq!(
        foo.as_ptr() as usize,
        base + 4,
        "bulk strings must not be copied"
    );
    assert_eq!(&buf[..], b"+OK\r\n");
}

#[test]
fn malformed_frames_are_protocol_errors_with_a_clear_message() {
    let d = Limits::default();
    let table: &[(&[u8], &str)] = &[
        (b"?foo\r\n", "invalid frame type byte '?'"),
        (b"\x00\r\n", "invalid frame type byte '\\u{0}'"),
        (b":12a\r\n", "invalid integer '12a'"),
        (b":\r\n", "invalid integer: no digits"),
        (b":-\r\n", "invalid integer: no digits"),
        (
            b":99999999999999999999\r\n",
            "integer out of the 64-bit range",
        ),
        (b",abc\r\n", "invalid double 'abc'"),
        (b"#x\r\n", "invalid boolean, expected #t or #f"),
        (b"_x\r\n", "invalid null, expected _ and CRLF"),
        (b"(12x\r\n", "invalid big number"),
        (b"+OK\rX", "line not terminated by CRLF"),
        (b"+O\nK\r\n", "line feed inside a simple string"),
        (b"$3\r\nfooXY", "bulk string not terminated by CRLF"),
        (b"$x\r\n", "invalid bulk length 'x'"),
        (b"$+3\r\nfoo\r\n", "invalid bulk length '+3'"),
        (b"$03\r\nfoo\r\n", "invalid bulk length '03'"),
        (b"$-2\r\n", "invalid bulk length -2"),
        (b"!-1\r\n", "invalid bulk length -1"),
        (b"*-2\r\n", "invalid aggregate length -2"),
        (b"%-1\r\n", "invalid aggregate length -1"),
        (b"*1\r\n*1\r\n?\r\n", "invalid frame type byte '?'"),
        (
            b"=3\r\ntxt\r\n",
            "invalid verbatim string, expected a three-byte format and ':'",
        ),
        (
            b"=5\r\ntxtab\r\n",
            "invalid verbatim string, expected a three-byte format and ':'",
        ),
    ];
    for (wire, want) in table {
        assert_eq!(err(wire, &d), *want, "{:?}", String::from_utf8_lossy(wire));
    }
    let e = decode_all(b"?\r\n").unwrap_err();
    assert_eq!(e.to_string(), "Protocol error: invalid frame type byte '?'");
}

#[test]
fn limits_are_enforced_with_messages_naming_them() {
    let small = Limits::default()
        .with_max_bulk_len(4)
        .with_max_elements(2)
        .with_max_depth(2)
        .with_max_line_len(8);
    assert_eq!(
        err(b"$5\r\nhello\r\n", &small),
        "bulk length 5 exceeds the limit of 4"
    );
    assert_eq!(
        err(b"*3\r\n", &small),
        "aggregate length 3 exceeds the limit of 2"
    );
    assert_eq!(
        err(b"%3\r\n", &small),
        "aggregate length 3 exceeds the limit of 2"
    );
    assert_eq!(
        err(b"*1\r\n*1\r\n*0\r\n", &small),
        "aggregates nested deeper than 2 levels"
    );
    assert_eq!(err(b"+123456789\r\n", &small), "line longer than 8 bytes");
    assert_eq!(err(b"+123456789", &small), "line longer than 8 bytes");
    // At the limits exactly, all is well.
    let mut buf = BytesMut::from(&b"*2\r\n*1\r\n$4\r\nabcd\r\n+1234567\r\n"[..]);
    assert!(decode(&mut buf, &small).unwrap().is_some());
    // The default depth is 128 aggregates.
    let nest = |n: usize| [b"*1\r\n".repeat(n), b":1\r\n".to_vec()].concat();
    assert!(decode_all(&nest(128)).unwrap().is_some());
    assert_eq!(
        err(&nest(129), &Limits::default()),
        "aggregates nested deeper than 128 levels"
    );
    // A long chain of attributes is bounded too (no stack overflow).
    assert_eq!(
        err(&b"|0\r\n".repeat(100_000), &Limits::default()),
        "aggregates nested deeper than 128 levels"
    );
}

#[test]
fn declared_huge_lengths_allocate_nothing() {
    let d = Limits::default();
    assert_eq!(
        err(b"*4294967295\r\n", &d),
        "aggregate length 4294967295 exceeds the limit of 1073741824"
    );
    assert_eq!(
        err(b"$999999999\r\n", &d),
        "bulk length 999999999 exceeds the limit of 536870912"
    );
    assert_eq!(
        err(b"$99999999999999999999\r\n", &d),
        "invalid bulk length '99999999999999999999'"
    );
    // Under the limits they are just incomplete; the buffer does not grow.
    for wire in [
        &b"*1073741824\r\n$1\r\na\r\n"[..],
        b"$536870912\r\nabc",
        b"%100000000\r\n",
    ] {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(wire);
        assert_eq!(decode(&mut buf, &d).unwrap(), None);
        assert_eq!(buf.len(), wire.len());
        assert!(buf.capacity() <= 64, "capacity grew to {}", buf.capacity());
        if wire[0] == b'*' {
            let mut buf = BytesMut::from(wire);
            assert_eq!(decode_command(&mut buf, &d).unwrap(), None);
        }
    }
    assert_eq!(cmd_err(b"*4294967295\r\n", &d), "invalid multibulk length");
    assert_eq!(cmd_err(b"*1\r\n$999999999\r\n", &d), "invalid bulk length");
}

#[test]
fn commands_decode_as_arrays_of_bulk_strings_sliced_from_the_buffer() {
    let d = Limits::default();
    let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nv!\r\n*1\r\n$4\r\nPING\r\n";
    for split in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..split]);
        let first = decode_command(&mut buf, &d).unwrap();
        if split < 29 {
            assert_eq!(first, None, "split {split}");
            assert_eq!(buf.len(), split);
        }
    }
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        decode_command(&mut buf, &d).unwrap(),
        Some(vec![b("SET"), b("k"), b("v\r\nv!")])
    );
    assert_eq!(decode_command(&mut buf, &d).unwrap(), Some(vec![b("PING")]));
    assert_eq!(decode_command(&mut buf, &d).unwrap(), None);
    // Redis skips `*0` and `*-1` as empty commands.
    let mut buf = BytesMut::from(&b"*0\r\n*-1\r\n"[..]);
    assert_eq!(decode_command(&mut buf, &d).unwrap(), Some(vec![]));
    assert_eq!(decode_command(&mut buf, &d).unwrap(), Some(vec![]));
    assert!(buf.is_empty());
}

#[test]
fn commands_with_anything_but_bulk_strings_get_redis_errors() {
    let d = Limits::default();
    let table: &[(&[u8], &str)] = &[
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*2\r\n$1\r\na\r\n+OK\r\n", "expected '$', got '+'"),
        (b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*x\r\n", "invalid multibulk length"),
        (b"*1\r\n$3\r\nfooXY", "bulk string not terminated by CRLF"),
    ];
    for (wire, want) in table {
        assert_eq!(
            cmd_err(wire, &d),
            *want,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    let tiny = Limits::default()
        .with_max_line_len(16)
        .with_max_bulk_len(3)
        .with_max_elements(2);
    assert_eq!(
        cmd_err(&[b"*".as_slice(), &[b'1'; 20]].concat(), &tiny),
        "too big mbulk count string"
    );
    assert_eq!(
        cmd_err(&[b"*1\r\n$".as_slice(), &[b'1'; 20]].concat(), &tiny),
        "too big bulk count string"
    );
    assert_eq!(cmd_err(b"*1\r\n$4\r\n", &tiny), "invalid bulk length");
    assert_eq!(cmd_err(b"*3\r\n", &tiny), "invalid multibulk length");
}

fn inline(wire: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let mut buf = BytesMut::from(wire);
    decode_command(&mut buf, &Limits::default())
}

#[test]
fn inline_commands_split_like_redis() {
    let ok = |wire: &[u8], want: &[&[u8]]| {
        let want: Vec<Bytes> = want.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        assert_eq!(
            inline(wire).unwrap(),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    };
    ok(b"PING\r\n", &[b"PING"]);
    ok(b"PING\n", &[b"PING"]);
    ok(b"  SET  k\t v \r\n", &[b"SET", b"k", b"v"]);
    ok(
        b"SET k \"hello world\"\r\n",
        &[b"SET", b"k", b"hello world"],
    );
    ok(b"SET k 'it\\'s'\r\n", &[b"SET", b"k", b"it's"]);
    ok(b"SET k \"a\\x41\\n\\\"\"\r\n", &[b"SET", b"k", b"aA\n\""]);
    ok(b"SET k '\\n'\r\n", &[b"SET", b"k", b"\\n"]);
    ok(b"SET k\"x y\" v\r\n", &[b"SET", b"kx y", b"v"]);
    ok(b"ECHO \"\"\r\n", &[b"ECHO", b""]);
    ok(b"\r\n", &[]);
    ok(b"   \n", &[]);
    for bad in [
        &b"SET k \"abc\r\n"[..],
        b"SET k \"abc\"def\r\n",
        b"SET k 'abc\r\n",
        b"GET \"a\\\"\r\n",
    ] {
        assert_eq!(
            inline(bad).unwrap_err().message(),
            "unbalanced quotes in request",
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(inline(b"PIN").unwrap(), None);
    let long = vec![b'a'; 64 * 1024 + 1];
    assert_eq!(
        inline(&long).unwrap_err().message(),
        "too big inline request"
    );
    assert_eq!(
        inline(&[&long[..], b"\r\n"].concat())
            .unwrap_err()
            .message(),
        "too big inline request"
    );
    // One line at a time, the rest left for the next call.
    let mut buf = BytesMut::from(&b"PING\r\nECHO hi\r\n*1\r\n$4\r\nPING\r\n"[..]);
    let d = Limits::default();
    assert_eq!(decode_command(&mut buf, &d).unwrap(), Some(vec![b("PING")]));
    assert_eq!(
        decode_command(&mut buf, &d).unwrap(),
        Some(vec![b("ECHO"), b("hi")])
    );
    assert_eq!(decode_command(&mut buf, &d).unwrap(), Some(vec![b("PING")]));
}
