//! Unit tests of the data engine (pure: no sockets). `T` runs commands written as one string
//! (words split on spaces) against a [`Db`] at a controllable clock.

mod blocking;
mod expiry;
mod fuzz;
mod hash_list;
mod keys;
mod propagation;
mod set_zset;
mod snapshot;
mod streams;
mod strings;

use bytes::Bytes;

use super::{Db, ExecCtx};
use crate::resp::Value;

impl Db {
    /// Run a keyspace command by name, as the server's registry runs it (arity checked).
    pub(super) fn execute(&mut self, args: &[Bytes], ctx: &ExecCtx) -> Value {
        crate::server::registry::execute_db(self, args, ctx)
    }

    /// True when the registry runs `name` (any case) on the keyspace.
    pub(super) fn supports(name: &[u8]) -> bool {
        crate::server::registry::is_db_command(name)
    }
}

/// A keyspace plus a fake clock.
pub(super) struct T {
    pub(super) db: Db,
    pub(super) now: u64,
    pub(super) resp3: bool,
}

impl T {
    pub(super) fn new() -> T {
        T {
            db: Db::new(),
            now: 1_700_000_000_000,
            resp3: false,
        }
    }

    pub(super) fn ctx(&self) -> ExecCtx {
        ExecCtx {
            now_ms: self.now,
            resp3: self.resp3,
        }
    }

    /// Run `cmd` (words split on single spaces).
    pub(super) fn run(&mut self, cmd: &str) -> Value {
        let args: Vec<Bytes> = cmd
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        self.args(&args)
    }

    pub(super) fn args(&mut self, args: &[Bytes]) -> Value {
        let ctx = self.ctx();
        self.db.execute(args, &ctx)
    }

    /// Run `cmd` and assert the reply is an error starting with `prefix`.
    pub(super) fn err(&mut self, cmd: &str, prefix: &str) {
        match self.run(cmd) {
            Value::Error(e) => assert!(
                e.starts_with(prefix.as_bytes()),
                "{cmd}: got error {:?}, want {prefix:?}",
                String::from_utf8_lossy(&e)
            ),
            other => panic!("{cmd}: got {other:?}, want error {prefix:?}"),
        }
    }

    /// Propagated commands since the last call, as strings.
    pub(super) fn prop(&mut self) -> Vec<String> {
        self.db
            .take_propagation()
            .iter()
            .map(|c| {
                c.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

pub(super) fn ok() -> Value {
    Value::ok()
}

pub(super) fn int(n: i64) -> Value {
    Value::Integer(n)
}

pub(super) fn bulk(s: &str) -> Value {
    Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
}

pub(super) fn arr(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| bulk(s)).collect())
}

/// Sorted bulk strings of an array/set reply (for replies in unspecified order).
pub(super) fn sorted(v: Value) -> Vec<String> {
    let items = match v {
        Value::Array(i) | Value::Set(i) => i,
        other => panic!("not an aggregate: {other:?}"),
    };
    let mut out: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("not a bulk string: {other:?}"),
        })
        .collect();
    out.sort();
    out
}
