//! The byte-level encoding DUMP payloads and snapshots share (u32 LE lengths, a
//! bounds-checked reader over untrusted bytes): a leaf `snapshot.rs` and `stream_codec.rs`
//! both build on.

use bytes::Bytes;

/// Append a length (u32 LE).
pub(super) fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Append a length-prefixed byte string.
pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// A bounds-checked reader over untrusted bytes.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        let end = self.pos.checked_add(n).ok_or(())?;
        let s = self.buf.get(self.pos..end).ok_or(())?;
        self.pos = end;
        Ok(s)
    }

    pub(super) fn u8(&mut self) -> Result<u8, ()> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<usize, ()> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }

    pub(super) fn u64(&mut self) -> Result<u64, ()> {
        let s = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(u64::from_le_bytes(b))
    }

    pub(super) fn bytes(&mut self) -> Result<Bytes, ()> {
        let n = self.u32()?;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }

    /// A count of items each at least `min` bytes long, checked against what is left.
    pub(super) fn count(&mut self, min: usize) -> Result<usize, ()> {
        let n = self.u32()?;
        if n.saturating_mul(min) > self.buf.len() - self.pos {
            return Err(());
        }
        Ok(n)
    }
}
