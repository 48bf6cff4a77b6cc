//! `redis.call` / `redis.pcall`: a command run from inside a script, with the checks Redis'
//! `scriptCall` applies (unknown command, arity, `noscript`, writes from read-only scripts,
//! writes on replicas, keys of other nodes or slots) and the script's effects collected for
//! replication.

use bytes::Bytes;
use mlua::{Lua, MultiValue, Result as LuaResult, Value as Lv};

use super::convert::{error_table, lua_to_arg, reply_to_lua};
use crate::resp::Value;
use crate::server::cluster::route;
use crate::server::db::ExecCtx;
use crate::server::node::NodeState;
use crate::server::registry::Traits;

/// What one script run knows and accumulates (Redis' `scriptRunCtx`).
#[derive(Debug, Default)]
pub(crate) struct RunCtx {
    /// The script speaks RESP3 (`redis.setresp(3)`); RESP2 at start, as in Redis.
    pub(crate) resp3: bool,
    /// Effects go to replicas (`redis.set_repl` may turn it off).
    pub(crate) replicate: bool,
    /// Writes are refused (`EVAL_RO`, `FCALL_RO`, `no-writes`).
    pub(crate) read_only: bool,
    /// Undeclared keys of another slot are allowed (`allow-cross-slot-keys`).
    pub(crate) allow_cross_slot: bool,
    /// The slot the script's keys live in, once known.
    pub(crate) slot: Option<u16>,
    /// The caller sent READONLY (reads may be served on a replica).
    pub(crate) readonly_conn: bool,
    /// The caller sent ASKING.
    pub(crate) asking: bool,
    /// One clock for the whole script (keys do not expire half-way through).
    pub(crate) now_ms: u64,
    /// A write ran: the script can no longer be killed.
    pub(crate) dirty: bool,
    /// The write commands to replicate, in order.
    pub(crate) effects: Vec<Vec<Bytes>>,
    /// Commands run, for INFO commandstats.
    pub(crate) calls: u64,
    /// The node's running-script flags (a write makes the script unkillable).
    pub(crate) flags: std::sync::Arc<super::RunFlags>,
    /// The ACL user of the caller: `redis.call` runs with its permissions.
    pub(crate) user: String,
    /// The caller's CLIENT INFO line (for ACL LOG entries).
    pub(crate) client_info: String,
    /// The caller's client id (tracking: its own writes, its reads).
    pub(crate) client_id: u64,
    /// The caller gave CLIENT CACHING for this script (OPTIN/OPTOUT tracking).
    pub(crate) caching: bool,
    /// A read-only command ran: a tracking caller may cache the script's declared keys.
    pub(crate) read_any: bool,
    /// The caller's database (standalone mode).
    pub(crate) db: usize,
}

