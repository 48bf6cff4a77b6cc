//! The data side of the blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP). Waiting is the network layer's job: it validates with
//! [`Db::block_spec`], tries [`Db::try_serve_blocking`] at once and again whenever one of the
//! keys may have changed, and replies `Value::NullArray` when the timeout passes. Which
//! commands block, their keys and timeout argument come from `command::classify`; this file
//! knows how each one is served.
//!
//! A served command replies and propagates exactly as Redis 7.0 does for it (served blocking
//! pops replicate as their non-blocking forms: `LPOP key`, `ZPOPMIN key`, `LMOVE ...`).

use bytes::Bytes;

use super::util::{eq, err, list_ref, mpop_args, score, word, zset_mut, SYNTAX};
use super::{list, Db, ExecCtx};
use crate::resp::Value;

/// What a blocked client waits for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BlockSpec {
    /// Keys whose change may let the command be served, in the command's order.
    pub keys: Vec<Bytes>,
    /// How long to wait, `None` for ever (a timeout of 0).
    pub timeout_ms: Option<u64>,
}

/// The blocking commands, named by the non-blocking form they serve as. This is the
/// handler's side (what a served waiter runs); which commands block, where their keys and
/// timeout are and their arity come from [`crate::command::classify`].
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    LPop,
    RPop,
    LMove,
    RPopLPush,
    LMPop,
    ZPopMin,
    ZPopMax,
    ZMPop,
    /// XREAD / XREADGROUP with BLOCK: served by [`Db::serve_blocked_stream`].
    Stream,
}

fn kind(name: &[u8]) -> Option<Kind> {
    let k = if eq(name, b"blpop") {
        Kind::LPop
    } else if eq(name, b"brpop") {
        Kind::RPop
    } else if eq(name, b"blmove") {
        Kind::LMove
    } else if eq(name, b"brpoplpush") {
        Kind::RPopLPush
    } else if eq(name, b"blmpop") {
        Kind::LMPop
    } else if eq(name, b"bzpopmin") {
        Kind::ZPopMin
    } else if eq(name, b"bzpopmax") {
        Kind::ZPopMax
    } else if eq(name, b"bzmpop") {
        Kind::ZMPop
    } else if eq(name, b"xread") || eq(name, b"xreadgroup") {
        Kind::Stream
    } else {
        return None;
    };
    Some(k)
}

/// The type of key a blocked command is served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pops {
    /// A list (BLPOP, BLMOVE ...).
    List,
    /// A sorted set (BZPOPMIN ...).
    ZSet,
    /// A stream (XREAD/XREADGROUP BLOCK): the command decides itself.
    Stream,
}

/// Parse a blocking timeout (seconds, may be fractional) as Redis 7.0 does.
fn timeout_arg(s: &[u8]) -> Result<Option<u64>, Value> {
    let secs = super::util::parse_f64(s)
        .ok_or_else(|| err("ERR timeout is not a float or out of range"))?;
    let ms = secs * 1000.0;
    if ms < 0.0 || !ms.is_finite() || ms >= i64::MAX as f64 {
        return Err(err("ERR timeout is negative"));
    }
    // Like Redis, a timeout that truncates to 0 ms means "for ever".
    let ms = ms as u64;
    Ok((ms > 0).then_some(ms))
}

/// The non-blocking form of an `*MPOP` call: `[name, numkeys, keys.., where, [COUNT n]]`.
fn mpop_form(name: &'static str, a: &[Bytes]) -> Vec<Bytes> {
    let mut v = Vec::with_capacity(a.len() - 1);
    v.push(word(name));
    v.extend(a[2..].iter().cloned());
    v
}

impl Db {
    /// What a blocking command (a waiter's arguments) is served from, and whether serving
    /// it pushes to its destination (`args[2]`: BLMOVE, BRPOPLPUSH), so that key may serve
    /// the next waiter. `None` for commands that do not block.
    pub(crate) fn blocking_pops(args: &[Bytes]) -> Option<(Pops, bool)> {
        let k = kind(args.first()?)?;
        let pops = match k {
            Kind::ZPopMin | Kind::ZPopMax | Kind::ZMPop => Pops::ZSet,
            Kind::Stream => Pops::Stream,
            _ => Pops::List,
        };
        Some((pops, matches!(k, Kind::LMove | Kind::RPopLPush)))
    }

