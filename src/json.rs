//! [`Json`]: a value stored as JSON text, as an argument and as a reply type (feature
//! `serde`).
//!
//! ```no_run
//! # async fn f(client: redcluster::Client) -> Result<(), redcluster::Error> {
//! use redcluster::Json;
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct User { id: u64, name: String }
//!
//! let user = User { id: 1, name: "alice".into() };
//! client.set("user:1", Json(&user)).await?;
//! let Json(u): Json<User> = client.get("user:1").await?;
//! let missing: Option<Json<User>> = client.get("user:2").await?; // None: no such key
//! # let _ = (u, missing); Ok(()) }
//! ```
//!
//! A stored value that is not JSON of the wanted shape is an
//! [`ErrorKind::Decode`](crate::ErrorKind::Decode) error naming the command (`GET: cannot
//! decode JSON ...`), never a panic.

use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::types::{FromValue, ToArg};

/// A value sent and read as JSON text: `Json(&user)` as an argument, `Json<User>` (or
/// `Option<Json<User>>` for a key that may be missing) as a reply type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// `value` as JSON bytes, or a [`ErrorKind::Decode`] error (serde refuses some values, such
/// as maps with non-string keys).
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(encode_error)
}

fn encode_error(e: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::Decode,
        format!("cannot encode value as JSON: {e}"),
    )
}

/// `bytes` read as JSON of type `T`, or a [`ErrorKind::Decode`] error that says where it
/// failed (never the stored text, which may be large or private).
pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!(
                "cannot decode JSON of {} bytes as {}: {e}",
                bytes.len(),
                std::any::type_name::<T>()
            ),
        )
    })
}

impl<T: Serialize> ToArg for Json<T> {
    /// Writes the JSON text; a value serde cannot serialize writes nothing here, and fails
    /// its command unsent through the client (which calls the checked form).
    fn write_arg(&self, out: &mut BytesMut) {
        let _ = self.try_write_arg(out);
    }

    fn try_write_arg(&self, out: &mut BytesMut) -> Result<(), Error> {
        let start = out.len();
        serde_json::to_writer((&mut *out).writer(), &self.0).map_err(|e| {
            out.truncate(start);
            encode_error(e)
        })
    }
}

impl<T: DeserializeOwned> FromValue for Json<T> {
    fn from_value(value: Value) -> Result<Self, Error> {
        let bytes = bytes::Bytes::from_value(value).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!("cannot decode JSON: {}", e.detail()),
            )
        })?;
        from_json(&bytes).map(Json)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct User {
        id: u64,
        name: String,
    }

    #[test]
    fn round_trips_and_reports_decode_errors() {
        let u = User {
            id: 7,
            name: "é\"x".into(),
        };
        let mut out = BytesMut::new();
        Json(&u).try_write_arg(&mut out).unwrap();
        let back: Json<User> = FromValue::from_value(Value::BulkString(out.freeze())).unwrap();
        assert_eq!(back.0, u);
        let none: Option<Json<User>> = FromValue::from_value(Value::Null).unwrap();
        assert!(none.is_none());
        let e = Json::<User>::from_value(Value::bulk("{\"id\":\"x\"}")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.to_string().contains("User"), "{e}");
        let e = Json::<User>::from_value(Value::Integer(3)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
    }

    #[test]
    fn an_unserializable_value_is_an_error_not_a_panic() {
        let mut bad: HashMap<(u8, u8), u8> = HashMap::new();
        bad.insert((1, 2), 3);
        let mut out = BytesMut::from(&b"keep"[..]);
        let e = Json(&bad).try_write_arg(&mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert_eq!(&out[..], b"keep");
    }
}
