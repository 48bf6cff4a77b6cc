//! Fault commands for outside tools: `SHUTDOWN`, `DEBUG SLEEP`, `DEBUG SET-ACTIVE-EXPIRE`,
//! `CLIENT PAUSE` / `CLIENT UNPAUSE`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::resp::Value;

use super::args::{parse_i64, syntax_error};
use super::call::{Call, Outcome};
use super::node::NodeShared;

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: stop this node like a kill (there is
/// nothing to save). `None`: the node is stopping and the connection closes unanswered.
pub(crate) fn shutdown(args: &[Bytes], shared: &NodeShared) -> Option<Value> {
    let mut abort = false;
    for arg in &args[1..] {
        match arg.to_ascii_lowercase().as_slice() {
            b"nosave" | b"save" | b"now" | b"force" => {}
            b"abort" => abort = true,
            _ => return Some(syntax_error()),
        }
    }
    if abort {
        return Some(Value::error("ERR No shutdown in progress."));
    }
    tracing::warn!(addr = %shared.addr, "SHUTDOWN");
    shared.stop();
    None
}

/// `DEBUG SLEEP seconds` (the whole node stalls, this reply comes after) and `DEBUG
/// SET-ACTIVE-EXPIRE 0|1`.
pub(crate) fn debug(args: &[Bytes], shared: &NodeShared) -> Value {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"sleep", 3) => {
            let secs = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(0.0)
                .min(3600.0);
            if secs > 0.0 {
                let until = Instant::now() + Duration::from_secs_f64(secs);
                shared.faults.set_pause(|p| {
                    p.sleep_until = Some(p.sleep_until.map_or(until, |u| u.max(until)));
                });
            }
            Value::ok()
        }
        (b"set-active-expire", 3) => {
            let on = parse_i64(&args[2]).unwrap_or(0) != 0;
            shared
                .faults
                .active_expire_off
                .store(!on, Ordering::Relaxed);
            Value::ok()
        }
        (b"help", _) => Value::Array(vec![
            Value::simple("DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"),
            Value::simple("SLEEP <seconds>"),
            Value::simple("SET-ACTIVE-EXPIRE <0|1>"),
        ]),
        _ => Value::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`.
pub(crate) fn client_pause(args: &[Bytes], shared: &NodeShared) -> Value {
    let Some(ms) = parse_i64(&args[2]).filter(|ms| *ms >= 0) else {
        return Value::error("ERR timeout is not an integer or out of range");
    };
    let writes_only = match args.get(3).map(|a| a.to_ascii_lowercase()) {
        None => false,
        Some(m) if m == b"all" => false,
        Some(m) if m == b"write" => true,
        Some(_) => return syntax_error(),
    };
    if args.len() > 4 {
        return syntax_error();
    }
    let until = Instant::now() + Duration::from_millis(ms as u64);
    shared.faults.set_pause(|p| {
        p.clients_until = Some(until);
        p.writes_only = writes_only;
    });
    Value::ok()
}

/// `CLIENT UNPAUSE`.
pub(crate) fn client_unpause(shared: &NodeShared) -> Value {
    shared.faults.set_pause(|p| p.clients_until = None);
    Value::ok()
}

/// DEBUG (registry entry).
pub(crate) fn debug_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(debug(c.args, c.shared))
}

/// SHUTDOWN (registry entry): no reply when the node stops.
pub(crate) fn shutdown_command(c: &mut Call<'_, '_>) -> Outcome {
    match shutdown(c.args, c.shared) {
        Some(reply) => Outcome::Reply(reply),
        None => Outcome::NoReply,
    }
}
