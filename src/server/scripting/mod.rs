//! Lua scripting and functions on an embedded Lua 5.1, as Redis 7 has them: `EVAL`,
//! `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `SCRIPT LOAD|EXISTS|FLUSH|KILL`, `FCALL`, `FCALL_RO`,
//! `FUNCTION LOAD|LIST|DELETE|FLUSH|DUMP|RESTORE|STATS|KILL`.
//!
//! How a script runs without blocking the node:
//! - Dispatch (under the node lock) checks the request, marks the node's script as running
//!   ([`RunFlags`]) and hands the connection a [`Job`]. The connection runs it on a blocking
//!   thread; the script takes the node lock only for each `redis.call`.
//! - Atomicity: every client connection checks [`Scripting::running`] right after taking the
//!   node lock and, while a script runs, waits without the lock instead of executing. Once the
//!   script passes `busy-reply-threshold` those connections answer `BUSY`, and `SCRIPT KILL` /
//!   `FUNCTION KILL` set the kill flag the Lua count hook checks.
//! - Replication: a script's writes go to replicas as their effects (wrapped in MULTI/EXEC
//!   when there are several), as Redis 7 does; `FUNCTION LOAD`/`DELETE`/`FLUSH`/`RESTORE`
//!   go as they are.
//! - Sandbox ([`vm`]): no `os`, `io`, `package`, `require`, `loadfile`, `dofile`, `debug`;
//!   bytecode refused; globals read-only; each VM capped at [`vm::MEMORY_LIMIT`].
//!
//! Files: `vm` (the Lua VM and error wording), `prelude.lua` (the `redis` table and the
//! sandbox), `call` (`redis.call`), `convert` (reply <-> Lua), `eval` (EVAL and SCRIPT),
//! `functions` (FUNCTION and FCALL), `register` (`redis.register_function`), `dump` (FUNCTION DUMP payloads), `lib_bit`, `lib_cjson`, `lib_cmsgpack`, `lib_struct` (the libraries Redis bundles).

mod call;
mod convert;
mod dump;
mod eval;
mod functions;
mod lauxlib;
mod lib_bit;
mod lib_cjson;
mod lib_cmsgpack;
mod lib_struct;
mod lua_error;
mod register;
mod server_cmds;
mod vm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::resp::Value;

use super::call::{Call, Outcome};
use super::node::{NodeShared, NodeState};
use super::session::Conn;

pub(crate) use crate::sha1::sha1_hex;

/// The state of the script running on a node, shared between the script's thread and the
/// node's connections (atomics: read without the node lock).
#[derive(Debug, Default)]
pub(crate) struct RunFlags {
    running: AtomicBool,
    busy: AtomicBool,
    kill: AtomicBool,
    eval: AtomicBool,
    dirty: AtomicBool,
    /// When the script started, and the busy threshold (ms) it runs under.
    started: Mutex<Option<(Instant, u64)>>,
    /// Woken when a script ends or turns busy.
    changed: Notify,
}

impl RunFlags {
    /// Called by the Lua count hook: true when the script must stop (SCRIPT KILL).
    fn tick(&self) -> bool {
        if self.kill.load(Ordering::Acquire) {
            return true;
        }
        if !self.busy.load(Ordering::Relaxed) {
            let started = *self.started.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, threshold)) = started {
                if threshold > 0 && at.elapsed().as_millis() as u64 >= threshold {
                    tracing::warn!(
                        "slow script detected: still in execution after {threshold} ms; \
                         SCRIPT KILL or FUNCTION KILL can stop it"
                    );
                    self.busy.store(true, Ordering::Release);
                    self.changed.notify_waiters();
                }
            }
        }
        false
    }

    /// The script was killed.
    fn killed(&self) -> bool {
        self.kill.load(Ordering::Acquire)
    }
}

/// Marks the node's script as running from dispatch until the job is dropped.
#[derive(Debug)]
struct Running(Arc<RunFlags>);

impl Drop for Running {
    fn drop(&mut self) {
        let f = &self.0;
        *f.started.lock().unwrap_or_else(|e| e.into_inner()) = None;
        f.busy.store(false, Ordering::Release);
        f.kill.store(false, Ordering::Release);
        f.dirty.store(false, Ordering::Release);
        f.running.store(false, Ordering::Release);
        f.changed.notify_waiters();
    }
}

/// Compiled scripts and loaded libraries of one node, with their VMs (made on first use).
#[derive(Debug, Default)]
pub(crate) struct Engine {
    /// The EVAL VM.
    eval_vm: Option<vm::Vm>,
    /// EVAL scripts by SHA-1.
    scripts: HashMap<String, eval::Script>,
    /// Function libraries (own VM, as in Redis).
    pub(crate) functions: functions::Libraries,
}

