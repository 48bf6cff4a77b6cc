//! Shared test support. Each integration test includes it with `mod support;`.
#![allow(dead_code)]

pub mod bundled;
pub mod real_cluster;
pub mod server_bin;
