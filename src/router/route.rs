//! Where a command goes: its slot, whether it only reads, whether it fans out, and how long
//! it may block, all read from [`command::classify`] (the same classification the bundled
//! server's cluster routing uses).
//!
//! Keys in different slots are an [`ErrorKind::CrossSlot`] error here, before anything is
//! sent; the router then splits the commands that may be split (MGET, MSET, DEL ... see
//! [`split`](super::split)) and returns the error for the others (MSETNX and other commands
//! that must stay atomic).

use std::time::Duration;

use crate::command::{self, Atomic, Class, FanoutMerge, PubSubOp, Slot, Targets, Wait};
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

/// Route a command sent on a shared (multiplexed) connection. `standalone` (no cluster: one
/// primary holds every slot) makes keys in different slots no error: the command is routed
/// as keyless, to the one primary or (reading) a replica.
///
/// Unknown commands (modules, newer servers) are treated as keyless writes: they go to a
/// primary, and a MOVED reply still takes them to the right node.
///
/// # Errors
/// [`ErrorKind::CrossSlot`] when the keys hash to more than one slot; [`ErrorKind::Config`]
/// for a command that changes the state of the connection it is sent on (MULTI, WATCH,
/// SUBSCRIBE ...): on a shared connection it would capture every other caller's requests,
/// so it is refused before anything is sent, naming the API that pins a connection.
pub(crate) fn route(args: &Args, standalone: bool) -> Result<Route, Error> {
    let (route, class) = classify(args, standalone)?;
    let api = match (class.atomic, class.pubsub.map(|p| p.op)) {
        (Some(Atomic::Transaction), _) => "Client::transaction",
        (_, Some(PubSubOp::Subscribe | PubSubOp::Unsubscribe)) => {
            "Client::subscribe, psubscribe or ssubscribe"
        }
        _ => return Ok(route),
    };
    let name = class.spec.map_or("", |s| s.name).to_ascii_uppercase();
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "{name} changes the state of the connection it is sent on, which other requests share; use {api}"
        ),
    ))
}

/// Route a command of a pinned session (a transaction on a connection of its own), where
/// MULTI and WATCH are what the connection is for. `standalone` as for [`route`].
///
/// # Errors
/// [`ErrorKind::CrossSlot`] when the keys hash to more than one slot (in a cluster).
pub(crate) fn route_pinned(args: &Args, standalone: bool) -> Result<Route, Error> {
    classify(args, standalone).map(|(route, _)| route)
}

fn classify(args: &Args, standalone: bool) -> Result<(Route, Class), Error> {
    if args.len() == 0 {
        return Err(Error::new(ErrorKind::Config, "empty command"));
    }
    let class = command::classify(args);
    let slot = match class.slot {
        Slot::Keyless => None,
        Slot::One(s) => Some(s),
        Slot::Cross if standalone => None,
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
    let route = Route {
        slot,
        readonly: class.readonly,
        fanout: class.fanout,
        block,
        exclusive,
    };
    Ok((route, class))
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
        let r = route(&args("GET foo"), false).unwrap();
        assert_eq!(r.slot, Some(key_slot(b"foo")));
        assert!(r.readonly);
        assert_eq!((r.block, r.exclusive), (Block::No, false));
        let e = route(&args("MSET a 1 b 2"), false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CrossSlot);
        assert!(e.to_string().contains("MSET"), "{e}");
        // Without a cluster every key lives on the one primary: sent whole, as keyless.
        let r = route(&args("MSET a 1 b 2"), true).unwrap();
        assert_eq!((r.slot, r.readonly), (None, false));
        let r = route(&args("MGET a b"), true).unwrap();
        assert_eq!((r.slot, r.readonly), (None, true));
        assert_eq!(
            route(&args("GET foo"), true).unwrap().slot,
            Some(key_slot(b"foo"))
        );
        assert_eq!(
            route(&args("NOSUCHCMD a"), false).unwrap(),
            Route::keyless(false)
        );
        let r = route(&args("DBSIZE"), false).unwrap();
        assert_eq!(r.fanout, Some((Targets::Primaries, FanoutMerge::Sum)));
    }

    #[test]
    fn connection_state_commands_need_their_own_connection() {
        for (cmd, api) in [
            ("MULTI", "Client::transaction"),
            ("WATCH k", "Client::transaction"),
            ("EXEC", "Client::transaction"),
            ("SUBSCRIBE ch", "Client::subscribe"),
            ("SSUBSCRIBE ch", "ssubscribe"),
            ("PUNSUBSCRIBE", "Client::subscribe"),
        ] {
            let e = route(&args(cmd), false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{cmd}");
            assert!(e.to_string().contains(api), "{cmd}: {e}");
        }
        // A pinned session routes them; publishing is fine anywhere.
        assert_eq!(
            route_pinned(&args("WATCH k"), false).unwrap().slot,
            Some(key_slot(b"k"))
        );
        assert!(route(&args("PUBLISH ch m"), false).is_ok());
        assert!(route(&args("SPUBLISH ch m"), false).is_ok());
        assert!(route(&args("EVAL s 0"), false).is_ok());
    }

    #[test]
    fn blocking_commands_run_alone_under_a_longer_deadline() {
        let r = route(&args("BLPOP a 1.5"), false).unwrap();
        assert_eq!(r.block, Block::For(Duration::from_millis(1500)));
        assert!(r.exclusive);
        let r = route(&args("XREAD BLOCK 0 STREAMS s $"), false).unwrap();
        assert_eq!((r.block, r.exclusive), (Block::Forever, true));
        let r = route(&args("BLPOP a x"), false).unwrap();
        assert_eq!(r.block, Block::For(Duration::ZERO));
        assert!(!route(&args("XREAD STREAMS s 0"), false).unwrap().exclusive);
        // WAIT waits for this connection's writes: longer deadline, same connection.
        let r = route(&args("WAIT 1 200"), false).unwrap();
        assert_eq!(r.block, Block::For(Duration::from_millis(200)));
        assert!(!r.exclusive);
    }
}
