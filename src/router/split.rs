//! Multi-key commands whose keys span slots: split into one sub-request per slot, merged
//! back in the caller's order.
//!
//! Only commands whose merge is well defined and that need no atomicity across keys are
//! split (the table's `multi_shard` tip, read by [`command::classify`]): `MGET` (values put back at their keys' positions), `MSET` (`OK` when every part
//! succeeded), and `DEL`, `UNLINK`, `EXISTS`, `TOUCH` (counts summed). Commands that must stay
//! atomic (`MSETNX`, `RENAME`, `SMOVE`, scripts, ...) keep their cross-slot error, raised
//! before anything is sent.
//!
//! A split command is not atomic: another client may see some parts applied and not others,
//! and when one part fails the others may still have been applied (the error says which
//! part failed).

use std::collections::HashMap;

use crate::command::{self, SplitMerge as Merge};
use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::slot::key_slot;
use crate::types::Args;

/// One part of a split command: the keys (and values) of one slot.
#[derive(Debug)]
pub(crate) struct Part {
    /// The part as a command of its own.
    pub(crate) args: Args,
    /// The slot of every key in it.
    pub(crate) slot: u16,
    /// For each key of the part, its position among the original command's keys.
    pub(crate) positions: Vec<usize>,
}

/// A command split by slot.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The parts, in order of each slot's first key.
    pub(crate) parts: Vec<Part>,
    /// How the replies merge.
    pub(crate) merge: Merge,
    /// Keys in the original command.
    pub(crate) keys: usize,
    /// The command only reads (a replica may serve it).
    pub(crate) readonly: bool,
}

/// The split plan for `args`, or `None` when the command is not one that may be split.
pub(crate) fn plan(args: &Args) -> Option<Plan> {
    let name = args.get(0)?;
    let class = command::classify(args);
    let split = class.split?;
    let (step, merge, readonly) = (split.step, split.merge, class.readonly);
    let argc = args.len();
    if argc < 2 || (argc - 1) % step != 0 {
        // Wrong arity: let the server answer with its own error.
        return None;
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let mut by_slot: HashMap<u16, usize> = HashMap::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut keys = 0;
    let mut i = 1;
    while i < argc {
        let key = args.get(i)?;
        let slot = key_slot(key);
        let idx = *by_slot.entry(slot).or_insert_with(|| {
            parts.push(Part {
                args: Args::new(&name),
                slot,
                positions: Vec::new(),
            });
            parts.len() - 1
        });
        let part = &mut parts[idx];
        for j in 0..step {
            part.args.push(args.get(i + j)?);
        }
        part.positions.push(keys);
        keys += 1;
        i += step;
    }
    // A command's own read policy holds for each of its parts.
    if let Some(rf) = args.read_from() {
        for p in &mut parts {
            p.args.set_read_from(rf);
        }
    }
    Some(Plan {
        parts,
        merge,
        keys,
        readonly,
    })
}

fn shape_error(what: &str, got: &Value) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("expected {what} from every part of a split command, got {got:?}"),
    )
}

/// Merge the parts' replies (in part order) into the reply the unsplit command would give.
///
/// # Errors
/// The first part's error (in the caller's key order); a protocol error when a part's reply
/// has the wrong shape.
pub(crate) fn merge(plan: &Plan, replies: Vec<Result<Value, Error>>) -> Result<Value, Error> {
    let mut values = Vec::with_capacity(replies.len());
    for (part, r) in plan.parts.iter().zip(replies) {
        match r {
            Ok(v) => values.push(v),
            Err(e) if plan.parts.len() > 1 => {
                let first_key = part.positions.first().copied().unwrap_or(0);
                return Err(Error::new(
                    e.kind(),
                    format!(
                        "part for slot {} (key #{first_key}) of a split command failed; other parts may have been applied: {e}",
                        part.slot
                    ),
                )
                .with_sent(e.maybe_applied()));
            }
            Err(e) => return Err(e),
        }
    }
    match plan.merge {
        Merge::Positional => {
            let mut out = vec![Value::Null; plan.keys];
            for (part, v) in plan.parts.iter().zip(values) {
                let items = match v {
                    Value::Array(items) if items.len() == part.positions.len() => items,
                    other => return Err(shape_error("one value per key", &other)),
                };
                for (&pos, item) in part.positions.iter().zip(items) {
                    if let Some(slot) = out.get_mut(pos) {
                        *slot = item;
                    }
                }
            }
            Ok(Value::Array(out))
        }
        Merge::Sum => {
            let mut total: i64 = 0;
            for v in &values {
                match v {
                    Value::Integer(i) => total = total.saturating_add(*i),
                    other => return Err(shape_error("an integer", other)),
                }
            }
            Ok(Value::Integer(total))
        }
        Merge::AllOk => Ok(Value::ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_slot_and_keeps_positions() {
        let p = plan(&Args::of(&["MGET", "{a}1", "{b}1", "{a}2", "{c}1"])).unwrap();
        assert_eq!(p.parts.len(), 3);
        assert_eq!(p.parts[0].positions, vec![0, 2]);
        assert_eq!(p.parts[0].args.get(2), Some(&b"{a}2"[..]));
        assert_eq!(p.parts[1].positions, vec![1]);
        assert!(p.readonly);
        let replies = vec![
            Ok(Value::Array(vec![Value::bulk("a1"), Value::Null])),
            Ok(Value::Array(vec![Value::bulk("b1")])),
            Ok(Value::Array(vec![Value::bulk("c1")])),
        ];
        assert_eq!(
            merge(&p, replies).unwrap(),
            Value::Array(vec![
                Value::bulk("a1"),
                Value::bulk("b1"),
                Value::Null,
                Value::bulk("c1")
            ])
        );
    }

    #[test]
    fn mset_keeps_pairs_and_sums_count() {
        let p = plan(&Args::of(&["mset", "{a}1", "x", "{b}1", "y", "{a}2", "z"])).unwrap();
        assert_eq!(p.parts.len(), 2);
        assert_eq!(p.parts[0].args.len(), 5);
        assert_eq!(p.parts[0].args.get(4), Some(&b"z"[..]));
        assert!(!p.readonly);
        assert!(
            plan(&Args::of(&["MSET", "a", "1", "b"])).is_none(),
            "bad arity"
        );
        let d = plan(&Args::of(&["DEL", "{a}1", "{b}1", "{a}2"])).unwrap();
        let r = merge(&d, vec![Ok(Value::Integer(2)), Ok(Value::Integer(1))]).unwrap();
        assert_eq!(r, Value::Integer(3));
        assert!(merge(&d, vec![Ok(Value::Integer(2)), Ok(Value::ok())]).is_err());
        let e = merge(
            &d,
            vec![Ok(Value::Integer(2)), Err(Error::server("ERR boom"))],
        )
        .unwrap_err();
        assert!(e.to_string().contains("may have been applied"), "{e}");
        assert!(plan(&Args::of(&["MSETNX", "a", "1", "b", "2"])).is_none());
    }
}
