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
    let resp3 = proto == Protocol::Resp3;
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
            let text = format_double(*d);
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
