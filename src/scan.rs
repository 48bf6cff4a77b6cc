//! Cluster-wide `SCAN` that stays correct while slots migrate.
//!
//! # Guarantee
//! Every key that exists, in a slot that is served, for the whole scan is returned **at least
//! once**. Keys may be returned more than once (after a slot moved, or when a node is scanned
//! again for a slot that moved to it); callers that need each key once deduplicate. Keys
//! created or deleted during the scan may or may not be returned.
//!
//! # How
//! The scan walks the cluster node by node and keeps, per slot, whether the slot is done. A
//! node is scanned with plain `SCAN` from cursor 0 to the end (this works with Redis' hash
//! table cursors and with the bundled cluster's slot cursors alike). Before and after that
//! pass the client asks the node itself (`CLUSTER NODES`, its `myself` line) which slots it
//! owns and which are migrating; a slot is marked done only when the node owned it, not
//! migrating, at both ends of the pass, since then every key of that slot lived on that node
//! throughout (the one case this cannot see is a slot that left the node and came back
//! within a single pass). Every other slot (moved away, moved in, in migration) stays pending and is
//! scanned again on whichever node owns it next, so a migration in progress delays the scan's
//! end until it finishes.
//!
//! The position is a [`ScanCursor`]: the set of slots done plus the node pass in progress. It
//! can be kept as a string (`Display` / `FromStr`)
//! and resumed later, even after the cluster changed shape.
//!
//! Without a cluster (a standalone primary) the primary holds every slot: the scan is one
//! plain `SCAN` pass over it.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::slot::SLOT_COUNT;
use crate::types::Args;

const WORDS: usize = SLOT_COUNT as usize / 64;

/// A set of slots as a bitmap.
#[derive(Clone, PartialEq, Eq)]
struct SlotSet(Box<[u64; WORDS]>);

impl SlotSet {
    fn new() -> SlotSet {
        SlotSet(Box::new([0; WORDS]))
    }

    fn insert(&mut self, slot: u16) {
        if let Some(w) = self.0.get_mut(usize::from(slot) / 64) {
            *w |= 1 << (slot % 64);
        }
    }

    fn contains(&self, slot: u16) -> bool {
        self.0
            .get(usize::from(slot) / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    fn insert_range(&mut self, lo: u16, hi: u16) {
        for s in lo..=hi.min(SLOT_COUNT - 1) {
            self.insert(s);
        }
    }

    fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// First slot not in the set.
    fn first_missing(&self) -> Option<u16> {
        (0..SLOT_COUNT).find(|&s| !self.contains(s))
    }

    /// `self & other & !minus`.
    fn and_not(&self, other: &SlotSet, minus: &SlotSet) -> SlotSet {
        let mut out = SlotSet::new();
        for i in 0..WORDS {
            out.0[i] = self.0[i] & other.0[i] & !minus.0[i];
        }
        out
    }

    fn union_with(&mut self, other: &SlotSet) {
        for i in 0..WORDS {
            self.0[i] |= other.0[i];
        }
    }

    /// `lo-hi,lo-hi` ranges (empty string for the empty set).
    fn to_ranges(&self) -> String {
        let mut out = String::new();
        let mut s = 0u32;
        while s < u32::from(SLOT_COUNT) {
            if !self.contains(s as u16) {
                s += 1;
                continue;
            }
            let lo = s;
            while s < u32::from(SLOT_COUNT) && self.contains(s as u16) {
                s += 1;
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&format!("{lo}-{}", s - 1));
        }
        out
    }

    fn from_ranges(text: &str) -> Option<SlotSet> {
        let mut set = SlotSet::new();
        for r in text.split(',').filter(|r| !r.is_empty()) {
            let (lo, hi) = r.split_once('-')?;
            let (lo, hi) = (lo.parse::<u16>().ok()?, hi.parse::<u16>().ok()?);
            if lo > hi || hi >= SLOT_COUNT {
                return None;
            }
            set.insert_range(lo, hi);
        }
        Some(set)
    }
}

/// One node's pass in progress.
#[derive(Clone, PartialEq, Eq)]
struct NodePass {
    addr: String,
    /// The node's own SCAN cursor.
    cursor: String,
    /// Slots the node owned, not migrating, when the pass began.
    start: SlotSet,
}

/// Where a cluster scan stands: slots finished, and the node pass in progress. Keep it as a
/// string with `to_string()` and get it back with `parse()` to resume a scan later.
#[derive(Clone, PartialEq, Eq)]
pub struct ScanCursor {
    done: SlotSet,
    pass: Option<NodePass>,
}

impl Default for ScanCursor {
    fn default() -> Self {
        ScanCursor::new()
    }
}

impl fmt::Debug for ScanCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanCursor")
            .field("slots_done", &self.done.len())
            .field("node", &self.pass.as_ref().map(|p| &p.addr))
            .finish()
    }
}

