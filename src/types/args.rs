//! A command's arguments, stored flat: one byte buffer and one list of ranges.
//!
//! Arguments are written into one buffer as they are added (no allocation per argument) and
//! framed as RESP bulk strings only when the command is queued on a connection, straight into
//! that connection's write buffer.

use bytes::BytesMut;

use super::ToArg;
use crate::error::Error;
use crate::resp::{encode_bulk, write_header};
use crate::router::ReadFrom;

/// The arguments of one command, name first.
#[derive(Clone, Default)]
pub(crate) struct Args {
    data: BytesMut,
    ranges: Vec<(u32, u32)>,
    /// The first argument that could not be encoded: the command fails with it unsent.
    error: Option<Error>,
    /// This command's own read policy (`Cmd::read_from`), over the client's.
    read_from: Option<ReadFrom>,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the command name: arguments may hold secrets (AUTH, values).
        f.debug_struct("Args")
            .field("name", &String::from_utf8_lossy(self.get(0).unwrap_or(b"")))
            .field("len", &self.len())
            .finish()
    }
}

impl Args {
    /// Start a command called `name`.
    pub(crate) fn new(name: &str) -> Args {
        let mut a = Args {
            data: BytesMut::with_capacity(64),
            ranges: Vec::with_capacity(4),
            error: None,
            read_from: None,
        };
        a.push(name);
        a
    }

    /// A whole command from its words (unit tests).
    #[cfg(test)]
    pub(crate) fn of(parts: &[&str]) -> Args {
        let mut a = Args::new(parts[0]);
        for p in &parts[1..] {
            a.push(*p);
        }
        a
    }

    /// Append one argument.
    pub(crate) fn push<T: ToArg + ?Sized>(&mut self, arg: &T) {
        let start = self.data.len() as u32;
        if let Err(e) = arg.try_write_arg(&mut self.data) {
            self.data.truncate(start as usize);
            if self.error.is_none() {
                self.error = Some(e);
            }
        }
        self.ranges.push((start, self.data.len() as u32));
    }

    /// `Err` with the first argument's encoding failure, naming the command.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match &self.error {
            None => Ok(()),
            Some(e) => Err(self.name_in(e.clone())),
        }
    }

    /// `e` with this command's name in front of its message (for failures after the
    /// router: conversions and decoding of the reply).
    pub(crate) fn name_in(&self, e: Error) -> Error {
        e.in_command(&String::from_utf8_lossy(self.get(0).unwrap_or(b"")))
    }

    /// Route this command's read by `read_from` instead of the client's policy.
    pub(crate) fn set_read_from(&mut self, read_from: ReadFrom) {
        self.read_from = Some(read_from);
    }

    /// The command's own read policy, if it has one.
    pub(crate) fn read_from(&self) -> Option<ReadFrom> {
        self.read_from
    }

    /// Number of arguments, the name included.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Argument `i` (0 is the name).
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let &(s, e) = self.ranges.get(i)?;
        self.data.get(s as usize..e as usize)
    }

    /// All arguments as slices.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.ranges
            .iter()
            .map(move |&(s, e)| &self.data[s as usize..e as usize])
    }

    /// Append the command as a RESP array of bulk strings.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.data.len() + self.ranges.len() * 16 + 16);
        write_header(out, b'*', self.ranges.len() as i64);
        for arg in self.iter() {
            encode_bulk(out, arg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_resp_array() {
        let mut a = Args::new("SET");
        a.push("k");
        a.push(&42i64);
        a.push(&b""[..]);
        assert_eq!(a.len(), 4);
        assert_eq!(a.get(2), Some(&b"42"[..]));
        assert_eq!(a.get(4), None);
        let mut out = BytesMut::new();
        a.encode(&mut out);
        assert_eq!(
            &out[..],
            b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n42\r\n$0\r\n\r\n"
        );
    }
}
