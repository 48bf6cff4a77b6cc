//! Per-node limits on clients, with Redis' CONFIG names and semantics:
//! `client-output-buffer-limit` (a hard and a soft limit per client class), `maxclients`
//! and `tcp-backlog`.
//!
//! The limits are atomics shared by every task of the node (connections, the replication
//! stream, pub/sub mailboxes), so checking them never takes the node lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The classes `client-output-buffer-limit` distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientClass {
    /// Ordinary clients.
    Normal,
    /// Replication links to replicas.
    Replica,
    /// Clients subscribed to pub/sub channels.
    Pubsub,
}

impl ClientClass {
    const ALL: [ClientClass; 3] = [
        ClientClass::Normal,
        ClientClass::Replica,
        ClientClass::Pubsub,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The name CONFIG GET shows (Redis 7.0 still says `slave`).
    fn config_name(self) -> &'static str {
        match self {
            ClientClass::Normal => "normal",
            ClientClass::Replica => "slave",
            ClientClass::Pubsub => "pubsub",
        }
    }

    fn parse(name: &str) -> Option<ClientClass> {
        match name.to_ascii_lowercase().as_str() {
            "normal" => Some(ClientClass::Normal),
            "replica" | "slave" => Some(ClientClass::Replica),
            "pubsub" => Some(ClientClass::Pubsub),
            _ => None,
        }
    }
}

/// One class's limits: past `hard` bytes the client is closed at once; above `soft` bytes
/// for more than `soft_secs` seconds it is closed too. 0 disables a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OutputLimit {
    /// Hard limit in bytes.
    pub(crate) hard: u64,
    /// Soft limit in bytes.
    pub(crate) soft: u64,
    /// How long the soft limit may be exceeded, in seconds.
    pub(crate) soft_secs: u64,
}

/// Redis' default `tcp-backlog`.
pub(crate) const DEFAULT_TCP_BACKLOG: u32 = 511;
/// Redis' default `maxclients`.
pub(crate) const DEFAULT_MAXCLIENTS: u64 = 10_000;

/// The node's client limits (live: CONFIG SET changes them for every client at once).
#[derive(Debug)]
pub(crate) struct ClientLimits {
    /// hard, soft, soft seconds per class.
    output: [[AtomicU64; 3]; 3],
    /// `maxclients`.
    maxclients: AtomicU64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        const MB: u64 = 1024 * 1024;
        let l = ClientLimits {
            output: Default::default(),
            maxclients: AtomicU64::new(DEFAULT_MAXCLIENTS),
        };
        l.set_output(
            ClientClass::Replica,
            OutputLimit {
                hard: 256 * MB,
                soft: 64 * MB,
                soft_secs: 60,
            },
        );
        l.set_output(
            ClientClass::Pubsub,
            OutputLimit {
                hard: 32 * MB,
                soft: 8 * MB,
                soft_secs: 60,
            },
        );
        l
    }
}

impl ClientLimits {
    /// The output limits of `class`.
    pub(crate) fn output(&self, class: ClientClass) -> OutputLimit {
        let [h, s, secs] = &self.output[class.index()];
        OutputLimit {
            hard: h.load(Ordering::Relaxed),
            soft: s.load(Ordering::Relaxed),
            soft_secs: secs.load(Ordering::Relaxed),
        }
    }

    fn set_output(&self, class: ClientClass, l: OutputLimit) {
        let [h, s, secs] = &self.output[class.index()];
        h.store(l.hard, Ordering::Relaxed);
        s.store(l.soft, Ordering::Relaxed);
        secs.store(l.soft_secs, Ordering::Relaxed);
    }

    /// Take over every limit of `other` (a restarted node keeps its settings).
    pub(crate) fn copy_from(&self, other: &ClientLimits) {
        for c in ClientClass::ALL {
            self.set_output(c, other.output(c));
        }
        self.maxclients.store(other.maxclients(), Ordering::Relaxed);
    }

    /// `maxclients`.
    pub(crate) fn maxclients(&self) -> u64 {
        self.maxclients.load(Ordering::Relaxed)
    }

