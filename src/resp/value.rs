//! The RESP value type shared by the client and the bundled server.

use bytes::Bytes;

/// One RESP2 or RESP3 frame.
///
/// The variants follow the wire types one to one so nothing is lost in decoding; when a
/// RESP3-only value is written to a RESP2 peer it is downgraded the way Redis does it (see
/// [`encode_value`](crate::resp::encode_value)).
///
/// Exhaustive on purpose: the variants are RESP3's fixed set of wire types, so a caller can
/// match every one.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `+OK`: a short status line.
    SimpleString(Bytes),
    /// `-ERR ...` or RESP3 `!len` blob error: the whole line, code first.
    Error(Bytes),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`: binary-safe, zero-copy slice of the read buffer.
    BulkString(Bytes),
    /// `*N`.
    Array(Vec<Value>),
    /// `$-1` (RESP2) or `_` (RESP3): a missing value.
    Null,
    /// `*-1` (RESP2) or `_` (RESP3): a missing aggregate (BLPOP timeout, aborted EXEC).
    NullArray,
    /// RESP3 `,1.5`; written to RESP2 peers as a bulk string.
    Double(f64),
    /// RESP3 `#t`/`#f`; written to RESP2 peers as `:1`/`:0`.
    Boolean(bool),
    /// RESP3 `(12345...`: digits kept as text.
    BigNumber(Bytes),
    /// RESP3 `=len\r\ntxt:...`: the three-byte format and the text.
    Verbatim {
        /// Three-byte format hint such as `txt` or `mkd`.
        format: Bytes,
        /// The text after `fmt:`.
        text: Bytes,
    },
    /// RESP3 `%N`: key-value pairs in wire order; written to RESP2 peers as a flat array.
    Map(Vec<(Value, Value)>),
    /// RESP3 `~N`; written to RESP2 peers as an array.
    Set(Vec<Value>),
    /// RESP3 `|N` attributes followed by the value they describe.
    Attribute {
        /// The attribute pairs.
        attributes: Vec<(Value, Value)>,
        /// The value the attributes belong to.
        value: Box<Value>,
    },
    /// RESP3 `>N` out-of-band push (pub/sub messages, invalidations).
    Push(Vec<Value>),
}

impl Value {
    /// A `+OK` reply, the most common one.
    pub fn ok() -> Value {
        Value::SimpleString(Bytes::from_static(b"OK"))
    }

    /// A simple-string reply from static text.
    pub fn simple(s: &'static str) -> Value {
        Value::SimpleString(Bytes::from_static(s.as_bytes()))
    }

    /// An error reply; `msg` must start with its code (`ERR ...`, `MOVED ...`).
    pub fn error(msg: impl Into<String>) -> Value {
        Value::Error(Bytes::from(msg.into()))
    }

    /// A bulk-string reply copied from `data`.
    pub fn bulk(data: impl AsRef<[u8]>) -> Value {
        Value::BulkString(Bytes::copy_from_slice(data.as_ref()))
    }

    /// True for `Error` replies.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }

    /// The bytes of a string-like value (simple, bulk, verbatim text, big number).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => Some(b),
            Value::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The error line of an `Error` value as text (lossy UTF-8).
    pub fn error_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Value::Error(b) => Some(String::from_utf8_lossy(b)),
            _ => None,
        }
    }
}
