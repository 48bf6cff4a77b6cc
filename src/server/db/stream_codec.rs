//! A stream's body in our value encoding (snapshots, DUMP/RESTORE, MIGRATE): metadata,
//! entries, the node model and the consumer groups. Every count is checked against the bytes
//! left, so a corrupt payload is an error, never a panic or a huge allocation.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::stream::{Consumer, Group, Nack, NodeParts, Stream, StreamId};
use super::wire::{put_bytes, put_len, Reader};

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_le_bytes());
    out.extend_from_slice(&id.seq.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Append the body of `s`.
pub(super) fn encode(out: &mut Vec<u8>, s: &Stream) {
    put_id(out, s.last_id);
    put_id(out, s.max_deleted);
    put_u64(out, s.entries_added);
    put_len(out, s.entries.len());
    for (id, fv) in &s.entries {
        put_id(out, *id);
        put_len(out, fv.len());
        fv.iter().for_each(|b| put_bytes(out, b));
    }
    let nodes = s.node_parts();
    put_len(out, nodes.len());
    for n in nodes {
        put_id(out, n.master);
        put_len(out, n.fields.len());
        n.fields.iter().for_each(|b| put_bytes(out, b));
        put_u64(out, n.live);
        put_u64(out, n.deleted);
        put_u64(out, n.rest);
        put_id(out, n.last);
    }
    put_len(out, s.groups.len());
    for (name, g) in &s.groups {
        put_bytes(out, name);
        put_id(out, g.last_id);
        put_u64(out, g.entries_read as u64);
        put_len(out, g.consumers.len());
        for (cn, c) in &g.consumers {
            put_bytes(out, cn);
            put_u64(out, c.seen_time);
        }
        put_len(out, g.pel.len());
        for (id, n) in &g.pel {
            put_id(out, *id);
            put_bytes(out, &n.consumer);
            put_u64(out, n.delivery_time);
            put_u64(out, n.delivery_count);
        }
    }
}

fn id(r: &mut Reader<'_>) -> Result<StreamId, ()> {
    Ok(StreamId::new(r.u64()?, r.u64()?))
}

fn list(r: &mut Reader<'_>) -> Result<Vec<Bytes>, ()> {
    let n = r.count(4)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.bytes()?);
    }
    Ok(v)
}

/// Read a body written by [`encode`].
pub(super) fn decode(r: &mut Reader<'_>) -> Result<Stream, ()> {
    let last_id = id(r)?;
    let max_deleted = id(r)?;
    let entries_added = r.u64()?;
    let n = r.count(20)?;
    let mut entries = BTreeMap::new();
    let mut prev = None;
    for _ in 0..n {
        let eid = id(r)?;
        let fv = list(r)?;
        if fv.is_empty() || fv.len() % 2 != 0 || prev.is_some_and(|p| p >= eid) || eid > last_id {
            return Err(());
        }
        prev = Some(eid);
        entries.insert(eid, fv);
    }
    let nn = r.count(60)?;
    let mut parts = Vec::with_capacity(nn);
    for _ in 0..nn {
        parts.push(NodeParts {
            master: id(r)?,
            fields: list(r)?,
            live: r.u64()?,
            deleted: r.u64()?,
            rest: r.u64()?,
            last: id(r)?,
        });
    }
    let ng = r.count(32)?;
    let mut groups = BTreeMap::new();
    for _ in 0..ng {
        let name = r.bytes()?;
        let mut g = Group::new(id(r)?, r.u64()? as i64);
        let nc = r.count(12)?;
        for _ in 0..nc {
            let cn = r.bytes()?;
            let seen_time = r.u64()?;
            g.consumers.insert(
                cn,
                Consumer {
                    seen_time,
                    pel: Default::default(),
                },
            );
        }
        let np = r.count(36)?;
        for _ in 0..np {
            let pid = id(r)?;
            let consumer = r.bytes()?;
            let nack = Nack {
                consumer: consumer.clone(),
                delivery_time: r.u64()?,
                delivery_count: r.u64()?,
            };
            g.consumers.get_mut(&consumer).ok_or(())?.pel.insert(pid);
            g.pel.insert(pid, nack);
        }
        groups.insert(name, g);
    }
    let mut s = Stream::default();
    s.entries = entries;
    s.last_id = last_id;
    s.max_deleted = max_deleted;
    s.entries_added = entries_added;
    s.groups = groups;
    s.set_node_parts(parts).ok_or(())?;
    Ok(s)
}
