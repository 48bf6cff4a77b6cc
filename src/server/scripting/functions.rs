//! FUNCTION LOAD|LIST|DELETE|FLUSH|DUMP|RESTORE|STATS|KILL|HELP, FCALL and FCALL_RO:
//! libraries (`#!lua name=...`) whose code registers functions with
//! `redis.register_function`, in a VM of their own as in Redis.

use std::collections::BTreeMap;

use bytes::Bytes;
use mlua::{Function, Table, Value as Lv};

use super::call::RunCtx;
use super::register::{bad_name, Func, LoadCtx};
use super::vm::Vm;
use super::{conn_facts, job, prepare_checks, Access, Engine, RunFlags, Scripting, Target};
use crate::resp::Value;
use crate::server::call::Outcome;
use crate::server::node::NodeState;
use crate::server::session::Conn;

/// The loading/running switch for the functions VM's globals (Redis swaps the globals'
/// `__index` between the library API and the full API around FUNCTION LOAD).
const ENV_CHUNK: &str = r#"
local G, pcall = ...
local error, tostring, setmetatable, type = error, tostring, setmetatable, type
local function strict(t)
  return setmetatable({}, {
    __index = function(_, k)
      local v = t[k]
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
    __metatable = false,
  })
end
local r = G.redis
local api = {redis = strict({
  register_function = r.register_function, log = r.log, setresp = r.setresp,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = r.REDIS_VERSION, REDIS_VERSION_NUM = r.REDIS_VERSION_NUM,
})}
local cur = api
local env = setmetatable({}, {
  __index = function(_, k)
    local v
    if cur == api then v = api[k] else v = G[k] end
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})
-- Run a library's code with the library API; nil or the error text.
local function load(f)
  cur = api
  local ok, e = pcall(f)
  cur = G
  if ok then return nil end
  if type(e) == 'table' then return tostring(e.err) end
  return 'ERR ' .. tostring(e)
end
return env, load
"#;

/// A loaded library.
#[derive(Debug)]
struct Library {
    code: Bytes,
    functions: BTreeMap<String, Func>,
}

/// The functions VM and what it has loaded.
#[derive(Debug, Default)]
pub(crate) struct Libraries {
    vm: Option<(Vm, Table, Function)>,
    libs: BTreeMap<String, Library>,
    /// Function name -> library name.
    index: BTreeMap<String, String>,
}

/// Parse `#!lua name=lib` (Redis' `functionExtractLibMetaData`): the name and the code
/// after the header line (its newline kept, so line numbers stay right).
fn metadata(code: &[u8]) -> Result<(String, &[u8]), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]).into_owned();
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().ok_or("Invalid library metadata")?[2..].to_string();
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {part}"));
    }
    let name = name.ok_or("Library name was not given")?;
    if bad_name(&name) {
        return Err(
            "Library names can only contain letters, numbers, or underscores(_) and \
                    must be at least one character long"
                .into(),
        );
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok((name, &code[end..]))
}

impl Libraries {
    fn vm(&mut self) -> Result<&(Vm, Table, Function), String> {
        if self.vm.is_none() {
            let vm = Vm::new().map_err(|e| format!("cannot start Lua: {e}"))?;
            let rawpcall = vm
                .rt
                .raw_get::<Function>("rawpcall")
                .map_err(|e| e.to_string())?;
            let chunk = vm
                .lua
                .load(ENV_CHUNK)
                .set_name("=redis")
                .into_function()
                .map_err(|e| e.to_string())?;
            let (env, load): (Table, Function) = chunk
                .call((vm.lua.globals(), rawpcall))
                .map_err(|e| e.to_string())?;
            self.vm = Some((vm, env, load));
        }
        Ok(self.vm.as_ref().expect("just set"))
    }

