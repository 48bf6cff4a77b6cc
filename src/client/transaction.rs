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
//! During a slot migration (no WATCH), a block whose keys have left the source node is sent
//! again to the target as `ASKING`, `MULTI` ... `EXEC` (the ASKING flag lasts through a MULTI
//! block), and one the target cannot serve yet (`TRYAGAIN`: some keys still on the source) is
//! retried every 50 ms until the request deadline.

use super::Client;
use crate::error::{Error, ErrorKind};
use crate::pool::Exclusive;
use crate::resp::Value;
use crate::router::route;
use crate::types::{Args, FromValue, ToArg};

/// A MULTI/EXEC transaction being built. Made by [`Client::transaction`].
#[derive(Debug)]
#[must_use = "a transaction does nothing until .exec().await"]
pub struct Transaction {
    client: Client,
    slot: Option<u16>,
    watching: bool,
    conn: Option<Exclusive>,
    commands: Vec<Args>,
    /// The node named by an ASK: the next EXEC goes there, behind ASKING.
    ask: Option<String>,
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
        let v = self.tx.run_now(&self.args).await?;
        T::from_value(v)
    }
}

impl Client {
    /// Start a MULTI/EXEC transaction (see [`Transaction`]).
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            slot: None,
            watching: false,
            conn: None,
            commands: Vec::new(),
            ask: None,
        }
    }
}

fn server_err(v: &Value) -> Option<Error> {
    match v {
        Value::Error(line) => Some(Error::server(&String::from_utf8_lossy(line))),
        _ => None,
    }
}

