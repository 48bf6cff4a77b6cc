//! # redcluster
//!
//! A Redis Cluster (and Valkey cluster) client for async Rust, with a bundled in-process
//! cluster server to test against.
//!
//! Layers, top to bottom (see `ARCHITECTURE.md`): the public client, the router, topology and
//! pool, connections, and the RESP codec; command knowledge and slot hashing beside them; and
//! the bundled cluster under the `server` feature.
//!
//! Commands whose keys span nodes just work: [`Pipeline`]s are split by node and answered in
//! order; MGET, MSET, DEL, UNLINK, EXISTS and TOUCH are split by slot and merged (commands
//! that must stay atomic, such as MSETNX, get a cross-slot error before anything is sent);
//! [`Client::scan_match`] walks every primary and stays correct while slots migrate
//! ([`scan`]); [`Client::transaction`] pins MULTI/EXEC/WATCH to its slot's node on a
//! connection of its own; [`Client::subscribe`], [`Client::psubscribe`] and
//! [`Client::ssubscribe`] return subscriptions that resubscribe by themselves and report
//! gaps ([`pubsub`]); blocking commands (BLPOP ...) run on dedicated connections.
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

mod command;
pub mod resp;
pub mod slot;

mod client;
mod client_cache;
mod connection;
mod credentials;
mod error;
mod pipeline;
mod pool;
pub mod pubsub;
mod router;
pub mod scan;
mod script;
mod sha1;
pub mod telemetry;
pub mod topology;
mod types;

#[cfg(feature = "tls")]
pub use client::TlsConfig;
pub use client::{
    AutoClaim, Client, ClientBuilder, Cmd, IntoSeeds, Nodes, PendingSummary, ReadFrom, Stats,
    StreamEntry, StreamRead, StreamReadOptions, Transaction, TxCmd,
};
pub use client_cache::{CacheMode, ClientCache, ClientCacheStats};
pub use credentials::{Credentials, CredentialsFuture, CredentialsProvider};
pub use error::{Error, ErrorKind, Result};
pub use pipeline::Pipeline;
pub use pubsub::{Message, MessageKind, Subscription};
pub use resp::Value;
pub use scan::{ScanCursor, ScanOptions};
pub use script::{Script, ScriptInvocation};
pub use topology::Topology;
pub use types::{FromValue, ToArg};

/// The `bytes` crate's buffer types, re-exported so implementations of [`ToArg`] and
/// [`FromValue`] need no `bytes` dependency of their own.
pub use bytes::{Bytes, BytesMut};

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "serde")]
pub mod cache;
#[cfg(feature = "serde")]
mod json;
#[cfg(feature = "serde")]
pub use cache::{Cache, CacheStats, Origin};
#[cfg(feature = "serde")]
pub use json::Json;
