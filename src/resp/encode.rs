//! RESP encoding straight into an output buffer.

use bytes::{BufMut, BytesMut};

use super::{Protocol, Value};

/// Append a command (an array of bulk strings) to `out`.
///
/// Arguments are copied once, into `out`; nothing else is allocated.
pub fn encode_command<I, A>(out: &mut BytesMut, args: I)
where
    I: IntoIterator<Item = A>,
    I::IntoIter: ExactSizeIterator,
    A: AsRef<[u8]>,
{
    let args = args.into_iter();
    write_header(out, b'*', args.len() as i64);
    for arg in args {
        encode_bulk(out, arg.as_ref());
    }
}

/// Append one bulk string.
pub(crate) fn encode_bulk(out: &mut BytesMut, data: &[u8]) {
    write_header(out, b'$', data.len() as i64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Append a type byte, a decimal number and CRLF (`*3\r\n`, `:42\r\n`).
pub(crate) fn write_header(out: &mut BytesMut, kind: u8, n: i64) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(n);
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    out.put_slice(text.as_bytes());
    out.put_slice(b"\r\n");
}

/// Format a double the way replies carry it: `inf`, `-inf`, `nan`, or the shortest text that
/// parses back to the same number, laid out like C's `%.17g` (as Redis 7.2 does: `3`, `1.5`,
/// `1e+300`, `1e-05`). Redis 7.0 printed all 17 significant digits (`1.1000000000000001`);
/// both parse back to the same `f64`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits with an exponent: `1.5e0`, `1e300`.
    let sci = format!("{d:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..17).contains(&exp) {
        // `{}` never uses an exponent and drops a zero fraction (`3`, not `3.0`).
        format!("{d}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Append `value` as `proto` expects it.
///
/// RESP3-only types are downgraded for RESP2 peers as Redis does: maps become flat arrays,
/// sets and pushes arrays, doubles and big numbers bulk strings, booleans integers, and both
/// nulls `$-1`/`*-1`. Error text has CR and LF replaced by spaces so it stays one line.
pub fn encode_value(out: &mut BytesMut, value: &Value, proto: Protocol) {
    encode(out, value, proto, Doubles::Shortest);
}

/// How doubles are written.
#[derive(Clone, Copy, PartialEq)]
enum Doubles {
    /// The shortest round-trip text ([`format_double`]): the client's choice.
    Shortest,
    /// As redis-server 7.0 prints them: `%.17g`, and the "human" long-double text where
    /// Redis uses `addReplyHumanLongDouble` (marked with [`human_double`]).
    #[cfg(feature = "server")]
    Redis,
}

fn encode(out: &mut BytesMut, value: &Value, proto: Protocol, doubles: Doubles) {
    let resp3 = proto == Protocol::Resp3;
    let encode_value =
        |out: &mut BytesMut, v: &Value, proto: Protocol| encode(out, v, proto, doubles);
    match value {
        Value::SimpleString(s) => write_line(out, b'+', s),
        Value::Error(e) => write_line(out, b'-', e),
        Value::Integer(n) => write_header(out, b':', *n),
        Value::BulkString(b) => encode_bulk(out, b),
        Value::Null => out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Value::NullArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Value::Array(items) => {
            write_header(out, b'*', items.len() as i64);
            for item in items {
                encode_value(out, item, proto);
            }
        }
        Value::Double(d) => {
            let text = match doubles {
                Doubles::Shortest => format_double(*d),
                #[cfg(feature = "server")]
                Doubles::Redis => format_g17(*d),
            };
            if resp3 {
                write_line(out, b',', text.as_bytes());
            } else {
                encode_bulk(out, text.as_bytes());
            }
        }
        Value::Boolean(b) => {
            if resp3 {
                out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                write_header(out, b':', i64::from(*b));
            }
        }
        Value::BigNumber(n) => {
            if resp3 {
                write_line(out, b'(', n);
            } else {
                encode_bulk(out, n);
            }
        }
        Value::Verbatim { format, text } => {
            if resp3 {
                // The format is three bytes on the wire; anything else would break framing.
                let format: &[u8] = if format.len() == 3 { format } else { b"txt" };
                write_header(out, b'=', (text.len() + 4) as i64);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            } else {
                encode_bulk(out, text);
            }
        }
        Value::Map(pairs) => {
            if resp3 {
                write_header(out, b'%', pairs.len() as i64);
            } else {
                write_header(out, b'*', 2 * pairs.len() as i64);
            }
            for (k, v) in pairs {
                encode_value(out, k, proto);
                encode_value(out, v, proto);
            }
        }
        Value::Set(items) | Value::Push(items) => {
            let kind = match (resp3, value) {
                (false, _) => b'*',
                (true, Value::Set(_)) => b'~',
                (true, _) => b'>',
            };
            write_header(out, kind, items.len() as i64);
            for item in items {
                encode_value(out, item, proto);
            }
        }
        #[cfg(feature = "server")]
        Value::Attribute { attributes, value }
            if doubles == Doubles::Redis && is_human_mark(attributes) =>
        {
            if let Value::Double(d) = **value {
                let text = format_human(d);
                if resp3 {
                    write_line(out, b',', text.as_bytes());
                } else {
                    encode_bulk(out, text.as_bytes());
                }
            }
        }
        Value::Attribute { attributes, value } => {
            if resp3 {
                write_header(out, b'|', attributes.len() as i64);
                for (k, v) in attributes {
                    encode_value(out, k, proto);
                    encode_value(out, v, proto);
                }
            }
            encode_value(out, value, proto);
        }
    }
}

fn write_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// The bundled server's reply encoder: [`encode_value`] with doubles as redis-server 7.0.15
/// prints them (`,3.1400000000000001` for a score under RESP3, `$18` and the same digits
/// under RESP2), so replies match Redis byte for byte. The client keeps the shortest text.
#[cfg(feature = "server")]
pub(crate) fn encode_reply(out: &mut BytesMut, value: &Value, proto: Protocol) {
    encode(out, value, proto, Doubles::Redis);
}

/// Marks a double Redis prints with `addReplyHumanLongDouble` (GEOPOS coordinates):
/// written by [`encode_reply`] as `%.17Lf` with trailing zeros trimmed; anything else that
/// reads the value (a script) sees the attribute's plain double.
#[cfg(feature = "server")]
const HUMAN_MARK: &[u8] = b"redcluster:human-double";

/// A double [`encode_reply`] writes as Redis' human long-double text.
#[cfg(feature = "server")]
pub(crate) fn human_double(v: f64) -> Value {
    Value::Attribute {
        attributes: vec![(
            Value::SimpleString(bytes::Bytes::from_static(HUMAN_MARK)),
            Value::Null,
        )],
        value: Box::new(Value::Double(v)),
    }
}

#[cfg(feature = "server")]
fn is_human_mark(attributes: &[(Value, Value)]) -> bool {
    matches!(attributes, [(Value::SimpleString(k), Value::Null)] if k.as_ref() == HUMAN_MARK)
}

/// C's `%.17g`, as Redis 7.0's `addReplyDouble` prints doubles (`inf`, `-inf`, `nan`).
#[cfg(feature = "server")]
pub(crate) fn format_g17(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let e = format!("{v:.16e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..17).contains(&x) {
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), x.abs())
    } else {
        let prec = (16 - x) as usize;
        trim(&format!("{v:.prec$}"))
    }
}

/// Redis' `ld2string(LD_STR_HUMAN)`: 17 decimals, trailing zeros (and point) trimmed, `-0`
/// as `0`.
#[cfg(feature = "server")]
pub(crate) fn format_human(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let s = format!("{v:.17}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0" } else { s }.to_string()
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    #[test]
    fn server_doubles_are_redis_text() {
        let mut out = BytesMut::new();
        encode_reply(&mut out, &Value::Double(2.14), Protocol::Resp3);
        encode_reply(&mut out, &Value::Double(2.14), Protocol::Resp2);
        encode_reply(&mut out, &human_double(13.361389338970184), Protocol::Resp3);
        encode_reply(&mut out, &Value::Double(f64::INFINITY), Protocol::Resp3);
        assert_eq!(
            &out[..],
            b",2.1400000000000001\r\n$18\r\n2.1400000000000001\r\n,13.36138933897018433\r\n,inf\r\n"
        );
        let mut client = BytesMut::new();
        encode_value(&mut client, &Value::Double(2.14), Protocol::Resp3);
        assert_eq!(&client[..], b",2.14\r\n");
        assert_eq!(format_g17(1e300), "1.0000000000000001e+300");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(5.0), "5");
    }
}
