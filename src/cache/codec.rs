//! How a [`Cache`](super::Cache) stores its values: [`JsonCodec`] (the default) or
//! [`BytesCodec`] (values that already are bytes), or a [`Codec`] of the caller's own.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// Turns a cached value into the bytes stored in Redis and back.
///
/// # Errors
/// Both directions report [`ErrorKind::Decode`] for a value that does not fit.
pub trait Codec<V>: Send + Sync + 'static {
    /// The bytes to store for `value`.
    fn encode(&self, value: &V) -> Result<Bytes, Error>;
    /// The value stored as `bytes`.
    fn decode(&self, bytes: Bytes) -> Result<V, Error>;
}

/// Values stored as JSON text (what Spring's `GenericJackson2JsonRedisSerializer` reads and
/// writes, minus its type hints), so other services and `redis-cli` can read them.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl<V: Serialize + DeserializeOwned> Codec<V> for JsonCodec {
    fn encode(&self, value: &V) -> Result<Bytes, Error> {
        crate::json::to_json(value).map(Bytes::from)
    }

    fn decode(&self, bytes: Bytes) -> Result<V, Error> {
        crate::json::from_json(&bytes)
    }
}

/// Values that are already bytes (`Bytes`, `Vec<u8>`) or text (`String`, checked as UTF-8),
/// stored as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct BytesCodec;

impl Codec<Bytes> for BytesCodec {
    fn encode(&self, value: &Bytes) -> Result<Bytes, Error> {
        Ok(value.clone())
    }

    fn decode(&self, bytes: Bytes) -> Result<Bytes, Error> {
        Ok(bytes)
    }
}

impl Codec<Vec<u8>> for BytesCodec {
    fn encode(&self, value: &Vec<u8>) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(value))
    }

    fn decode(&self, bytes: Bytes) -> Result<Vec<u8>, Error> {
        Ok(bytes.to_vec())
    }
}

impl Codec<String> for BytesCodec {
    fn encode(&self, value: &String) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }

    fn decode(&self, bytes: Bytes) -> Result<String, Error> {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| Error::new(ErrorKind::Decode, format!("cached value is not UTF-8: {e}")))
    }
}

/// What a cached "no such value" is stored as (with `cache_nulls`): not valid UTF-8, so no
/// JSON text or string is ever mistaken for it.
pub(super) const NULL_MARKER: &[u8] = b"\xff\x00redcluster:null";
