//! Databases 0-15 of a standalone node (cluster mode keeps db 0 only, as Redis).
//!
//! The database the running command uses sits in `NodeState.db`; the others are parked in
//! [`Databases`]. Before a command runs, `NodeState::select_db` swaps in the database its
//! connection selected: a compare when it is already there (always in cluster mode, and on
//! a node whose clients stay in db 0), else a swap of two `Db` headers (no copy of keys).
//! The replication stream names the database of what it carries with `SELECT n` (emitted by
//! `ReplState::feed` when it changes), and a full sync ships every database.
//!
//! Here: the swap, SELECT, MOVE, SWAPDB, FLUSHALL over every database, the INFO keyspace
//! lines, the full-sync encoding of every database, and a replica's handling of the
//! stream's SELECT/MOVE/SWAPDB.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::resp::Value;

use super::args::parse_i64;
use super::call::{Call, Outcome};
use super::db::Db;
use super::node::{now_ms, Databases, NodeState, DATABASES};

fn readonly_error() -> Value {
    Value::error("READONLY You can't write against a read only replica.")
}

fn out_of_range() -> Value {
    Value::error("ERR DB index is out of range")
}

/// A database index argument as Redis' `getIntFromObjectOrReply` reads it (an `int`).
fn db_index(arg: &[u8], not_int: &str) -> Result<i64, Value> {
    parse_i64(arg)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| Value::error(format!("ERR {not_int}")))
}

fn in_range(n: i64) -> Option<usize> {
    usize::try_from(n).ok().filter(|&n| n < DATABASES)
}

impl NodeState {
    /// Make database `n` the one in `self.db` (and the one `ReplState::feed` names). An
    /// index out of range is ignored (commands check it first).
    pub(crate) fn select_db(&mut self, n: usize) {
        if n == self.dbs.current || n >= DATABASES {
            return;
        }
        if self.dbs.parked.is_empty() {
            self.dbs.parked.resize_with(DATABASES, || None);
        }
        let replica = self.db.is_replica();
        let mut incoming = self.dbs.parked[n].take().unwrap_or_else(|| {
            let mut db = Db::new();
            db.set_replica(replica);
            Box::new(db)
        });
        self.db.hand_tracking_to(&mut incoming);
        std::mem::swap(&mut self.db, &mut *incoming);
        self.dbs.parked[self.dbs.current] = Some(incoming);
        self.dbs.current = n;
        self.repl.set_db(n);
    }

    /// Call `f` with every database that holds a keyspace, by index (the one in `self.db`
    /// first).
    pub(crate) fn each_db(&mut self, mut f: impl FnMut(usize, &mut Db)) {
        f(self.dbs.current, &mut self.db);
        for (i, db) in self.dbs.parked.iter_mut().enumerate() {
            if let Some(db) = db {
                f(i, db);
            }
        }
    }

    /// Indexes of the databases that hold a keyspace, ascending.
    pub(crate) fn db_indexes(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.dbs.parked.len())
            .filter(|&i| self.dbs.parked[i].is_some())
            .collect();
        v.push(self.dbs.current);
        v.sort_unstable();
        v
    }

    /// Switch every database between replica and primary mode (see `Db::set_replica`).
    pub(crate) fn set_replica_dbs(&mut self, replica: bool) {
        self.each_db(|_, db| db.set_replica(replica));
    }

    /// After a keyspace command ran on the current database: FLUSHALL empties the others
    /// too (cheap to ask: nothing to do on a node that never left db 0).
    pub(crate) fn after_db_command(&mut self, args: &[Bytes], reply: &Value) {
        if self.dbs.parked.is_empty() || reply.is_error() {
            return;
        }
        if args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(b"flushall"))
        {
            for db in self.dbs.parked.iter_mut().flatten() {
                db.flush();
            }
        }
    }

    /// Every database that holds keys, cloned (the full sync's point-in-time snapshot).
    pub(crate) fn clone_dbs(&self) -> Vec<(usize, Db)> {
        let mut out = vec![(self.dbs.current, self.db.clone())];
        for (i, db) in self.dbs.parked.iter().enumerate() {
            if let Some(db) = db.as_ref().filter(|d| d.stats().keys > 0) {
                out.push((i, (**db).clone()));
            }
        }
        out
    }

    /// Replace every database with `dbs` (a loaded full sync); db 0 becomes current.
    pub(crate) fn install_dbs(&mut self, dbs: Vec<(usize, Db)>) {
        let replica = self.db.is_replica();
        self.db = Db::new();
        self.dbs = Databases::default();
        for (i, mut db) in dbs {
            db.set_replica(replica);
            if i == 0 {
                self.db = db;
            } else if i < DATABASES {
                if self.dbs.parked.is_empty() {
                    self.dbs.parked.resize_with(DATABASES, || None);
                }
                self.dbs.parked[i] = Some(Box::new(db));
            }
        }
        self.db.set_replica(replica);
        self.repl.set_db(0);
    }

    /// Take every database out (a restart keeping its data), leaving empty ones.
    pub(crate) fn take_dbs(&mut self) -> (Db, Databases) {
        (std::mem::take(&mut self.db), std::mem::take(&mut self.dbs))
    }

    /// `INFO keyspace` lines, one per database holding keys.
    pub(crate) fn keyspace_lines(&self, out: &mut String) {
        let mut line = |i: usize, db: &Db| {
            let s = db.stats();
            if s.keys > 0 {
                let _ = write!(
                    out,
                    "db{i}:keys={},expires={},avg_ttl=0\r\n",
                    s.keys, s.expires
                );
            }
        };
        for i in self.db_indexes() {
            if i == self.dbs.current {
                line(i, &self.db);
            } else if let Some(db) = self.dbs.parked.get(i).and_then(Option::as_deref) {
                line(i, db);
            }
        }
    }
}

