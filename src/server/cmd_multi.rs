//! MULTI / EXEC / DISCARD / WATCH / UNWATCH, with every key of a transaction in one slot.

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::resp::Value;

use super::call::{Call, Outcome};
use super::cluster::route::Route;
use super::dispatch;
use super::node::{now_ms, Locked, NodeShared};
use super::registry::Traits;
use super::session::{Conn, Multi};

/// Run one of the transaction commands.
pub(crate) fn run(
    conn: &mut Conn,
    spec: &'static CommandSpec,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Value {
    match spec.name {
        "multi" => {
            if conn.multi.is_some() {
                return Value::error("ERR MULTI calls can not be nested");
            }
            conn.multi = Some(Multi::default());
            Value::ok()
        }
        "discard" => {
            if conn.multi.take().is_none() {
                return Value::error("ERR DISCARD without MULTI");
            }
            conn.watched.clear();
            Value::ok()
        }
        "watch" => {
            if conn.multi.is_some() {
                return Value::error("ERR WATCH inside MULTI is not allowed");
            }
            let st = locked.get();
            let now = now_ms();
            for key in &args[1..] {
                let version = st.db.version_of(key, now);
                conn.watched.push((key.clone(), version));
            }
            Value::ok()
        }
        "unwatch" => {
            conn.watched.clear();
            Value::ok()
        }
        "exec" => exec(conn, locked, shared),
        _ => Value::error("ERR unknown command"),
    }
}

fn exec(conn: &mut Conn, locked: &mut Locked<'_>, shared: &NodeShared) -> Value {
    let Some(multi) = conn.multi.take() else {
        return Value::error("ERR EXEC without MULTI");
    };
    let watched = std::mem::take(&mut conn.watched);
    let asking = std::mem::take(&mut conn.asking);
    let st = locked.get();
    // Every key of the transaction must be served here and share one slot.
    let mut route = Route::default();
    for (spec, args) in &multi.queued {
        let traits = Traits::of(spec);
        if traits.has_keys {
            route.add(st, spec, traits, args);
        }
    }
    if let Err(e) = route.finish(st, conn.readonly, asking) {
        return e;
    }
    if multi.aborted {
        return Value::error("EXECABORT Transaction discarded because of previous errors.");
    }
    let now = now_ms();
    if watched
        .iter()
        .any(|(key, version)| st.db.version_of(key, now) != *version)
    {
        return Value::NullArray;
    }
    dispatch::run_queued(conn, multi, locked, shared)
}

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH (registry entry).
pub(crate) fn multi_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(run(c.conn, c.spec, c.args, c.locked, c.shared))
}