impl ScanCursor {
    /// The start of a scan.
    pub fn new() -> ScanCursor {
        ScanCursor {
            done: SlotSet::new(),
            pass: None,
        }
    }

    /// True when every slot has been scanned: the scan is over.
    pub fn is_finished(&self) -> bool {
        self.pass.is_none() && self.done.len() == usize::from(SLOT_COUNT)
    }

    /// Slots scanned so far (out of 16384), for progress reports.
    pub fn slots_done(&self) -> usize {
        self.done.len()
    }
}

impl fmt::Display for ScanCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1|{}", self.done.to_ranges())?;
        if let Some(p) = &self.pass {
            write!(f, "|{}|{}|{}", p.addr, p.cursor, p.start.to_ranges())?;
        }
        Ok(())
    }
}

impl FromStr for ScanCursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<ScanCursor, Error> {
        let bad = || Error::new(ErrorKind::Config, "not a scan cursor made by this client");
        let parts: Vec<&str> = s.split('|').collect();
        match parts.as_slice() {
            ["v1", done] => Ok(ScanCursor {
                done: SlotSet::from_ranges(done).ok_or_else(bad)?,
                pass: None,
            }),
            ["v1", done, addr, cursor, start] => {
                if !addr.contains(':')
                    || cursor.is_empty()
                    || !cursor.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad());
                }
                Ok(ScanCursor {
                    done: SlotSet::from_ranges(done).ok_or_else(bad)?,
                    pass: Some(NodePass {
                        addr: (*addr).to_string(),
                        cursor: (*cursor).to_string(),
                        start: SlotSet::from_ranges(start).ok_or_else(bad)?,
                    }),
                })
            }
            _ => Err(bad()),
        }
    }
}

/// What to scan for: `MATCH`, `COUNT` and `TYPE` of each node's `SCAN`.
///
/// Non-exhaustive: build it with [`ScanOptions::matching`] or `ScanOptions::default()` and
/// the setters, so a later SCAN option is not a breaking change.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Glob pattern keys must match (`MATCH`).
    pub pattern: Option<String>,
    /// Keys each node call looks at (`COUNT`, a hint).
    pub count: Option<u64>,
    /// Only keys of this type (`TYPE string|list|set|zset|hash|stream`).
    pub key_type: Option<String>,
}

impl ScanOptions {
    /// Keys matching `pattern`.
    pub fn matching(pattern: &str) -> ScanOptions {
        ScanOptions {
            pattern: Some(pattern.to_string()),
            ..ScanOptions::default()
        }
    }

    /// Set `COUNT`.
    pub fn count(mut self, n: u64) -> ScanOptions {
        self.count = Some(n);
        self
    }

    /// Set `TYPE`.
    pub fn key_type(mut self, t: &str) -> ScanOptions {
        self.key_type = Some(t.to_string());
        self
    }
}

/// What a node says about its own slots: owned, and migrating or importing.
fn own_slots(reply: &str) -> Option<(SlotSet, SlotSet)> {
    let line = reply.lines().find(|l| {
        l.split_whitespace()
            .nth(2)
            .is_some_and(|f| f.split(',').any(|x| x == "myself"))
    })?;
    let mut owned = SlotSet::new();
    let mut moving = SlotSet::new();
    for field in line.split_whitespace().skip(8) {
        if let Some(inner) = field.strip_prefix('[') {
            // [slot->-id] migrating, [slot-<-id] importing.
            let slot = inner.split('-').next().and_then(|s| s.parse::<u16>().ok());
            if let Some(s) = slot.filter(|&s| s < SLOT_COUNT) {
                moving.insert(s);
            }
            continue;
        }
        let (lo, hi) = match field.split_once('-') {
            Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
            None => {
                let s = field.parse::<u16>().ok()?;
                (s, s)
            }
        };
        owned.insert_range(lo, hi);
    }
    Some((owned, moving))
}

