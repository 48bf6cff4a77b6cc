//! Incremental, bounded RESP decoding of replies (any RESP2 or RESP3 frame).
//!
//! Decoding runs in two phases, as in mini-redis: a check walks the buffered bytes and says
//! whether one whole frame is there (allocating nothing, so a declared length of four billion
//! costs nothing until the bytes really arrive), then the frame is split off the buffer,
//! frozen, and parsed with bulk strings as zero-copy slices of it. The second phase trusts
//! what the first one validated, so it re-reads headers without checking them again.

use bytes::{Buf, Bytes, BytesMut};

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
    decode_resumable(buf, limits, &mut FrameScan::default())
}

/// [`decode`] for a buffer that fills over many reads: `scan` remembers how far the front
/// frame has been checked, so each call checks only bytes it has not seen.
///
/// # Errors
/// As [`decode`].
pub fn decode_resumable(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut FrameScan,
) -> Result<Option<Value>, ProtocolError> {
    let Some(end) = scan.run(buf, 0, limits)? else {
        return Ok(None);
    };
    *scan = FrameScan::default();
    // Frames without string payloads are read in place: no split, no freeze, no refcount.
    if let Some(value) = scalar(&buf[..end]) {
        buf.advance(end);
        return Ok(Some(value));
    }
    // A lone string (the commonest reply): split its payload off directly, so the frame's
    // header and CRLF never become a `Bytes` of their own.
    let (start, kind) = match buf[0] {
        b'$' => (line_at(buf, 1).1, 0),
        b'+' => (1, 1),
        b'-' => (1, 2),
        _ => (0, 3),
    };
    if kind < 3 {
        buf.advance(start);
        let data = buf.split_to(end - start - 2).freeze();
        buf.advance(2);
        return Ok(Some(match kind {
            0 => Value::BulkString(data),
            1 => Value::SimpleString(data),
            _ => Value::Error(data),
        }));
    }
    let frame = buf.split_to(end).freeze();
    let mut pos = 0;
    let value = parse(&frame, &mut pos);
    debug_assert_eq!(pos, end);
    Ok(Some(value))
}

/// A whole frame [`check`] accepted that holds no bytes to keep (numbers, booleans, nulls).
fn scalar(frame: &[u8]) -> Option<Value> {
    let line = frame.get(1..frame.len().saturating_sub(2))?;
    Some(match frame.first()? {
        b':' => Value::Integer(parse_int(line).ok()?),
        b',' => Value::Double(parse_double(line).ok()?),
        b'#' => Value::Boolean(line == b"t"),
        b'_' => Value::Null,
        _ if frame == b"$-1\r\n" => Value::Null,
        _ if frame == b"*-1\r\n" => Value::NullArray,
        _ => return None,
    })
}

/// Where a frame arriving over many reads has been checked up to, so each read checks only
/// the new bytes: a reply of a million elements costs one pass, not one per read.
///
/// Use one per buffer with [`decode_resumable`]; it must see the same buffer, only ever grown
/// at the end, until the frame is decoded.
#[derive(Clone, Debug, Default)]
pub struct FrameScan {
    /// The first byte not yet checked.
    pos: usize,
    /// For each aggregate opened and not yet complete, the elements still to come.
    open: Vec<usize>,
}

/// One element's header, checked.
enum Step {
    /// A whole element (a scalar, a string, a null or an empty aggregate) ending here.
    Whole(usize),
    /// An aggregate whose `items` elements start at `next`.
    Open { next: usize, items: usize },
}

