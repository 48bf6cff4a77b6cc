//! What a server command receives ([`Call`]: the request and everything it may touch) and
//! returns to the connection loop ([`Outcome`]: a reply, or something the loop must do first:
//! block, wait for replicas, migrate, turn into a replication link).

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::resp::Value;

use super::node::{Locked, NodeShared};
use super::session::Conn;

/// One request as a server command sees it (see `registry::ServerCommand`).
pub(crate) struct Call<'c, 'l> {
    /// The connection that sent it.
    pub(crate) conn: &'c mut Conn,
    /// Its spec (the subcommand's, for `name|sub`); arity already checked against it.
    pub(crate) spec: &'static CommandSpec,
    /// The request, name first.
    pub(crate) args: &'c [Bytes],
    /// The node's state, locked for the whole command.
    pub(crate) locked: &'c mut Locked<'l>,
    /// The node's shared parts (config, clients, pub/sub registry ...).
    pub(crate) shared: &'c NodeShared,
}

/// What the connection loop does with a command's result.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this reply.
    Reply(Value),
    /// Send nothing (REPLCONF ACK).
    NoReply,
    /// Send this reply, then close (QUIT).
    Quit(Value),
    /// WAIT: block, then reply with the number of replicas that acknowledged.
    Wait {
        /// Replicas to wait for.
        numreplicas: usize,
        /// Milliseconds; 0 waits for ever.
        timeout_ms: u64,
    },
    /// PSYNC/SYNC: turn the connection into a replication link.
    Sync,
    /// MIGRATE: talk to the target (no lock held), then reply.
    Migrate(Box<super::migrate::Job>),
    /// Send these replies in order ((P|S)SUBSCRIBE and the like answer once per channel).
    Replies(Vec<Value>),
    /// A blocking command (BLPOP ...) must wait for data.
    Block(Box<super::waiters::Pending>),
    /// EVAL/FCALL: run the script without the lock (it takes it per `redis.call`).
    Script(Box<super::scripting::Job>),
}
