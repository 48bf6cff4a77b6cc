//! The redirect and retry decision: a pure function of one attempt's outcome and the
//! request's attempt state. No sockets, no clock; every branch is unit-tested below.

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::resp::Value;

/// What one request has been through so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// MOVED and ASK redirects followed.
    pub(crate) redirects: u32,
    /// Retries after transient errors or broken connections.
    pub(crate) retries: u32,
    /// The command never writes (safe to re-send after a broken connection).
    pub(crate) readonly: bool,
}

/// The request-independent knobs of the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Redirects allowed before giving up.
    pub(crate) max_redirects: u32,
    /// Re-send writes whose connection broke after they were sent (at-least-once).
    pub(crate) retry_writes: bool,
    /// First retry delay; doubled per retry, with jitter.
    pub(crate) base_backoff: Duration,
    /// Longest retry delay.
    pub(crate) max_backoff: Duration,
}

/// What to do after an attempt.
#[derive(Debug)]
pub(crate) enum Action {
    /// Hand the outcome to the caller (a value, or a server error that is final).
    Done,
    /// The slot lives elsewhere now: patch the slot map, retry at `addr`.
    Moved {
        /// The slot named in the reply.
        slot: u16,
        /// The new owner, `host:port`.
        addr: String,
    },
    /// The key is being migrated: send `ASKING` + the command to `addr`, slot map untouched.
    Ask {
        /// The slot named in the reply.
        slot: u16,
        /// The importing node, `host:port`.
        addr: String,
    },
    /// Transient: wait `delay`, then route again; `refresh` asks for a topology refresh too.
    RetryAfter {
        /// How long to wait.
        delay: Duration,
        /// Whether the cluster's shape may have changed.
        refresh: bool,
    },
    /// The node is not what the map says (READONLY from a demoted primary): refresh the
    /// topology, wait for it, route again.
    RefreshAndRetry,
    /// Give up with this error.
    Fail(Error),
}

/// Longest wait before retrying after a broken or refused connection. Such a failure usually
/// means the node is gone and its replica is about to be (or was just) promoted; the retry
/// re-routes from the topology the refresh (asked for at the same time, itself rate-limited)
/// brings, so waiting longer than one refresh gap only delays the first write after a
/// failover.
pub(crate) const RECONNECT_RETRY_CAP: Duration = Duration::from_millis(100);

/// Jittered exponential backoff: a random delay in [d/2, d] for d = base * 2^attempt, capped
/// at `max`. Every wait between attempts (retries here, reconnects in the pool) uses it.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let d = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(max)
        .as_micros() as u64;
    let half = d / 2;
    Duration::from_micros(half + rand::random::<u64>() % (d - half + 1))
}

impl Policy {
    /// The wait before retry number `attempt` (0-based) under this policy.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        backoff(attempt, self.base_backoff, self.max_backoff)
    }
}

/// `MOVED 3999 127.0.0.1:6381` / `ASK ...` -> (slot, addr). An empty host (`:6381`, sent by
/// nodes that do not know their address) is kept as is for the caller to resolve.
fn parse_redirect(rest: &str) -> Option<(u16, String)> {
    let mut parts = rest.split_whitespace();
    let slot = parts.next()?.parse::<u16>().ok()?;
    let addr = parts.next()?;
    if slot >= crate::slot::SLOT_COUNT || !addr.contains(':') {
        return None;
    }
    Some((slot, addr.to_string()))
}

