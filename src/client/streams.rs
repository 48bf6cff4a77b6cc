//! Stream helpers with typed replies: `xadd`, `xrange`, `xread`, `xreadgroup`, `xack`,
//! `xpending`, `xautoclaim`. Each is `cmd(..).query()`, so blocking reads (a
//! [`StreamReadOptions::block`]) go through the router like any blocking command: on a
//! dedicated connection, with the block time added to the deadline. Keys read together
//! must hash to one slot (use a hash tag), as Redis Cluster requires.

use std::time::Duration;

use bytes::Bytes;

use super::Client;
use crate::error::Error;
use crate::resp::Value;
use crate::types::{FromValue, ToArg};

/// One stream entry: its ID and its field/value pairs in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEntry {
    /// `ms-seq`.
    pub id: String,
    /// Field/value pairs as added. Empty when the entry was deleted while pending (XREADGROUP
    /// history and XCLAIM then report the ID alone).
    pub fields: Vec<(Bytes, Bytes)>,
}

impl StreamEntry {
    /// The value of `field`, if the entry has it.
    pub fn get(&self, field: &str) -> Option<&Bytes> {
        self.fields
            .iter()
            .find(|(f, _)| f.as_ref() == field.as_bytes())
            .map(|(_, v)| v)
    }
}

impl FromValue for StreamEntry {
    fn from_value(value: Value) -> Result<Self, Error> {
        let (id, fields) = <(String, Value)>::from_value(value)?;
        let fields = match fields {
            Value::Null | Value::NullArray => Vec::new(),
            other => {
                let flat = Vec::<Bytes>::from_value(other)?;
                if flat.len() % 2 != 0 {
                    return Err(Error::conversion("stream entry with an odd field list"));
                }
                flat.chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect()
            }
        };
        Ok(StreamEntry { id, fields })
    }
}

/// Entries read from one stream (XREAD/XREADGROUP).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamRead {
    /// The stream's key.
    pub key: Bytes,
    /// Its entries, oldest first.
    pub entries: Vec<StreamEntry>,
}

/// XREAD/XREADGROUP's reply: one [`StreamRead`] per stream that had entries, none on
/// timeout (RESP2 arrays and RESP3 maps alike).
fn reads(value: Value) -> Result<Vec<StreamRead>, Error> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Null | Value::NullArray => return Ok(Vec::new()),
        Value::Map(m) => m,
        Value::Array(items) => items
            .into_iter()
            .map(<(Value, Value)>::from_value)
            .collect::<Result<_, _>>()?,
        other => return Err(Error::conversion(format!("XREAD reply {other:?}"))),
    };
    pairs
        .into_iter()
        .map(|(k, v)| {
            Ok(StreamRead {
                key: Bytes::from_value(k)?,
                entries: Vec::<StreamEntry>::from_value(v)?,
            })
        })
        .collect()
}

/// Options of a stream read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamReadOptions {
    /// At most this many entries per stream.
    pub count: Option<usize>,
    /// Wait up to this long for entries (`Duration::ZERO` waits for ever).
    pub block: Option<Duration>,
    /// XREADGROUP only: deliver without adding to the pending list.
    pub noack: bool,
}

impl StreamReadOptions {
    /// At most `n` entries per stream.
    pub fn count(mut self, n: usize) -> Self {
        self.count = Some(n);
        self
    }

    /// Block up to `d` for entries (`Duration::ZERO`: for ever).
    pub fn block(mut self, d: Duration) -> Self {
        self.block = Some(d);
        self
    }

    /// XREADGROUP without acknowledgement tracking.
    pub fn noack(mut self) -> Self {
        self.noack = true;
        self
    }
}

/// XPENDING's summary form.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingSummary {
    /// Entries delivered and not acknowledged.
    pub count: u64,
    /// Smallest and largest pending IDs (`None` when nothing is pending).
    pub min_id: Option<String>,
    /// See `min_id`.
    pub max_id: Option<String>,
    /// Pending entries per consumer.
    pub consumers: Vec<(String, u64)>,
}

impl FromValue for PendingSummary {
    fn from_value(value: Value) -> Result<Self, Error> {
        let (count, min_id, max_id, consumers) = <(
            u64,
            Option<String>,
            Option<String>,
            Option<Vec<(String, u64)>>,
        )>::from_value(value)?;
        Ok(PendingSummary {
            count,
            min_id,
            max_id,
            consumers: consumers.unwrap_or_default(),
        })
    }
}

/// XAUTOCLAIM's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutoClaim {
    /// Where the next call should start (`0-0` when the scan is complete).
    pub next: String,
    /// Entries now owned by the claiming consumer.
    pub claimed: Vec<StreamEntry>,
    /// Pending IDs whose entries no longer exist (dropped from the pending list).
    pub deleted: Vec<String>,
}

