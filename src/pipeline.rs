//! [`Pipeline`]: several commands sent at once, replies in the caller's order.
//!
//! Each command is routed on its own (commands may live on different nodes) and all are
//! issued concurrently, so commands bound for the same node share that connection's next
//! write (the pipeline is split by node); each one follows its own MOVED/ASK/TRYAGAIN
//! without re-sending the others. Multi-key commands in a pipeline are split by slot like
//! any other. One deadline (`request_timeout`, plus the longest blocking timeout among the
//! commands) covers the whole pipeline.

use tracing::Instrument;

use crate::client::Client;
use crate::error::Error;
use crate::resp::Value;
use crate::types::{Args, FromValue, ToArg};

/// Commands queued to run together. Made by [`Client::pipeline`].
///
/// ```no_run
/// # async fn f(client: redcluster::Client) -> Result<(), redcluster::Error> {
/// let mut p = client.pipeline();
/// p.cmd("SET").arg("a").arg(1).cmd("GET").arg("b");
/// let ((), b): ((), Option<i64>) = p.query().await?;
/// # let _ = b; Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pipeline<'a> {
    client: &'a Client,
    commands: Vec<Args>,
}

impl<'a> Pipeline<'a> {
    pub(crate) fn new(client: &'a Client) -> Pipeline<'a> {
        Pipeline {
            client,
            commands: Vec::new(),
        }
    }

    /// Start another command; following [`arg`](Pipeline::arg) calls add to it.
    pub fn cmd(&mut self, name: &str) -> &mut Self {
        self.commands.push(Args::new(name));
        self
    }

    /// Add an argument to the last command.
    ///
    /// # Panics
    /// When no command was started with [`cmd`](Pipeline::cmd) (a programming error).
    pub fn arg<T: ToArg>(&mut self, arg: T) -> &mut Self {
        match self.commands.last_mut() {
            Some(c) => c.push(&arg),
            None => panic!("Pipeline::arg called before Pipeline::cmd"),
        }
        self
    }

    /// Number of commands queued.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True when no command is queued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Run every command and convert the replies, as an array in order, into `T` (a tuple
    /// with one element per command, or a `Vec`).
    ///
    /// # Errors
    /// The first command's error in pipeline order (the others still ran), or a conversion
    /// error.
    pub async fn query<T: FromValue>(&self) -> Result<T, Error> {
        let replies = self.query_each().await;
        let values = replies.into_iter().collect::<Result<Vec<Value>, Error>>()?;
        T::from_value(Value::Array(values))
    }

    /// Run every command and return each one's own outcome, in order.
    pub async fn query_each(&self) -> Vec<Result<Value, Error>> {
        // A command whose argument could not be encoded fails the pipeline unsent.
        if let Some(e) = self.commands.iter().find_map(|c| c.check().err()) {
            return self.commands.iter().map(|_| Err(e.clone())).collect();
        }
        let (op, span) = crate::telemetry::start_batch("PIPELINE", self.commands.len());
        let replies = self
            .client
            .router_ref()
            .execute_many(&self.commands)
            .instrument(span.clone())
            .await;
        crate::telemetry::finish_with(op, &span, replies.iter().find_map(|r| r.as_ref().err()));
        if let Some(cache) = self.client.router_ref().cache() {
            crate::client_cache::read::wrote(cache, &self.commands);
        }
        replies
    }
}
