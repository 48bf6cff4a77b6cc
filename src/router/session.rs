//! Pinned sessions: conversations that need a connection of their own on the node that owns
//! a slot — a transaction (its WATCH and MULTI state live on the connection), a blocking
//! command (it would stall a multiplexed connection), a subscription (the connection turns
//! into a stream of pushes).
//!
//! They run on the same engine as every other request: the target comes from the topology
//! (or a redirect), every reply that may be a redirect or a transient error goes through
//! [`decide`], with the client's redirect cap, backoff policy and deadline, and what it
//! decides is counted in the same [`Counters`](super::Counters) (`stats()`): a MOVED patches
//! the slot map and asks for a refresh, an ASK sends `ASKING` in front on the target, a
//! TRYAGAIN or CLUSTERDOWN backs off.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::decide::{decide, Action, Attempt};
use super::route::Route;
use super::{encode_asking, route, Inner, Router, Target, Trail};
use crate::connection::{reply_of, Connection};
use crate::error::{Error, ErrorKind};
use crate::pool::{Exclusive, NodeEntry};
use crate::resp::Value;
use crate::types::Args;

impl Inner {
    /// Send `args` on a dedicated connection taken from the node's exclusive set (a
    /// blocking command), returning the connection afterwards. A caller that stops waiting
    /// drops the connection with it, so a still-blocked command never reaches anyone else.
    pub(super) async fn send_exclusive(
        &self,
        entry: &Arc<NodeEntry>,
        readonly_conn: bool,
        asking: bool,
        args: &Args,
    ) -> Result<Value, Error> {
        let ex = self.pool.exclusive(entry, readonly_conn).await?;
        let Some(conn) = ex.conn() else {
            return Err(Error::new(ErrorKind::Closed, "dedicated connection gone"));
        };
        let rx = conn.send(asking, |buf| {
            if asking {
                encode_asking(buf);
            }
            args.encode(buf)
        })?;
        let r = reply_of(rx.await);
        ex.release();
        r
    }

    /// A redirect's address with an empty host (`:7000`, sent by a node that does not know
    /// its address or with `cluster-preferred-endpoint-type unknown-endpoint`) or `?`
    /// (hostname endpoints, but the node announces none) takes the host of the node that
    /// sent it (`from`).
    fn resolve(&self, addr: &str, from: &str) -> String {
        match addr.strip_prefix(':').or_else(|| addr.strip_prefix("?:")) {
            Some(port) => {
                let host = from.rsplit_once(':').map_or("", |(h, _)| h);
                format!("{host}:{port}")
            }
            None => addr.to_string(),
        }
    }

    /// A MOVED from `from` (the request's `nth` redirect): count it, patch the slot map, ask
    /// for a refresh soon. Returns the new owner's address.
    pub(super) fn note_moved(&self, slot: u16, addr: &str, from: &str, nth: u32) -> String {
        self.counters.moved.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::redirect(false, from, nth);
        tracing::info!(slot, from, to = %addr, "MOVED");
        let addr = self.resolve(addr, from);
        self.topology.apply_moved(slot, &addr);
        if let Some(cache) = &self.config.cache {
            // The old owner no longer tells of changes to this slot's keys.
            cache.drop_slot(slot);
        }
        if let Some(r) = self.refresher() {
            r.trigger_after_moved();
        }
        addr
    }

    /// Count a retry (stats and telemetry).
    pub(super) fn count_retry(&self) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::retry();
    }

    /// An ASK from `from` (the request's `nth` redirect): count it. Returns the importing
    /// node's address.
    pub(super) fn note_ask(&self, addr: &str, from: &str, nth: u32) -> String {
        self.counters.ask.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::redirect(true, from, nth);
        tracing::info!(from, to = %addr, "ASK");
        self.resolve(addr, from)
    }
}

impl Session {
    /// The client-side cache, when on (a transaction's writes drop their keys from it).
    pub(crate) fn cache(&self) -> Option<&Arc<crate::client_cache::Store>> {
        self.inner.config.cache.as_ref()
    }
}

/// A pinned session: a dedicated connection to the primary of one slot, and the redirect
/// state of the conversation on it. Made by [`Router::session`]. Dropping it closes the
/// connection (whatever state the server keeps for it goes with it).
#[derive(Debug)]
pub(crate) struct Session {
    inner: Arc<Inner>,
    /// The slot every command of the session must hash to (`None` until one has a key).
    slot: Option<u16>,
    conn: Option<Exclusive>,
    /// Where the connection goes: the slot's owner, or the node a redirect named.
    target: Target,
}

