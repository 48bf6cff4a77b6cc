//! One sandboxed Lua 5.1 VM: the libraries Redis loads, the `redis` API, read-only globals,
//! a memory cap, and running a compiled script or function with Redis' error wording.

use std::sync::Arc;

use mlua::{
    ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, Result as LuaResult, StdLib,
    Table, Value as Lv, VmState,
};

use super::convert::{error_table, lua_to_reply};
use super::lua_error::PLAIN;
use super::RunFlags;
use crate::resp::Value;

/// Most memory one VM may allocate (scripts, their data, cached scripts): a runaway script
/// gets "not enough memory" instead of growing the process.
pub(crate) const MEMORY_LIMIT: usize = 256 * 1024 * 1024;

/// How often (in VM instructions) a running script checks for SCRIPT KILL and the busy
/// threshold.
const HOOK_EVERY: u32 = 10_000;

/// A Lua VM set up as Redis sets up its scripting VM.
pub(crate) struct Vm {
    /// The VM.
    pub(crate) lua: Lua,
    /// The read-only environment user code runs in.
    pub(crate) env: Table,
    /// Real globals (`KEYS`/`ARGV` are set here for EVAL).
    globals: Table,
    /// Internal primitives the prelude's wrappers call (`exec` is set per run).
    pub(crate) rt: Table,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("used_memory", &self.lua.used_memory())
            .finish()
    }
}