impl FromValue for AutoClaim {
    fn from_value(value: Value) -> Result<Self, Error> {
        let items = Vec::<Value>::from_value(value)?;
        let mut it = items.into_iter();
        let next = String::from_value(it.next().unwrap_or(Value::Null))?;
        let claimed = Vec::<StreamEntry>::from_value(it.next().unwrap_or(Value::Array(vec![])))?;
        let deleted = match it.next() {
            Some(v) => Vec::<String>::from_value(v)?,
            None => Vec::new(),
        };
        Ok(AutoClaim {
            next,
            claimed,
            deleted,
        })
    }
}

impl Client {
    /// `XADD key * field value ...`: append an entry with a server-generated ID; returns it.
    pub async fn xadd<K, F, V>(&self, key: K, fields: &[(F, V)]) -> Result<String, Error>
    where
        K: ToArg,
        F: ToArg + Clone,
        V: ToArg + Clone,
    {
        let mut c = self.cmd("XADD").arg(key).arg("*");
        for (f, v) in fields {
            c = c.arg(f.clone()).arg(v.clone());
        }
        c.query().await
    }

    /// `XRANGE key start end [COUNT n]` (`-` and `+` for the whole stream).
    pub async fn xrange<K: ToArg>(
        &self,
        key: K,
        start: &str,
        end: &str,
        count: Option<usize>,
    ) -> Result<Vec<StreamEntry>, Error> {
        let mut c = self.cmd("XRANGE").arg(key).arg(start).arg(end);
        if let Some(n) = count {
            c = c.arg("COUNT").arg(n);
        }
        c.query().await
    }

    /// `XREAD [COUNT n] [BLOCK ms] STREAMS key... id...`: entries after each ID (`$` for
    /// "only new ones"); empty when none came before the block time ran out.
    pub async fn xread<K: ToArg + Clone>(
        &self,
        streams: &[(K, &str)],
        opts: StreamReadOptions,
    ) -> Result<Vec<StreamRead>, Error> {
        let c = read_options(self.cmd("XREAD"), opts, false);
        reads(with_streams(c, streams).query::<Value>().await?)
    }

    /// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...`:
    /// `>` reads entries never delivered to the group; an ID re-reads this consumer's own
    /// pending entries after it (what a restarted worker does first).
    pub async fn xreadgroup<K: ToArg + Clone>(
        &self,
        group: &str,
        consumer: &str,
        streams: &[(K, &str)],
        opts: StreamReadOptions,
    ) -> Result<Vec<StreamRead>, Error> {
        let c = self.cmd("XREADGROUP").arg("GROUP").arg(group).arg(consumer);
        let c = read_options(c, opts, true);
        reads(with_streams(c, streams).query::<Value>().await?)
    }

    /// `XACK key group id...`: how many of `ids` were pending and are now acknowledged.
    pub async fn xack<K: ToArg>(&self, key: K, group: &str, ids: &[&str]) -> Result<u64, Error> {
        self.cmd("XACK")
            .arg(key)
            .arg(group)
            .args(ids.iter().copied())
            .query()
            .await
    }

    /// `XPENDING key group`: the group's pending summary.
    pub async fn xpending<K: ToArg>(&self, key: K, group: &str) -> Result<PendingSummary, Error> {
        self.cmd("XPENDING").arg(key).arg(group).query().await
    }

    /// `XAUTOCLAIM key group consumer min-idle start [COUNT n]`: take over entries pending
    /// longer than `min_idle` (a crashed worker's), starting at `start` (`0-0` first).
    pub async fn xautoclaim<K: ToArg>(
        &self,
        key: K,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: &str,
        count: usize,
    ) -> Result<AutoClaim, Error> {
        self.cmd("XAUTOCLAIM")
            .arg(key)
            .arg(group)
            .arg(consumer)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(start)
            .arg("COUNT")
            .arg(count)
            .query()
            .await
    }
}

fn read_options(mut c: super::Cmd<'_>, opts: StreamReadOptions, group: bool) -> super::Cmd<'_> {
    if let Some(n) = opts.count {
        c = c.arg("COUNT").arg(n);
    }
    if let Some(d) = opts.block {
        c = c
            .arg("BLOCK")
            .arg(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    }
    if group && opts.noack {
        c = c.arg("NOACK");
    }
    c
}

fn with_streams<'a, K: ToArg + Clone>(c: super::Cmd<'a>, streams: &[(K, &str)]) -> super::Cmd<'a> {
    let mut c = c.arg("STREAMS");
    for (k, _) in streams {
        c = c.arg(k.clone());
    }
    for (_, id) in streams {
        c = c.arg(*id);
    }
    c
}
