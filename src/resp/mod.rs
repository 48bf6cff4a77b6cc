//! RESP2 and RESP3: frames to bytes and back, shared by the client and the bundled server.
//!
//! The public part is what a client-side user needs to speak RESP by hand (a raw tool, a
//! fake node in a test, a proxy): [`Value`], [`decode`] / [`decode_resumable`] for replies,
//! [`encode_command`] for requests, [`encode_value`] for replies a fake server sends, and
//! [`format_double`] for Redis' text of a double. How the bundled server decodes commands
//! (arrays and inline commands, with Redis' own protocol-error wording) is internal to it.
//!
//! Decoding is incremental and bounded: [`decode`] returns `Ok(None)` until a whole frame is
//! buffered, and memory grows only with bytes actually received, never with a length a peer
//! declares. Limits ([`Limits`]) bound bulk length, aggregate length, nesting depth and line
//! length; a frame that breaks one is a [`ProtocolError`].
//!
//! ```
//! use bytes::BytesMut;
//! use redcluster::resp::{decode, encode_command, Limits, Value};
//!
//! let mut buf = BytesMut::new();
//! encode_command(&mut buf, ["SET", "k", "v"]);
//! assert_eq!(&buf[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
//!
//! let mut wire = BytesMut::from(&b"+OK\r\n:4"[..]);
//! assert_eq!(decode(&mut wire, &Limits::default()).unwrap(), Some(Value::ok()));
//! assert_eq!(decode(&mut wire, &Limits::default()).unwrap(), None); // ":4" is incomplete
//! ```

// Server side: only the bundled server (and tests that fake a server) decodes commands.
#[cfg(any(feature = "server", test))]
mod command;
mod decode;
mod encode;
mod value;

#[cfg(any(feature = "server", test))]
pub(crate) use command::decode_command;
#[cfg(feature = "server")]
pub(crate) use command::{command_ready, decode_command_resumable, CommandScan};
pub use decode::{decode, decode_resumable, FrameScan};
pub(crate) use encode::{encode_bulk, write_header};
pub use encode::{encode_command, encode_value, format_double};
#[cfg(feature = "server")]
pub(crate) use encode::{encode_reply, format_g17, format_human, human_double};
pub use value::Value;

/// Not part of the API (no semver promise, hidden from the docs): the bundled server's
/// command decoder, re-exported only so this crate's own benches, fuzz targets and codec
/// tests can reach it from outside the crate.
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod internal {
    pub use super::command::{
        command_ready, decode_command, decode_command_resumable, CommandScan,
    };
}

use std::fmt;

/// Which protocol version a connection speaks (chosen by `HELLO`).
///
/// Non-exhaustive: a later protocol version would be a new variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// RESP2, the default for every new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// Bounds a decoder enforces, so a hostile or broken peer cannot make it allocate without end.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest bulk string accepted, in bytes (Redis' `proto-max-bulk-len` default: 512 MiB).
    pub max_bulk_len: usize,
    /// Most elements in one aggregate (arrays, sets, pushes; pairs for maps).
    pub max_elements: usize,
    /// Most aggregates nested inside one another (a flat array is one level). Bounds the
    /// decoder's recursion, so hostile input cannot overflow the stack.
    pub max_depth: usize,
    /// Longest line (simple string, error, number, inline command) in bytes; Redis caps inline
    /// requests at 64 KiB.
    pub max_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_elements: 1024 * 1024 * 1024,
            max_depth: 128,
            max_line_len: 64 * 1024,
        }
    }
}

impl Limits {
    /// Set [`Limits::max_bulk_len`].
    pub fn with_max_bulk_len(mut self, n: usize) -> Self {
        self.max_bulk_len = n;
        self
    }

    /// Set [`Limits::max_elements`].
    pub fn with_max_elements(mut self, n: usize) -> Self {
        self.max_elements = n;
        self
    }

    /// Set [`Limits::max_depth`].
    pub fn with_max_depth(mut self, n: usize) -> Self {
        self.max_depth = n;
        self
    }

    /// Set [`Limits::max_line_len`].
    pub fn with_max_line_len(mut self, n: usize) -> Self {
        self.max_line_len = n;
        self
    }
}

/// Bytes that can never form a valid frame, or a frame that breaks a [`Limits`] bound.
///
/// After one of these the stream's framing is lost: the connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    message: String,
}

impl ProtocolError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ProtocolError {
            message: message.into(),
        }
    }

    /// What was wrong, in words.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error: {}", self.message)
    }
}

impl std::error::Error for ProtocolError {}