impl Vm {
    /// A fresh VM.
    ///
    /// # Errors
    /// When Lua cannot be set up (out of memory).
    pub(crate) fn new() -> LuaResult<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let globals = lua.globals();
        super::lib_bit::register(&lua, &globals)?;
        super::lib_cjson::register(&lua, &globals)?;
        super::lib_cmsgpack::register(&lua, &globals)?;
        super::lib_struct::register(&lua, &globals)?;
        let rt = lua.create_table()?;
        rt.raw_set(
            "perr",
            lua.create_function(|lua, s: mlua::String| error_table(lua, &s.as_bytes()))?,
        )?;
        rt.raw_set(
            "sha1hex",
            lua.create_function(|lua, args: MultiValue| {
                if args.len() != 1 {
                    return Err(raise("wrong number of arguments"));
                }
                let text = lua.coerce_string(args[0].clone())?;
                let bytes = text.map(|s| s.as_bytes().to_vec()).unwrap_or_default();
                Ok(super::sha1_hex(&bytes))
            })?,
        )?;
        rt.raw_set(
            "log",
            lua.create_function(|lua, args: MultiValue| {
                if args.len() < 2 {
                    return Err(raise("redis.log() requires two arguments or more."));
                }
                let Some(level) = lua.coerce_number(args[0].clone())? else {
                    return Err(raise("First argument must be a number (log level)."));
                };
                if !(0.0..=3.0).contains(&level) {
                    return Err(raise("Invalid log level."));
                }
                let mut parts = Vec::new();
                for v in args.iter().skip(1) {
                    if let Some(s) = lua.coerce_string(v.clone())? {
                        parts.push(s.to_string_lossy());
                    }
                }
                let text = parts.join(" ");
                match level as u8 {
                    3 => tracing::warn!(target: "redcluster::server::script", "{text}"),
                    2 => tracing::info!(target: "redcluster::server::script", "{text}"),
                    _ => tracing::debug!(target: "redcluster::server::script", "{text}"),
                }
                Ok(())
            })?,
        )?;
        rt.raw_set(
            "known",
            lua.create_function(|_, args: MultiValue| {
                let name = args.front().and_then(super::convert::lua_to_arg);
                Ok(name.is_some_and(|n| crate::command::lookup(&n).is_some()))
            })?,
        )?;
        rt.raw_set(
            "setresp",
            lua.create_function(|lua, args: MultiValue| {
                if args.len() != 1 {
                    return Err(raise("redis.setresp() requires one argument."));
                }
                let v = lua.coerce_number(args[0].clone())?.unwrap_or(0.0);
                if v != 2.0 && v != 3.0 {
                    return Err(raise("RESP version must be 2 or 3."));
                }
                if let Some(mut ctx) = lua.app_data_mut::<super::call::RunCtx>() {
                    ctx.resp3 = v == 3.0;
                }
                Ok(())
            })?,
        )?;
        rt.raw_set(
            "set_repl",
            lua.create_function(|lua, args: MultiValue| {
                if args.len() != 1 {
                    return Err(raise("redis.set_repl() requires one argument."));
                }
                let v = lua.coerce_number(args[0].clone())?.unwrap_or(0.0) as i64;
                if v & !3 != 0 {
                    return Err(raise(
                        "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or \
                         REPL_NONE.",
                    ));
                }
                if let Some(mut ctx) = lua.app_data_mut::<super::call::RunCtx>() {
                    ctx.replicate = v & 2 != 0;
                }
                Ok(())
            })?,
        )?;
        rt.raw_set("errh", lua.create_function(error_handler)?)?;
        let rt_ref = rt.clone();
        rt.raw_set(
            "call",
            lua.create_function(move |_, args: MultiValue| {
                let exec: Function = rt_ref.raw_get("exec")?;
                let mut full = MultiValue::new();
                full.push_back(Lv::Boolean(true));
                full.extend(args);
                let (failed, r): (bool, Lv) = exec.call(full)?;
                if failed {
                    let text = match &r {
                        Lv::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                        _ => String::new(),
                    };
                    return Err(mlua::Error::RuntimeError(format!("{RAISED}{text}")));
                }
                Ok(r)
            })?,
        )?;
        rt.raw_set(
            "errtext",
            lua.create_function(|_, e: Lv| {
                Ok(match &e {
                    Lv::Error(e) => {
                        let text = caught_text(e);
                        let killed = text.as_deref() == Some(KILLED);
                        (text, killed)
                    }
                    _ => (None, false),
                })
            })?,
        )?;
        rt.raw_set(
            "register",
            lua.create_function(|lua, args: MultiValue| super::register::register(lua, args))?,
        )?;
        let prelude: Function = lua
            .load(include_str!("prelude.lua"))
            .set_name("=redis")
            .set_mode(ChunkMode::Text)
            .into_function()?;
        let env: Table = prelude.call((globals.clone(), rt.clone()))?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        Ok(Vm {
            lua,
            env,
            globals,
            rt,
        })
    }

    /// Compile `body` as chunk `name` (`@user_script`, `@user_function`) in the sandbox.
    ///
    /// # Errors
    /// Lua's message for a syntax error (`user_script:1: '=' expected near 'x'`).
    pub(crate) fn compile(&self, name: &str, body: &[u8]) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name(name)
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// Set the `KEYS` and `ARGV` globals (EVAL).
    ///
    /// # Errors
    /// Out of Lua memory.
    pub(crate) fn set_keys_argv(
        &self,
        keys: &[bytes::Bytes],
        args: &[bytes::Bytes],
    ) -> LuaResult<()> {
        self.globals.raw_set("KEYS", self.array(keys)?)?;
        self.globals.raw_set("ARGV", self.array(args)?)
    }

    /// A Lua array of strings.
    ///
    /// # Errors
    /// Out of Lua memory.
    pub(crate) fn array(&self, items: &[bytes::Bytes]) -> LuaResult<Table> {
        let t = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, b) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(b)?)?;
        }
        Ok(t)
    }

    /// Run `f(keys, args)` (a compiled EVAL chunk ignores them) with `exec` serving
    /// `redis.call`, checking `flags` for SCRIPT KILL and the busy threshold on the way.
    /// `name` is what errors cite (the script's SHA-1 or the function's name).
    pub(crate) fn run<E>(
        &self,
        f: &Function,
        call_args: (Lv, Lv),
        name: &str,
        ctx: super::call::RunCtx,
        flags: &Arc<RunFlags>,
        mut exec: E,
    ) -> (Value, super::call::RunCtx)
    where
        E: FnMut(&Lua, bool, MultiValue) -> LuaResult<(bool, Lv)>,
    {
        let lua = &self.lua;
        lua.set_app_data(ctx);
        let hook_flags = flags.clone();
        let hooked = lua
            .set_hook(
                HookTriggers::new().every_nth_instruction(HOOK_EVERY),
                move |_, _| {
                    if hook_flags.tick() {
                        Err(mlua::Error::RuntimeError(format!("{RAISED}{KILLED}")))
                    } else {
                        Ok(VmState::Continue)
                    }
                },
            )
            .is_ok();
        let result = lua.scope(|scope| {
            let call = scope.create_function_mut(|lua, (raise, args): (bool, MultiValue)| {
                exec(lua, raise, args)
            })?;
            self.rt.raw_set("exec", call)?;
            let run: Function = self.rt.raw_get("run")?;
            let (ok, v): (bool, Lv) = run.call((f.clone(), call_args.0, call_args.1))?;
            let resp3 = lua
                .app_data_ref::<super::call::RunCtx>()
                .is_some_and(|c| c.resp3);
            Ok(if ok {
                lua_to_reply(&v, resp3)
            } else {
                error_reply(&v, name, flags)
            })
        });
        if hooked {
            lua.remove_hook();
        }
        let _ = self.rt.raw_set("exec", Lv::Nil);
        let ctx = lua
            .remove_app_data::<super::call::RunCtx>()
            .unwrap_or_default();
        let reply = match result {
            Ok(v) => v,
            Err(e) => Value::error(format!(
                "ERR Error running script {name}, {:.100}",
                e.to_string().replace(['\r', '\n'], " ")
            )),
        };
        // Keep garbage from piling up between scripts (Redis steps its GC after each call).
        let _ = lua.gc_collect();
        (reply, ctx)
    }
}

