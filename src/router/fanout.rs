//! Keyless commands that concern the whole cluster (DBSIZE, KEYS, FLUSHALL, CONFIG SET ...):
//! sent to every primary (or every node) as the command table's `request_policy` tip says,
//! and the replies merged as its `response_policy` says, so a caller never gets one shard's
//! answer passed off as the cluster's.
//!
//! Only policies with a well-defined merge are fanned out; `special` ones (INFO, SCAN ...)
//! still go to one primary, except RANDOMKEY, asked of every primary so an empty one cannot
//! answer nil for a cluster that has keys.

use crate::command::CommandSpec;
use crate::error::{Error, ErrorKind};
use crate::resp::Value;

/// Which nodes a fanned-out command goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Targets {
    /// Every shard's primary.
    Primaries,
    /// Every node, replicas included.
    AllNodes,
}

/// How the per-node replies become one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merge {
    /// Sum of integer replies (DBSIZE).
    Sum,
    /// Every node must succeed; the first reply is returned (FLUSHALL, CONFIG SET, PING).
    AllSucceeded,
    /// One success is enough (SCRIPT KILL).
    OneSucceeded,
    /// Arrays concatenated (KEYS).
    Concat,
    /// A random node's non-nil reply; nil only when every node answered nil (RANDOMKEY: a
    /// primary with no keys must not make the whole cluster look empty).
    AnyNonNil,
}

/// The fan-out plan of a keyless command, if its tips call for one.
pub(crate) fn plan(spec: &CommandSpec) -> Option<(Targets, Merge)> {
    if spec.name.eq_ignore_ascii_case("randomkey") {
        return Some((Targets::Primaries, Merge::AnyNonNil));
    }
    let targets = match spec.request_policy()? {
        "all_shards" => Targets::Primaries,
        "all_nodes" => Targets::AllNodes,
        _ => return None,
    };
    let merge = match spec.response_policy() {
        Some("agg_sum") => Merge::Sum,
        Some("all_succeeded") => Merge::AllSucceeded,
        Some("one_succeeded") => Merge::OneSucceeded,
        None => Merge::Concat,
        Some(_) => return None,
    };
    Some((targets, merge))
}

/// Merge the replies, in node order.
///
/// # Errors
/// For `Sum`, `AllSucceeded` and `Concat`, the first node's error; for `OneSucceeded`, the
/// last error when no node succeeded; a conversion error when `Sum`/`Concat` meet a reply of
/// the wrong shape.
pub(crate) fn merge(replies: Vec<Result<Value, Error>>, how: Merge) -> Result<Value, Error> {
    if how == Merge::OneSucceeded {
        let mut last = None;
        for r in replies {
            match r {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        return Err(last.unwrap_or_else(|| Error::new(ErrorKind::ClusterDown, "no node to ask")));
    }
    let values = replies.into_iter().collect::<Result<Vec<Value>, Error>>()?;
    if how == Merge::AnyNonNil {
        let n = values.len().max(1);
        let start = rand::random::<usize>() % n;
        let mut values = values;
        values.rotate_left(start);
        return Ok(values
            .into_iter()
            .find(|v| !matches!(v, Value::Null | Value::NullArray))
            .unwrap_or(Value::Null));
    }
    match how {
        Merge::Sum => {
            let mut total: i64 = 0;
            for v in &values {
                match v {
                    Value::Integer(i) => total = total.saturating_add(*i),
                    other => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!("expected an integer from every node, got {other:?}"),
                        ))
                    }
                }
            }
            Ok(Value::Integer(total))
        }
        Merge::Concat => {
            let mut all = Vec::new();
            for v in values {
                match v {
                    Value::Array(items) | Value::Set(items) => all.extend(items),
                    other => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!("expected an array from every node, got {other:?}"),
                        ))
                    }
                }
            }
            Ok(Value::Array(all))
        }
        Merge::AllSucceeded | Merge::OneSucceeded | Merge::AnyNonNil => values
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::ClusterDown, "no node to ask")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup_args;

    #[test]
    fn plans_follow_the_command_tips() {
        let p = |c: &[&str]| plan(lookup_args(c).unwrap());
        assert_eq!(p(&["DBSIZE"]), Some((Targets::Primaries, Merge::Sum)));
        assert_eq!(p(&["KEYS", "*"]), Some((Targets::Primaries, Merge::Concat)));
        assert_eq!(
            p(&["FLUSHALL"]),
            Some((Targets::Primaries, Merge::AllSucceeded))
        );
        assert_eq!(
            p(&["CONFIG", "SET", "x", "y"]),
            Some((Targets::AllNodes, Merge::AllSucceeded))
        );
        assert_eq!(p(&["INFO"]), None, "special merge stays on one node");
        assert_eq!(
            p(&["RANDOMKEY"]),
            Some((Targets::Primaries, Merge::AnyNonNil))
        );
        let ok = |v: Value| -> Result<Value, Error> { Ok(v) };
        for _ in 0..8 {
            let r = merge(
                vec![ok(Value::Null), ok(Value::bulk("k")), ok(Value::Null)],
                Merge::AnyNonNil,
            );
            assert_eq!(r.unwrap(), Value::bulk("k"));
        }
        assert_eq!(
            merge(vec![ok(Value::Null)], Merge::AnyNonNil).unwrap(),
            Value::Null
        );
        assert_eq!(p(&["GET", "k"]), None);
    }

    #[test]
    fn merges() {
        let ok = |v: Value| -> Result<Value, Error> { Ok(v) };
        assert_eq!(
            merge(
                vec![ok(Value::Integer(2)), ok(Value::Integer(3))],
                Merge::Sum
            )
            .unwrap(),
            Value::Integer(5)
        );
        assert_eq!(
            merge(
                vec![
                    ok(Value::Array(vec![Value::bulk("a")])),
                    ok(Value::Array(vec![Value::bulk("b")]))
                ],
                Merge::Concat
            )
            .unwrap(),
            Value::Array(vec![Value::bulk("a"), Value::bulk("b")])
        );
        let e = Error::server("ERR boom");
        assert!(merge(vec![ok(Value::ok()), Err(e.clone())], Merge::AllSucceeded).is_err());
        assert_eq!(
            merge(vec![Err(e.clone()), ok(Value::ok())], Merge::OneSucceeded).unwrap(),
            Value::ok()
        );
        assert!(merge(vec![Err(e)], Merge::OneSucceeded).is_err());
        assert!(merge(vec![ok(Value::bulk("x"))], Merge::Sum).is_err());
    }
}
