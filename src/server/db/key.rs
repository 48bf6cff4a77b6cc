//! Key names as the keyspace stores them: [`Key`] keeps a name of up to 22 bytes inline (no
//! allocation at all, as most keys are that short) and a longer one in a single exact-size
//! allocation. A key stored as `Bytes` cost 32 bytes inline plus its own allocation plus a
//! shared header once cloned into an index: ~100 bytes for a 10-byte name.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

/// Longest name kept inline: the enum stays 24 bytes (a tag, a length and 22 bytes).
const INLINE: usize = 22;

/// A key name (compares, hashes and borrows as its bytes, so maps look it up by `&[u8]`).
#[derive(Clone)]
pub(crate) enum Key {
    /// A short name, in place.
    Inline { len: u8, buf: [u8; INLINE] },
    /// A longer name, in one allocation of exactly its length.
    Heap(Box<[u8]>),
}

impl Key {
    /// A copy of `name`.
    pub(crate) fn new(name: &[u8]) -> Key {
        if name.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..name.len()].copy_from_slice(name);
            Key::Inline {
                len: name.len() as u8,
                buf,
            }
        } else {
            Key::Heap(name.into())
        }
    }

    /// The name's bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..*len as usize],
            Key::Heap(b) => b,
        }
    }

    /// The name as `Bytes` (a copy), for replies and propagation.
    pub(crate) fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl Deref for Key {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Hash and equality are those of the bytes, as `Borrow<[u8]>` requires.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_bytes()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn short_names_inline_long_ones_exact_and_lookups_by_slice() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, 21, 22, 23, 100] {
            let name = vec![b'k'; len];
            let k = Key::new(&name);
            assert_eq!(k.as_bytes(), &name[..]);
            assert_eq!(matches!(k, Key::Inline { .. }), len <= INLINE);
            assert_eq!(k.to_bytes(), Bytes::from(name.clone()));
            let set: HashSet<Key> = [k.clone()].into_iter().collect();
            assert!(set.contains(&name[..]));
            assert!(!set.contains(&b"other"[..]));
        }
        assert!(Key::new(b"a") < Key::new(b"ab"));
    }
}
