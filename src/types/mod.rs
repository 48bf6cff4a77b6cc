//! Conversions between Rust values and Redis arguments and replies.
//!
//! [`ToArg`] turns one Rust value into one command argument (the bytes Redis sees);
//! [`FromValue`] turns a reply [`Value`](crate::resp::Value) into the type a caller asks for,
//! with an [`ErrorKind::Conversion`](crate::ErrorKind::Conversion) error that names both the
//! reply and the wanted type when they do not fit.
//!
//! ```
//! use redcluster::{FromValue, resp::Value};
//! let v = Value::Array(vec![Value::bulk("1"), Value::Null]);
//! let got: Vec<Option<i64>> = FromValue::from_value(v).unwrap();
//! assert_eq!(got, vec![Some(1), None]);
//! ```

mod args;
mod from_value;
mod to_arg;

pub(crate) use args::Args;

pub use from_value::FromValue;
pub use to_arg::ToArg;
