//! FUNCTION DUMP payloads: every library's code, a format version and a checksum, so
//! FUNCTION RESTORE refuses a damaged or foreign payload. (Our own format, like the rest of
//! this server's DUMP payloads: not redis-server's RDB encoding.)

use bytes::{BufMut, Bytes, BytesMut};

use super::Scripting;

/// Function libraries in a full resync: the primary sends its libraries as a FUNCTION DUMP
/// payload beside the keyspace, and the replica replaces its own with them (as a Redis
/// replica loads them from the primary's RDB).
impl Scripting {
    /// The FUNCTION DUMP payload of every loaded library. Called under the node lock: it
    /// never waits for a running script (the code recorded beside the engine is used then).
    pub(crate) fn functions_payload(&self) -> Bytes {
        if let Ok(mut engine) = self.engine.try_lock() {
            self.apply_replicated(&mut engine);
        }
        let codes = self
            .library_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        dump(codes.into_iter())
    }

    /// Replace every library by those of `payload` (from the primary's full resync), in
    /// order with the function commands of the stream that follows.
    pub(crate) fn replace_functions(&self, payload: Bytes) {
        self.queue_replicated(vec![
            Bytes::from_static(b"FUNCTION"),
            Bytes::from_static(b"RESTORE"),
            payload,
            Bytes::from_static(b"FLUSH"),
        ]);
    }
}

const MAGIC: &[u8] = b"RCFN";
const VERSION: u8 = 1;

/// The payload for `codes`.
pub(crate) fn dump(codes: impl Iterator<Item = Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
    for code in codes {
        out.put_u32(code.len() as u32);
        out.put_slice(&code);
    }
    let sum = checksum(&out);
    out.put_slice(&sum);
    out.freeze()
}

fn checksum(data: &[u8]) -> [u8; 8] {
    let hex = super::sha1_hex(data);
    let mut out = [0u8; 8];
    out.copy_from_slice(&hex.as_bytes()[..8]);
    out
}

/// The library codes of a payload, or `None` when it is not one of ours or is damaged.
pub(crate) fn parse(payload: &[u8]) -> Option<Vec<Bytes>> {
    if payload.len() < MAGIC.len() + 1 + 8 || !payload.starts_with(MAGIC) {
        return None;
    }
    let (body, sum) = payload.split_at(payload.len() - 8);
    if checksum(body) != sum || body[MAGIC.len()] != VERSION {
        return None;
    }
    let mut rest = &body[MAGIC.len() + 1..];
    let mut codes = Vec::new();
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let code = rest.get(4..4 + len)?;
        codes.push(Bytes::copy_from_slice(code));
        rest = &rest[4 + len..];
    }
    Some(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let p = dump(
            [
                Bytes::from_static(b"#!lua name=a\n"),
                Bytes::from_static(b"x"),
            ]
            .into_iter(),
        );
        assert_eq!(parse(&p).unwrap().len(), 2);
        let mut bad = p.to_vec();
        bad[6] ^= 1;
        assert!(parse(&bad).is_none());
        assert!(parse(b"junk").is_none());
    }
}
