//! # redcluster
//!
//! A Redis Cluster (and Valkey cluster) client for async Rust, with a bundled in-process
//! cluster server to test against.
//!
//! Layers, top to bottom (see `ARCHITECTURE.md`): the public client, the router, topology and
//! pool, connections, and the RESP codec; command knowledge and slot hashing beside them; and
//! the bundled cluster under the `server` feature.
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

pub mod command;
pub mod resp;
pub mod slot;

mod client;
mod connection;
mod error;
mod pipeline;
mod pool;
pub mod pubsub;
mod router;
pub mod scan;
pub mod topology;
mod types;

pub use client::{Client, ClientBuilder, Cmd, ReadFrom, Stats, Transaction, TxCmd};
pub use error::{Error, ErrorKind, Result};
pub use pipeline::Pipeline;
pub use pubsub::{Message, MessageKind, Subscription};
pub use resp::Value;
pub use scan::{ScanCursor, ScanOptions};
pub use topology::Topology;
pub use types::{FromValue, ToArg};

#[cfg(feature = "server")]
pub mod server;