    /// FUNCTION LOAD: the library's name.
    fn load(&mut self, code: &Bytes, replace: bool) -> Result<String, String> {
        let (name, body) = metadata(code)?;
        if self.libs.contains_key(&name) && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let (vm, env, load) = self.vm()?;
        let chunk = vm
            .lua
            .load(body)
            .set_name("@user_function")
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => {
                    format!("Error compiling function: {message}")
                }
                other => format!("Error compiling function: {other}"),
            })?;
        vm.lua.set_app_data(LoadCtx::default());
        let failed: Option<String> = load.call(chunk).unwrap_or_else(|e| Some(e.to_string()));
        let registered = vm.lua.remove_app_data::<LoadCtx>().unwrap_or_default();
        if let Some(e) = failed {
            return Err(format!("Error registering functions: {e}"));
        }
        if registered.functions.is_empty() {
            return Err("No functions registered".into());
        }
        for (f, _) in &registered.functions {
            if self.index.get(f).is_some_and(|lib| *lib != name) {
                return Err(format!("Function {f} already exists"));
            }
        }
        self.delete(&name);
        for (f, _) in &registered.functions {
            self.index.insert(f.clone(), name.clone());
        }
        self.libs.insert(
            name.clone(),
            Library {
                code: code.clone(),
                functions: registered.functions.into_iter().collect(),
            },
        );
        Ok(name)
    }

    fn delete(&mut self, name: &str) -> bool {
        let Some(lib) = self.libs.remove(name) else {
            return false;
        };
        for f in lib.functions.keys() {
            self.index.remove(f);
        }
        true
    }

    fn flush(&mut self) {
        self.libs.clear();
        self.index.clear();
        self.vm = None;
    }

    /// Every library's code (FUNCTION DUMP, full resyncs).
    pub(crate) fn codes(&self) -> Vec<Bytes> {
        self.libs.values().map(|l| l.code.clone()).collect()
    }

    fn function(&self, name: &str) -> Option<&Func> {
        let lib = self.index.get(name)?;
        self.libs.get(lib)?.functions.get(name)
    }
}

/// Apply a function command from the primary's stream.
pub(crate) fn apply(engine: &mut Engine, args: &[Bytes]) -> Value {
    let Some(sub) = args.get(1) else {
        return Value::error("ERR wrong number of arguments");
    };
    let name = match sub.to_ascii_lowercase().as_slice() {
        b"load" => "function|load",
        b"delete" => "function|delete",
        b"flush" => "function|flush",
        b"restore" => "function|restore",
        _ => return Value::error("ERR not a replicated function command"),
    };
    subcommand(name, args, &mut engine.functions)
}

/// FUNCTION subcommands; writes are fed to replicas.
pub(crate) fn command(
    name: &str,
    args: &[Bytes],
    st: &mut NodeState,
    scripting: &Scripting,
) -> Value {
    if name == "function|kill" {
        return scripting.kill(false);
    }
    let mut engine = scripting.engine();
    let reply = subcommand(name, args, &mut engine.functions);
    scripting.libraries_changed(&engine);
    drop(engine);
    let write = matches!(
        name,
        "function|load" | "function|delete" | "function|flush" | "function|restore"
    );
    if write && !reply.is_error() {
        st.repl.feed(vec![args.to_vec()]);
    }
    reply
}

