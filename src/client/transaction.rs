//! [`Transaction`]: MULTI/EXEC, with optional WATCH, pinned to the node of its slot on a
//! connection of its own, so no other caller's command can land inside it.
//!
//! ```no_run
//! # async fn f(client: redcluster::Client) -> Result<(), redcluster::Error> {
//! let mut tx = client.transaction();
//! tx.watch(["{acct:1}:balance"]).await?;
//! let balance: i64 = tx.now("GET").arg("{acct:1}:balance").query().await?;
//! tx.cmd("SET").arg("{acct:1}:balance").arg(balance - 10);
//! tx.cmd("RPUSH").arg("{acct:1}:log").arg("-10");
//! match tx.exec::<((), i64)>().await? {
//!     Some((_, log_len)) => println!("applied, log has {log_len} entries"),
//!     None => println!("a watched key changed: nothing was applied, try again"),
//! }
//! # Ok(()) }
//! ```
//!
//! All keys (watched and queued) must hash to one slot: keys in several slots are an
//! [`ErrorKind::CrossSlot`] error before anything is sent. `exec` returns `Ok(None)` when a
//! watched key changed (EXEC answered nil, nothing applied), and an `EXECABORT` server error
//! naming the first rejected command when the server refused to queue one.
//!
//! The transaction is a pinned session of the router: its redirects and retries are the
//! engine's, with the client's redirect cap, backoff and deadline, and counted in
//! [`Client::stats`]. Without WATCH, a block refused because the slot moved (MOVED) or is
//! migrating (ASK: the block is sent again to the target as `ASKING`, `MULTI` ... `EXEC`; the
//! ASKING flag lasts through a MULTI block) or not servable yet (`TRYAGAIN`) is sent again
//! where the engine says. With WATCH, a MOVED voids the watch: the slot map is patched and
//! the error returned, for the caller to start over.

use tracing::Instrument;

use super::Client;
use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::router::session::{Follow, Session};
use crate::types::{Args, FromValue, ToArg};

/// A MULTI/EXEC transaction being built. Made by [`Client::transaction`].
#[derive(Debug)]
#[must_use = "a transaction does nothing until .exec().await"]
pub struct Transaction {
    session: Session,
    watching: bool,
    commands: Vec<Args>,
}

/// A command run at once on the transaction's connection, before EXEC (to read watched
/// keys). Made by [`Transaction::now`].
#[derive(Debug)]
#[must_use = "a command does nothing until .query().await"]
pub struct TxCmd<'a> {
    tx: &'a mut Transaction,
    args: Args,
}

impl TxCmd<'_> {
    /// Append one argument.
    pub fn arg<T: ToArg>(mut self, arg: T) -> Self {
        self.args.push(&arg);
        self
    }

    /// Run it on the transaction's connection and convert the reply.
    ///
    /// # Errors
    /// Cross-slot keys, a server error, a conversion error, a timeout.
    pub async fn query<T: FromValue>(self) -> Result<T, Error> {
        let v = self.tx.run_now(self.args).await?;
        T::from_value(v)
    }
}

impl Client {
    /// Start a MULTI/EXEC transaction (see [`Transaction`]).
    pub fn transaction(&self) -> Transaction {
        Transaction {
            session: self.router_ref().session(),
            watching: false,
            commands: Vec::new(),
        }
    }
}

fn server_err(v: &Value) -> Option<Error> {
    match v {
        Value::Error(line) => Some(Error::server(&String::from_utf8_lossy(line))),
        _ => None,
    }
}

/// The first command of a MULTI block the server refused to queue: replies are MULTI's,
/// one per queued command, then EXEC's.
fn first_refused(replies: &[Value]) -> Option<usize> {
    let queued = replies.get(1..replies.len().saturating_sub(1))?;
    queued
        .iter()
        .position(|v| matches!(v, Value::Error(_)))
        .map(|i| i + 1)
}

impl Transaction {
    /// The connection's WATCH state: a session that follows redirects on its own would drop
    /// it silently.
    fn follow(&self) -> Follow {
        if self.watching {
            Follow::No
        } else {
            Follow::Yes
        }
    }

    async fn run_now(&mut self, args: Args) -> Result<Value, Error> {
        self.session.pin(&args)?;
        let follow = self.follow();
        let mut replies = self
            .session
            .call(std::slice::from_ref(&args), follow, |_| Some(0))
            .await?;
        let v = replies.pop().unwrap_or(Value::Null);
        if let Some(e) = server_err(&v) {
            if matches!(e.code(), Some("MOVED" | "ASK")) {
                // Not followed (a watch was on): what was watched there is void.
                self.watching = false;
            }
            return Err(e);
        }
        Ok(v)
    }

