//! Which commands the cache serves, and what identifies one cached read (its signature).

use crate::command::classify;
use crate::error::{Error, ErrorKind};
use crate::types::Args;

/// What the caller asked of the cache for one command (`Cmd::cached`/`uncached`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Cache the commands of the default list.
    #[default]
    Auto,
    /// Cache this read-only single-key command even though it is not in the list.
    Cached,
    /// Go to the server.
    Uncached,
}

/// How one command goes through the cache.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan<'a> {
    /// One cacheable read of `key`, identified by `sig` among the key's reads.
    Read { key: &'a [u8], sig: Vec<u8> },
    /// `MGET`: each key as its own cached read.
    PerKey,
    /// Not cached. `write`: the command may change its keys, which are dropped locally
    /// once it completes.
    Pass { write: bool },
}

/// Read-only commands on one key (at argument 1) whose reply depends only on the key's
/// value: cached by default. Sorted, upper case (binary search). Documented on
/// `ClientCache`; keep the two lists equal.
const DEFAULT: &[&str] = &[
    "BITCOUNT",
    "BITPOS",
    "EXISTS",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HSTRLEN",
    "HVALS",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "SCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "STRLEN",
    "SUBSTR",
    "TYPE",
    "XLEN",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCORE",
];

/// The command name upper-cased into `buf` (names longer than it are never in the list).
fn upper<'b>(name: &[u8], buf: &'b mut [u8; 24]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..name.len())?;
    out.copy_from_slice(name);
    out.make_ascii_uppercase();
    Some(out)
}

/// A read's signature: the name upper-cased, then each argument but the key (`skip`),
/// length-prefixed so no two argument lists collide.
pub(crate) fn signature(name: &[u8], args: &Args, skip: usize) -> Vec<u8> {
    let mut sig = Vec::with_capacity(16);
    sig.extend(name.iter().map(u8::to_ascii_uppercase));
    for (i, a) in args.iter().enumerate().skip(1) {
        if i != skip {
            sig.extend_from_slice(&(a.len() as u32).to_le_bytes());
            sig.extend_from_slice(a);
        }
    }
    sig
}

/// How `args` goes through the cache under `choice`.
///
/// # Errors
/// [`ErrorKind::Config`] for `Cmd::cached` on a command that is not a read-only command on
/// exactly one key (its reply could not be kept right by key invalidations).
pub(crate) fn plan(args: &Args, choice: Choice) -> Result<Plan<'_>, Error> {
    let name = args.get(0).unwrap_or(b"");
    if choice != Choice::Uncached {
        let mut buf = [0u8; 24];
        if let Some(up) = upper(name, &mut buf) {
            if up == b"MGET" && args.len() >= 2 {
                return Ok(Plan::PerKey);
            }
            let listed = DEFAULT.binary_search_by(|c| c.as_bytes().cmp(up)).is_ok();
            // EXISTS counts several keys: only its one-key form is cached.
            if listed && args.len() >= 2 && (up != b"EXISTS" || args.len() == 2) {
                let key = args.get(1).unwrap_or(b"");
                return Ok(Plan::Read {
                    key,
                    sig: signature(name, args, 1),
                });
            }
        }
    }
    let class = classify(args);
    if choice == Choice::Cached {
        let mut keys = class.keys.iter();
        let single = match (keys.next(), keys.next()) {
            (Some(k), None) => Some(k),
            _ => None,
        };
        match single {
            Some(k)
                if class.readonly
                    && class.block.is_none()
                    && class.fanout.is_none()
                    && class.pubsub.is_none() =>
            {
                return Ok(Plan::Read {
                    key: args.get(k).unwrap_or(b""),
                    sig: signature(name, args, k),
                })
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{} is not a read-only command on one key: it cannot be cached",
                        String::from_utf8_lossy(name)
                    ),
                ))
            }
        }
    }
    Ok(Plan::Pass {
        write: !class.readonly,
    })
}

/// The keys of `args` (for dropping a write's keys).
pub(crate) fn keys(args: &Args) -> impl Iterator<Item = &[u8]> {
    let class = classify(args);
    class
        .keys
        .iter()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|i| args.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_upper_case() {
        assert!(DEFAULT.windows(2).all(|w| w[0] < w[1]));
        assert!(DEFAULT
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn listed_reads_are_cached_by_key_and_signature() {
        let a = Args::of(&["get", "k"]);
        assert_eq!(
            plan(&a, Choice::Auto).unwrap(),
            Plan::Read {
                key: b"k",
                sig: b"GET".to_vec()
            }
        );
        let a = Args::of(&["HGET", "h", "f"]);
        let Plan::Read { key, sig } = plan(&a, Choice::Auto).unwrap() else {
            panic!("HGET is cached")
        };
        assert_eq!(key, b"h");
        assert_eq!(sig, b"HGET\x01\0\0\0f".to_vec());
        assert_eq!(
            plan(&Args::of(&["MGET", "a", "b"]), Choice::Auto).unwrap(),
            Plan::PerKey
        );
    }

    #[test]
    fn other_commands_pass_and_writes_say_so() {
        assert_eq!(
            plan(&Args::of(&["EXISTS", "a", "b"]), Choice::Auto).unwrap(),
            Plan::Pass { write: false }
        );
        assert_eq!(
            plan(&Args::of(&["TTL", "a"]), Choice::Auto).unwrap(),
            Plan::Pass { write: false }
        );
        assert_eq!(
            plan(&Args::of(&["SET", "a", "1"]), Choice::Auto).unwrap(),
            Plan::Pass { write: true }
        );
        assert_eq!(
            plan(&Args::of(&["GET", "a"]), Choice::Uncached).unwrap(),
            Plan::Pass { write: false }
        );
        let mset = Args::of(&["MSET", "a", "1", "b", "2"]);
        let k: Vec<&[u8]> = keys(&mset).collect();
        assert_eq!(k, vec![&b"a"[..], b"b"]);
    }

    #[test]
    fn opting_in_takes_read_only_single_key_commands_only() {
        let object = Args::of(&["OBJECT", "ENCODING", "k"]);
        let Plan::Read { key, sig } = plan(&object, Choice::Cached).unwrap() else {
            panic!("OBJECT ENCODING is read-only on one key")
        };
        assert_eq!(key, b"k");
        assert!(sig.starts_with(b"OBJECT"));
        let e = plan(&Args::of(&["SET", "a", "1"]), Choice::Cached).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(plan(&Args::of(&["SINTER", "a", "b"]), Choice::Cached).is_err());
    }
}