/// Decide what follows `outcome`.
pub(crate) fn decide(outcome: &Result<Value, Error>, attempt: &Attempt, policy: &Policy) -> Action {
    let retry_in = || policy.backoff(attempt.retries);
    match outcome {
        Ok(Value::Error(line)) => {
            let text = String::from_utf8_lossy(line);
            let (code, rest) = text.split_once(' ').unwrap_or((&text, ""));
            match code {
                "MOVED" | "ASK" => {
                    let Some((slot, addr)) = parse_redirect(rest) else {
                        return Action::Done;
                    };
                    if attempt.redirects >= policy.max_redirects {
                        return Action::Fail(Error::new(
                            ErrorKind::TooManyRedirects,
                            format!(
                                "gave up after {} redirects (last: {text})",
                                attempt.redirects
                            ),
                        ));
                    }
                    if code == "MOVED" {
                        Action::Moved { slot, addr }
                    } else {
                        Action::Ask { slot, addr }
                    }
                }
                "TRYAGAIN" | "LOADING" | "MASTERDOWN" => Action::RetryAfter {
                    delay: retry_in(),
                    refresh: false,
                },
                "CLUSTERDOWN" => Action::RetryAfter {
                    delay: retry_in(),
                    refresh: true,
                },
                "READONLY" => Action::RefreshAndRetry,
                _ => Action::Done,
            }
        }
        Ok(_) => Action::Done,
        Err(e) => match e.kind() {
            ErrorKind::Io | ErrorKind::Closed | ErrorKind::Timeout | ErrorKind::Protocol => {
                if !e.maybe_applied() || attempt.readonly || policy.retry_writes {
                    Action::RetryAfter {
                        delay: backoff(
                            attempt.retries,
                            policy.base_backoff,
                            policy.max_backoff.min(RECONNECT_RETRY_CAP),
                        ),
                        refresh: true,
                    }
                } else {
                    let msg = format!(
                        "{e}; the write was not re-sent (retry_writes_on_disconnect is off)"
                    );
                    // Still a request that was sent: maybe_applied() agrees with the kind.
                    Action::Fail(Error::new(ErrorKind::MaybeApplied, msg).with_sent(true))
                }
            }
            _ => Action::Fail(e.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        max_redirects: 3,
        retry_writes: false,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    };

    fn err(line: &str) -> Result<Value, Error> {
        Ok(Value::error(line))
    }

    fn write() -> Attempt {
        Attempt::default()
    }

    fn read() -> Attempt {
        Attempt {
            readonly: true,
            ..Attempt::default()
        }
    }

    fn io(sent: bool) -> Result<Value, Error> {
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        Err(Error::io(&e, "read", sent))
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        for attempt in 0..20 {
            let d = POLICY.backoff(attempt);
            let full = POLICY
                .base_backoff
                .saturating_mul(1 << attempt.min(16))
                .min(POLICY.max_backoff);
            assert!(d <= full && d >= full / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn values_and_ordinary_errors_are_done() {
        assert!(matches!(
            decide(&Ok(Value::ok()), &write(), &POLICY),
            Action::Done
        ));
        assert!(matches!(
            decide(&err("ERR wrong"), &write(), &POLICY),
            Action::Done
        ));
        assert!(matches!(
            decide(&err("WRONGTYPE x"), &read(), &POLICY),
            Action::Done
        ));
        // A malformed MOVED is handed back as the server error it is.
        assert!(matches!(
            decide(&err("MOVED x"), &write(), &POLICY),
            Action::Done
        ));
        assert!(matches!(
            decide(&err("MOVED 99999 h:1"), &write(), &POLICY),
            Action::Done
        ));
    }

    #[test]
    fn moved_and_ask_redirect_until_the_cap() {
        match decide(&err("MOVED 3999 127.0.0.1:6381"), &write(), &POLICY) {
            Action::Moved { slot, addr } => {
                assert_eq!(slot, 3999);
                assert_eq!(addr, "127.0.0.1:6381");
            }
            other => panic!("{other:?}"),
        }
        match decide(&err("ASK 1 10.0.0.1:7000"), &read(), &POLICY) {
            Action::Ask { slot, addr } => {
                assert_eq!(slot, 1);
                assert_eq!(addr, "10.0.0.1:7000");
            }
            other => panic!("{other:?}"),
        }
        let capped = Attempt {
            redirects: 3,
            ..write()
        };
        match decide(&err("MOVED 1 h:1"), &capped, &POLICY) {
            Action::Fail(e) => assert_eq!(e.kind(), ErrorKind::TooManyRedirects),
            other => panic!("{other:?}"),
        }
        match decide(&err("ASK 1 h:1"), &capped, &POLICY) {
            Action::Fail(e) => assert_eq!(e.kind(), ErrorKind::TooManyRedirects),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn transient_errors_back_off() {
        for code in ["TRYAGAIN x", "LOADING x", "MASTERDOWN x"] {
            match decide(&err(code), &write(), &POLICY) {
                Action::RetryAfter { delay, refresh } => {
                    assert!(!refresh);
                    assert!(delay <= Duration::from_millis(10));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        let later = Attempt {
            retries: 10,
            ..write()
        };
        match decide(&err("CLUSTERDOWN The cluster is down"), &later, &POLICY) {
            Action::RetryAfter { delay, refresh } => {
                assert!(refresh);
                assert!(delay >= Duration::from_millis(50) && delay <= Duration::from_millis(100));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn readonly_reply_refreshes() {
        let r = decide(
            &err("READONLY You can't write against a read only replica."),
            &write(),
            &POLICY,
        );
        assert!(matches!(r, Action::RefreshAndRetry));
    }

    #[test]
    fn broken_connections_retry_only_what_is_safe() {
        // Never sent: always retried.
        assert!(matches!(
            decide(&io(false), &write(), &POLICY),
            Action::RetryAfter { refresh: true, .. }
        ));
        // ... soon, however many times it failed: the node's replica may take over any
        // moment, and the retry follows the refreshed topology.
        let many = Attempt {
            retries: 30,
            ..write()
        };
        let patient = Policy {
            max_backoff: Duration::from_secs(5),
            ..POLICY
        };
        match decide(&io(false), &many, &patient) {
            Action::RetryAfter { delay, refresh } => {
                assert!(refresh);
                assert!(delay <= RECONNECT_RETRY_CAP, "{delay:?}");
            }
            other => panic!("{other:?}"),
        }
        // Sent read: retried.
        assert!(matches!(
            decide(&io(true), &read(), &POLICY),
            Action::RetryAfter { refresh: true, .. }
        ));
        // Sent write: reported as maybe applied.
        match decide(&io(true), &write(), &POLICY) {
            Action::Fail(e) => {
                assert_eq!(e.kind(), ErrorKind::MaybeApplied);
                assert!(e.maybe_applied(), "maybe_applied() agrees with the kind");
                assert!(e.to_string().contains("may have been applied"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // ... unless at-least-once is on.
        let lenient = Policy {
            retry_writes: true,
            ..POLICY
        };
        assert!(matches!(
            decide(&io(true), &write(), &lenient),
            Action::RetryAfter { .. }
        ));
    }

    #[test]
    fn other_client_errors_fail() {
        let e = Error::new(ErrorKind::Config, "bad");
        assert!(matches!(decide(&Err(e), &read(), &POLICY), Action::Fail(_)));
        let auth = Error::server("WRONGPASS invalid username-password pair");
        assert!(matches!(
            decide(&Err(auth), &read(), &POLICY),
            Action::Fail(_)
        ));
    }
}
