//! Incremental, bounded RESP decoding.
//!
//! Decoding runs in two phases, as in mini-redis: [`check`] walks the buffered bytes and says
//! whether one whole frame is there (allocating nothing, so a declared length of four billion
//! costs nothing until the bytes really arrive), then the frame is split off the buffer,
//! frozen, and parsed with bulk strings as zero-copy slices of it.

use bytes::{Bytes, BytesMut};

use super::{Limits, ProtocolError, Value};

/// Decode one frame from the front of `buf`.
///
/// # Returns
/// `Ok(Some(value))` and the frame's bytes removed from `buf`; `Ok(None)` when more bytes are
/// needed (nothing is consumed).
///
/// # Errors
/// A [`ProtocolError`] when the bytes can never form a valid frame or break a limit; the
/// connection should then be closed, since its framing is lost.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Value>, ProtocolError> {
    let Some(end) = check(buf, 0, 0, limits)? else {
        return Ok(None);
    };
    let frame = buf.split_to(end).freeze();
    let mut pos = 0;
    let value = parse(&frame, &mut pos)?;
    debug_assert_eq!(pos, end);
    Ok(Some(value))
}

/// Decode one command sent to a server: a RESP array of bulk strings, or an inline command
/// (`PING\r\n`, as typed into telnet) the way Redis accepts it.
///
/// # Returns
/// `Ok(Some(args))`, which may be empty for a blank inline line; `Ok(None)` when incomplete.
///
/// # Errors
/// As [`decode`], plus an error when a RESP command is not an array of bulk strings.
pub fn decode_command(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'*' {
        return decode_inline(buf, limits);
    }
    let Some(value) = decode(buf, limits)? else {
        return Ok(None);
    };
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(b) => Ok(b),
                _ => Err(ProtocolError::new("expected '$', got something else")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Value::NullArray => Ok(Some(Vec::new())),
        _ => Err(ProtocolError::new("expected '*' for a command")),
    }
}

fn decode_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_line_len {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(None);
    };
    if nl > limits.max_line_len {
        return Err(ProtocolError::new("too big inline request"));
    }
    let line = buf.split_to(nl + 1).freeze();
    let text = line.slice(..nl);
    let text = match text.last() {
        Some(b'\r') => text.slice(..text.len() - 1),
        _ => text,
    };
    let mut args = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text[i] == b'"' || text[i] == b'\'' {
            let quote = text[i];
            let start = i + 1;
            let Some(close) = text[start..].iter().position(|&b| b == quote) else {
                return Err(ProtocolError::new("unbalanced quotes in request"));
            };
            args.push(text.slice(start..start + close));
            i = start + close + 1;
        } else {
            let start = i;
            while i < text.len() && !text[i].is_ascii_whitespace() {
                i += 1;
            }
            args.push(text.slice(start..i));
        }
    }
    Ok(Some(args))
}

/// Find the end of the frame that starts at `pos`, without allocating.
///
/// # Returns
/// `Ok(Some(end))`, one past the frame's last byte; `Ok(None)` if the frame is not complete.
///
/// # Errors
/// A [`ProtocolError`] for invalid bytes or a broken limit.
pub fn check(
    buf: &[u8],
    pos: usize,
    depth: usize,
    limits: &Limits,
) -> Result<Option<usize>, ProtocolError> {
    if depth > limits.max_depth {
        return Err(ProtocolError::new(format!(
            "nesting deeper than {} levels",
            limits.max_depth
        )));
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((line_end, next)) = find_line(buf, pos + 1, limits)? else {
        return Ok(None);
    };
    let line = &buf[pos + 1..line_end];
    match kind {
        b'+' | b'-' | b'(' => Ok(Some(next)),
        b':' => {
            parse_int(line)?;
            Ok(Some(next))
        }
        b',' => {
            parse_double(line)?;
            Ok(Some(next))
        }
        b'#' => match line {
            b"t" | b"f" => Ok(Some(next)),
            _ => Err(ProtocolError::new("invalid boolean")),
        },
        b'_' => {
            if line.is_empty() {
                Ok(Some(next))
            } else {
                Err(ProtocolError::new("invalid null"))
            }
        }
        b'$' | b'!' | b'=' => {
            let len = parse_int(line)?;
            if len == -1 && kind == b'$' {
                return Ok(Some(next));
            }
            let len = checked_len(len, limits.max_bulk_len, "bulk length")?;
            let end = next + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::new("bulk string not terminated by CRLF"));
            }
            if kind == b'=' && (len < 4 || buf[next + 3] != b':') {
                return Err(ProtocolError::new("invalid verbatim string"));
            }
            Ok(Some(end + 2))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = parse_int(line)?;
            if count == -1 && kind == b'*' {
                return Ok(Some(next));
            }
            let count = checked_len(count, limits.max_elements, "aggregate length")?;
            let items = if matches!(kind, b'%' | b'|') {
                count
                    .checked_mul(2)
                    .ok_or_else(|| ProtocolError::new("aggregate too large"))?
            } else {
                count
            };
            let mut at = next;
            for _ in 0..items {
                match check(buf, at, depth + 1, limits)? {
                    Some(end) => at = end,
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // Attributes describe the value that follows them.
                return check(buf, at, depth + 1, limits);
            }
            Ok(Some(at))
        }
        other => Err(ProtocolError::new(format!(
            "invalid frame type byte {:?}",
            char::from(other).escape_default().to_string()
        ))),
    }
}

