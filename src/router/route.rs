//! Where a command goes: its slot, whether it only reads, whether it fans out, and how long
//! it may block, all read from [`command::classify`] (the same classification the bundled
//! server's cluster routing uses).
//!
//! Keys in different slots are an [`ErrorKind::CrossSlot`] error here, before anything is
//! sent; the router then splits the commands that may be split (MGET, MSET, DEL ... see
//! [`split`](super::split)) and returns the error for the others (MSETNX and other commands
//! that must stay atomic).

use std::time::Duration;

use crate::command::{self, FanoutMerge, Slot, Targets, Wait};
use crate::error::{Error, ErrorKind};
use crate::types::Args;

/// How long a command may hold its connection on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    /// The command does not block.
    No,
    /// It blocks up to this long.
    For(Duration),
    /// Timeout 0: it blocks until data comes; the client adds no deadline of its own (the
    /// connection being alive is the only bound).
    Forever,
}

/// The routing facts of one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// The slot of the command's keys; `None` for keyless commands (any primary serves them).
    pub(crate) slot: Option<u16>,
    /// True when the command never writes, so a replica may serve it.
    pub(crate) readonly: bool,
    /// For keyless cluster-wide commands (DBSIZE, KEYS, FLUSHALL ...): where they go and how
    /// the replies merge.
    pub(crate) fanout: Option<(Targets, FanoutMerge)>,
    /// How long it may block on the server (the deadline grows by as much).
    pub(crate) block: Block,
    /// It waits on the keyspace (BLPOP, XREAD BLOCK ...): it gets a connection of its own,
    /// or it would stall every request queued behind it on a multiplexed one.
    pub(crate) exclusive: bool,
}

impl Route {
    /// A keyless, non-blocking route (fan-out parts, pub/sub links, per-node commands).
    pub(crate) fn keyless(readonly: bool) -> Route {
        Route {
            slot: None,
            readonly,
            fanout: None,
            block: Block::No,
            exclusive: false,
        }
    }
}

/// Route a command.
///
/// Unknown commands (modules, newer servers) are treated as keyless writes: they go to a
/// primary, and a MOVED reply still takes them to the right node.
///
/// # Errors
/// [`ErrorKind::CrossSlot`] when the keys hash to more than one slot.
pub(crate) fn route(args: &Args) -> Result<Route, Error> {
    if args.len() == 0 {
        return Err(Error::new(ErrorKind::Config, "empty command"));
    }
    let class = command::classify(args);
    let slot = match class.slot {
        Slot::Keyless => None,
        Slot::One(s) => Some(s),
        Slot::Cross => {
            let name = class.spec.map_or("", |s| s.name);
            return Err(Error::new(
                ErrorKind::CrossSlot,
                format!(
                    "CROSSSLOT keys of {} hash to different slots; the command must run on one node, so it is not split (use hash tags like {{user1}}:a, {{user1}}:b to keep them together)",
                    name.to_ascii_uppercase()
                ),
            ));
        }
    };
    let (block, exclusive) = match class.block {
        None => (Block::No, false),
        Some(t) => {
            let block = match t.wait(args) {
                Wait::Millis(ms) => Block::For(Duration::from_millis(ms)),
                Wait::Forever => Block::Forever,
                // A bad timeout: the server refuses it at once.
                Wait::Invalid => Block::For(Duration::ZERO),
            };
            (block, t.keyspace)
        }
    };
    Ok(Route {
        slot,
        readonly: class.readonly,
        fanout: class.fanout,
        block,
        exclusive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_slot;

    fn args(cmd: &str) -> Args {
        let mut it = cmd.split(' ');
        let mut a = Args::new(it.next().unwrap());
        for x in it {
            a.push(x);
        }
        a
    }

    #[test]
    fn routes_carry_the_classification() {
        let r = route(&args("GET foo")).unwrap();
        assert_eq!(r.slot, Some(key_slot(b"foo")));
        assert!(r.readonly);
        assert_eq!((r.block, r.exclusive), (Block::No, false));
        let e = route(&args("MSET a 1 b 2")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CrossSlot);
        assert!(e.to_string().contains("MSET"), "{e}");
        assert_eq!(route(&args("NOSUCHCMD a")).unwrap(), Route::keyless(false));
        let r = route(&args("DBSIZE")).unwrap();
        assert_eq!(r.fanout, Some((Targets::Primaries, FanoutMerge::Sum)));
    }

    #[test]
    fn blocking_commands_run_alone_under_a_longer_deadline() {
        let r = route(&args("BLPOP a 1.5")).unwrap();
        assert_eq!(r.block, Block::For(Duration::from_millis(1500)));
        assert!(r.exclusive);
        let r = route(&args("XREAD BLOCK 0 STREAMS s $")).unwrap();
        assert_eq!((r.block, r.exclusive), (Block::Forever, true));
        let r = route(&args("BLPOP a x")).unwrap();
        assert_eq!(r.block, Block::For(Duration::ZERO));
        assert!(!route(&args("XREAD STREAMS s 0")).unwrap().exclusive);
        // WAIT waits for this connection's writes: longer deadline, same connection.
        let r = route(&args("WAIT 1 200")).unwrap();
        assert_eq!(r.block, Block::For(Duration::from_millis(200)));
        assert!(!r.exclusive);
    }
}