    /// CONFIG SET maxclients.
    ///
    /// # Errors
    /// Redis' reason when `value` is not an integer of at least 1.
    pub(crate) fn set_maxclients(&self, value: &str) -> Result<(), &'static str> {
        match value.trim().parse::<u64>() {
            Ok(n) if n >= 1 => {
                self.maxclients.store(n, Ordering::Relaxed);
                Ok(())
            }
            Ok(_) => Err("argument must be between 1 and 4294967295 inclusive"),
            Err(_) => Err("argument couldn't be parsed into an integer"),
        }
    }

    /// CONFIG SET client-output-buffer-limit: `class hard soft seconds` groups; only the
    /// classes named change, as in Redis. Nothing changes when any group is invalid.
    ///
    /// # Errors
    /// Redis' reason for the first invalid group.
    pub(crate) fn set_output_config(&self, value: &str) -> Result<(), &'static str> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if words.len() % 4 != 0 {
            return Err("Wrong number of arguments in buffer limit configuration.");
        }
        let mut parsed = Vec::new();
        for group in words.chunks(4) {
            let class = ClientClass::parse(group[0])
                .ok_or("Invalid client class specified in buffer limit configuration.")?;
            let bad = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            let hard = parse_memory(group[1]).ok_or(bad)?;
            let soft = parse_memory(group[2]).ok_or(bad)?;
            let soft_secs = group[3].parse::<u64>().map_err(|_| bad)?;
            parsed.push((
                class,
                OutputLimit {
                    hard,
                    soft,
                    soft_secs,
                },
            ));
        }
        for (class, limit) in parsed {
            self.set_output(class, limit);
        }
        Ok(())
    }

    /// The CONFIG GET value: `normal 0 0 0 slave 268435456 67108864 60 pubsub ...`.
    pub(crate) fn output_config(&self) -> String {
        ClientClass::ALL
            .iter()
            .map(|&c| {
                let l = self.output(c);
                format!("{} {} {} {}", c.config_name(), l.hard, l.soft, l.soft_secs)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A memory amount as redis.conf writes it: `1gb`, `64mb`, `512k` (k = 1000, kb = 1024),
/// plain bytes; any case.
pub(crate) fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// Tracks one client's output against its class's limits over time (the soft limit needs
/// to know since when it has been exceeded).
#[derive(Debug, Default)]
pub(crate) struct OutputGuard {
    soft_since: Option<Instant>,
}

impl OutputGuard {
    /// True when a client holding `used` bytes of unsent output must be closed now.
    pub(crate) fn over(&mut self, limit: OutputLimit, used: u64) -> bool {
        if limit.hard > 0 && used >= limit.hard {
            return true;
        }
        if limit.soft > 0 && used >= limit.soft {
            // As Redis: the first time over the soft limit only starts the clock.
            let Some(since) = self.soft_since else {
                self.soft_since = Some(Instant::now());
                return false;
            };
            return since.elapsed() > std::time::Duration::from_secs(limit.soft_secs);
        }
        self.soft_since = None;
        false
    }

    /// When a client above its soft limit since the last check must be closed if its output
    /// has not drained by then.
    pub(crate) fn soft_deadline(&self, limit: OutputLimit) -> Option<Instant> {
        let since = self.soft_since?;
        (limit.soft > 0).then(|| since + std::time::Duration::from_secs(limit.soft_secs))
    }
}

/// Log, as Redis does, that a client is being dropped for its output buffer.
pub(crate) fn log_overflow(what: &str, used: u64, class: ClientClass) {
    tracing::warn!(
        "Client {what} scheduled to be closed ASAP for overcoming of output buffer limits \
         ({} class, {used} bytes pending).",
        class.config_name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_config_text_match_redis() {
        let l = ClientLimits::default();
        assert_eq!(
            l.output_config(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        l.set_output_config("normal 1mb 512k 10").unwrap();
        assert_eq!(
            l.output_config(),
            "normal 1048576 512000 10 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert!(l.set_output_config("normal 1mb 512k").is_err());
        assert!(l.set_output_config("master 1mb 512k 1").is_err());
        assert!(l.set_output_config("replica 1xb 512k 1").is_err());
        assert!(l.set_output_config("replica 1mb 2mb 1 pubsub 1 2").is_err());
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
    }

    #[test]
    fn hard_closes_at_once_soft_only_after_its_seconds() {
        let mut g = OutputGuard::default();
        let l = OutputLimit {
            hard: 100,
            soft: 10,
            soft_secs: 3600,
        };
        assert!(!g.over(l, 5));
        assert!(!g.over(l, 50), "soft exceeded only just now");
        assert!(g.over(l, 100));
        let l = OutputLimit {
            hard: 0,
            soft: 10,
            soft_secs: 0,
        };
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(g.over(l, 50), "0 seconds: soft acts on the next check");
        assert!(!g.over(l, 5), "back under the soft limit");
        assert!(!g.over(l, 50), "the clock starts again");
        assert!(!OutputGuard::default().over(OutputLimit::default(), u64::MAX));
    }
}
