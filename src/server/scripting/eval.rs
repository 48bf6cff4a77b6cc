//! EVAL, EVALSHA, their `_RO` variants, and SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP.

use bytes::Bytes;
use mlua::{Function, Value as Lv};

use super::call::RunCtx;
use super::conn_facts;
use super::vm::Vm;
use super::{
    job, prepare_checks, split_keys, Access, Engine, RunFlags, ScriptFlags, Scripting, Target,
};
use crate::resp::Value;
use crate::server::call::Outcome;
use crate::server::node::NodeState;
use crate::server::session::Conn;

/// A compiled EVAL script.
#[derive(Debug)]
pub(crate) struct Script {
    /// The compiled chunk.
    f: Function,
    /// Its shebang flags.
    flags: ScriptFlags,
}

/// Parse the `#!lua flags=...` line: the flags and how many bytes to skip (the line without
/// its newline, so line numbers stay right).
fn shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    let mut flags = ScriptFlags {
        compat: true,
        ..Default::default()
    };
    if !body.starts_with(b"#!") {
        return Ok((flags, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]).into_owned();
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else {
        return Err("Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    flags.compat = false;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for name in list.split(',') {
            if !flags.set(name.as_bytes()) {
                return Err(format!("Unexpected flag in script shebang: {name}"));
            }
        }
    }
    Ok((flags, end))
}

impl Engine {
    fn eval_vm(&mut self) -> Result<&Vm, String> {
        if self.eval_vm.is_none() {
            self.eval_vm = Some(Vm::new().map_err(|e| format!("ERR cannot start Lua: {e}"))?);
        }
        Ok(self.eval_vm.as_ref().expect("just set"))
    }

    /// Compile and cache `body`; its SHA-1.
    fn load_script(&mut self, body: &[u8]) -> Result<String, Value> {
        let sha = super::sha1_hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, skip) = shebang(body).map_err(|e| Value::error(format!("ERR {e}")))?;
        let vm = self.eval_vm().map_err(Value::error)?;
        let f = vm.compile("@user_script", &body[skip..]).map_err(|msg| {
            Value::error(format!("ERR Error compiling script (new function): {msg}"))
        })?;
        self.scripts.insert(sha.clone(), Script { f, flags });
        Ok(sha)
    }
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO: check, then hand the connection a job.
pub(crate) fn eval(
    conn: &Conn,
    name: &str,
    args: &[Bytes],
    st: &mut NodeState,
    scripting: &Scripting,
) -> Outcome {
    let by_sha = name.starts_with("evalsha");
    let ro = name.ends_with("_ro");
    let (keys, argv) = match split_keys(args, 2) {
        Ok(split) => split,
        Err(e) => return Outcome::Reply(e),
    };
    let sha = {
        let mut engine = scripting.engine();
        let sha = if by_sha {
            let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
            if !engine.scripts.contains_key(&sha) {
                return Outcome::Reply(Value::error(
                    "NOSCRIPT No matching script. Please use EVAL.",
                ));
            }
            sha
        } else {
            match engine.load_script(&args[1]) {
                Ok(sha) => sha,
                Err(e) => return Outcome::Reply(e),
            }
        };
        let flags = engine.scripts[&sha].flags;
        if let Err(e) = prepare_checks(flags, ro, st) {
            return Outcome::Reply(e);
        }
        let read_only = ro || (!flags.compat && flags.no_writes);
        let ctx = conn_facts(
            conn,
            &keys,
            read_only,
            flags.compat || flags.allow_cross_slot,
        );
        (sha, ctx)
    };
    let (sha, ctx) = sha;
    job(scripting, st, Target::Script(sha), keys, argv, ctx)
}

/// Run cached script `sha` (a job's body).
pub(crate) fn run(
    engine: &mut Engine,
    sha: &str,
    keys: &[Bytes],
    args: &[Bytes],
    ctx: RunCtx,
    flags: &std::sync::Arc<RunFlags>,
    access: Access<'_>,
) -> (Value, RunCtx) {
    let Some(script) = engine.scripts.get(sha) else {
        return (
            Value::error("NOSCRIPT No matching script. Please use EVAL."),
            ctx,
        );
    };
    let f = script.f.clone();
    let Some(vm) = engine.eval_vm.as_ref() else {
        return (
            Value::error("NOSCRIPT No matching script. Please use EVAL."),
            ctx,
        );
    };
    if let Err(e) = vm.set_keys_argv(keys, args) {
        return (
            Value::error(format!("ERR Error running script {sha}, {e}")),
            ctx,
        );
    }
    super::run_on(vm, &f, (Lv::Nil, Lv::Nil), sha, ctx, flags, access)
}

/// SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP.
pub(crate) fn script(name: &str, args: &[Bytes], scripting: &Scripting) -> Value {
    match name {
        "script|load" => match scripting.engine().load_script(&args[2]) {
            Ok(sha) => Value::bulk(sha),
            Err(e) => e,
        },
        "script|exists" => {
            let engine = scripting.engine();
            Value::Array(
                args[2..]
                    .iter()
                    .map(|a| {
                        let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
                        Value::Integer(i64::from(engine.scripts.contains_key(&sha)))
                    })
                    .collect(),
            )
        }
        "script|flush" => {
            if let Some(mode) = args.get(2) {
                let m = mode.to_ascii_lowercase();
                if args.len() > 3 || (m != b"sync" && m != b"async") {
                    return Value::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                }
            }
            let mut engine = scripting.engine();
            engine.scripts.clear();
            // A fresh VM, as Redis does: globals and memory from old scripts go too.
            engine.eval_vm = None;
            Value::ok()
        }
        "script|kill" => scripting.kill(true),
        _ => super::help(
            "SCRIPT",
            &[
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::shebang;

    #[test]
    fn shebang_flags_and_errors() {
        let (f, skip) = shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(f.no_writes && f.allow_oom && !f.compat);
        assert_eq!(skip, 31);
        assert!(shebang(b"return 1").unwrap().0.compat);
        assert_eq!(
            shebang(b"#!lua flags=bogus\n").unwrap_err(),
            "Unexpected flag in script shebang: bogus"
        );
        assert_eq!(
            shebang(b"#!python\n").unwrap_err(),
            "Unexpected engine in script shebang: #!python"
        );
        assert_eq!(shebang(b"#!lua").unwrap_err(), "Invalid script shebang");
    }
}