/// Serve one `redis.call` (`raise`) or `redis.pcall`: `(failed, reply)`.
///
/// # Errors
/// Only when Lua itself fails (out of memory).
pub(crate) fn exec(
    lua: &Lua,
    raise: bool,
    args: MultiValue,
    st: &mut NodeState,
) -> LuaResult<(bool, Lv)> {
    let fail = |text: &str| -> LuaResult<(bool, Lv)> {
        let t = error_table(lua, text.as_bytes())?;
        t.raw_set("ignore_error_stats_update", true)?;
        Ok((raise, Lv::Table(t)))
    };
    if args.is_empty() {
        return fail("Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args.iter() {
        match lua_to_arg(a) {
            Some(b) => argv.push(b),
            None => return fail("Lua redis lib command arguments must be strings or integers"),
        }
    }
    let Some(mut ctx) = lua.app_data_mut::<RunCtx>() else {
        return fail("redis.call is only available while a script runs");
    };
    let reply = match run(&mut ctx, st, &argv) {
        Ok(reply) => reply,
        Err(text) => {
            drop(ctx);
            return fail(&text);
        }
    };
    let resp3 = ctx.resp3;
    drop(ctx);
    let failed = raise && reply.is_error();
    Ok((failed, reply_to_lua(lua, &reply, resp3)?))
}

/// Check and run `argv` against the node: its reply, or the refusal text.
fn run(ctx: &mut RunCtx, st: &mut NodeState, argv: &[Bytes]) -> Result<Value, String> {
    let Some(spec) = crate::command::lookup_args(argv) else {
        return Err("Unknown Redis command called from script".into());
    };
    let name = argv[0].to_ascii_lowercase();
    if !spec.arity_ok(argv.len()) {
        return Err("Wrong number of args calling Redis command from script".into());
    }
    if spec.has_flag("noscript") {
        return Err("This Redis command is not allowed from script".into());
    }
    if let Some(why) = st
        .acl
        .enforce_script(&ctx.user, &ctx.client_info, spec, argv)
    {
        return Err(format!("The user executing the script {why}"));
    }
    if !crate::server::registry::is_db_command(&name) && !super::server_cmds::supports(&name) {
        return Err("Unknown Redis command called from script".into());
    }
    let write = spec.is_write();
    if ctx.read_only && (write || spec.has_flag("may_replicate")) {
        return Err("Write commands are not allowed from read-only scripts.".into());
    }
    if write && !ctx.dirty && !st.cluster.me().is_primary() {
        return Err("-READONLY You can't write against a read only replica.".into());
    }
    if write {
        ctx.dirty = true;
        ctx.flags
            .dirty
            .store(true, std::sync::atomic::Ordering::Release);
    }
    check_cluster(ctx, st, spec, argv)?;
    st.select_db(ctx.db);
    ctx.calls += 1;
    if spec.is_readonly() {
        ctx.read_any = true;
    }
    let start = std::time::Instant::now();
    let reply = if crate::server::registry::is_db_command(&name) {
        let exec_ctx = ExecCtx {
            now_ms: ctx.now_ms,
            resp3: ctx.resp3,
        };
        let reply = crate::server::registry::execute_db(&mut st.db, argv, &exec_ctx);
        let props = st.db.take_propagation();
        if ctx.replicate {
            ctx.effects.extend(props);
        }
        reply
    } else {
        super::server_cmds::run(st, argv, ctx.resp3)
    };
    crate::server::blocking::mark_written(st, spec, argv);
    if crate::server::monitor::fed_after(spec) {
        st.feed_monitors(crate::server::monitor::Origin::Lua, argv);
    }
    let usec = start.elapsed().as_micros() as u64;
    st.cmdstats.executed(spec.name, usec, reply.is_error());
    Ok(reply)
}

/// Redis' `scriptVerifyClusterState`: keys must be served here and, unless the script allows
/// otherwise, all in one slot.
fn check_cluster(
    ctx: &mut RunCtx,
    st: &mut NodeState,
    spec: &'static crate::command::CommandSpec,
    argv: &[Bytes],
) -> Result<(), String> {
    let traits = Traits::of(spec);
    if !traits.has_keys || st.standalone {
        return Ok(());
    }
    if let Err(e) = route::check_one(st, spec, traits, argv, ctx.readonly_conn, ctx.asking) {
        let text = e.error_text().unwrap_or_default().into_owned();
        let code = text.split(' ').next().unwrap_or("");
        let msg = match code {
            "CROSSSLOT" => format!(
                "Command '{}' in script attempted to access keys that don't hash to the same slot",
                spec.name
            ),
            "TRYAGAIN" => format!(
                "Unable to execute command '{}' in script because undeclared keys were accessed \
                 during rehashing of the slot",
                spec.name
            ),
            "CLUSTERDOWN" if text.contains("read commands") => {
                "Script attempted to execute a write command while the cluster is down and \
                 readonly"
                    .to_string()
            }
            "CLUSTERDOWN" if text.contains("not served") => {
                "Script attempted to access a slot not served".to_string()
            }
            "CLUSTERDOWN" => {
                "Script attempted to execute a command while the cluster is down".into()
            }
            _ => "Script attempted to access a non local key in a cluster node".into(),
        };
        return Err(msg);
    }
    let mut slot = None;
    route::for_each_key(spec, argv, |k| {
        slot.get_or_insert(crate::slot::key_slot(k));
    });
    if let (Some(slot), false) = (slot, ctx.allow_cross_slot) {
        match ctx.slot {
            None => ctx.slot = Some(slot),
            Some(s) if s != slot => {
                return Err(
                    "Script attempted to access keys that do not hash to the same slot".into(),
                )
            }
            Some(_) => {}
        }
    }
    Ok(())
}
