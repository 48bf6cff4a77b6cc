//! [`FromValue`]: a reply as the type the caller asked for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

use bytes::Bytes;

use crate::error::{Error, ErrorKind};
use crate::resp::Value;

/// A type a reply can be converted into.
///
/// Error replies never reach a conversion: the client returns them as
/// [`ErrorKind::Server`](crate::ErrorKind::Server) first. Conversions accept both RESP2 and
/// RESP3 shapes (a map or a flat array of pairs, a double or its text, a boolean or `:0`/`:1`).
///
/// Implement it for a type of your own; [`Error::conversion`] builds the error for a reply
/// that does not fit:
///
/// ```
/// use redcluster::{Error, FromValue, Value};
/// struct Flag(bool);
/// impl FromValue for Flag {
///     fn from_value(value: Value) -> Result<Self, Error> {
///         match String::from_value(value)?.as_str() {
///             "on" => Ok(Flag(true)),
///             "off" => Ok(Flag(false)),
///             other => Err(Error::conversion(format!("{other:?} is not on/off"))),
///         }
///     }
/// }
/// let Flag(on) = Flag::from_value(Value::bulk("on")).unwrap();
/// assert!(on);
/// assert!(Flag::from_value(Value::bulk("maybe")).is_err());
/// ```
pub trait FromValue: Sized {
    /// Convert `value`.
    ///
    /// # Errors
    /// [`ErrorKind::Conversion`] naming the reply and the wanted type.
    fn from_value(value: Value) -> Result<Self, Error>;

    /// Hook that lets `Vec<u8>` read a bulk string as bytes rather than as a list of numbers.
    #[doc(hidden)]
    fn from_byte_vec(_bytes: Bytes) -> Option<Vec<Self>> {
        None
    }
}

fn conversion_error(value: &Value, wanted: &str) -> Error {
    let shown = match value {
        Value::BulkString(b) | Value::SimpleString(b) => {
            let text = String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned();
            format!("string {text:?}")
        }
        Value::Integer(i) => format!("integer {i}"),
        Value::Null => "nil".to_string(),
        Value::NullArray => "nil array".to_string(),
        Value::Array(a) => format!("array of {}", a.len()),
        Value::Map(m) => format!("map of {}", m.len()),
        Value::Set(s) => format!("set of {}", s.len()),
        Value::Double(d) => format!("double {d}"),
        Value::Boolean(b) => format!("boolean {b}"),
        other => format!("{:?}", std::mem::discriminant(other)),
    };
    Error::new(
        ErrorKind::Conversion,
        format!("cannot convert reply ({shown}) into {wanted}"),
    )
}

/// Strip RESP3 attributes: the value they describe is what callers convert.
fn unwrap_attr(value: Value) -> Value {
    match value {
        Value::Attribute { value, .. } => unwrap_attr(*value),
        v => v,
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self, Error> {
        Ok(value)
    }
}

impl FromValue for () {
    fn from_value(_value: Value) -> Result<Self, Error> {
        Ok(())
    }
}

fn text_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) | Value::SimpleString(b) | Value::BigNumber(b) => Some(b),
        Value::Verbatim { text, .. } => Some(text),
        _ => None,
    }
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, Error> {
                let value = unwrap_attr(value);
                let parsed = match &value {
                    Value::Integer(i) => <$t>::try_from(*i).ok(),
                    Value::Boolean(b) => Some(<$t>::from(*b)),
                    Value::Double(d) if d.fract() == 0.0 => {
                        let i = *d as i64;
                        if i as f64 == *d { <$t>::try_from(i).ok() } else { None }
                    }
                    other => text_of(other)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|s| s.parse::<$t>().ok()),
                };
                parsed.ok_or_else(|| conversion_error(&value, stringify!($t)))
            }
        }
    )*};
}
int_from!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

impl FromValue for u8 {
    fn from_value(value: Value) -> Result<Self, Error> {
        let value = unwrap_attr(value);
        let parsed = match &value {
            Value::Integer(i) => u8::try_from(*i).ok(),
            other => text_of(other)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.parse::<u8>().ok()),
        };
        parsed.ok_or_else(|| conversion_error(&value, "u8"))
    }

    fn from_byte_vec(bytes: Bytes) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }
}

