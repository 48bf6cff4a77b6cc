//! A client connection's state (what commands read and change: protocol, auth, transaction,
//! READONLY/ASKING, subscriptions) and the request limits, apart from the connection loop in
//! `conn` so command handlers depend on this leaf rather than on the loop.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::resp::{Limits, Protocol};

/// A transaction being queued (between MULTI and EXEC).
#[derive(Debug, Default)]
pub(crate) struct Multi {
    /// Commands queued so far.
    pub(crate) queued: Vec<(&'static CommandSpec, Vec<Bytes>)>,
    /// Set when a command was refused while queuing: EXEC answers EXECABORT.
    pub(crate) aborted: bool,
}

/// Per-connection state.
#[derive(Debug)]
pub(crate) struct Conn {
    /// CLIENT ID.
    pub(crate) id: u64,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Our address on this connection.
    pub(crate) local: SocketAddr,
    /// RESP2 until HELLO 3.
    pub(crate) proto: Protocol,
    /// Passed AUTH (or no password is configured).
    pub(crate) authed: bool,
    /// The authenticated user.
    pub(crate) user: String,
    /// CLIENT SETNAME.
    pub(crate) name: Option<Bytes>,
    /// CLIENT SETINFO LIB-NAME.
    pub(crate) lib_name: Option<Bytes>,
    /// CLIENT SETINFO LIB-VER.
    pub(crate) lib_ver: Option<Bytes>,
    /// READONLY: a replica may serve this connection's reads.
    pub(crate) readonly: bool,
    /// ASKING: the next command may touch an importing slot.
    pub(crate) asking: bool,
    /// Open transaction.
    pub(crate) multi: Option<Multi>,
    /// WATCHed keys and their versions when watched.
    pub(crate) watched: Vec<(Bytes, u64)>,
    /// When the connection was accepted.
    pub(crate) created: Instant,
    /// Last command run (CLIENT INFO cmd=).
    pub(crate) last_cmd: &'static str,
    /// REPLCONF listening-port of a replica connection.
    pub(crate) repl_port: Option<u16>,
    /// Subscriptions and the mailbox other connections reach this one through.
    pub(crate) pubsub: super::pubsub::ConnPubSub,
    /// Arrived over TLS (CLUSTER SLOTS, NODES and MOVED name TLS ports then).
    pub(crate) tls: bool,
    /// Set once MONITOR ran: the commands to stream to this connection.
    pub(crate) monitor: Option<super::monitor::MonitorFeed>,
    /// CLIENT TRACKING on: its options and redirect target (0: none); the node's tracking
    /// table holds the rest.
    pub(crate) tracking: Option<(super::tracking::Options, u64)>,
    /// CLIENT CACHING yes/no given for the next command (or transaction).
    pub(crate) caching: bool,
    /// Its mailbox is known to the node's client registry (tracking messages can reach it).
    pub(crate) mail_shared: bool,
    /// The database SELECT chose (always 0 in cluster mode).
    pub(crate) db: usize,
}

impl Conn {
    /// A fresh connection.
    pub(crate) fn new(id: u64, peer: SocketAddr, local: SocketAddr, authed: bool) -> Conn {
        Conn {
            id,
            peer,
            local,
            proto: Protocol::Resp2,
            authed,
            user: "default".to_string(),
            name: None,
            lib_name: None,
            lib_ver: None,
            readonly: false,
            asking: false,
            multi: None,
            watched: Vec::new(),
            created: Instant::now(),
            last_cmd: "NULL",
            repl_port: None,
            pubsub: Default::default(),
            tls: false,
            monitor: None,
            tracking: None,
            caching: false,
            mail_shared: false,
            db: 0,
        }
    }

    /// The CLIENT INFO / CLIENT LIST line (without a trailing newline).
    pub(crate) fn info_line(&self) -> String {
        self.info_line_with(false)
    }

    /// The CLIENT INFO / CLIENT LIST line; `broken_redirect`: its tracking redirect target
    /// was found gone (flag `R`, kept in the node's tracking table).
    pub(crate) fn info_line_with(&self, broken_redirect: bool) -> String {
        // Redis' order: O P x t R B r.
        let mut flags = String::new();
        if self.monitor.is_some() {
            flags.push('O');
        }
        if self.pubsub.subscribed() {
            flags.push('P');
        }
        if self.multi.is_some() {
            flags.push('x');
        }
        if let Some((opts, _)) = self.tracking {
            flags.push('t');
            if broken_redirect {
                flags.push('R');
            }
            if opts.bcast {
                flags.push('B');
            }
        }
        if self.readonly {
            flags.push('r');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let age = self.created.elapsed().as_secs();
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={age} idle=0 flags={flags} db={} {} multi={} \
             qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=16384 obl=0 \
             oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer,
            self.local,
            text(&self.name),
            self.db,
            self.pubsub.client_fields(),
            self.multi.as_ref().map_or(-1, |m| m.queued.len() as i64),
            self.last_cmd,
            self.user,
            self.tracking.map_or(-1, |(_, redirect)| redirect as i64),
            if self.proto == Protocol::Resp3 { 3 } else { 2 },
            text(&self.lib_name),
            text(&self.lib_ver),
        )
    }
}

/// The limits a server applies to requests, as Redis: 512 MiB bulk strings, multibulk
/// counts up to `INT_MAX` (memory still grows only with bytes received).
pub(crate) fn server_limits() -> Limits {
    Limits::default().with_max_elements(i32::MAX as usize)
}
