//! One node's keyspace: every data type, expiry, and what replicas must replay.
//!
//! INTERFACE STUB: the data-engine work replaces the bodies; the signatures are the contract
//! the network layer (`src/server/*` outside `db/`) codes against.

#![allow(dead_code)]

use std::collections::HashMap;

use bytes::Bytes;

use crate::resp::Value;

/// A node's keyspace. `Clone` is the point-in-time snapshot replication ships.
#[derive(Clone, Debug, Default)]
pub(crate) struct Db {
    strings: HashMap<Bytes, Bytes>,
    propagate: Vec<Vec<Bytes>>,
}

impl Db {
    /// An empty keyspace.
    pub(crate) fn new() -> Db {
        Db::default()
    }

    /// True when [`Db::execute`] implements the command `name` (any case).
    pub(crate) fn supports(name: &[u8]) -> bool {
        matches!(name.to_ascii_lowercase().as_slice(), b"get" | b"set")
    }

    /// Run a data command. `args[0]` is the name; the caller has already checked arity
    /// against `crate::command` and slot ownership. Errors are `Value::Error` replies.
    /// Writes queue what replicas must replay (see [`Db::take_propagation`]).
    pub(crate) fn execute(&mut self, args: &[Bytes], now_ms: u64) -> Value {
        let _ = now_ms;
        match args[0].to_ascii_lowercase().as_slice() {
            b"get" => self
                .strings
                .get(&args[1])
                .map_or(Value::Null, |v| Value::BulkString(v.clone())),
            b"set" => {
                self.strings.insert(args[1].clone(), args[2].clone());
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

    /// Number of live keys.
    pub(crate) fn dbsize(&self, now_ms: u64) -> usize {
        let _ = now_ms;
        self.strings.len()
    }
}
