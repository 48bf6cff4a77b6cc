//! The connections MIGRATE keeps to its targets, cached per `host:port` like Redis does
//! (at most 64, closed after 10 s unused), and the timed I/O on them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::resp::{decode, Limits, Value};
use crate::server::node::NodeConfig;
use crate::server::stream::Stream;

/// Most cached connections, as Redis' `MIGRATE_SOCKET_CACHE_ITEMS`.
const CACHE_ITEMS: usize = 64;
/// Idle time after which a cached connection is closed (`MIGRATE_SOCKET_CACHE_TTL`).
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Redis writes the request in chunks of this size, each under the timeout.
const CHUNK: usize = 64 * 1024;

/// An open connection to a MIGRATE target.
#[derive(Debug)]
pub(crate) struct Link {
    stream: Stream,
    rbuf: BytesMut,
    /// The database the target has selected on this connection (`None`: send SELECT).
    pub(crate) last_db: Option<i64>,
    last_use: Instant,
}

/// Why an exchange with the target failed (Redis words both as `IOERR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoFailure {
    /// The request could not be written.
    Write {
        /// The write timed out (no retry then).
        timed_out: bool,
    },
    /// A reply did not arrive.
    Read {
        /// The read timed out (no retry then).
        timed_out: bool,
    },
}

impl IoFailure {
    /// True when the timeout expired (Redis does not retry those).
    pub(crate) fn timed_out(self) -> bool {
        match self {
            IoFailure::Write { timed_out } | IoFailure::Read { timed_out } => timed_out,
        }
    }

    /// The reply MIGRATE gives.
    pub(crate) fn reply(self) -> Value {
        Value::error(match self {
            IoFailure::Write { .. } => "IOERR error or timeout writing to target instance",
            IoFailure::Read { .. } => "IOERR error or timeout reading to target instance",
        })
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    /// The connect timed out: Redis says `IOERR error or timeout connecting to the client`.
    TimedOut,
    /// Refused or unreachable. Redis' non-blocking connect only notices this on the first
    /// write, so it answers `IOERR error or timeout writing to target instance`.
    Refused,
}

impl Link {
    /// Connect to `host:port` within `timeout`.
    ///
    /// # Errors
    /// When the connection cannot be made in time.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        config: &NodeConfig,
        timeout: Duration,
    ) -> Result<Link, ConnectFailure> {
        match Stream::connect(host, port, config, timeout).await {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(ConnectFailure::TimedOut),
            Err(_) => Err(ConnectFailure::Refused),
            Ok(stream) => Ok(Link {
                stream,
                rbuf: BytesMut::with_capacity(1024),
                last_db: None,
                last_use: Instant::now(),
            }),
        }
    }

    /// The address of the target, for refusing to MIGRATE to oneself.
    pub(crate) fn peer(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// Write `data`, each 64 KiB chunk within `timeout`.
    ///
    /// # Errors
    /// A write failure or timeout.
    pub(crate) async fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), IoFailure> {
        for chunk in data.chunks(CHUNK) {
            let send = async {
                self.stream.write_all(chunk).await?;
                self.stream.flush().await
            };
            match tokio::time::timeout(timeout, send).await {
                Err(_) => return Err(IoFailure::Write { timed_out: true }),
                Ok(Err(_)) => return Err(IoFailure::Write { timed_out: false }),
                Ok(Ok(())) => {}
            }
        }
        Ok(())
    }

    /// Read one reply within `timeout`.
    ///
    /// # Errors
    /// A read failure, a closed connection, a malformed reply, or the timeout.
    pub(crate) async fn read(&mut self, timeout: Duration) -> Result<Value, IoFailure> {
        let limits = Limits::default();
        let read = async {
            loop {
                match decode(&mut self.rbuf, &limits) {
                    Ok(Some(v)) => return Ok(v),
                    Ok(None) => {}
                    Err(_) => return Err(IoFailure::Read { timed_out: false }),
                }
                match self.stream.read_buf(&mut self.rbuf).await {
                    Ok(0) | Err(_) => return Err(IoFailure::Read { timed_out: false }),
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or(Err(IoFailure::Read { timed_out: true }))
    }
}

/// A node's cached MIGRATE connections, keyed by the `host:port` text given to MIGRATE.
///
/// A connection is taken out while a MIGRATE uses it, so two concurrent MIGRATEs to one
/// target never share a socket (the second opens its own), and put back after a clean
/// exchange only: a connection that saw an error or timeout may carry a late reply.
#[derive(Debug, Default)]
pub(crate) struct LinkCache {
    links: Mutex<HashMap<String, Link>>,
}

impl LinkCache {
    /// Take the cached connection for `name`, closing connections idle too long.
    pub(crate) fn take(&self, name: &str) -> Option<Link> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links.retain(|_, l| l.last_use.elapsed() < CACHE_TTL);
        links.remove(name)
    }

    /// Return a connection after a clean exchange.
    pub(crate) fn put(&self, name: String, mut link: Link) {
        link.last_use = Instant::now();
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if links.len() >= CACHE_ITEMS && !links.contains_key(&name) {
            if let Some(victim) = links.keys().next().cloned() {
                links.remove(&victim);
            }
        }
        links.insert(name, link);
    }

    /// Close the connections unused for 10 s (called periodically, as Redis' cron does).
    pub(crate) fn expire(&self) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if !links.is_empty() {
            links.retain(|_, l| l.last_use.elapsed() < CACHE_TTL);
        }
    }

    /// Close every cached connection (node stop).
    pub(crate) fn clear(&self) {
        self.links.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