macro_rules! float_from {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, Error> {
                let value = unwrap_attr(value);
                let parsed = match &value {
                    Value::Double(d) => Some(*d as $t),
                    Value::Integer(i) => Some(*i as $t),
                    other => text_of(other)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|s| match s {
                            "inf" | "+inf" => Some(<$t>::INFINITY),
                            "-inf" => Some(<$t>::NEG_INFINITY),
                            s => s.parse::<$t>().ok(),
                        }),
                };
                parsed.ok_or_else(|| conversion_error(&value, stringify!($t)))
            }
        }
    )*};
}
float_from!(f32, f64);

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, Error> {
        let value = unwrap_attr(value);
        match &value {
            Value::Boolean(b) => Ok(*b),
            Value::Integer(i) => Ok(*i != 0),
            Value::Null | Value::NullArray => Ok(false),
            Value::SimpleString(s) if &s[..] == b"OK" => Ok(true),
            Value::BulkString(s) | Value::SimpleString(s) if &s[..] == b"1" => Ok(true),
            Value::BulkString(s) | Value::SimpleString(s) if &s[..] == b"0" => Ok(false),
            _ => Err(conversion_error(&value, "bool")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, Error> {
        let value = unwrap_attr(value);
        match &value {
            Value::Integer(i) => Ok(i.to_string()),
            Value::Double(d) => Ok(crate::resp::format_double(*d)),
            other => match text_of(other).map(|b| std::str::from_utf8(b)) {
                Some(Ok(s)) => Ok(s.to_string()),
                _ => Err(conversion_error(&value, "String (UTF-8)")),
            },
        }
    }
}

impl FromValue for Bytes {
    fn from_value(value: Value) -> Result<Self, Error> {
        let value = unwrap_attr(value);
        match value {
            Value::BulkString(b) | Value::SimpleString(b) | Value::BigNumber(b) => Ok(b),
            Value::Verbatim { text, .. } => Ok(text),
            Value::Integer(i) => Ok(Bytes::from(i.to_string())),
            other => Err(conversion_error(&other, "Bytes")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, Error> {
        match unwrap_attr(value) {
            Value::Null | Value::NullArray => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// The elements of an aggregate reply: arrays, sets and pushes as they are, maps flattened
/// to key, value, key, value (the RESP2 shape), nil as empty.
fn elements(value: Value, wanted: &str) -> Result<Vec<Value>, Error> {
    match value {
        Value::Array(v) | Value::Set(v) | Value::Push(v) => Ok(v),
        Value::Null | Value::NullArray => Ok(Vec::new()),
        Value::Map(m) => Ok(m.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        other => Err(conversion_error(&other, wanted)),
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> Result<Self, Error> {
        match unwrap_attr(value) {
            Value::BulkString(b) => match T::from_byte_vec(b.clone()) {
                Some(v) => Ok(v),
                None => Err(conversion_error(&Value::BulkString(b), "Vec")),
            },
            // A map read as a list gives its pairs, so `Vec<(K, V)>` works for RESP3 maps.
            Value::Map(m) => m
                .into_iter()
                .map(|(k, v)| T::from_value(Value::Array(vec![k, v])))
                .collect(),
            v => elements(v, "Vec")?.into_iter().map(T::from_value).collect(),
        }
    }
}

impl<T: FromValue + Eq + Hash, S: BuildHasher + Default> FromValue for HashSet<T, S> {
    fn from_value(value: Value) -> Result<Self, Error> {
        elements(unwrap_attr(value), "HashSet")?
            .into_iter()
            .map(T::from_value)
            .collect()
    }
}

fn pairs(value: Value, wanted: &str) -> Result<Vec<(Value, Value)>, Error> {
    match value {
        Value::Map(m) => Ok(m),
        Value::Null | Value::NullArray => Ok(Vec::new()),
        Value::Array(v) => {
            if v.len() % 2 != 0 {
                return Err(conversion_error(&Value::Array(v), wanted));
            }
            let mut out = Vec::with_capacity(v.len() / 2);
            let mut it = v.into_iter();
            while let (Some(k), Some(val)) = (it.next(), it.next()) {
                out.push((k, val));
            }
            Ok(out)
        }
        other => Err(conversion_error(&other, wanted)),
    }
}

impl<K: FromValue + Eq + Hash, V: FromValue, S: BuildHasher + Default> FromValue
    for HashMap<K, V, S>
{
    fn from_value(value: Value) -> Result<Self, Error> {
        pairs(unwrap_attr(value), "HashMap")?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }
}

impl<K: FromValue + Ord, V: FromValue> FromValue for BTreeMap<K, V> {
    fn from_value(value: Value) -> Result<Self, Error> {
        pairs(unwrap_attr(value), "BTreeMap")?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }
}

macro_rules! tuple_from {
    ($n:expr; $($t:ident),+) => {
        impl<$($t: FromValue),+> FromValue for ($($t,)+) {
            fn from_value(value: Value) -> Result<Self, Error> {
                let wanted = concat!("a tuple of ", stringify!($n));
                let items = elements(unwrap_attr(value), wanted)?;
                if items.len() != $n {
                    return Err(conversion_error(&Value::Array(items), wanted));
                }
                let mut it = items.into_iter();
                Ok(($(
                    match it.next() {
                        Some(v) => $t::from_value(v)?,
                        None => return Err(Error::new(ErrorKind::Conversion, wanted)),
                    },
                )+))
            }
        }
    };
}
tuple_from!(1; A);
tuple_from!(2; A, B);
tuple_from!(3; A, B, C);
tuple_from!(4; A, B, C, D);
tuple_from!(5; A, B, C, D, E);
tuple_from!(6; A, B, C, D, E, F);
tuple_from!(7; A, B, C, D, E, F, G);
tuple_from!(8; A, B, C, D, E, F, G, H);

#[cfg(test)]
mod tests {
    use super::*;

    fn conv<T: FromValue>(v: Value) -> Result<T, Error> {
        T::from_value(v)
    }

    #[test]
    fn scalars() {
        assert_eq!(conv::<i64>(Value::Integer(-3)).unwrap(), -3);
        assert_eq!(conv::<i64>(Value::bulk("42")).unwrap(), 42);
        assert_eq!(conv::<u8>(Value::Integer(7)).unwrap(), 7);
        assert!(conv::<u8>(Value::Integer(300)).is_err());
        assert_eq!(conv::<f64>(Value::Double(1.5)).unwrap(), 1.5);
        assert_eq!(conv::<f64>(Value::bulk("2.25")).unwrap(), 2.25);
        assert_eq!(conv::<f64>(Value::bulk("-inf")).unwrap(), f64::NEG_INFINITY);
        assert!(conv::<bool>(Value::Integer(1)).unwrap());
        assert!(!conv::<bool>(Value::Boolean(false)).unwrap());
        assert!(conv::<bool>(Value::ok()).unwrap());
        assert_eq!(conv::<String>(Value::bulk("hé")).unwrap(), "hé");
        assert_eq!(conv::<String>(Value::Integer(5)).unwrap(), "5");
        assert_eq!(
            conv::<Bytes>(Value::bulk([0u8, 1])).unwrap(),
            Bytes::from_static(&[0, 1])
        );
        assert_eq!(conv::<Vec<u8>>(Value::bulk("ab")).unwrap(), b"ab".to_vec());
        conv::<()>(Value::ok()).unwrap();
    }

    #[test]
    fn conversion_errors_name_reply_and_type() {
        let e = conv::<i64>(Value::bulk("abc")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        assert!(e.to_string().contains("\"abc\""), "{e}");
        assert!(e.to_string().contains("i64"), "{e}");
        let e = conv::<String>(Value::bulk([0xffu8])).unwrap_err();
        assert!(e.to_string().contains("UTF-8"));
        assert!(conv::<i64>(Value::Null).is_err());
    }

    #[test]
    fn options_and_collections() {
        assert_eq!(conv::<Option<String>>(Value::Null).unwrap(), None);
        assert_eq!(conv::<Option<i64>>(Value::bulk("1")).unwrap(), Some(1));
        let arr = Value::Array(vec![Value::bulk("a"), Value::Null, Value::bulk("c")]);
        assert_eq!(
            conv::<Vec<Option<String>>>(arr).unwrap(),
            vec![Some("a".into()), None, Some("c".into())]
        );
        let flat = Value::Array(vec![Value::bulk("f"), Value::bulk("1")]);
        let m: HashMap<String, i64> = conv(flat).unwrap();
        assert_eq!(m["f"], 1);
        let map = Value::Map(vec![(Value::bulk("g"), Value::Integer(2))]);
        let m: HashMap<String, i64> = conv(map.clone()).unwrap();
        assert_eq!(m["g"], 2);
        let v: Vec<(String, i64)> = conv(map).unwrap();
        assert_eq!(v, vec![("g".to_string(), 2)]);
        let odd = Value::Array(vec![Value::bulk("f")]);
        assert!(conv::<HashMap<String, String>>(odd).is_err());
        let set = Value::Set(vec![Value::bulk("x"), Value::bulk("y")]);
        let s: HashSet<String> = conv(set).unwrap();
        assert!(s.contains("x") && s.contains("y"));
    }

    #[test]
    fn tuples() {
        let v = Value::Array(vec![Value::ok(), Value::bulk("2"), Value::Null]);
        let (a, b, c): ((), i64, Option<String>) = conv(v).unwrap();
        assert_eq!((a, b, c), ((), 2, None));
        let short = Value::Array(vec![Value::Integer(1)]);
        assert!(conv::<(i64, i64)>(short).is_err());
    }
}
