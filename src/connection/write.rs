//! The write path: a caller's direct write on an idle connection, and the writer task that
//! batches everything queued meanwhile into one write.

use std::sync::Arc;

use bytes::{Buf, BytesMut};

use super::Shared;
use crate::error::Error;

impl Shared {
    /// Write `bytes` (already taken from the buffer, their requests already in flight) with
    /// one non-blocking syscall while holding the write duty, outside the state lock. Whatever
    /// does not go out, and whatever other callers queued meanwhile, is handed to the writer
    /// task together with the duty.
    pub(super) fn write_direct(&self, mut bytes: BytesMut) {
        let n = self.stream.try_write(&bytes);
        // (A WouldBlock or an error leaves everything to the writer task, which waits for
        // the socket or meets the error and reports it.)
        let mut st = self.lock();
        if n < bytes.len() {
            bytes.advance(n);
            // The unwritten rest goes before anything queued since: its requests are ahead
            // of theirs in `in_flight`.
            bytes.unsplit(std::mem::take(&mut st.buf));
            st.buf = bytes;
        }
        if st.buf.is_empty() && !self.stream.backlog() {
            st.writing = false;
        } else {
            drop(st);
            self.wake_writer.notify_one();
        }
    }
}

/// The writer task: woken by a caller that took the write duty on a busy connection, it
/// writes everything queued until the buffer is empty, then gives the duty back.
pub(super) async fn write_loop(shared: Arc<Shared>) {
    loop {
        shared.wake_writer.notified().await;
        // Let callers woken by the same batch of replies queue their commands first, so
        // they share this write.
        tokio::task::yield_now().await;
        if shared.fail_if_peer_gone() {
            return;
        }
        loop {
            let mut bytes = {
                let mut st = shared.lock();
                if st.closed.is_some() {
                    return;
                }
                if st.buf.is_empty() {
                    if !shared.stream.backlog() {
                        st.writing = false;
                        break;
                    }
                    // TLS records sealed while the socket was full: write_all below sends
                    // them (with nothing new).
                    BytesMut::new()
                } else {
                    let st = &mut *st;
                    st.in_flight.extend(st.queued.drain(..));
                    st.buf.split()
                }
            };
            if let Err(e) = shared.stream.write_all(&mut bytes).await {
                tracing::warn!(addr = %shared.addr, error = %e, "write failed; closing connection");
                shared.fail_all(Error::io(&e, &format!("write to {}", shared.addr), true));
                return;
            }
        }
    }
}
