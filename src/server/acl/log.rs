//! ACL LOG: denials and failed logins, grouped as Redis groups them (same reason, context,
//! object and user within 60 s bump one entry's count), newest first, bounded.

use std::collections::VecDeque;

use crate::resp::Value;

/// Redis' `acllog-max-len` default.
const MAX_LEN: usize = 128;
/// Entries this close in time (ms) are grouped.
const GROUPING_MS: u64 = 60_000;
/// How many recent entries a new one is compared with.
const SCAN: usize = 10;

/// Why the entry was logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A command not allowed.
    Command,
    /// A key not allowed.
    Key,
    /// A channel not allowed.
    Channel,
    /// AUTH / HELLO AUTH failed.
    Auth,
}

impl Reason {
    fn text(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

#[derive(Debug)]
struct Entry {
    count: u64,
    reason: Reason,
    /// "toplevel", "multi" or "lua".
    context: &'static str,
    object: Vec<u8>,
    username: String,
    ctime_ms: u64,
    client_info: String,
}

/// The log of one node.
#[derive(Debug, Default)]
pub(crate) struct Log {
    entries: VecDeque<Entry>,
}

/// One event to log.
pub(crate) struct Event<'a> {
    /// Why.
    pub(crate) reason: Reason,
    /// "toplevel", "multi" or "lua".
    pub(crate) context: &'static str,
    /// The command name, key, channel, or (auth) the command as typed.
    pub(crate) object: &'a [u8],
    /// The user refused (for auth: the user name tried).
    pub(crate) username: &'a str,
    /// The client's CLIENT INFO line.
    pub(crate) client_info: String,
    /// Now, in Unix milliseconds.
    pub(crate) now_ms: u64,
}

impl Log {
    /// Record an event.
    pub(crate) fn add(&mut self, ev: Event<'_>) {
        let found = self.entries.iter().take(SCAN).position(|e| {
            e.reason == ev.reason
                && e.context == ev.context
                && e.ctime_ms.abs_diff(ev.now_ms) <= GROUPING_MS
                && e.object == ev.object
                && e.username == ev.username
        });
        if let Some(at) = found {
            if let Some(mut e) = self.entries.remove(at) {
                e.count += 1;
                e.ctime_ms = ev.now_ms;
                e.client_info = ev.client_info;
                self.entries.push_front(e);
            }
            return;
        }
        self.entries.push_front(Entry {
            count: 1,
            reason: ev.reason,
            context: ev.context,
            object: ev.object.to_vec(),
            username: ev.username.to_string(),
            ctime_ms: ev.now_ms,
            client_info: ev.client_info,
        });
        self.entries.truncate(MAX_LEN);
    }

    /// ACL LOG RESET.
    pub(crate) fn reset(&mut self) {
        self.entries.clear();
    }

    /// ACL LOG [count]: the newest `count` entries, each a map of 7 fields.
    pub(crate) fn reply(&self, count: usize, now_ms: u64) -> Value {
        let entries = self
            .entries
            .iter()
            .take(count)
            .map(|e| {
                let age = now_ms.saturating_sub(e.ctime_ms) as f64 / 1000.0;
                Value::Map(vec![
                    (Value::bulk("count"), Value::Integer(e.count as i64)),
                    (Value::bulk("reason"), Value::bulk(e.reason.text())),
                    (Value::bulk("context"), Value::bulk(e.context)),
                    (Value::bulk("object"), Value::bulk(&e.object)),
                    (Value::bulk("username"), Value::bulk(&e.username)),
                    (Value::bulk("age-seconds"), Value::Double(age)),
                    (Value::bulk("client-info"), Value::bulk(&e.client_info)),
                ])
            })
            .collect();
        Value::Array(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(object: &[u8], now_ms: u64) -> Event<'_> {
        Event {
            reason: Reason::Command,
            context: "toplevel",
            object,
            username: "u",
            client_info: String::new(),
            now_ms,
        }
    }

    #[test]
    fn groups_bounds_and_resets() {
        let mut log = Log::default();
        log.add(ev(b"get", 1000));
        log.add(ev(b"get", 2000));
        log.add(ev(b"set", 3000));
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.entries[1].count, 2);
        log.add(ev(b"get", 100_000));
        assert_eq!(log.entries[0].count, 1, "more than 60 s later: a new entry");
        for i in 0..300 {
            log.add(ev(format!("k{i}").as_bytes(), 100_000));
        }
        assert_eq!(log.entries.len(), MAX_LEN);
        log.reset();
        assert!(log.entries.is_empty());
    }
}
