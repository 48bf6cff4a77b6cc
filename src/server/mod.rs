//! The bundled in-process Redis Cluster.

pub(crate) mod db;
