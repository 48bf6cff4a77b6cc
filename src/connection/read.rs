//! The read loop: decode replies as they arrive and complete requests in FIFO order; hand
//! pushes (and, on a subscriber connection, frames no request waits for) to the sink.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;

use super::stream::{closed_by_server, ReadHalf};
use super::{now_ns, Pending, Shared, QUIET_BEFORE_PROBE};
use crate::error::{Error, ErrorKind};
use crate::resp::{decode_resumable, FrameScan, Limits, Value};

pub(super) async fn read_loop(shared: Arc<Shared>, mut stream: ReadHalf, limits: Limits) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut replies: Vec<Value> = Vec::new();
    let mut done: Vec<(Pending, Value)> = Vec::new();
    let mut drain = false;
    // How far the front frame has been checked: a reply spread over many reads is checked
    // once, not once per read.
    let mut scan = FrameScan::default();
    let failure = loop {
        if buf.capacity() - buf.len() < 8 * 1024 {
            buf.reserve(64 * 1024);
        }
        let read = if drain {
            // The server hung up: everything it sent is already here, so read without
            // waiting (a wait would let a writer in before the end of the stream is seen).
            match stream.read_now(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    drain = false;
                    continue;
                }
                other => other,
            }
        } else {
            stream.read_buf(&mut buf).await
        };
        match read {
            Ok(0) => break shared.read_error(&closed_by_server()),
            Ok(_) => {
                // The first bytes after a quiet spell (or after this task was starved) may
                // have arrived together with a hang-up that tokio has not reported yet:
                // look, so the end of the stream is seen before anything else is written.
                let now = now_ns();
                let quiet = now.saturating_sub(shared.last_read.swap(now, Ordering::Relaxed));
                if quiet >= QUIET_BEFORE_PROBE.as_nanos() as u64 && stream.hung_up().is_some() {
                    drain = true;
                }
            }
            Err(e) => break shared.read_error(&e),
        }
        let mut bad = None;
        loop {
            match decode_resumable(&mut buf, &limits, &mut scan) {
                Ok(Some(Value::Push(items))) => {
                    // Out-of-band RESP3 push (pub/sub, invalidation): never a reply.
                    match (shared.sink.get(), &shared.tracking) {
                        (Some(sink), _) => sink(Ok(Value::Push(items))),
                        (None, Some(hook)) => invalidation(&shared, hook.as_ref(), &items),
                        (None, None) => {
                            tracing::trace!(addr = %shared.addr, len = items.len(), "push frame ignored")
                        }
                    }
                }
                Ok(Some(v))
                    if shared.sink.get().is_some() && {
                        let st = shared.lock();
                        st.in_flight.len() <= replies.len()
                    } =>
                {
                    if let Some(sink) = shared.sink.get() {
                        sink(Ok(v));
                    }
                }
                Ok(Some(v)) => replies.push(v),
                Ok(None) => break,
                Err(e) => {
                    bad = Some(Error::from(e));
                    break;
                }
            }
        }
        if !replies.is_empty() {
            let mut unexpected = false;
            {
                let mut st = shared.lock();
                for v in replies.drain(..) {
                    match st.in_flight.pop_front() {
                        Some(p) => done.push((p, v)),
                        None => {
                            unexpected = true;
                            break;
                        }
                    }
                }
            }
            let n = done.len();
            let _ = shared
                .pending
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                    Some(p.saturating_sub(n))
                });
            for (p, v) in done.drain(..) {
                if let Some(tx) = p.tx {
                    let _ = tx.send(Ok(v));
                }
            }
            if unexpected {
                break Error::new(
                    ErrorKind::Protocol,
                    format!("{} sent a reply nobody asked for", shared.addr),
                );
            }
        }
        if let Some(e) = bad {
            break e;
        }
    };
    tracing::warn!(addr = %shared.addr, error = %failure, "connection lost");
    shared.fail_all(failure);
}

/// Hand an `invalidate` push (`>2 invalidate [keys]`, or a null for the whole keyspace) to
/// the cache; any other push on a non-subscriber connection is ignored.
fn invalidation(shared: &Shared, hook: &dyn super::TrackingHook, items: &[Value]) {
    match items {
        [Value::BulkString(kind) | Value::SimpleString(kind), keys]
            if kind.eq_ignore_ascii_case(b"invalidate") =>
        {
            match keys {
                Value::Array(keys) | Value::Set(keys) => hook.invalidate(shared.id, Some(keys)),
                // Null: FLUSHALL/FLUSHDB, or the server's tracking table evicting keys.
                _ => hook.invalidate(shared.id, None),
            }
        }
        _ => tracing::trace!(addr = %shared.addr, len = items.len(), "push frame ignored"),
    }
}