impl Transaction {
    /// Pin the transaction to `slot` (the slot of its keys), or fail when its keys span slots.
    fn pin(&mut self, args: &Args) -> Result<(), Error> {
        let r = route::route(args)?;
        match (self.slot, r.slot) {
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

    /// The connection to the slot's primary, opened on first use; or, after an ASK, a fresh
    /// one to the node it named.
    async fn connection(&mut self) -> Result<&Exclusive, Error> {
        if let Some(addr) = self.ask.take() {
            self.release();
            let inner = self.client.router_ref().inner();
            let entry = inner.pool.entry(&addr);
            self.conn = Some(inner.pool.exclusive(&entry, false).await?);
        } else if self.conn.is_none() {
            let router = self.client.router_ref();
            let topo = self.client.topology();
            let addr = match self.slot {
                Some(s) => topo.primary_for_slot(s).map(str::to_string),
                None => topo.shards().first().map(|s| s.primary.addr.clone()),
            };
            let Some(addr) = addr else {
                router.trigger_refresh();
                return Err(Error::new(
                    ErrorKind::ClusterDown,
                    "no primary known for the transaction's slot",
                ));
            };
            let inner = router.inner();
            let entry = inner.pool.entry(&addr);
            self.conn = Some(inner.pool.exclusive(&entry, false).await?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Closed, "transaction connection gone"))
    }

    async fn send_one(&mut self, args: &Args) -> Result<Value, Error> {
        let timeout = self.client.router_ref().inner().config.request_timeout;
        let conn = self.connection().await?;
        let Some(c) = conn.conn() else {
            return Err(Error::new(ErrorKind::Closed, "transaction connection gone"));
        };
        let rx = c.send(false, |buf| args.encode(buf))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(r) => crate::connection::reply_of(r),
            Err(_) => {
                self.conn = None;
                Err(Error::new(ErrorKind::Timeout, "transaction request timed out").with_sent(true))
            }
        }
    }

    async fn run_now(&mut self, args: &Args) -> Result<Value, Error> {
        self.pin(args)?;
        let v = self.send_one(args).await?;
        if let Some(e) = server_err(&v) {
            if matches!(e.code(), Some("MOVED" | "ASK")) {
                // The slot moved: what was watched there is void. Start over on the owner.
                self.follow_moved(&e);
            }
            return Err(e);
        }
        Ok(v)
    }

    fn follow_moved(&mut self, e: &Error) {
        self.conn = None;
        self.watching = false;
        if let Some((slot, addr)) = crate::router::decide::parse_redirect(e.detail()) {
            if e.code() == Some("MOVED") {
                self.client
                    .router_ref()
                    .inner()
                    .topology
                    .apply_moved(slot, &addr);
            }
        }
        self.client.router_ref().trigger_refresh();
    }

    /// `WATCH keys` on the transaction's connection: `exec` applies nothing (returns
    /// `Ok(None)`) if any of them changes before it.
    ///
    /// # Errors
    /// Keys in another slot than the transaction's; a server error (a `MOVED` means the
    /// slot moved: the transaction's connection is dropped, call `watch` again).
    pub async fn watch<I>(&mut self, keys: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        let mut args = Args::new("WATCH");
        for k in keys {
            args.push(&k);
        }
        self.run_now(&args).await?;
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
    /// Without WATCH, a MOVED met while queuing (the slot moved; EXEC then aborts and
    /// nothing is applied) is followed: the whole transaction is sent again to the new owner.
    ///
    /// # Errors
    /// [`ErrorKind::CrossSlot`] before sending when keys span slots; an `EXECABORT` server
    /// error naming the first command the server refused; `MOVED` when a watched slot moved;
    /// a timeout; a conversion error.
    pub async fn exec<T: FromValue>(mut self) -> Result<Option<T>, Error> {
        let commands = std::mem::take(&mut self.commands);
        for c in &commands {
            self.pin(c)?;
        }
        let config = &self.client.router_ref().inner().config;
        let max_redirects = config.policy.max_redirects;
        let deadline = std::time::Instant::now() + config.request_timeout;
        let mut redirects = 0;
        loop {
            let asked = self.ask.clone();
            match self.exec_once(&commands).await {
                // TRYAGAIN waits for the migration within the request deadline; MOVED and
                // ASK count against the redirect cap.
                Err(e)
                    if !self.watching
                        && if e.code() == Some("TRYAGAIN") {
                            std::time::Instant::now() < deadline
                        } else {
                            matches!(e.code(), Some("MOVED" | "ASK")) && redirects < max_redirects
                        } =>
                {
                    if e.code() != Some("TRYAGAIN") {
                        redirects += 1;
                    }
                    match e.code() {
                        Some("ASK") => {
                            // Mid-migration: the keys are on the target now. The slot map
                            // stays as it is (the source still owns the slot).
                            self.release();
                            self.ask = crate::router::decide::parse_redirect(e.detail())
                                .map(|(_, addr)| addr);
                        }
                        Some("TRYAGAIN") => {
                            // The target holds some of the keys, the source the others:
                            // wait for the migration to move the rest, then ask the same
                            // node again.
                            self.release();
                            self.ask = asked;
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        _ => self.follow_moved(&e),
                    }
                }
                Err(e) => return Err(e),
                Ok(None) => return Ok(None),
                Ok(Some(v)) => return T::from_value(v).map(Some),
            }
        }
    }

    async fn exec_once(&mut self, commands: &[Args]) -> Result<Option<Value>, Error> {
        let timeout = self.client.router_ref().inner().config.request_timeout;
        let asking = self.ask.is_some();
        let conn = self.connection().await?;
        let Some(c) = conn.conn() else {
            return Err(Error::new(ErrorKind::Closed, "transaction connection gone"));
        };
        let mut rxs = Vec::with_capacity(commands.len() + 2);
        // After an ASK, ASKING goes right before MULTI on the same connection (its OK is
        // read and dropped).
        rxs.push(c.send(asking, |buf| {
            if asking {
                crate::resp::encode_command(buf, [&b"ASKING"[..]]);
            }
            crate::resp::encode_command(buf, [&b"MULTI"[..]])
        })?);
        for cmd in commands {
            rxs.push(c.send(false, |buf| cmd.encode(buf))?);
        }
        rxs.push(c.send(false, |buf| {
            crate::resp::encode_command(buf, [&b"EXEC"[..]])
        })?);
        let replies = match tokio::time::timeout(timeout, futures::future::join_all(rxs)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("transaction timed out after {timeout:?}; it may have been applied"),
                )
                .with_sent(true));
            }
        };
        let mut replies = replies
            .into_iter()
            .map(crate::connection::reply_of)
            .collect::<Result<Vec<Value>, Error>>()?;
        let exec = replies.pop().unwrap_or(Value::Null);
        if let Some(e) = replies.first().and_then(server_err) {
            self.conn = None;
            return Err(e);
        }
        // The first command the server refused to queue (its MOVED, wrong arity ...).
        let refused = replies
            .iter()
            .skip(1)
            .enumerate()
            .find_map(|(i, v)| server_err(v).map(|e| (i, e)));
        self.watching = false;
        match exec {
            Value::Null | Value::NullArray => {
                self.release();
                Ok(None)
            }
            Value::Array(items) => {
                self.release();
                Ok(Some(Value::Array(items)))
            }
            Value::Error(line) => {
                let aborted = Error::server(&String::from_utf8_lossy(&line));
                match refused {
                    // A redirect (or TRYAGAIN) is reported as itself so the caller (or exec)
                    // can follow it.
                    Some((_, e)) if matches!(e.code(), Some("MOVED" | "ASK" | "TRYAGAIN")) => {
                        Err(e)
                    }
                    Some((i, e)) => Err(Error::server(&format!(
                        "EXECABORT Transaction discarded: command #{i} was refused: {e}"
                    ))),
                    None => Err(aborted),
                }
            }
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("EXEC answered {other:?}"),
            )),
        }
    }

    fn release(&mut self) {
        if let Some(c) = self.conn.take() {
            c.release();
        }
    }
}