fn checked_len(len: i64, max: usize, what: &str) -> Result<usize, ProtocolError> {
    if len < 0 {
        return Err(ProtocolError::new(format!("invalid {what} {len}")));
    }
    let len = usize::try_from(len).map_err(|_| ProtocolError::new(format!("{what} too large")))?;
    if len > max {
        return Err(ProtocolError::new(format!(
            "{what} {len} exceeds the limit of {max}"
        )));
    }
    Ok(len)
}

/// Find the CRLF ending the line that starts at `from`.
fn find_line(
    buf: &[u8],
    from: usize,
    limits: &Limits,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or(&[]);
    let window = &rest[..rest.len().min(limits.max_line_len + 1)];
    match window.iter().position(|&b| b == b'\r') {
        Some(i) => match rest.get(i + 1) {
            Some(b'\n') => Ok(Some((from + i, from + i + 2))),
            Some(_) => Err(ProtocolError::new("line not terminated by CRLF")),
            None => Ok(None),
        },
        None if window.len() > limits.max_line_len => Err(ProtocolError::new(format!(
            "line longer than {} bytes",
            limits.max_line_len
        ))),
        None => Ok(None),
    }
}

fn parse_int(line: &[u8]) -> Result<i64, ProtocolError> {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, line),
    };
    if digits.is_empty() {
        return Err(ProtocolError::new("invalid integer: empty"));
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ProtocolError::new("invalid integer"));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if neg {
                    n.checked_sub(i64::from(d - b'0'))
                } else {
                    n.checked_add(i64::from(d - b'0'))
                }
            })
            .ok_or_else(|| ProtocolError::new("integer overflow"))?;
    }
    Ok(n)
}

fn parse_double(line: &[u8]) -> Result<f64, ProtocolError> {
    let text = std::str::from_utf8(line).map_err(|_| ProtocolError::new("invalid double"))?;
    match text {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" | "-nan" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|_| ProtocolError::new("invalid double")),
    }
}

/// Parse a frame already known to be complete and valid by [`check`].
fn parse(frame: &Bytes, pos: &mut usize) -> Result<Value, ProtocolError> {
    let kind = frame[*pos];
    let line_start = *pos + 1;
    let line_end = line_start
        + frame[line_start..]
            .iter()
            .position(|&b| b == b'\r')
            .ok_or_else(|| ProtocolError::new("truncated frame"))?;
    *pos = line_end + 2;
    let line = &frame[line_start..line_end];
    let value = match kind {
        b'+' => Value::SimpleString(frame.slice(line_start..line_end)),
        b'-' => Value::Error(frame.slice(line_start..line_end)),
        b'(' => Value::BigNumber(frame.slice(line_start..line_end)),
        b':' => Value::Integer(parse_int(line)?),
        b',' => Value::Double(parse_double(line)?),
        b'#' => Value::Boolean(line == b"t"),
        b'_' => Value::Null,
        b'$' | b'!' | b'=' => {
            let len = parse_int(line)?;
            if len < 0 {
                return Ok(Value::Null);
            }
            let start = *pos;
            let end = start + len as usize;
            *pos = end + 2;
            match kind {
                b'$' => Value::BulkString(frame.slice(start..end)),
                b'!' => Value::Error(frame.slice(start..end)),
                _ => Value::Verbatim {
                    format: frame.slice(start..start + 3),
                    text: frame.slice(start + 4..end),
                },
            }
        }
        b'*' | b'~' | b'>' => {
            let count = parse_int(line)?;
            if count < 0 {
                return Ok(Value::NullArray);
            }
            let mut items = Vec::with_capacity(count as usize);
            for _ in 0..count {
                items.push(parse(frame, pos)?);
            }
            match kind {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                _ => Value::Push(items),
            }
        }
        b'%' | b'|' => {
            let count = parse_int(line)? as usize;
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                let k = parse(frame, pos)?;
                let v = parse(frame, pos)?;
                pairs.push((k, v));
            }
            if kind == b'%' {
                Value::Map(pairs)
            } else {
                Value::Attribute {
                    attributes: pairs,
                    value: Box::new(parse(frame, pos)?),
                }
            }
        }
        _ => return Err(ProtocolError::new("invalid frame type byte")),
    };
    Ok(value)
}
