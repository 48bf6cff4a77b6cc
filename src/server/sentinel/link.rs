//! The Sentinel's outgoing connections to what it monitors, over real TCP, so it watches a
//! real `redis-server` as well as a bundled node: per instance a command link (PING, INFO,
//! PUBLISH hello, IS-MASTER-DOWN-BY-ADDR, the REPLICAOF transaction) and, for masters and
//! replicas, a pub/sub link subscribed to `__sentinel__:hello`.
//!
//! Replies come back in order on the command link and are applied under the Sentinel's lock
//! to the instance they were sent for (found by id; a reply of a dropped link is ignored by
//! its generation). A link that fails marks its instance disconnected; the timer reconnects.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::resp::{decode, encode_command, Limits, Value};

use super::info;
use super::ops::{inst_mut, locate, send_ping};
use super::state::{now_ms, Job, ReplyTo, HELLO_CHANNEL};
use super::Core;

/// How long a connect may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Replies from monitored nodes are small except INFO; bound what one may declare.
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// Credentials for one link (never logged).
#[derive(Clone)]
pub(crate) struct LinkAuth {
    pub(crate) user: Option<String>,
    pub(crate) pass: Option<String>,
}

impl LinkAuth {
    fn command(&self) -> Option<Vec<Bytes>> {
        let pass = self.pass.as_ref()?;
        let mut args = vec![Bytes::from_static(b"AUTH")];
        if let Some(u) = &self.user {
            args.push(Bytes::from(u.clone()));
        }
        args.push(Bytes::from(pass.clone()));
        Some(args)
    }
}

/// What a link task needs to know about its instance.
pub(crate) struct Target {
    pub(crate) id: u64,
    pub(crate) generation: u64,
    pub(crate) addr: String,
    pub(crate) auth: LinkAuth,
    pub(crate) client_name: String,
}

/// Start the command link's task for `target`.
pub(crate) fn spawn_cc(core: &Arc<Core>, target: Target) -> AbortHandle {
    let core = core.clone();
    tokio::spawn(async move { run_cc(core, target).await }).abort_handle()
}

/// Start the pub/sub link's task for `target`.
pub(crate) fn spawn_pubsub(core: &Arc<Core>, target: Target) -> AbortHandle {
    let core = core.clone();
    tokio::spawn(async move { run_pubsub(core, target).await }).abort_handle()
}

async fn dial(addr: &str) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(r) => {
            let s = r?;
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )),
    }
}

fn command_bytes(out: &mut BytesMut, args: &[Bytes]) {
    encode_command(out, args.iter().map(|a| &a[..]));
}

fn limits() -> Limits {
    Limits::default()
        .with_max_bulk_len(MAX_REPLY)
        .with_max_elements(1 << 16)
}

async fn run_cc(core: Arc<Core>, t: Target) {
    let Ok(mut stream) = dial(&t.addr).await else {
        lost_cc(&core, &t);
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let mut first = Vec::new();
    if let Some(auth) = t.auth.command() {
        first.push(Job {
            args: auth,
            reply_to: ReplyTo::Discard,
        });
    }
    first.push(Job {
        args: vec![
            "CLIENT".into(),
            "SETNAME".into(),
            Bytes::from(t.client_name.clone()),
        ],
        reply_to: ReplyTo::Discard,
    });
    for job in first {
        let _ = tx.send(job);
    }
    {
        let mut st = core.lock();
        let Some(slot) = locate(&st, t.id) else {
            return;
        };
        let inst = inst_mut(&mut st, slot);
        if inst.link.generation != t.generation {
            return;
        }
        let now = now_ms();
        inst.link.tx = Some(tx);
        inst.link.disconnected = false;
        inst.link.cc_conn_time = now;
        inst.link.pending_commands = 2;
        // sentinelReconnectInstance sends a PING at once.
        send_ping(inst);
    }
    let mut pending: VecDeque<ReplyTo> = VecDeque::new();
    let mut out = BytesMut::new();
    let mut buf = BytesMut::with_capacity(4096);
    let limits = limits();
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(job) = job else { return };
                out.clear();
                command_bytes(&mut out, &job.args);
                pending.push_back(job.reply_to);
                while let Ok(more) = rx.try_recv() {
                    command_bytes(&mut out, &more.args);
                    pending.push_back(more.reply_to);
                }
                if stream.write_all(&out).await.is_err() {
                    break;
                }
            }
            n = stream.read_buf(&mut buf) => {
                if !matches!(n, Ok(n) if n > 0) {
                    break;
                }
                loop {
                    match decode(&mut buf, &limits) {
                        Ok(Some(v)) => {
                            let Some(to) = pending.pop_front() else { break };
                            if !apply(&core, &t, to, v) {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            lost_cc(&core, &t);
                            return;
                        }
                    }
                }
                if buf.len() > MAX_REPLY + 1024 {
                    break;
                }
            }
        }
    }
    lost_cc(&core, &t);
}

