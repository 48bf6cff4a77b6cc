//! Shared test support: one tree for every integration test.
//!
//! A test file includes it with `mod support;` and imports what it needs, for instance
//! `use support::raw::Client;` or `use support::bundled::{cluster, owner_index};`.
//!
//! - [`wait`]: bounded waiting for a condition (`eventually`, `wait_until`, `bounded`), so no
//!   test sleeps a fixed time hoping something happened.
//! - [`raw`]: a raw RESP client over TCP that shows replies exactly as sent.
//! - `bundled` (feature `server`): the bundled `TestCluster` in its usual layouts, one-shot
//!   node commands, slot ownership and migration helpers.
//! - [`real_cluster`]: a real `redis-server` 7 cluster on free ports
//!   (`REDCLUSTER_REQUIRE_REAL=1` makes a missing `redis-server` fail instead of skip).
//! - [`real_standalone`]: a real `redis-server` 7 primary with replicas (`replicaof`) and
//!   real Sentinels watching it as `mymaster`, killable and restartable.
//! - `server_bin` (feature `server`): the `redcluster-server` binary as a child process, and
//!   running outside tools with a deadline.
//! - `migrate` (feature `server`): the fixture of the MIGRATE and slot-migration tests.
//! - `sentinel` (feature `server`): watching a Sentinel — normalised SENTINEL replies,
//!   waiting until it knows its group, its event feed.
//! - [`fake_cluster`]: scripted fake nodes that misbehave on cue.
//! - [`pubsub`]: publish until a subscription delivers what a test waits for.
//! - [`write_load`]: a steady INCR load through a client across a failover (kill -> first
//!   write, lost writes), and a `+switch-master` watcher on a Sentinel.
//! - [`tracking_diff`]: multi-connection scenarios compared byte for byte with redis-server
//!   (CLIENT TRACKING replies and pushes).
#![allow(dead_code)]

#[cfg(feature = "server")]
pub mod bundled;
pub mod fake_cluster;
#[cfg(feature = "server")]
pub mod migrate;
pub mod pubsub;
pub mod raw;
pub mod real_cluster;
pub mod real_standalone;
#[cfg(feature = "server")]
pub mod sentinel;
#[cfg(feature = "server")]
pub mod server_bin;
pub mod tracking_diff;
pub mod wait;
pub mod write_load;