    /// Validate a blocking command and say what it waits for.
    ///
    /// # Errors
    /// The error reply Redis gives for bad arguments (arity, timeout, syntax, numkeys, count),
    /// before any waiting.
    pub(crate) fn block_spec(args: &[Bytes]) -> Result<BlockSpec, Value> {
        let Some(name) = args.first() else {
            return Err(Value::error("ERR empty command"));
        };
        let (Some(k), Some(spec)) = (kind(name), crate::command::lookup(name)) else {
            return Err(Value::error("ERR not a blocking command"));
        };
        if k == Kind::Stream {
            return Err(Value::error("ERR not a blocking command"));
        }
        if !spec.arity_ok(args.len()) {
            return Err(super::util::wrong_args(name));
        }
        let class = crate::command::classify_spec(spec, args);
        let Some(at) = class.block.map(|t| t.index) else {
            return Err(Value::error("ERR not a blocking command"));
        };
        if k == Kind::LMove {
            let dir = |d: &Bytes| eq(d, b"left") || eq(d, b"right");
            if !dir(&args[3]) || !dir(&args[4]) {
                return Err(err(SYNTAX));
            }
        }
        let timeout_ms = timeout_arg(&args[at])?;
        if matches!(k, Kind::LMPop | Kind::ZMPop) {
            let words: (&[u8], &[u8]) = if k == Kind::LMPop {
                (b"left", b"right")
            } else {
                (b"min", b"max")
            };
            mpop_args(&mpop_form("X", args), words)?;
        }
        let mut keys: Vec<Bytes> = class.keys.iter().map(|i| args[i].clone()).collect();
        if matches!(k, Kind::LMove | Kind::RPopLPush) {
            // The destination is written, not waited on.
            keys.truncate(1);
        }
        Ok(BlockSpec { keys, timeout_ms })
    }

    /// Serve a blocking command now if one of its keys has data: `Some(reply)` (also for
    /// errors such as WRONGTYPE), or `None` when the client must wait. Propagates what it
    /// changed, like [`Db::execute`].
    pub(crate) fn try_serve_blocking(&mut self, args: &[Bytes], ctx: &ExecCtx) -> Option<Value> {
        let stream = args.first().and_then(|n| kind(n)) == Some(Kind::Stream);
        if !stream {
            if let Err(e) = Db::block_spec(args) {
                return Some(e);
            }
        }
        let changes_before = self.changes;
        let reply = if stream {
            self.serve_blocked_stream(args, ctx)
        } else {
            self.serve_blocking(args, ctx)
        };
        if !self.touched.is_empty() {
            self.settle_versions(changes_before);
        }
        reply
    }

    fn serve_blocking(&mut self, args: &[Bytes], ctx: &ExecCtx) -> Option<Value> {
        let k = kind(&args[0])?;
        let last = args.len() - 1;
        let now = ctx.now_ms;
        let reply = match k {
            Kind::LPop | Kind::RPop => {
                let left = k == Kind::LPop;
                for key in &args[1..last] {
                    match list_ref(self, key, now) {
                        Err(e) => return Some(e),
                        Ok(None) => continue,
                        Ok(Some(_)) => {}
                    }
                    let pop = vec![word(if left { "LPOP" } else { "RPOP" }), key.clone()];
                    let v = if left {
                        list::lpop(self, &pop, ctx)
                    } else {
                        list::rpop(self, &pop, ctx)
                    };
                    return Some(Value::Array(vec![Value::BulkString(key.clone()), v]));
                }
                return None;
            }
            Kind::ZPopMin | Kind::ZPopMax => {
                let max = k == Kind::ZPopMax;
                for key in &args[1..last] {
                    let z = match zset_mut(self, key, now) {
                        Err(e) => return Some(e),
                        Ok(None) => continue,
                        Ok(Some(z)) => z,
                    };
                    let Some((m, s)) = z.pop(max) else { continue };
                    self.remove_if_empty(key);
                    let name = if max { "ZPOPMAX" } else { "ZPOPMIN" };
                    self.push_prop(vec![word(name), key.clone()]);
                    return Some(Value::Array(vec![
                        Value::BulkString(key.clone()),
                        Value::BulkString(m),
                        score(s, ctx.resp3),
                    ]));
                }
                return None;
            }
            Kind::LMove | Kind::RPopLPush => {
                match list_ref(self, &args[1], now) {
                    Err(e) => return Some(e),
                    Ok(None) => return None,
                    Ok(Some(_)) => {}
                }
                if k == Kind::LMove {
                    let mut v = args[..5].to_vec();
                    v[0] = word("LMOVE");
                    list::lmove(self, &v, ctx)
                } else {
                    let v = vec![word("RPOPLPUSH"), args[1].clone(), args[2].clone()];
                    list::rpoplpush(self, &v, ctx)
                }
            }
            Kind::LMPop => list::lmpop(self, &mpop_form("LMPOP", args), ctx),
            Kind::ZMPop => super::zset::zmpop(self, &mpop_form("ZMPOP", args), ctx),
            Kind::Stream => return None,
        };
        match reply {
            Value::NullArray | Value::Null => None,
            other => Some(other),
        }
    }
}
