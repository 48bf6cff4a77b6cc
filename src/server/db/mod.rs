//! One node's keyspace: every data type, expiry, and what replicas must replay.
//!
//! INTERFACE STUB: the data-engine work replaces the bodies; the signatures are the contract
//! the network layer (`src/server/*` outside `db/`) codes against. (The network helper added
//! the rest of the agreed contract here so its code compiles before the engine lands.)

#![allow(dead_code)]

use std::collections::HashMap;

use bytes::Bytes;

use crate::resp::Value;
use crate::slot::key_slot;

/// Per-call facts a command needs from the connection that sent it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExecCtx {
    /// The clock (ms since the Unix epoch) used for every expiry decision of this call.
    pub now_ms: u64,
    /// True when the client speaks RESP3.
    pub resp3: bool,
}

/// Counters for `INFO keyspace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DbStats {
    /// Keys stored.
    pub keys: usize,
    /// Keys that carry a TTL.
    pub expires: usize,
}

/// A node's keyspace. `Clone` is the point-in-time snapshot replication ships.
#[derive(Clone, Debug, Default)]
pub(crate) struct Db {
    strings: HashMap<Bytes, (Bytes, u64)>,
    propagate: Vec<Vec<Bytes>>,
    replica: bool,
    version: u64,
}

impl Db {
    /// An empty keyspace.
    pub(crate) fn new() -> Db {
        Db::default()
    }

    /// True when [`Db::execute`] implements the command `name` (any case).
    pub(crate) fn supports(name: &[u8]) -> bool {
        matches!(
            name.to_ascii_lowercase().as_slice(),
            b"get" | b"set" | b"del" | b"dbsize" | b"flushall" | b"incr"
        )
    }

    /// Run a data command. `args[0]` is the name; the caller has already checked arity
    /// against `crate::command` and slot ownership. Errors are `Value::Error` replies.
    /// Writes queue what replicas must replay (see [`Db::take_propagation`]).
    pub(crate) fn execute(&mut self, args: &[Bytes], ctx: &ExecCtx) -> Value {
        let _ = ctx;
        match args[0].to_ascii_lowercase().as_slice() {
            b"get" => self
                .strings
                .get(&args[1])
                .map_or(Value::Null, |v| Value::BulkString(v.0.clone())),
            b"set" => {
                self.version += 1;
                self.strings
                    .insert(args[1].clone(), (args[2].clone(), self.version));
                self.propagate.push(args.to_vec());
                Value::ok()
            }
            b"incr" => {
                self.version += 1;
                let n = self
                    .strings
                    .get(&args[1])
                    .and_then(|v| std::str::from_utf8(&v.0).ok()?.parse::<i64>().ok())
                    .unwrap_or(0)
                    + 1;
                self.strings
                    .insert(args[1].clone(), (Bytes::from(n.to_string()), self.version));
                self.propagate.push(args.to_vec());
                Value::Integer(n)
            }
            b"del" => {
                let mut n = 0;
                for k in &args[1..] {
                    if self.strings.remove(k).is_some() {
                        n += 1;
                    }
                }
                self.propagate.push(args.to_vec());
                Value::Integer(n)
            }
            b"dbsize" => Value::Integer(self.strings.len() as i64),
            b"flushall" => {
                self.strings.clear();
                self.propagate.push(args.to_vec());
                Value::ok()
            }
            _ => Value::error("ERR unknown command"),
        }
    }

    /// The commands replicas must apply, in order, since the last call.
    pub(crate) fn take_propagation(&mut self) -> Vec<Vec<Bytes>> {
        std::mem::take(&mut self.propagate)
    }

    /// Replicas never expire keys themselves; they wait for the primary's DEL.
    pub(crate) fn set_replica(&mut self, replica: bool) {
        self.replica = replica;
    }

    /// Reclaim up to `max_keys` expired keys; returns how many were removed.
    pub(crate) fn active_expire(&mut self, now_ms: u64, max_keys: usize) -> usize {
        let _ = (now_ms, max_keys);
        0
    }

    /// Number of live keys.
    pub(crate) fn dbsize(&self, now_ms: u64) -> usize {
        let _ = now_ms;
        self.strings.len()
    }

    /// Counters for `INFO keyspace`.
    pub(crate) fn stats(&self) -> DbStats {
        DbStats {
            keys: self.strings.len(),
            expires: 0,
        }
    }

    /// Remove every key.
    pub(crate) fn flush(&mut self) {
        self.strings.clear();
    }

    /// Keys stored in `slot`.
    pub(crate) fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.strings.keys().filter(|k| key_slot(k) == slot).count()
    }

    /// Up to `count` keys of `slot`.
    pub(crate) fn keys_in_slot(&self, slot: u16, count: usize) -> Vec<Bytes> {
        self.strings
            .keys()
            .filter(|k| key_slot(k) == slot)
            .take(count)
            .cloned()
            .collect()
    }

    /// Remove every key of `slot`; returns how many.
    pub(crate) fn delete_keys_in_slot(&mut self, slot: u16) -> usize {
        let before = self.strings.len();
        self.strings.retain(|k, _| key_slot(k) != slot);
        before - self.strings.len()
    }

    /// A number that changes whenever `key` is modified (for WATCH).
    pub(crate) fn version_of(&self, key: &[u8], now_ms: u64) -> u64 {
        let _ = now_ms;
        self.strings.get(key).map_or(0, |v| v.1)
    }

    /// The whole keyspace as bytes (the full-sync payload).
    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, (v, _)) in &self.strings {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    /// The keyspace encoded by [`Db::encode_snapshot`].
    pub(crate) fn decode_snapshot(mut data: &[u8]) -> Result<Db, String> {
        let mut db = Db::new();
        let take = |data: &mut &[u8]| -> Result<Bytes, String> {
            if data.len() < 4 {
                return Err("truncated snapshot".into());
            }
            let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
            if data.len() < 4 + n {
                return Err("truncated snapshot".into());
            }
            let b = Bytes::copy_from_slice(&data[4..4 + n]);
            *data = &data[4 + n..];
            Ok(b)
        };
        while !data.is_empty() {
            let k = take(&mut data)?;
            let v = take(&mut data)?;
            db.strings.insert(k, (v, 1));
        }
        Ok(db)
    }
}