impl FrameScan {
    /// Go on checking from where the last call stopped.
    ///
    /// # Returns
    /// The frame's end once it is complete (the scan is then spent: start a new one for the
    /// next frame), `None` while bytes are missing.
    fn run(
        &mut self,
        buf: &[u8],
        base_depth: usize,
        limits: &Limits,
    ) -> Result<Option<usize>, ProtocolError> {
        loop {
            match step(buf, self.pos, base_depth + self.open.len(), limits)? {
                None => return Ok(None),
                Some(Step::Open { next, items }) if items > 0 => {
                    self.pos = next;
                    self.open.push(items);
                    continue;
                }
                Some(Step::Open { next: end, .. } | Step::Whole(end)) => self.pos = end,
            }
            // One element is complete: so is every aggregate it was the last element of.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(self.pos)),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

/// Check the header of the element at `buf[pos]`, and the whole of it when it is not an
/// aggregate.
fn step(
    buf: &[u8],
    pos: usize,
    depth: usize,
    limits: &Limits,
) -> Result<Option<Step>, ProtocolError> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((line_end, next)) = find_line(buf, pos + 1, limits)? else {
        return Ok(None);
    };
    let line = &buf[pos + 1..line_end];
    match kind {
        b'+' | b'-' => {
            if line.contains(&b'\n') {
                return Err(ProtocolError::new("line feed inside a simple string"));
            }
            Ok(Some(Step::Whole(next)))
        }
        b'(' => {
            let digits = match line.first() {
                Some(b'-' | b'+') => &line[1..],
                _ => line,
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(ProtocolError::new("invalid big number"));
            }
            Ok(Some(Step::Whole(next)))
        }
        b':' => {
            parse_int(line)?;
            Ok(Some(Step::Whole(next)))
        }
        b',' => {
            parse_double(line)?;
            Ok(Some(Step::Whole(next)))
        }
        b'#' => match line {
            b"t" | b"f" => Ok(Some(Step::Whole(next))),
            _ => Err(ProtocolError::new("invalid boolean, expected #t or #f")),
        },
        b'_' => {
            if line.is_empty() {
                Ok(Some(Step::Whole(next)))
            } else {
                Err(ProtocolError::new("invalid null, expected _ and CRLF"))
            }
        }
        b'$' | b'!' | b'=' => {
            let len = parse_len(line, "bulk length")?;
            if len == -1 && kind == b'$' {
                return Ok(Some(Step::Whole(next)));
            }
            let len = checked_len(len, limits.max_bulk_len, "bulk length")?;
            // Saturating: a limit near usize::MAX must not make the sum wrap around.
            let end = next.saturating_add(len);
            if buf.len() < end.saturating_add(2) {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::new("bulk string not terminated by CRLF"));
            }
            if kind == b'=' && (len < 4 || buf[next + 3] != b':') {
                return Err(ProtocolError::new(
                    "invalid verbatim string, expected a three-byte format and ':'",
                ));
            }
            Ok(Some(Step::Whole(end + 2)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = parse_len(line, "aggregate length")?;
            if count == -1 && kind == b'*' {
                return Ok(Some(Step::Whole(next)));
            }
            if depth >= limits.max_depth {
                return Err(ProtocolError::new(format!(
                    "aggregates nested deeper than {} levels",
                    limits.max_depth
                )));
            }
            let count = checked_len(count, limits.max_elements, "aggregate length")?;
            let items = if matches!(kind, b'%' | b'|') {
                count
                    .checked_mul(2)
                    .ok_or_else(|| ProtocolError::new("aggregate length too large"))?
            } else {
                count
            };
            // Attributes describe the value that follows them: it is one more element of the
            // attribute, one level deeper, so a chain of attributes cannot nest without bound.
            let items = items + usize::from(kind == b'|');
            Ok(Some(Step::Open { next, items }))
        }
        other => Err(ProtocolError::new(format!(
            "invalid frame type byte '{}'",
            char::from(other).escape_default()
        ))),
    }
}

/// Refuse negative lengths (other than the `-1` handled by the caller) and lengths over `max`.
pub(super) fn checked_len(len: i64, max: usize, what: &str) -> Result<usize, ProtocolError> {
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
///
/// # Returns
/// `(index of the CR, index after the LF)`, or `None` when the line is not all buffered yet.
pub(super) fn find_line(
    buf: &[u8],
    from: usize,
    limits: &Limits,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or(&[]);
    let window = &rest[..rest.len().min(limits.max_line_len.saturating_add(1))];
    match window.iter().position(|&b| b == b'\r') {
        Some(i) if i > limits.max_line_len => Err(line_too_long(limits)),
        Some(i) => match rest.get(i + 1) {
            Some(b'\n') => Ok(Some((from + i, from + i + 2))),
            Some(_) => Err(ProtocolError::new("line not terminated by CRLF")),
            None => Ok(None),
        },
        None if window.len() > limits.max_line_len => Err(line_too_long(limits)),
        None => Ok(None),
    }
}

fn line_too_long(limits: &Limits) -> ProtocolError {
    ProtocolError::new(format!("line longer than {} bytes", limits.max_line_len))
}

/// Parse a length: `-1`, `0`, or digits without sign or leading zeros, as Redis' `string2ll`
/// accepts them. Negative values other than -1 parse and are refused by the caller.
pub(super) fn parse_len(line: &[u8], what: &str) -> Result<i64, ProtocolError> {
    let bad = || {
        ProtocolError::new(format!(
            "invalid {what} '{}'",
            String::from_utf8_lossy(line).escape_default()
        ))
    };
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    match digits {
        [] => return Err(bad()),
        [b'0'] if !neg => return Ok(0),
        [b'0', ..] => return Err(bad()),
        _ => {}
    }
    if digits.len() > 18 {
        return Err(bad());
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(bad());
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Ok(if neg { -n } else { n })
}

/// Parse an integer reply: an optional sign and decimal digits, overflow refused.
fn parse_int(line: &[u8]) -> Result<i64, ProtocolError> {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, line),
    };
    if digits.is_empty() {
        return Err(ProtocolError::new("invalid integer: no digits"));
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ProtocolError::new(format!(
                "invalid integer '{}'",
                String::from_utf8_lossy(line).escape_default()
            )));
        }
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if neg {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or_else(|| ProtocolError::new("integer out of the 64-bit range"))?;
    }
    Ok(n)
}

fn parse_double(line: &[u8]) -> Result<f64, ProtocolError> {
    let bad = || {
        ProtocolError::new(format!(
            "invalid double '{}'",
            String::from_utf8_lossy(line).escape_default()
        ))
    };
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    match text {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" | "-nan" => Ok(f64::NAN),
        _ => text.parse::<f64>().map_err(|_| bad()),
    }
}

/// The line starting at `from` in a frame [`check`] accepted: its bytes and the index after it.
fn line_at(frame: &[u8], from: usize) -> (usize, usize) {
    let len = frame
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\r'))
        .unwrap_or(0);
    (from + len, from + len + 2)
}

/// A length or count [`check`] already validated (so the digits are plain ASCII digits).
fn trusted_len(line: &[u8]) -> i64 {
    match line {
        [b'-', ..] => -1,
        _ => line
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d.wrapping_sub(b'0'))),
    }
}