/// A node's scripting: the engine and the running script's flags.
#[derive(Debug, Default)]
pub(crate) struct Scripting {
    engine: Mutex<Engine>,
    flags: Arc<RunFlags>,
    /// Function commands received from the primary, applied before the engine's next use
    /// (the replication stream is applied under the node lock, which a running script needs).
    replicated: Mutex<Vec<Vec<Bytes>>>,
    /// Scripts run (INFO).
    pub(crate) runs: AtomicU64,
    /// The loaded libraries' code, kept current beside the engine: a full resync reads it
    /// under the node lock without waiting for a running script (which holds the engine).
    library_codes: Mutex<Vec<Bytes>>,
}

impl Scripting {
    /// True while a script or function runs on this node (checked with the node lock held).
    pub(crate) fn running(&self) -> bool {
        self.flags.running.load(Ordering::Acquire)
    }

    /// True once the running script passed the busy threshold.
    pub(crate) fn busy(&self) -> bool {
        self.flags.busy.load(Ordering::Acquire)
    }

    /// Wait until no script runs or the running one is busy.
    pub(crate) async fn wait_idle_or_busy(&self) {
        loop {
            let notified = self.flags.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.running() || self.busy() {
                return;
            }
            notified.await;
        }
    }

    /// The reply to `args` sent while a busy script runs: `SCRIPT KILL`/`FUNCTION KILL`
    /// act, everything else is refused with `BUSY`.
    pub(crate) fn busy_reply(&self, args: &[Bytes]) -> Value {
        let sub = |name: &[u8]| {
            args.len() == 2
                && args[0].eq_ignore_ascii_case(name)
                && args[1].eq_ignore_ascii_case(b"kill")
        };
        if sub(b"script") {
            return self.kill(true);
        }
        if sub(b"function") {
            return self.kill(false);
        }
        if self.flags.eval.load(Ordering::Acquire) {
            Value::error(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN \
                 NOSAVE.",
            )
        } else {
            Value::error(
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or \
                 SHUTDOWN NOSAVE.",
            )
        }
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL.
    fn kill(&self, eval: bool) -> Value {
        let f = &self.flags;
        if !f.running.load(Ordering::Acquire) {
            return Value::error("NOTBUSY No scripts in execution right now.");
        }
        if f.dirty.load(Ordering::Acquire) {
            return Value::error(
                "UNKILLABLE Sorry the script already executed write commands against the \
                 dataset. You can either wait the script termination or kill the server in a \
                 hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        let running_eval = f.eval.load(Ordering::Acquire);
        if eval && !running_eval {
            return Value::error(
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or \
                 SHUTDOWN NOSAVE.",
            );
        }
        if !eval && running_eval {
            return Value::error(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN \
                 NOSAVE.",
            );
        }
        f.kill.store(true, Ordering::Release);
        Value::ok()
    }

    /// The node is stopping: the running script ends at its next hook check (its thread
    /// must not outlive the node).
    pub(crate) fn abort(&self) {
        if self.running() {
            self.flags.kill.store(true, Ordering::Release);
        }
    }

    /// The engine, with function commands from the primary applied first.
    fn engine(&self) -> MutexGuard<'_, Engine> {
        let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_replicated(&mut engine);
        engine
    }

    /// Apply the function commands queued from the primary's stream.
    fn apply_replicated(&self, engine: &mut Engine) {
        let queued =
            std::mem::take(&mut *self.replicated.lock().unwrap_or_else(|e| e.into_inner()));
        if queued.is_empty() {
            return;
        }
        for args in queued {
            let _ = functions::apply(engine, &args);
        }
        self.libraries_changed(engine);
    }

    /// Record the libraries' code after FUNCTION LOAD/DELETE/FLUSH/RESTORE.
    fn libraries_changed(&self, engine: &Engine) {
        *self.library_codes.lock().unwrap_or_else(|e| e.into_inner()) = engine.functions.codes();
    }

    /// A FUNCTION command read from the primary's stream: applied on the engine's next use.
    pub(crate) fn queue_replicated(&self, args: Vec<Bytes>) {
        self.replicated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(args);
    }

    /// Mark a script as starting (under the node lock, so connections see it).
    fn start(&self, eval: bool, threshold_ms: u64) -> Running {
        let f = &self.flags;
        f.eval.store(eval, Ordering::Release);
        f.kill.store(false, Ordering::Release);
        f.busy.store(false, Ordering::Release);
        f.dirty.store(false, Ordering::Release);
        *f.started.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), threshold_ms));
        f.running.store(true, Ordering::Release);
        self.runs.fetch_add(1, Ordering::Relaxed);
        Running(f.clone())
    }
}