    /// `WATCH keys` on the transaction's connection: `exec` applies nothing (returns
    /// `Ok(None)`) if any of them changes before it.
    ///
    /// # Errors
    /// Keys in another slot than the transaction's; a server error (a `MOVED` means the
    /// slot moved while keys were watched: the watch is void, call `watch` again).
    pub async fn watch<I>(&mut self, keys: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        let mut args = Args::new("WATCH");
        for k in keys {
            args.push(&k);
        }
        self.run_now(args).await?;
        self.watching = true;
        Ok(())
    }

    /// A command run at once on the transaction's connection (outside MULTI), typically a
    /// read of a watched key.
    pub fn now(&mut self, name: &str) -> TxCmd<'_> {
        TxCmd {
            tx: self,
            args: Args::new(name),
        }
    }

    /// Queue a command for the MULTI/EXEC block; add arguments with [`arg`](Self::arg).
    pub fn cmd(&mut self, name: &str) -> &mut Self {
        self.commands.push(Args::new(name));
        self
    }

    /// Add an argument to the last queued command.
    ///
    /// # Panics
    /// When no command was queued with [`cmd`](Self::cmd) (a programming error).
    pub fn arg<T: ToArg>(&mut self, arg: T) -> &mut Self {
        match self.commands.last_mut() {
            Some(c) => c.push(&arg),
            None => panic!("Transaction::arg called before Transaction::cmd"),
        }
        self
    }

    /// Send MULTI, the queued commands and EXEC in one write, and convert EXEC's array of
    /// replies into `T`. `Ok(None)` when a watched key changed (nothing was applied).
    ///
    /// Without WATCH, a block the server refused because of a redirect or a transient
    /// error (EXEC then aborts and nothing is applied) is sent again where the engine says.
    ///
    /// # Errors
    /// [`ErrorKind::CrossSlot`] before sending when keys span slots; an `EXECABORT` server
    /// error naming the first command the server refused; `MOVED` when a watched slot moved;
    /// a timeout; a conversion error.
    pub async fn exec<T: FromValue>(mut self) -> Result<Option<T>, Error> {
        let mut block = Vec::with_capacity(self.commands.len() + 2);
        block.push(Args::new("MULTI"));
        for c in std::mem::take(&mut self.commands) {
            self.session.pin(&c)?;
            block.push(c);
        }
        block.push(Args::new("EXEC"));
        let follow = self.follow();
        // The reply that says whether the block landed: MULTI's if refused, else the first
        // queued command the server refused (EXEC then aborted), else EXEC's own (a
        // TRYAGAIN while the block's keys are split by a migration).
        let verdict = |r: &[Value]| match r.first() {
            Some(Value::Error(_)) => Some(0),
            _ => first_refused(r).or(Some(r.len().saturating_sub(1))),
        };
        let (op, span) = crate::telemetry::start_batch("MULTI", block.len() - 2);
        let called = self
            .session
            .call(&block, follow, verdict)
            .instrument(span.clone())
            .await;
        crate::telemetry::finish_with(op, &span, called.as_ref().err());
        if let Some(cache) = self.session.cache() {
            crate::client_cache::read::wrote(cache, &block);
        }
        let mut replies = called?;
        self.watching = false;
        let exec = replies.pop().unwrap_or(Value::Null);
        if let Some(e) = replies.first().and_then(server_err) {
            self.session.unpin();
            return Err(e);
        }
        match exec {
            Value::Null | Value::NullArray => {
                self.session.release();
                Ok(None)
            }
            Value::Array(items) => {
                self.session.release();
                T::from_value(Value::Array(items)).map(Some)
            }
            Value::Error(line) => {
                self.session.unpin();
                let aborted = Error::server(&String::from_utf8_lossy(&line));
                match first_refused(&replies).and_then(|i| Some((i, server_err(&replies[i])?))) {
                    // A redirect not followed (a watch was on) is reported as itself.
                    Some((_, e)) if matches!(e.code(), Some("MOVED" | "ASK" | "TRYAGAIN")) => {
                        Err(e)
                    }
                    Some((i, e)) => Err(Error::server(&format!(
                        "EXECABORT Transaction discarded: command #{} was refused: {e}",
                        i - 1
                    ))),
                    None => Err(aborted),
                }
            }
            other => {
                self.session.unpin();
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!("EXEC answered {other:?}"),
                ))
            }
        }
    }
}