/// The reply for a script that raised `err` (a table after [`error_handler`]).
fn error_reply(err: &Lv, name: &str, flags: &RunFlags) -> Value {
    let Lv::Table(t) = err else {
        // Only errors that skip the handler get here (out of memory).
        let msg = match err {
            Lv::String(s) => s.to_string_lossy(),
            _ => "execution failure".to_string(),
        };
        return Value::error(format!("ERR Error running script {name}, {msg:.100}"));
    };
    let msg = match t.raw_get::<Lv>("err") {
        Ok(Lv::String(s)) => s.to_string_lossy(),
        _ => "ERR unknown error".to_string(),
    };
    let msg = if flags.killed() {
        KILLED.to_string()
    } else {
        msg
    };
    let source: Option<String> = t.raw_get("source").ok();
    let line: Option<i64> = t.raw_get("line").ok();
    let text = match (source, line) {
        (Some(source), Some(line)) => format!("{msg} script: {name}, on {source}:{line}."),
        _ => msg,
    };
    let text = text.replace(['\r', '\n'], " ");
    Value::Error(bytes::Bytes::from(
        text.strip_prefix('-').unwrap_or(&text).to_string(),
    ))
}

/// Marks the message of an error table raised from Rust (`redis.call`, SCRIPT KILL): Rust
/// callbacks cannot raise a Lua table, so the handler rebuilds it from this text.
const RAISED: &str = "\u{1}redis:";

/// The error a killed script raises (and its reply starts with).
const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// An error table `{err = "ERR msg"}` raised from Rust (Redis' `luaPushError` + `luaError`).
fn raise(msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{RAISED}ERR {msg}"))
}

/// The error-table text carried by an error raised from Rust (`ERR ...` for plain ones), if
/// it is one of ours.
fn raised_text(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::RuntimeError(m) => match m.strip_prefix(RAISED) {
            Some(t) => Some(t.to_string()),
            None => m.strip_prefix(PLAIN).map(|t| format!("ERR {t}")),
        },
        mlua::Error::CallbackError { cause, .. } => raised_text(cause),
        _ => None,
    }
}

/// The message a script's `pcall` sees for an error raised from Rust.
fn caught_text(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::RuntimeError(m) => m
            .strip_prefix(RAISED)
            .or_else(|| m.strip_prefix(PLAIN))
            .map(str::to_string),
        mlua::Error::CallbackError { cause, .. } => caught_text(cause),
        _ => None,
    }
}

/// Redis' `__redis__err__handler`: turn any error into `{err=..., source=..., line=...}`,
/// naming the user code line that raised it (skipping C functions and our own wrappers).
fn error_handler(lua: &Lua, err: Lv) -> LuaResult<Table> {
    let t = match err {
        Lv::Table(t) => t,
        Lv::String(s) => {
            let t = lua.create_table()?;
            let mut text = b"ERR ".to_vec();
            text.extend_from_slice(&s.as_bytes());
            t.raw_set("err", lua.create_string(text)?)?;
            t
        }
        Lv::Error(e) => {
            let t = lua.create_table()?;
            let text = match raised_text(&e) {
                Some(text) => text,
                None => format!("ERR {e}"),
            };
            t.raw_set("err", text)?;
            t
        }
        other => {
            let t = lua.create_table()?;
            let text = lua.coerce_string(other)?.map_or_else(
                || "ERR nil".to_string(),
                |s| format!("ERR {}", s.to_string_lossy()),
            );
            t.raw_set("err", text)?;
            t
        }
    };
    let mut level = 1;
    let mut skipped_c = false;
    while level < 50 {
        let frame = lua.inspect_stack(level, |d| {
            let src = d.source();
            (
                src.what,
                src.source.map(|s| s.into_owned()),
                d.current_line(),
            )
        });
        let Some((what, source, line)) = frame else {
            break;
        };
        level += 1;
        if what == "C" && !skipped_c {
            skipped_c = true;
            continue;
        }
        if source.as_deref() == Some("=redis") || what == "C" {
            continue;
        }
        if let Some(source) = source {
            t.raw_set("source", source)?;
        }
        if let Some(line) = line {
            t.raw_set("line", line as i64)?;
        }
        break;
    }
    Ok(t)
}