/// Apply one reply; false when the instance or this link is gone.
fn apply(core: &Arc<Core>, t: &Target, to: ReplyTo, v: Value) -> bool {
    let mut st = core.lock();
    let Some(slot) = locate(&st, t.id) else {
        return false;
    };
    {
        let inst = inst_mut(&mut st, slot);
        if inst.link.generation != t.generation {
            return false;
        }
        inst.link.pending_commands = (inst.link.pending_commands - 1).max(0);
    }
    match to {
        ReplyTo::Discard => {}
        ReplyTo::Publish => {
            if !v.is_error() {
                inst_mut(&mut st, slot).last_pub_time = now_ms();
            }
        }
        ReplyTo::Ping => info::ping_reply(inst_mut(&mut st, slot), &v),
        ReplyTo::Info => {
            if let Value::BulkString(text) | Value::Verbatim { text, .. } = &v {
                let text = String::from_utf8_lossy(text).into_owned();
                info::info_reply(&mut st, slot, &text);
            }
        }
        ReplyTo::IsMasterDown => info::is_master_down_reply(inst_mut(&mut st, slot), &v),
    }
    true
}

fn lost_cc(core: &Arc<Core>, t: &Target) {
    let mut st = core.lock();
    let Some(slot) = locate(&st, t.id) else {
        return;
    };
    let inst = inst_mut(&mut st, slot);
    if inst.link.generation == t.generation {
        inst.link.tx = None;
        inst.link.disconnected = true;
        inst.link.pending_commands = 0;
        inst.link.generation += 1;
    }
}

async fn run_pubsub(core: Arc<Core>, t: Target) {
    let Ok(mut stream) = dial(&t.addr).await else {
        return;
    };
    let mut out = BytesMut::new();
    if let Some(auth) = t.auth.command() {
        command_bytes(&mut out, &auth);
    }
    command_bytes(
        &mut out,
        &[
            "CLIENT".into(),
            "SETNAME".into(),
            Bytes::from(t.client_name.clone()),
        ],
    );
    command_bytes(
        &mut out,
        &[
            "SUBSCRIBE".into(),
            Bytes::from_static(HELLO_CHANNEL.as_bytes()),
        ],
    );
    if stream.write_all(&out).await.is_err() {
        return;
    }
    {
        let mut st = core.lock();
        let Some(slot) = locate(&st, t.id) else {
            return;
        };
        let inst = inst_mut(&mut st, slot);
        inst.link.pc_conn_time = now_ms();
        inst.link.pc_last_activity = now_ms();
    }
    let limits = limits();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        loop {
            match decode(&mut buf, &limits) {
                Ok(Some(v)) => on_hello_frame(&core, &t, v),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if buf.len() > MAX_REPLY + 1024 {
            return;
        }
    }
}

fn on_hello_frame(core: &Arc<Core>, t: &Target, v: Value) {
    let mut st = core.lock();
    let Some(slot) = locate(&st, t.id) else {
        return;
    };
    inst_mut(&mut st, slot).link.pc_last_activity = now_ms();
    let Value::Array(parts) = v else { return };
    let [Value::BulkString(kind), Value::BulkString(_), Value::BulkString(msg)] = &parts[..] else {
        return;
    };
    if &kind[..] != b"message" {
        return;
    }
    let msg = String::from_utf8_lossy(msg).into_owned();
    if msg.contains(st.myid.as_str()) {
        return; // our own hello
    }
    info::process_hello(&mut st, &msg);
}