/// EVAL/EVALSHA(_RO), FCALL(_RO), SCRIPT and FUNCTION (arity already checked by the
/// registry).
pub(crate) fn command(call: &mut Call<'_, '_>) -> Outcome {
    let (conn, spec, args, locked, shared) = (
        &mut *call.conn,
        call.spec,
        call.args,
        &mut *call.locked,
        call.shared,
    );
    let top = spec.name.split('|').next().unwrap_or("");
    match top {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
            eval::eval(conn, spec.name, args, locked.get(), &shared.scripting)
        }
        "fcall" | "fcall_ro" => functions::fcall(
            conn,
            spec.name == "fcall_ro",
            args,
            locked.get(),
            &shared.scripting,
        ),
        "script" => Outcome::Reply(eval::script(spec.name, args, &shared.scripting)),
        _ => Outcome::Reply(functions::command(
            spec.name,
            args,
            locked.get(),
            &shared.scripting,
        )),
    }
}

/// `busy-reply-threshold` (alias `lua-time-limit`) in ms; 5000 by default, 0 never busy.
fn busy_threshold(st: &NodeState) -> u64 {
    st.config_overrides
        .get("busy-reply-threshold")
        .or_else(|| st.config_overrides.get("lua-time-limit"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

/// What a job runs.
#[derive(Debug)]
enum Target {
    /// An EVAL script by SHA-1.
    Script(String),
    /// A function by name.
    Function(String),
}

/// A script or function checked by dispatch, to run on the connection's behalf.
#[derive(Debug)]
pub(crate) struct Job {
    target: Target,
    keys: Vec<Bytes>,
    args: Vec<Bytes>,
    ctx: call::RunCtx,
    /// The caller speaks RESP3 (how a `false` goes out to RESP2 scripts' callers).
    running: Running,
}

impl Job {
    /// Run on a blocking thread, taking the node lock for each `redis.call`.
    pub(crate) async fn run(self, shared: Arc<NodeShared>) -> Value {
        let task = tokio::task::spawn_blocking(move || {
            let node = shared.clone();
            let caller = self.ctx.client_id;
            self.execute(&shared.scripting, move |f| {
                let mut st = node.lock();
                // The caller's own keys are invalidated after each call, its NOLOOP honoured;
                // the writer is the script, as Redis' Lua client.
                st.tracking.begin(caller, false);
                f(&mut st);
                st.invalidate_changed(&node.clients, None);
                st.tracking.end(&node.clients);
                st.settle_tracking(&node.clients);
                st.repl.flush();
            })
        });
        task.await
            .unwrap_or_else(|_| Value::error("ERR Error running script (the runner failed)"))
    }

    /// Run now with the node lock already held (inside MULTI/EXEC).
    pub(crate) fn run_inline(self, st: &mut NodeState, scripting: &Scripting) -> Value {
        self.execute(scripting, |f| f(st))
    }

    fn execute<A>(self, scripting: &Scripting, mut access: A) -> Value
    where
        A: FnMut(&mut dyn FnMut(&mut NodeState)),
    {
        let Job {
            target,
            keys,
            args,
            ctx,
            running,
        } = self;
        let mut ctx = ctx;
        ctx.flags = running.0.clone();
        let mut engine = scripting.engine();
        let (reply, ctx) = match &target {
            Target::Script(sha) => {
                eval::run(&mut engine, sha, &keys, &args, ctx, &running.0, &mut access)
            }
            Target::Function(name) => functions::run(
                &mut engine,
                name,
                &keys,
                &args,
                ctx,
                &running.0,
                &mut access,
            ),
        };
        drop(engine);
        let mut effects = ctx.effects;
        let (caller, caching, read_any) = (ctx.client_id, ctx.caching, ctx.read_any);
        let db = ctx.db;
        access(&mut |st: &mut NodeState| {
            if read_any {
                // Redis: a script that read remembers its declared keys for its caller.
                st.tracking.remember(caller, caching, &keys);
            }
            if !effects.is_empty() {
                st.select_db(db);
                let cmds = std::mem::take(&mut effects);
                if cmds.len() > 1 {
                    let mut wrapped = Vec::with_capacity(cmds.len() + 2);
                    wrapped.push(vec![Bytes::from_static(b"MULTI")]);
                    wrapped.extend(cmds);
                    wrapped.push(vec![Bytes::from_static(b"EXEC")]);
                    st.repl.feed(wrapped);
                } else {
                    st.repl.feed(cmds);
                }
            }
            super::blocking::serve_ready(st);
        });
        drop(running);
        reply
    }
}

/// How a running script reaches the node state: call the closure with it (locking it, or
/// with the lock already held inside MULTI/EXEC).
pub(crate) type Access<'a> = &'a mut dyn FnMut(&mut dyn FnMut(&mut NodeState));

/// Run `f(call_args)` on `vm`, serving `redis.call` through `access`.
fn run_on(
    vm: &vm::Vm,
    f: &mlua::Function,
    call_args: (mlua::Value, mlua::Value),
    name: &str,
    ctx: call::RunCtx,
    flags: &Arc<RunFlags>,
    access: Access<'_>,
) -> (Value, call::RunCtx) {
    vm.run(f, call_args, name, ctx, flags, |lua, raise, args| {
        let mut args = Some(args);
        let mut out = None;
        access(&mut |st| {
            if let Some(a) = args.take() {
                out = Some(call::exec(lua, raise, a, st));
            }
        });
        out.unwrap_or(Ok((false, mlua::Value::Nil)))
    })
}

/// Parse `numkeys` and split keys from arguments (EVAL and FCALL).
fn split_keys(args: &[Bytes], numkeys_at: usize) -> Result<(Vec<Bytes>, Vec<Bytes>), Value> {
    let n = std::str::from_utf8(&args[numkeys_at])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Value::error("ERR value is not an integer or out of range"))?;
    let rest = &args[numkeys_at + 1..];
    if n > rest.len() as i64 {
        return Err(Value::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if n < 0 {
        return Err(Value::error("ERR Number of keys can't be negative"));
    }
    let n = n as usize;
    Ok((rest[..n].to_vec(), rest[n..].to_vec()))
}

/// The run context for a script called by `conn`: declared keys fix the slot.
fn conn_facts(
    conn: &Conn,
    keys: &[Bytes],
    read_only: bool,
    allow_cross_slot: bool,
) -> call::RunCtx {
    call::RunCtx {
        resp3: false,
        replicate: true,
        read_only,
        allow_cross_slot,
        slot: keys.first().map(|k| crate::slot::key_slot(k)),
        readonly_conn: conn.readonly,
        asking: conn.asking,
        now_ms: super::node::now_ms(),
        dirty: false,
        effects: Vec::new(),
        calls: 0,
        flags: Default::default(),
        user: conn.user.clone(),
        client_info: conn.info_line(),
        client_id: conn.id,
        caching: conn.caching,
        read_any: false,
        db: conn.db,
    }
}

/// Script flags (`#!lua flags=...` and `redis.register_function{flags=...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScriptFlags {
    /// No shebang: Redis 6 behaviour (writes checked per call, cross-slot allowed).
    pub(crate) compat: bool,
    pub(crate) no_writes: bool,
    pub(crate) allow_oom: bool,
    pub(crate) allow_stale: bool,
    pub(crate) no_cluster: bool,
    pub(crate) allow_cross_slot: bool,
}

impl ScriptFlags {
    /// Set the flag named `name`; false for an unknown name.
    fn set(&mut self, name: &[u8]) -> bool {
        match name {
            b"no-writes" => self.no_writes = true,
            b"allow-oom" => self.allow_oom = true,
            b"allow-stale" => self.allow_stale = true,
            b"no-cluster" => self.no_cluster = true,
            b"allow-cross-slot-keys" => self.allow_cross_slot = true,
            _ => return false,
        }
        true
    }

    /// The names, in Redis' order (FUNCTION LIST).
    fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot, "allow-cross-slot-keys"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// Redis' `scriptPrepareForRun` checks for scripts that declared flags.
fn prepare_checks(flags: ScriptFlags, ro_command: bool, st: &NodeState) -> Result<(), Value> {
    if flags.compat {
        return Ok(());
    }
    if flags.no_cluster && !st.standalone {
        return Err(Value::error(
            "ERR Can not run script on cluster, 'no-cluster' flag is set.",
        ));
    }
    if !flags.no_writes {
        if !st.cluster.me().is_primary() {
            return Err(Value::error(
                "READONLY Can not run script with write flag on readonly replica",
            ));
        }
        if ro_command {
            return Err(Value::error(
                "ERR Can not execute a script with write flag using *_ro command.",
            ));
        }
    }
    Ok(())
}

/// A HELP reply: `NAME <subcommand> ...` then the lines, as Redis' `addReplyHelp`.
fn help(name: &str, lines: &[&str]) -> Value {
    let mut out = vec![Value::SimpleString(Bytes::from(format!(
        "{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    out.extend(
        lines
            .iter()
            .map(|l| Value::SimpleString(Bytes::from(l.to_string()))),
    );
    out.push(Value::simple("HELP"));
    out.push(Value::simple("    Print this help."));
    Value::Array(out)
}

/// Start a job for `target` (the node lock is held: the running mark is seen at once).
fn job(
    scripting: &Scripting,
    st: &NodeState,
    target: Target,
    keys: Vec<Bytes>,
    args: Vec<Bytes>,
    ctx: call::RunCtx,
) -> Outcome {
    let eval = matches!(target, Target::Script(_));
    let running = scripting.start(eval, busy_threshold(st));
    Outcome::Script(Box::new(Job {
        target,
        keys,
        args,
        ctx,
        running,
    }))
}