fn subcommand(name: &str, args: &[Bytes], libs: &mut Libraries) -> Value {
    match name {
        "function|load" => {
            let mut replace = false;
            let mut i = 2;
            while i + 1 < args.len() {
                if args[i].eq_ignore_ascii_case(b"replace") {
                    replace = true;
                    i += 1;
                } else {
                    return Value::error(format!(
                        "ERR Unknown option given: {}",
                        String::from_utf8_lossy(&args[i])
                    ));
                }
            }
            let Some(code) = args.get(i) else {
                return Value::error("ERR Function code is missing");
            };
            match libs.load(code, replace) {
                Ok(name) => Value::bulk(name),
                Err(e) => Value::error(format!("ERR {e}")),
            }
        }
        "function|delete" => {
            if libs.delete(&String::from_utf8_lossy(&args[2])) {
                Value::ok()
            } else {
                Value::error("ERR Library not found")
            }
        }
        "function|flush" => {
            if let Some(mode) = args.get(2) {
                let m = mode.to_ascii_lowercase();
                if args.len() > 3 || (m != b"sync" && m != b"async") {
                    return Value::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
                }
            }
            libs.flush();
            Value::ok()
        }
        "function|list" => list(args, libs),
        "function|stats" => {
            let nfuncs = libs.index.len() as i64;
            Value::Map(vec![
                (Value::bulk("running_script"), Value::Null),
                (
                    Value::bulk("engines"),
                    Value::Map(vec![(
                        Value::bulk("LUA"),
                        Value::Map(vec![
                            (Value::bulk("libraries_count"), Value::Integer(libs.libs.len() as i64)),
                            (Value::bulk("functions_count"), Value::Integer(nfuncs)),
                        ]),
                    )]),
                ),
            ])
        }
        "function|dump" => Value::BulkString(super::dump::dump(
            libs.libs.values().map(|l| l.code.clone()),
        )),
        "function|restore" => restore(args, libs),
        _ => super::help(
            "FUNCTION",
            &[
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries:",
                "    * Library name",
                "    * The engine used to run the Library",
                "    * Library description",
                "    * Functions list",
                "    * Library code (if WITHCODE is given)",
                "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
                "STATS",
                "    Return information about the current function running:",
                "    * Function name",
                "    * Command used to run the function",
                "    * Duration in MS that the function is running",
                "    If no function is running, return nil",
                "    In addition, returns a list of available engines.",
                "KILL",
                "    Kill the current running function.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the libraries.",
                "    * SYNC: Synchronously flush the libraries.",
                "DUMP",
                "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
                "    control how to handle existing libraries (default APPEND):",
                "    * FLUSH: delete all existing libraries.",
                "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
                "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
                "      libraries with the new libraries (notice that even on this option there is a chance of failure",
                "      in case of functions name collision with another library).",
            ],
        ),
    }
}