/// SELECT index.
pub(crate) fn select(c: &mut Call<'_, '_>) -> Outcome {
    let n = match db_index(&c.args[1], "value is not an integer or out of range") {
        Ok(n) => n,
        Err(e) => return Outcome::Reply(e),
    };
    if !c.shared.config.standalone && n != 0 {
        return Outcome::Reply(Value::error("ERR SELECT is not allowed in cluster mode"));
    }
    Outcome::Reply(match in_range(n) {
        Some(n) => {
            c.conn.db = n;
            c.locked.get().select_db(n);
            Value::ok()
        }
        None => out_of_range(),
    })
}

/// MOVE key db.
pub(crate) fn move_command(c: &mut Call<'_, '_>) -> Outcome {
    if !c.shared.config.standalone {
        return Outcome::Reply(Value::error("ERR MOVE is not allowed in cluster mode"));
    }
    let st = c.locked.get();
    if st.refuses_writes() {
        return Outcome::Reply(readonly_error());
    }
    Outcome::Reply(move_key(st, c.args))
}

/// MOVE on the current database (a client's or the replication stream's).
fn move_key(st: &mut NodeState, args: &[Bytes]) -> Value {
    let n = match db_index(&args[2], "value is not an integer or out of range") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let Some(dst) = in_range(n) else {
        return out_of_range();
    };
    if dst == st.dbs.current {
        return Value::error("ERR source and destination objects are the same");
    }
    // Park-swap to reach both: the destination is a parked (or new) database.
    let src = st.dbs.current;
    st.select_db(dst);
    st.select_db(src);
    let Some(Some(target)) = st.dbs.parked.get_mut(dst) else {
        return Value::Integer(0);
    };
    let moved = st.db.move_key(target, args, now_ms());
    let props = st.db.take_propagation();
    st.repl.feed(props);
    Value::Integer(i64::from(moved))
}

/// SWAPDB index1 index2.
pub(crate) fn swapdb_command(c: &mut Call<'_, '_>) -> Outcome {
    if !c.shared.config.standalone {
        return Outcome::Reply(Value::error("ERR SWAPDB is not allowed in cluster mode"));
    }
    let st = c.locked.get();
    if st.refuses_writes() {
        return Outcome::Reply(readonly_error());
    }
    Outcome::Reply(swapdb(st, c.args))
}

fn swapdb(st: &mut NodeState, args: &[Bytes]) -> Value {
    let a = match db_index(&args[1], "invalid first DB index") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let b = match db_index(&args[2], "invalid second DB index") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
        return out_of_range();
    };
    if a != b {
        let cur = st.dbs.current;
        // Both parked (the current one parks too), swapped, then the current index back.
        st.select_db(if cur == a || cur == b {
            (0..DATABASES).find(|&i| i != a && i != b).unwrap_or(0)
        } else {
            cur
        });
        st.dbs.parked.swap(a, b);
        st.select_db(cur);
    }
    st.repl.feed(vec![args.to_vec()]);
    Value::ok()
}

/// A replica applying its primary's stream: SELECT switches the database the stream's
/// commands apply to (`stream_db`), MOVE and SWAPDB run as on the primary. True when
/// `args` was one of these.
pub(crate) fn apply_replicated(st: &mut NodeState, args: &[Bytes], stream_db: &mut usize) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    if name.eq_ignore_ascii_case(b"select") {
        if let Some(n) = args.get(1).and_then(|a| parse_i64(a)).and_then(in_range) {
            *stream_db = n;
        }
    } else if name.eq_ignore_ascii_case(b"move") && args.len() == 3 {
        st.select_db(*stream_db);
        let _ = move_key(st, args);
    } else if name.eq_ignore_ascii_case(b"swapdb") && args.len() == 3 {
        let _ = swapdb(st, args);
    } else {
        return false;
    }
    true
}

/// The keyspace part of a full sync: every database that holds keys, as
/// `[u32 index][u64 length][Db snapshot]`, so a replica loads all of them.
pub(crate) fn encode_dbs(dbs: &[(usize, Db)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, db) in dbs {
        let data = db.encode_snapshot();
        out.extend_from_slice(&(*i as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u64).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// The databases of [`encode_dbs`].
///
/// # Errors
/// When `data` is not such an encoding (never panics).
pub(crate) fn decode_dbs(mut data: &[u8]) -> Result<Vec<(usize, Db)>, String> {
    let bad = || "bad database section in a full resync payload".to_string();
    let mut out = Vec::new();
    while !data.is_empty() {
        let index: [u8; 4] = data
            .get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        let len: [u8; 8] = data
            .get(4..12)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        let index = u32::from_be_bytes(index) as usize;
        let len = usize::try_from(u64::from_be_bytes(len)).map_err(|_| bad())?;
        let end = 12usize.checked_add(len).ok_or_else(bad)?;
        let body = data.get(12..end).ok_or_else(bad)?;
        if index >= DATABASES {
            return Err(bad());
        }
        out.push((index, Db::decode_snapshot(body)?));
        data = &data[end..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{decode_dbs, encode_dbs};
    use crate::server::db::Db;

    #[test]
    fn dbs_encoding_round_trip_and_garbage() {
        let dbs = vec![(0, Db::new()), (3, Db::new())];
        let data = encode_dbs(&dbs);
        let back = decode_dbs(&data).unwrap();
        assert_eq!(back.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 3]);
        assert!(decode_dbs(&data[..data.len() - 1]).is_err());
        assert!(decode_dbs(&[0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_dbs(&[0, 0]).is_err());
        assert!(decode_dbs(&[]).unwrap().is_empty());
    }
}
