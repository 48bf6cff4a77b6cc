//! Decoding commands on the server side: RESP arrays of bulk strings, or inline commands.
//!
//! Errors carry the exact text Redis puts after `-ERR Protocol error: ` so a server can send
//! `ERR {error}` and a client sees what Redis would have told it.

use bytes::{Bytes, BytesMut};

use super::decode::{find_line, parse_len};
use super::{Limits, ProtocolError};

/// Decode one command sent to a server: a RESP array of bulk strings, or an inline command
/// (`PING\r\n`, as typed into telnet) the way Redis accepts it.
///
/// # Returns
/// `Ok(Some(args))`, which is empty for a blank inline line or a `*0`/`*-1` array (Redis
/// skips both); `Ok(None)` when incomplete, with nothing consumed.
///
/// # Errors
/// A [`ProtocolError`] with Redis' own message: `invalid multibulk length`, `expected '$',
/// got 'x'`, `invalid bulk length`, `too big mbulk count string`, `too big bulk count
/// string`, `too big inline request`, `unbalanced quotes in request`.
pub fn decode_command(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    decode_command_resumable(buf, limits, &mut CommandScan::default())
}

/// Where the check of a `*N` command arriving over many reads has got to, so each read
/// checks only new bytes (a command of a million arguments is checked once, not per read).
/// Use one per buffer with [`decode_command_resumable`] and [`command_ready`].
#[derive(Clone, Debug, Default)]
pub struct CommandScan {
    /// The first byte of the next argument to check (0: the `*N` header not read yet).
    at: usize,
    /// The command's argument count, once its header was read.
    count: usize,
    /// Arguments checked so far.
    seen: usize,
}

/// [`decode_command`] for a buffer that fills over many reads (see [`CommandScan`]).
///
/// # Errors
/// As [`decode_command`].
pub fn decode_command_resumable(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut CommandScan,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => decode_multibulk(buf, limits, scan),
        Some(_) => decode_inline(buf, limits),
    }
}

/// Whether a whole command is buffered (nothing consumed; `scan` keeps the progress).
///
/// # Errors
/// As [`decode_command`]: the bytes can never form a command.
pub fn command_ready(
    buf: &[u8],
    limits: &Limits,
    scan: &mut CommandScan,
) -> Result<bool, ProtocolError> {
    match buf.first() {
        None => Ok(false),
        Some(b'*') => Ok(check_multibulk(buf, limits, scan)?.is_some()),
        Some(_) => Ok(buf.contains(&b'\n')),
    }
}

fn decode_multibulk(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut CommandScan,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some((end, count)) = check_multibulk(buf, limits, scan)? else {
        return Ok(None);
    };
    *scan = CommandScan::default();
    let frame = buf.split_to(end).freeze();
    // Second pass over a frame the first one validated: headers are plain digits.
    let mut pos = trusted_header(&frame, 0).1;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, start) = trusted_header(&frame, pos);
        args.push(frame.slice(start..start + len));
        pos = start + len + 2;
    }
    Ok(Some(args))
}

