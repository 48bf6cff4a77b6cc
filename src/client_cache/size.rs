//! What a cached value costs in memory, counted as the allocator is asked for it, and the
//! compact copy that makes the count true.

use std::mem::size_of;

use bytes::Bytes;

use crate::resp::Value;

/// Bytes the allocator keeps beside each allocation, on top of what was asked for (an
/// estimate of glibc malloc's header and rounding).
pub(crate) const ALLOC_OVERHEAD: usize = 16;
/// The control block `Bytes` allocates when a vector-backed buffer is first cloned (by the
/// first hit), plus its allocation overhead.
pub(crate) const BYTES_SHARED: usize = 32 + ALLOC_OVERHEAD;
/// Heap bytes behind `v` beyond its own `size_of`, for a value made by [`compact`].
pub(crate) fn heap_size(v: &Value) -> usize {
    let bytes = |b: &Bytes| {
        if b.is_empty() {
            0
        } else {
            b.len() + BYTES_SHARED
        }
    };
    let list = |n: usize, each: usize| {
        if n == 0 {
            0
        } else {
            n * each + ALLOC_OVERHEAD
        }
    };
    match v {
        Value::SimpleString(b) | Value::Error(b) | Value::BulkString(b) | Value::BigNumber(b) => {
            bytes(b)
        }
        Value::Verbatim { format, text } => bytes(format) + bytes(text),
        Value::Array(vs) | Value::Set(vs) | Value::Push(vs) => {
            list(vs.len(), size_of::<Value>()) + vs.iter().map(heap_size).sum::<usize>()
        }
        Value::Map(kv) => {
            list(kv.len(), size_of::<(Value, Value)>())
                + kv.iter()
                    .map(|(k, v)| heap_size(k) + heap_size(v))
                    .sum::<usize>()
        }
        Value::Attribute { attributes, value } => {
            list(attributes.len(), size_of::<(Value, Value)>())
                + attributes
                    .iter()
                    .map(|(k, v)| heap_size(k) + heap_size(v))
                    .sum::<usize>()
                + size_of::<Value>()
                + ALLOC_OVERHEAD
                + heap_size(value)
        }
        Value::Integer(_)
        | Value::Null
        | Value::NullArray
        | Value::Double(_)
        | Value::Boolean(_) => 0,
    }
}

/// A deep copy owning exactly its bytes: replies are zero-copy slices of a connection's
/// 64 KiB read buffer, which a cached slice would keep alive whole.
pub(crate) fn compact(v: &Value) -> Value {
    let b = |b: &Bytes| Bytes::copy_from_slice(b);
    let pairs = |kv: &[(Value, Value)]| kv.iter().map(|(k, v)| (compact(k), compact(v))).collect();
    match v {
        Value::SimpleString(x) => Value::SimpleString(b(x)),
        Value::Error(x) => Value::Error(b(x)),
        Value::BulkString(x) => Value::BulkString(b(x)),
        Value::BigNumber(x) => Value::BigNumber(b(x)),
        Value::Verbatim { format, text } => Value::Verbatim {
            format: b(format),
            text: b(text),
        },
        Value::Array(vs) => Value::Array(vs.iter().map(compact).collect()),
        Value::Set(vs) => Value::Set(vs.iter().map(compact).collect()),
        Value::Push(vs) => Value::Push(vs.iter().map(compact).collect()),
        Value::Map(kv) => Value::Map(pairs(kv)),
        Value::Attribute { attributes, value } => Value::Attribute {
            attributes: pairs(attributes),
            value: Box::new(compact(value)),
        },
        other => other.clone(),
    }
}