/// Whether the session may follow a redirect or retry by itself. A conversation with state
/// on its connection (keys being WATCHed) may not: a new connection would silently drop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Follow MOVED/ASK, retry transient errors, within the cap and the deadline.
    Yes,
    /// Count and apply what the reply says (a MOVED still patches the slot map), unpin, and
    /// hand the replies back as they are.
    No,
}

impl Router {
    /// A pinned session for a transaction (see [`Session`]).
    pub(crate) fn session(&self) -> Session {
        Session {
            inner: self.inner.clone(),
            slot: None,
            conn: None,
            target: Target::Slot,
        }
    }
}

impl Session {
    /// Add a command's keys to the session: they must hash to the session's slot.
    ///
    /// # Errors
    /// [`ErrorKind::CrossSlot`] when they do not (nothing is sent).
    pub(crate) fn pin(&mut self, args: &Args) -> Result<(), Error> {
        let standalone = self.inner.is_standalone();
        let r = route::route_pinned(args, standalone)?;
        match (self.slot, r.slot) {
            // One primary holds every slot: any keys go together.
            _ if standalone => Ok(()),
            (Some(a), Some(b)) if a != b => Err(Error::new(
                ErrorKind::CrossSlot,
                format!(
                    "CROSSSLOT a transaction's keys must share one slot (it is on slot {a}, {} is on slot {b}); use hash tags like {{user1}}:a",
                    String::from_utf8_lossy(args.get(0).unwrap_or_default())
                ),
            )),
            (None, Some(b)) => {
                self.slot = Some(b);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Give the connection back for reuse (its server-side state is clean: after EXEC).
    pub(crate) fn release(&mut self) {
        if let Some(c) = self.conn.take() {
            c.release();
        }
    }

    /// Drop the connection (its state is void or unknown); the next call opens another
    /// to the slot's current owner.
    pub(crate) fn unpin(&mut self) {
        self.conn = None;
        self.target = Target::Slot;
    }

    /// The node the session talks to: the redirect's target, or the slot's primary.
    fn node(&self) -> Result<(Arc<NodeEntry>, bool), Error> {
        match &self.target {
            Target::Addr { addr, asking } => Ok((self.inner.pool.entry(addr), *asking)),
            Target::Slot => {
                let route = Route {
                    slot: self.slot,
                    ..Route::keyless(false)
                };
                match self.inner.pick(route) {
                    Some((entry, _)) => Ok((entry, false)),
                    None => {
                        self.inner.trigger_refresh();
                        Err(Error::new(
                            ErrorKind::ClusterDown,
                            "no primary known for the session's slot",
                        ))
                    }
                }
            }
        }
    }

    /// One attempt: `commands` back to back on the pinned connection (opened if needed),
    /// `ASKING` in front after an ASK. Replies in order (ASKING's own is dropped).
    async fn attempt(&mut self, commands: &[Args]) -> Result<(String, Vec<Value>), Error> {
        let (entry, asking) = self.node()?;
        if self.conn.is_none() {
            self.conn = Some(self.inner.pool.exclusive(&entry, false).await?);
        }
        let Some(conn) = self.conn.as_ref().and_then(Exclusive::conn) else {
            return Err(Error::new(ErrorKind::Closed, "session connection gone"));
        };
        entry.count_request();
        let mut rxs = Vec::with_capacity(commands.len());
        for (i, c) in commands.iter().enumerate() {
            let ask = asking && i == 0;
            rxs.push(conn.send(ask, |buf| {
                if ask {
                    encode_asking(buf);
                }
                c.encode(buf)
            })?);
        }
        let mut replies = Vec::with_capacity(rxs.len());
        for rx in rxs {
            replies.push(reply_of(rx.await)?);
        }
        Ok((entry.addr().to_string(), replies))
    }

    /// Run `commands` back to back on the pinned connection until the engine is done with
    /// them, within the request deadline. `verdict` picks the reply that says whether the
    /// whole batch landed (for a transaction: the first command the server refused to
    /// queue, if EXEC aborted); that reply, or a broken connection, goes through
    /// [`decide`]. With [`Follow::Yes`] a MOVED/ASK is followed and a transient error
    /// retried (the batch is sent again: the server applied none of it) while the backoff
    /// fits before the deadline (then the last replies come back as they are); with
    /// [`Follow::No`] the replies come back as they are once the redirect is applied.
    ///
    /// # Errors
    /// The connection's failure when it may have applied the batch or may not be retried;
    /// [`ErrorKind::Timeout`] at the deadline; the decision's failures (redirect cap).
    pub(crate) async fn call(
        &mut self,
        commands: &[Args],
        follow: Follow,
        verdict: impl Fn(&[Value]) -> Option<usize>,
    ) -> Result<Vec<Value>, Error> {
        let timeout = self.inner.config.request_timeout;
        let mut trail = Trail::default();
        let deadline = Instant::now() + timeout;
        let run = self.call_untimed(commands, follow, verdict, deadline, &mut trail);
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                // The connection's state is unknown: never reuse it.
                self.unpin();
                Err(self
                    .inner
                    .deadline_error(ErrorKind::Timeout, "pinned request", timeout, trail))
            }
        }
    }

    async fn call_untimed(
        &mut self,
        commands: &[Args],
        follow: Follow,
        verdict: impl Fn(&[Value]) -> Option<usize>,
        deadline: Instant,
        trail: &mut Trail,
    ) -> Result<Vec<Value>, Error> {
        let inner = self.inner.clone();
        let policy = &inner.config.policy;
        let mut attempt = Attempt::default();
        loop {
            let outcome = self.attempt(commands).await;
            trail.sent |= match &outcome {
                Ok(_) => true,
                Err(e) => e.maybe_applied(),
            };
            let (from, judged) = match &outcome {
                Ok((from, replies)) => (
                    from.clone(),
                    Ok(verdict(replies)
                        .and_then(|i| replies.get(i).cloned())
                        .unwrap_or(Value::Null)),
                ),
                Err(e) => (String::new(), Err(e.clone())),
            };
            let action = decide(&judged, &attempt, policy);
            let replies = match outcome {
                Ok((_, replies)) => Ok(replies),
                Err(e) => {
                    self.unpin();
                    Err(e)
                }
            };
            match action {
                Action::Done => return replies,
                Action::Fail(e) => {
                    self.unpin();
                    return Err(e);
                }
                Action::Moved { slot, addr } => {
                    attempt.redirects += 1;
                    let addr = inner.note_moved(slot, &addr, &from, attempt.redirects);
                    self.unpin();
                    if follow == Follow::No {
                        return replies;
                    }
                    self.target = Target::Addr {
                        addr,
                        asking: false,
                    };
                }
                Action::Ask { addr, .. } => {
                    attempt.redirects += 1;
                    let addr = inner.note_ask(&addr, &from, attempt.redirects);
                    self.unpin();
                    if follow == Follow::No {
                        return replies;
                    }
                    self.target = Target::Addr { addr, asking: true };
                }
                Action::RetryAfter { delay, refresh } => {
                    if refresh {
                        inner.trigger_refresh();
                    }
                    // Not followed, or no time left to wait: the replies say why it failed
                    // (the server's own TRYAGAIN, say, rather than a bare timeout).
                    if follow == Follow::No || Instant::now() + delay >= deadline {
                        return replies;
                    }
                    inner.count_retry();
                    trail.last_error = Some(match &judged {
                        Ok(v) => v.error_text().map_or_else(
                            || Error::new(ErrorKind::Server, "retry"),
                            |t| Error::server(&t),
                        ),
                        Err(e) => e.clone(),
                    });
                    attempt.retries += 1;
                    // The batch was refused as a whole: send it again where the slot's
                    // owner (or the ASK target, after a TRYAGAIN there) is.
                    self.release_to_retry();
                    tokio::time::sleep(delay).await;
                }
                Action::RefreshAndRetry => {
                    self.unpin();
                    if follow == Follow::No {
                        inner.trigger_refresh();
                        return replies;
                    }
                    inner.count_retry();
                    attempt.retries += 1;
                    if let Some(r) = inner.refresher() {
                        r.refresh_and_wait().await;
                    }
                }
            }
        }
    }

    /// Before retrying a refused batch: a healthy connection to the same target is kept
    /// (nothing is left on it), a broken one dropped.
    fn release_to_retry(&mut self) {
        if self
            .conn
            .as_ref()
            .and_then(Exclusive::conn)
            .map_or(true, Connection::is_closed)
        {
            self.conn = None;
        }
    }
}