/// Validate a whole `*N` command is buffered, as Redis' `processMultibulkBuffer` does,
/// going on from where `scan` stopped (and leaving it there when bytes are missing).
///
/// # Returns
/// `(end of the frame, number of arguments)`, or `None` when incomplete.
fn check_multibulk(
    buf: &[u8],
    limits: &Limits,
    scan: &mut CommandScan,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    if scan.at == 0 {
        let Some((line_end, at)) = header(buf, 0, limits, "too big mbulk count string")? else {
            return Ok(None);
        };
        let count = parse_len(&buf[1..line_end], "multibulk length")
            .map_err(|_| ProtocolError::new("invalid multibulk length"))?;
        if count <= 0 {
            // Redis treats `*0` and `*-N` as an empty command and moves on.
            return Ok(Some((at, 0)));
        }
        if count as u64 > limits.max_elements as u64 {
            return Err(ProtocolError::new("invalid multibulk length"));
        }
        *scan = CommandScan {
            at,
            count: count as usize,
            seen: 0,
        };
    }
    let CommandScan {
        mut at,
        count,
        mut seen,
    } = *scan;
    while seen < count {
        let Some(&kind) = buf.get(at) else {
            *scan = CommandScan { at, count, seen };
            return Ok(None);
        };
        if kind != b'$' {
            return Err(ProtocolError::new(format!(
                "expected '$', got '{}'",
                char::from(kind).escape_default()
            )));
        }
        let Some((line_end, data)) = header(buf, at, limits, "too big bulk count string")? else {
            *scan = CommandScan { at, count, seen };
            return Ok(None);
        };
        let len = parse_len(&buf[at + 1..line_end], "bulk length")
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= limits.max_bulk_len)
            .ok_or_else(|| ProtocolError::new("invalid bulk length"))?;
        let end = data.saturating_add(len);
        if buf.len() < end.saturating_add(2) {
            *scan = CommandScan { at, count, seen };
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::new("bulk string not terminated by CRLF"));
        }
        at = end + 2;
        seen += 1;
    }
    *scan = CommandScan { at, count, seen };
    Ok(Some((at, count)))
}

/// The `*N`/`$N` line at `pos`, with Redis' "too big ... count string" when it runs too long.
fn header(
    buf: &[u8],
    pos: usize,
    limits: &Limits,
    too_big: &'static str,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    find_line(buf, pos + 1, limits).map_err(|e| {
        if e.message().starts_with("line longer") {
            ProtocolError::new(too_big)
        } else {
            e
        }
    })
}

/// Read a `*N`/`$N` header [`check_multibulk`] validated: `(N, index after its CRLF)`.
fn trusted_header(frame: &[u8], pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut i = pos + 1;
    while let Some(&d) = frame.get(i) {
        if d == b'\r' {
            break;
        }
        n = n * 10 + usize::from(d.wrapping_sub(b'0'));
        i += 1;
    }
    (n, i + 2)
}

/// An inline command: one line, split like Redis' `sdssplitargs` (quotes, escapes).
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
    let text = match line[..nl].last() {
        Some(b'\r') => line.slice(..nl - 1),
        _ => line.slice(..nl),
    };
    split_args(&text)
        .map(Some)
        .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
}

/// Split a line into arguments as `sdssplitargs` does; `None` for unbalanced quotes.
///
/// Unquoted words are zero-copy slices of `text`; a word with quotes is built byte by byte
/// since escapes change its bytes. A NUL ends the line, as it does for the C string Redis
/// splits.
fn split_args(text: &Bytes) -> Option<Vec<Bytes>> {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let t = &text[..end];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < t.len() && is_space(t[i]) {
            i += 1;
        }
        if i >= t.len() {
            return Some(args);
        }
        let start = i;
        while i < t.len() && !matches!(t[i], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'') {
            i += 1;
        }
        if i >= t.len() || t[i] != b'"' && t[i] != b'\'' {
            args.push(text.slice(start..i));
            continue;
        }
        // The word has a quote: copy what came before it, then unescape.
        let mut word = t[start..i].to_vec();
        let quote = t[i];
        i += 1;
        loop {
            let c = *t.get(i)?;
            if quote == b'"' && c == b'\\' && t.get(i + 1) == Some(&b'x') {
                if let (Some(h), Some(l)) = (hex(t.get(i + 2)), hex(t.get(i + 3))) {
                    word.push(h * 16 + l);
                    i += 4;
                    continue;
                }
            }
            if quote == b'"' && c == b'\\' && i + 1 < t.len() {
                word.push(match t[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
            } else if quote == b'\'' && c == b'\\' && t.get(i + 1) == Some(&b'\'') {
                word.push(b'\'');
                i += 2;
            } else if c == quote {
                // The closing quote must be followed by a space or the end of the line.
                if t.get(i + 1).is_some_and(|&b| !is_space(b)) {
                    return None;
                }
                i += 1;
                break;
            } else {
                word.push(c);
                i += 1;
            }
        }
        args.push(Bytes::from(word));
    }
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(b: Option<&u8>) -> Option<u8> {
    (*b? as char).to_digit(16).map(|d| d as u8)
}
