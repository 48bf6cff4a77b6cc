//! Keyless commands that concern the whole cluster (DBSIZE, KEYS, FLUSHALL, CONFIG SET ...):
//! sent to every primary (or every node) and the replies merged, as
//! [`command::classify`](crate::command::classify) read from the command table's tips, so a
//! caller never gets one shard's answer passed off as the cluster's. This file merges.

use crate::command::FanoutMerge as Merge;
use crate::error::{Error, ErrorKind};
use crate::resp::Value;

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

    #[test]
    fn any_non_nil_prefers_a_value() {
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
