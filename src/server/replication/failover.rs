//! FAILOVER (Redis 6.2+ coordinated failover of a standalone primary): pause writes, wait
//! until a replica (the one named by `TO host port`, else any online one) acknowledged
//! everything, then hand over: the replica is promoted (`REPLICAOF NO ONE`, its history
//! keeping this one's as replid2) and this node replicates it. `TIMEOUT ms` ends the wait
//! (with `FORCE` the hand-over happens anyway), `ABORT` cancels it; paused writes run after
//! (on a demoted node they get READONLY). Both nodes live in this process, so the hand-over
//! is done on the replica directly where Redis sends it `PSYNC ... FAILOVER`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::resp::Value;

use super::standalone::{set_primary, unset_primary};
use crate::server::args::parse_i64;
use crate::server::call::{Call, Outcome};
use crate::server::cluster::directory;
use crate::server::node::NodeShared;

/// A FAILOVER in progress.
#[derive(Debug, Clone)]
pub(crate) struct Failover {
    /// `TO host port`.
    target: Option<(String, u16)>,
    /// `TIMEOUT ms` runs out then.
    deadline: Option<Instant>,
    /// `FORCE`: hand over at the deadline even if the target is behind.
    force: bool,
    /// Set once the hand-over started (`failover-in-progress`).
    pub(crate) handing_over: bool,
}

fn err(text: &str) -> Outcome {
    Outcome::Reply(Value::error(format!("ERR {text}")))
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms].
pub(crate) fn failover_command(c: &mut Call<'_, '_>) -> Outcome {
    if !c.shared.config.standalone {
        return err("FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.");
    }
    let args = c.args;
    if args.len() == 2 && args[1].eq_ignore_ascii_case(b"abort") {
        let st = c.locked.get();
        if st.repl.failover.take().is_none() {
            return err("No failover in progress.");
        }
        c.shared.faults.set_pause(|p| p.clients_until = None);
        return Outcome::Reply(Value::ok());
    }
    let (mut timeout_ms, mut force, mut target) = (0i64, false, None::<(String, u16)>);
    let mut j = 1;
    while j < args.len() {
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"timeout") && j + 1 < args.len() && timeout_ms == 0 {
            let Some(ms) = parse_i64(&args[j + 1]) else {
                return err("value is not an integer or out of range");
            };
            if ms <= 0 {
                return err("FAILOVER timeout must be greater than 0");
            }
            timeout_ms = ms;
            j += 2;
        } else if a.eq_ignore_ascii_case(b"to") && j + 2 < args.len() && target.is_none() {
            let Some(port) = parse_i64(&args[j + 2]) else {
                return err("value is not an integer or out of range");
            };
            let host = String::from_utf8_lossy(&args[j + 1]).into_owned();
            target = Some((host, u16::try_from(port).unwrap_or(0)));
            j += 3;
        } else if a.eq_ignore_ascii_case(b"force") && !force {
            force = true;
            j += 1;
        } else {
            return err("syntax error");
        }
    }
    let st = c.locked.get();
    if st.repl.failover.is_some() {
        return err("FAILOVER already in progress.");
    }
    if st.repl.link.is_some() {
        return err("FAILOVER is not valid when server is a replica.");
    }
    if st.repl.replicas.is_empty() {
        return err("FAILOVER requires connected replicas.");
    }
    if force && (timeout_ms == 0 || target.is_none()) {
        return err("FAILOVER with force option requires both a timeout and target HOST and IP.");
    }
    if let Some((host, port)) = &target {
        let found = st
            .repl
            .replicas
            .iter()
            .find(|r| r.ip.to_string() == *host && r.port == *port);
        match found {
            None => return err("FAILOVER target HOST and PORT is not a replica."),
            Some(r) if !r.online => return err("FAILOVER target replica is not online."),
            Some(_) => {}
        }
    }
    let deadline =
        (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    st.repl.failover = Some(Failover {
        target,
        deadline,
        force,
        handing_over: false,
    });
    // Ask the replicas for their offsets now rather than at their next periodic ACK.
    st.repl.feed(vec![[&b"REPLCONF"[..], b"GETACK", b"*"]
        .map(Bytes::from_static)
        .to_vec()]);
    c.shared.faults.set_pause(|p| {
        p.clients_until = Some(tokio::time::Instant::now() + Duration::from_secs(365 * 86400));
        p.writes_only = true;
    });
    if let Some(node) = directory::lookup(c.shared.addr) {
        tokio::spawn(run(node));
    }
    Outcome::Reply(Value::ok())
}

/// What the failover task does next.
enum Step {
    Wait,
    Abort,
    HandOver(SocketAddr),
}

fn next_step(shared: &NodeShared) -> Step {
    let mut st = shared.lock();
    let Some(f) = st.repl.failover.clone() else {
        return Step::Abort;
    };
    let offset = st.repl.offset;
    let candidates = st.repl.replicas.iter().filter(|r| {
        r.online
            && f.target
                .as_ref()
                .map_or(true, |(h, p)| r.ip.to_string() == *h && r.port == *p)
    });
    let mut ready = None;
    let mut any = None;
    for r in candidates {
        let addr = SocketAddr::new(r.ip, r.port);
        any.get_or_insert(addr);
        if r.ack_offset >= offset {
            ready = Some(addr);
            break;
        }
    }
    let late = f.deadline.is_some_and(|d| Instant::now() >= d);
    match (ready, late) {
        (Some(addr), _) => Step::HandOver(addr),
        (None, true) if f.force => any.map_or(Step::Abort, Step::HandOver),
        (None, true) => {
            st.repl.failover = None;
            Step::Abort
        }
        (None, false) => Step::Wait,
    }
}

/// The failover's progress, until it hands over or ends.
async fn run(shared: Arc<NodeShared>) {
    let mut stop = shared.shutdown_rx();
    loop {
        match next_step(&shared) {
            Step::Wait => {}
            Step::Abort => break,
            Step::HandOver(addr) => {
                hand_over(&shared, addr);
                break;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = shared.acks.notified() => {}
            _ = crate::server::node::stopped(&mut stop) => break,
        }
    }
    shared.faults.set_pause(|p| p.clients_until = None);
}

/// Promote the replica at `addr` and follow it.
fn hand_over(shared: &NodeShared, addr: SocketAddr) {
    {
        let mut st = shared.lock();
        if let Some(f) = st.repl.failover.as_mut() {
            f.handing_over = true;
        }
    }
    if let Some(target) = directory::lookup(addr) {
        let mut t = target.lock();
        if t.repl.link.is_some() {
            unset_primary(&mut t, &target);
        }
    }
    let mut st = shared.lock();
    st.repl.failover = None;
    set_primary(&mut st, shared, &addr.ip().to_string(), addr.port());
}