/// Parse a frame already known to be complete and valid by [`check`].
fn parse(frame: &Bytes, pos: &mut usize) -> Value {
    let kind = frame[*pos];
    let line_start = *pos + 1;
    let (line_end, next) = line_at(frame, line_start);
    *pos = next;
    let line = &frame[line_start..line_end];
    match kind {
        b'$' | b'!' | b'=' => {
            let len = trusted_len(line);
            if len < 0 {
                return Value::Null;
            }
            let start = next;
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
        b'+' => Value::SimpleString(frame.slice(line_start..line_end)),
        b'-' => Value::Error(frame.slice(line_start..line_end)),
        b'(' => Value::BigNumber(frame.slice(line_start..line_end)),
        b':' => Value::Integer(parse_int(line).unwrap_or_default()),
        b',' => Value::Double(parse_double(line).unwrap_or_default()),
        b'#' => Value::Boolean(line == b"t"),
        b'*' | b'~' | b'>' => {
            let count = trusted_len(line);
            if count < 0 {
                return Value::NullArray;
            }
            // `check` saw every element, each at least three bytes: the capacity is bounded
            // by bytes received, not by what the peer declared.
            let mut items = Vec::with_capacity(count as usize);
            for _ in 0..count {
                items.push(parse(frame, pos));
            }
            match kind {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                _ => Value::Push(items),
            }
        }
        b'%' | b'|' => {
            let count = trusted_len(line).max(0) as usize;
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                let k = parse(frame, pos);
                let v = parse(frame, pos);
                pairs.push((k, v));
            }
            if kind == b'%' {
                Value::Map(pairs)
            } else {
                Value::Attribute {
                    attributes: pairs,
                    value: Box::new(parse(frame, pos)),
                }
            }
        }
        // `_`; `check` refused every other type byte.
        _ => Value::Null,
    }
}
