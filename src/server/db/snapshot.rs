//! Binary encodings: the whole keyspace (full resync) and one value (DUMP/RESTORE/MIGRATE).
//!
//! Value payload: `type byte, body, format version (2 bytes LE), FNV-1a 64 checksum (8 bytes
//! LE) of everything before it` — the same shape as Redis' DUMP payload, but our own body.
//! Snapshot: `"RCDB", version byte, key count, then per key: key, expiry flag [+ ms], payload
//! body; then the checksum of everything before`. All lengths are u32 LE. Decoding checks every
//! length against the bytes left, so garbage gives an error, never a panic or a huge allocation.

use std::collections::VecDeque;

use indexmap::{IndexMap, IndexSet};

use super::wire::{put_bytes, put_len, Reader};
use super::{Data, Db, ZSet};

pub(super) const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const PAYLOAD_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"RCDB";
const SNAPSHOT_VERSION: u8 = 1;

const T_STR: u8 = 0;
const T_LIST: u8 = 1;
const T_SET: u8 = 2;
const T_HASH: u8 = 3;
const T_ZSET: u8 = 4;
const T_STREAM: u8 = 5;

fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn encode_data(out: &mut Vec<u8>, d: &Data) {
    match d {
        Data::Str(v) => {
            out.push(T_STR);
            put_bytes(out, v);
        }
        Data::List(l) => {
            out.push(T_LIST);
            put_len(out, l.len());
            l.iter().for_each(|v| put_bytes(out, v));
        }
        Data::Set(s) => {
            out.push(T_SET);
            put_len(out, s.len());
            s.iter().for_each(|v| put_bytes(out, v));
        }
        Data::Hash(h) => {
            out.push(T_HASH);
            put_len(out, h.len());
            for (k, v) in h.iter() {
                put_bytes(out, k);
                put_bytes(out, v);
            }
        }
        Data::Zset(z) => {
            out.push(T_ZSET);
            put_len(out, z.len());
            for (m, s) in z.iter() {
                put_bytes(out, m);
                out.extend_from_slice(&s.to_bits().to_le_bytes());
            }
        }
        Data::Stream(s) => {
            out.push(T_STREAM);
            super::stream_codec::encode(out, s);
        }
    }
}

fn decode_data(r: &mut Reader<'_>) -> Result<Data, ()> {
    Ok(match r.u8()? {
        T_STR => Data::Str(r.bytes()?),
        T_LIST => {
            let n = r.count(4)?;
            let mut l = VecDeque::with_capacity(n);
            for _ in 0..n {
                l.push_back(r.bytes()?);
            }
            Data::List(l)
        }
        T_SET => {
            let n = r.count(4)?;
            let mut s = IndexSet::with_capacity(n);
            for _ in 0..n {
                s.insert(r.bytes()?);
            }
            Data::Set(Box::new(s))
        }
        T_HASH => {
            let n = r.count(8)?;
            let mut h = IndexMap::with_capacity(n);
            for _ in 0..n {
                let k = r.bytes()?;
                h.insert(k, r.bytes()?);
            }
            Data::Hash(Box::new(h))
        }
        T_ZSET => {
            let n = r.count(12)?;
            let mut z = ZSet::default();
            for _ in 0..n {
                let m = r.bytes()?;
                let s = f64::from_bits(r.u64()?);
                if s.is_nan() {
                    return Err(());
                }
                z.insert(m, s);
            }
            Data::Zset(Box::new(z))
        }
        T_STREAM => Data::Stream(Box::new(super::stream_codec::decode(r)?)),
        _ => return Err(()),
    })
    .and_then(|d| {
        // Redis never stores an empty aggregate; a payload holding one is corrupt.
        let empty = match &d {
            Data::Str(_) => false,
            Data::List(l) => l.is_empty(),
            Data::Set(s) => s.is_empty(),
            Data::Hash(h) => h.is_empty(),
            Data::Zset(z) => z.is_empty(),
            Data::Stream(_) => false,
        };
        if empty {
            Err(())
        } else {
            Ok(d)
        }
    })
}

/// Encode one value as a DUMP payload.
pub(super) fn encode_payload(d: &Data) -> Vec<u8> {
    let mut out = Vec::new();
    encode_data(&mut out, d);
    out.extend_from_slice(&PAYLOAD_VERSION.to_le_bytes());
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Decode a DUMP payload, checking version and checksum.
pub(super) fn decode_payload(p: &[u8]) -> Result<Data, ()> {
    if p.len() < 11 {
        return Err(());
    }
    let (body, sum) = p.split_at(p.len() - 8);
    let mut sb = [0u8; 8];
    sb.copy_from_slice(sum);
    if checksum(body) != u64::from_le_bytes(sb) {
        return Err(());
    }
    let (data, ver) = body.split_at(body.len() - 2);
    if u16::from_le_bytes([ver[0], ver[1]]) != PAYLOAD_VERSION {
        return Err(());
    }
    let mut r = Reader { buf: data, pos: 0 };
    let d = decode_data(&mut r)?;
    if r.pos != data.len() {
        return Err(());
    }
    Ok(d)
}

impl Db {
    /// The whole keyspace including TTLs, for a full resync over TCP.
    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.len() * 32);
        out.extend_from_slice(MAGIC);
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for (k, e) in self.entries() {
            put_bytes(&mut out, k);
            match e.expire_at() {
                Some(t) => {
                    out.push(1);
                    out.extend_from_slice(&t.to_le_bytes());
                }
                None => out.push(0),
            }
            encode_data(&mut out, &e.data);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Load a keyspace produced by [`Db::encode_snapshot`].
    ///
    /// # Errors
    /// A description of what is wrong when `data` is not a valid snapshot (never panics).
    pub(crate) fn decode_snapshot(data: &[u8]) -> Result<Db, String> {
        if data.len() < MAGIC.len() + 1 + 8 + 8 {
            return Err("snapshot too short".into());
        }
        let (body, sum) = data.split_at(data.len() - 8);
        let mut sb = [0u8; 8];
        sb.copy_from_slice(sum);
        if checksum(body) != u64::from_le_bytes(sb) {
            return Err("snapshot checksum mismatch".into());
        }
        if &body[..4] != MAGIC || body[4] != SNAPSHOT_VERSION {
            return Err("not a snapshot of a supported version".into());
        }
        let mut r = Reader { buf: body, pos: 5 };
        let bad = |_| "snapshot is truncated or corrupt".to_string();
        let n = r.u64().map_err(bad)?;
        let mut db = Db::new();
        for _ in 0..n {
            let key = r.bytes().map_err(bad)?;
            let expire = match r.u8().map_err(bad)? {
                0 => None,
                1 => Some(r.u64().map_err(bad)?),
                _ => return Err("snapshot is truncated or corrupt".into()),
            };
            let d = decode_data(&mut r).map_err(bad)?;
            db.insert(&key, d, expire);
        }
        if r.pos != body.len() {
            return Err("trailing bytes after snapshot".into());
        }
        Ok(db)
    }

    /// The DUMP payload of `key`'s value, `None` when the key is absent at `now_ms`.
    pub(crate) fn dump_key(&self, key: &[u8], now_ms: u64) -> Option<Vec<u8>> {
        let e = self.peek(key)?;
        if e.expire_at().is_some_and(|t| t <= now_ms) {
            return None;
        }
        Some(encode_payload(&e.data))
    }
}