impl Client {
    async fn own_slots_of(&self, addr: &str) -> Result<(SlotSet, SlotSet), Error> {
        if self.router_ref().is_standalone() {
            // No cluster: the primary holds every slot, and nothing migrates.
            let mut all = SlotSet::new();
            all.insert_range(0, SLOT_COUNT - 1);
            return Ok((all, SlotSet::new()));
        }
        let args = {
            let mut a = Args::new("CLUSTER");
            a.push("NODES");
            a
        };
        let v = self.router_ref().execute_on(addr, &args).await?;
        let text = match v {
            Value::BulkString(b) | Value::SimpleString(b) => b,
            Value::Verbatim { text, .. } => text,
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("CLUSTER NODES from {addr}: unexpected reply {other:?}"),
                ))
            }
        };
        own_slots(&String::from_utf8_lossy(&text)).ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("CLUSTER NODES from {addr} has no readable myself line"),
            )
        })
    }

    /// One step of a cluster scan: the keys of one `SCAN` call on one node, and the cursor to
    /// continue from. Call again with the returned cursor until
    /// [`is_finished`](ScanCursor::is_finished); a page may be empty while the scan goes on.
    ///
    /// # Errors
    /// A node that stays unreachable past the request deadline, a server error (a bad
    /// `TYPE`, for instance). The cursor passed in is still valid to retry from (a pass on a
    /// node that is no longer a primary starts over on the slots' new owners).
    pub async fn scan_page(
        &self,
        cursor: &ScanCursor,
        opts: &ScanOptions,
    ) -> Result<(Vec<Bytes>, ScanCursor), Error> {
        let mut next = cursor.clone();
        if next.is_finished() {
            return Ok((Vec::new(), next));
        }
        let mut attempts = 0u32;
        let pass = loop {
            if let Some(p) = next.pass.take() {
                let topo = self.topology();
                if topo.shards().iter().any(|s| s.primary.addr == p.addr) {
                    break p;
                }
                // The node is no longer a primary (failover, removed): its slots are scanned
                // again from wherever they live now.
                continue;
            }
            let Some(slot) = next.done.first_missing() else {
                return Ok((Vec::new(), next));
            };
            let owner = self.topology().primary_for_slot(slot).map(str::to_string);
            let stale = match owner {
                Some(addr) => {
                    let (owned, moving) = self.own_slots_of(&addr).await?;
                    if owned.contains(slot) {
                        break NodePass {
                            addr,
                            cursor: "0".to_string(),
                            start: owned.and_not(&owned, &moving),
                        };
                    }
                    true
                }
                None => true,
            };
            if stale {
                attempts += 1;
                if attempts > 20 {
                    return Err(Error::new(
                        ErrorKind::ClusterDown,
                        format!("scan: no node owns slot {slot}"),
                    ));
                }
                // The map is stale or the slot is in migration: learn the new shape.
                self.router_ref().refresh_and_wait().await;
                tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempts)))
                    .await;
            }
        };
        let mut args = Args::new("SCAN");
        args.push(pass.cursor.as_str());
        if let Some(p) = &opts.pattern {
            args.push("MATCH");
            args.push(p.as_str());
        }
        if let Some(c) = opts.count {
            args.push("COUNT");
            args.push(&c);
        }
        if let Some(t) = &opts.key_type {
            args.push("TYPE");
            args.push(t.as_str());
        }
        let reply = match self.router_ref().execute_on(&pass.addr, &args).await {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::Server => return Err(e),
            Err(e) => {
                // The node is gone (failover, restart): its pass starts over on the slots'
                // new owners. The caller may retry from the returned error's cursor.
                self.router_ref().trigger_refresh();
                return Err(e);
            }
        };
        let (node_cursor, keys) = parse_scan_reply(reply)?;
        if node_cursor == "0" {
            let (owned, moving) = self.own_slots_of(&pass.addr).await?;
            let finished = pass.start.and_not(&owned, &moving);
            next.done.union_with(&finished);
            if finished.len() == 0 {
                // Everything it had moved or is moving: let the topology catch up.
                self.router_ref().refresh_and_wait().await;
            }
        } else {
            next.pass = Some(NodePass {
                cursor: node_cursor,
                ..pass
            });
        }
        Ok((keys, next))
    }

    /// Every key of the cluster matching `pattern`, as a stream (see [`scan`](crate::scan)
    /// for the at-least-once guarantee while slots migrate).
    ///
    /// ```no_run
    /// # async fn f(client: redcluster::Client) -> Result<(), redcluster::Error> {
    /// use futures::TryStreamExt;
    /// let keys: Vec<bytes::Bytes> = client.scan_match("user:*").try_collect().await?;
    /// # let _ = keys; Ok(()) }
    /// ```
    pub fn scan_match(&self, pattern: &str) -> impl Stream<Item = Result<Bytes, Error>> + Send {
        self.scan_with(ScanOptions::matching(pattern), ScanCursor::new())
    }

    /// A cluster scan with `MATCH`/`COUNT`/`TYPE` options, from `cursor` (a new one, or one
    /// kept from an earlier scan), as a stream of keys.
    pub fn scan_with(
        &self,
        opts: ScanOptions,
        cursor: ScanCursor,
    ) -> impl Stream<Item = Result<Bytes, Error>> + Send {
        let client = self.clone();
        futures::stream::try_unfold(
            (client, cursor, opts),
            |(client, cursor, opts)| async move {
                if cursor.is_finished() {
                    return Ok::<_, Error>(None);
                }
                let mut failures = 0;
                loop {
                    match client.scan_page(&cursor, &opts).await {
                        Ok((keys, next)) => return Ok(Some((keys, (client, next, opts)))),
                        // A node lost mid-scan: wait for the new topology and go on.
                        Err(e) if e.is_retryable() && failures < 3 => {
                            failures += 1;
                            client.router_ref().refresh_and_wait().await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            },
        )
        .map_ok(|keys: Vec<Bytes>| futures::stream::iter(keys.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}

fn parse_scan_reply(v: Value) -> Result<(String, Vec<Bytes>), Error> {
    let bad = |v: &Value| {
        Error::new(
            ErrorKind::Protocol,
            format!("SCAN reply is not [cursor, keys]: {v:?}"),
        )
    };
    let Value::Array(items) = v else {
        return Err(bad(&v));
    };
    let mut it = items.into_iter();
    let (Some(c), Some(keys), None) = (it.next(), it.next(), it.next()) else {
        return Err(Error::new(
            ErrorKind::Protocol,
            "SCAN reply is not [cursor, keys]",
        ));
    };
    let cursor = match &c {
        Value::BulkString(b) | Value::SimpleString(b) if b.iter().all(u8::is_ascii_digit) => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => return Err(bad(other)),
    };
    let keys = match keys {
        Value::Array(k) | Value::Set(k) => k
            .into_iter()
            .map(|k| match k {
                Value::BulkString(b) | Value::SimpleString(b) => Ok(b),
                other => Err(bad(&other)),
            })
            .collect::<Result<Vec<Bytes>, Error>>()?,
        other => return Err(bad(&other)),
    };
    Ok((cursor, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_as_text() {
        let mut c = ScanCursor::new();
        assert_eq!(c.to_string(), "v1|");
        c.done.insert_range(0, 99);
        c.done.insert(200);
        let mut start = SlotSet::new();
        start.insert_range(5000, 5460);
        c.pass = Some(NodePass {
            addr: "127.0.0.1:7000".into(),
            cursor: "1234".into(),
            start,
        });
        let text = c.to_string();
        assert_eq!(text, "v1|0-99,200-200|127.0.0.1:7000|1234|5000-5460");
        let back: ScanCursor = text.parse().unwrap();
        assert_eq!(back, c);
        assert!(!back.is_finished());
        let mut all = ScanCursor::new();
        all.done.insert_range(0, 16383);
        assert!(all.to_string().parse::<ScanCursor>().unwrap().is_finished());
        for bad in [
            "",
            "v2|",
            "v1|5-1",
            "v1|0-99999",
            "v1||h:1|x|",
            "v1||nocolon|0|",
        ] {
            assert!(bad.parse::<ScanCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn own_slots_reads_the_myself_line() {
        let nodes =
            "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 6000 [5461->-b2]\n\
                     b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [6000-<-a1]\n";
        let (owned, moving) = own_slots(nodes).unwrap();
        assert!(owned.contains(0) && owned.contains(5460) && owned.contains(6000));
        assert!(!owned.contains(5461));
        assert!(moving.contains(5461) && moving.len() == 1);
        let start = owned.and_not(&owned, &moving);
        assert_eq!(start.len(), 5462);
        assert!(own_slots("x 1:1@2 master - 0 0 1 connected 0-5\n").is_none());
    }
}
