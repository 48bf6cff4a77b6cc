//! Re-authentication of a live connection before its credentials expire.
//!
//! A multiplexed connection whose credentials carry a `valid_until` runs this task: a while
//! before that instant it asks the provider again and sends `AUTH` on the connection like any
//! other request, so requests in flight around it are neither dropped nor delayed beyond one
//! command. The task holds the connection weakly and ends with it.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::{Duration, Instant};

use super::{reply_of, Shared};
use crate::credentials::{Auth, Credentials};
use crate::error::{Error, ErrorKind};
use crate::resp::Value;

/// Renew when this share of the remaining lifetime is left (and at most [`MAX_MARGIN`]
/// before expiry).
const MARGIN_DIVISOR: u32 = 5;
/// The longest time before expiry a renewal happens.
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// The shortest wait between two renewals (a provider handing out credentials that are
/// already expired must not make every connection spin).
const MIN_GAP: Duration = Duration::from_millis(250);
/// The wait before trying again after the provider or the server refused a renewal.
const RETRY: Duration = Duration::from_secs(1);
/// The longest a renewal waits for the provider (one that hangs must not stop renewals for
/// good).
const FETCH_LIMIT: Duration = Duration::from_secs(10);

/// How long from `now` until credentials valid until `until` should be renewed: when a fifth
/// of their remaining life is left (at most a minute before expiry), never sooner than
/// [`MIN_GAP`].
pub(super) fn renew_in(until: Instant, now: Instant) -> Duration {
    let left = until.saturating_duration_since(now);
    let margin = (left / MARGIN_DIVISOR).min(MAX_MARGIN);
    (left - margin).max(MIN_GAP)
}

/// Start renewing the credentials of the connection behind `shared` from `first`.
pub(super) fn spawn(shared: Weak<Shared>, auth: Auth, first: Instant) {
    tokio::spawn(reauth_loop(shared, auth, first));
}

async fn reauth_loop(shared: Weak<Shared>, auth: Auth, first: Instant) {
    let mut next = first;
    loop {
        tokio::time::sleep_until(next.into()).await;
        if shared
            .upgrade()
            .map_or(true, |s| s.closed.load(Ordering::Acquire))
        {
            return;
        }
        let fetched = tokio::time::timeout(FETCH_LIMIT, auth.fetch())
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no answer within {FETCH_LIMIT:?}"),
                ))
            });
        let creds = match fetched {
            Ok(c) => c,
            Err(e) => {
                let addr = shared.upgrade().map(|s| s.addr.clone()).unwrap_or_default();
                tracing::warn!(%addr, error = %e, "credentials provider failed; AUTH renewal retried");
                next = Instant::now() + RETRY;
                continue;
            }
        };
        let (rx, addr) = {
            let Some(s) = shared.upgrade() else { return };
            let sent = s.send(false, |buf| encode_auth(buf, &creds));
            let Ok(rx) = sent else { return };
            (rx, s.addr.clone())
        };
        match reply_of(rx.await) {
            Ok(Value::Error(line)) => {
                let text = String::from_utf8_lossy(&line);
                let code = text.split(' ').next().unwrap_or("");
                tracing::warn!(%addr, user = creds.user_name(), code, "AUTH renewal refused; retried");
                next = Instant::now() + RETRY;
            }
            Ok(_) => {
                tracing::debug!(%addr, user = creds.user_name(), "re-authenticated");
                match creds.valid_until {
                    Some(until) => next = Instant::now() + renew_in(until, Instant::now()),
                    None => return,
                }
            }
            // The connection is gone.
            Err(_) => return,
        }
    }
}

/// `AUTH [user] password`.
fn encode_auth(buf: &mut bytes::BytesMut, c: &Credentials) {
    match &c.user {
        Some(user) => {
            crate::resp::encode_command(buf, [&b"AUTH"[..], user.as_bytes(), c.password.as_bytes()])
        }
        None => crate::resp::encode_command(buf, [&b"AUTH"[..], c.password.as_bytes()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_comes_before_expiry_but_never_spins() {
        let now = Instant::now();
        let s = Duration::from_secs;
        // A 15-minute token: renewed a minute before it expires.
        assert_eq!(renew_in(now + s(900), now), s(840));
        // A short one: when a fifth of its life is left.
        assert_eq!(renew_in(now + s(10), now), s(8));
        // Expired or about to: not before the minimum gap.
        assert_eq!(renew_in(now, now), MIN_GAP);
        assert_eq!(renew_in(now + Duration::from_millis(100), now), MIN_GAP);
    }
}