fn list(args: &[Bytes], libs: &Libraries) -> Value {
    let mut pattern: Option<&Bytes> = None;
    let mut with_code = false;
    let mut i = 2;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        if a == b"withcode" && !with_code {
            with_code = true;
            i += 1;
        } else if a == b"libraryname" && pattern.is_none() {
            let Some(p) = args.get(i + 1) else {
                return Value::error("ERR library name argument was not given");
            };
            pattern = Some(p);
            i += 2;
        } else {
            return Value::error(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    let mut out = Vec::new();
    for (name, lib) in &libs.libs {
        if let Some(p) = pattern {
            if !crate::server::db::glob_match(p, name.as_bytes()) {
                continue;
            }
        }
        let functions = lib
            .functions
            .iter()
            .map(|(fname, f)| {
                Value::Map(vec![
                    (Value::bulk("name"), Value::bulk(fname)),
                    (
                        Value::bulk("description"),
                        f.description.as_ref().map_or(Value::Null, Value::bulk),
                    ),
                    (
                        Value::bulk("flags"),
                        Value::Set(f.flags.names().into_iter().map(Value::bulk).collect()),
                    ),
                ])
            })
            .collect();
        let mut fields = vec![
            (Value::bulk("library_name"), Value::bulk(name)),
            (Value::bulk("engine"), Value::bulk("LUA")),
            (Value::bulk("functions"), Value::Array(functions)),
        ];
        if with_code {
            fields.push((
                Value::bulk("library_code"),
                Value::BulkString(lib.code.clone()),
            ));
        }
        out.push(Value::Map(fields));
    }
    Value::Array(out)
}

fn restore(args: &[Bytes], libs: &mut Libraries) -> Value {
    let policy =
        match args.get(3).map(|p| p.to_ascii_lowercase()) {
            None => "append",
            Some(p) if p == b"append" => "append",
            Some(p) if p == b"replace" => "replace",
            Some(p) if p == b"flush" => "flush",
            Some(_) => return Value::error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        };
    let Some(codes) = super::dump::parse(&args[2]) else {
        return Value::error("ERR DUMP payload version or checksum are wrong");
    };
    // Load into a scratch set first: a failure leaves the current libraries untouched.
    let mut fresh = Libraries::default();
    for code in &codes {
        if let Err(e) = fresh.load(code, false) {
            return Value::error(format!("ERR {e}"));
        }
    }
    if policy == "append" {
        for name in fresh.libs.keys() {
            if libs.libs.contains_key(name) {
                return Value::error(format!("ERR Library {name} already exists"));
            }
        }
    }
    if policy == "flush" {
        libs.flush();
    }
    for code in codes {
        if let Err(e) = libs.load(&code, policy != "append") {
            return Value::error(format!("ERR {e}"));
        }
    }
    Value::ok()
}

/// FCALL / FCALL_RO: check, then hand the connection a job.
pub(crate) fn fcall(
    conn: &Conn,
    ro: bool,
    args: &[Bytes],
    st: &mut NodeState,
    scripting: &Scripting,
) -> Outcome {
    let numkeys = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse::<i64>().ok());
    let Some(numkeys) = numkeys else {
        return Outcome::Reply(Value::error("ERR Bad number of keys provided"));
    };
    if numkeys > (args.len() - 3) as i64 {
        return Outcome::Reply(Value::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Outcome::Reply(Value::error("ERR Number of keys can't be negative"));
    }
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    let flags = match scripting.engine().functions.function(&name) {
        Some(f) => f.flags,
        None => return Outcome::Reply(Value::error("ERR Function not found")),
    };
    if let Err(e) = prepare_checks(flags, ro, st) {
        return Outcome::Reply(e);
    }
    let n = numkeys as usize;
    let keys = args[3..3 + n].to_vec();
    let argv = args[3 + n..].to_vec();
    let ctx = conn_facts(conn, &keys, ro || flags.no_writes, flags.allow_cross_slot);
    job(scripting, st, Target::Function(name), keys, argv, ctx)
}

/// Run function `name` (a job's body).
pub(crate) fn run(
    engine: &mut Engine,
    name: &str,
    keys: &[Bytes],
    args: &[Bytes],
    ctx: RunCtx,
    flags: &std::sync::Arc<RunFlags>,
    access: Access<'_>,
) -> (Value, RunCtx) {
    let libs = &engine.functions;
    let (Some(func), Some((vm, _, _))) = (libs.function(name), libs.vm.as_ref()) else {
        return (Value::error("ERR Function not found"), ctx);
    };
    let (k, a) = match (vm.array(keys), vm.array(args)) {
        (Ok(k), Ok(a)) => (k, a),
        _ => return (Value::error("ERR Error running script: out of memory"), ctx),
    };
    let f = func.f.clone();
    vm.run(
        &f,
        (Lv::Table(k), Lv::Table(a)),
        name,
        ctx,
        flags,
        |lua, raise, a| {
            let mut out = None;
            access(&mut |st| out = Some(super::call::exec(lua, raise, a.clone(), st)));
            out.unwrap_or(Ok((false, Lv::Nil)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::metadata;

    #[test]
    fn library_metadata() {
        let (name, rest) = metadata(b"#!lua name=mylib\nreturn 1").unwrap();
        assert_eq!(name, "mylib");
        assert_eq!(rest, b"\nreturn 1");
        assert_eq!(
            metadata(b"return 1").unwrap_err(),
            "Missing library metadata"
        );
        assert_eq!(
            metadata(b"#!lua name=b x=1\n").unwrap_err(),
            "Invalid metadata value given: x=1"
        );
        assert_eq!(
            metadata(b"#!js name=b\n").unwrap_err(),
            "Engine 'js' not found"
        );
    }
}
