//! `redis.register_function`: the positional and named-argument forms, checked with Redis'
//! wording, collecting functions while FUNCTION LOAD runs a library's code.

use mlua::{Function, Lua, MultiValue, Result as LuaResult, Table, Value as Lv};

use super::convert::error_table;
use super::ScriptFlags;

/// One registered function.
#[derive(Debug)]
pub(crate) struct Func {
    /// The callback.
    pub(crate) f: Function,
    /// Its flags.
    pub(crate) flags: ScriptFlags,
    /// Its description (FUNCTION LIST).
    pub(crate) description: Option<String>,
}

/// What `redis.register_function` collects during FUNCTION LOAD.
#[derive(Debug, Default)]
pub(crate) struct LoadCtx {
    /// Functions registered so far, in order.
    pub(crate) functions: Vec<(String, Func)>,
}

/// Not a valid library or function name (`[a-zA-Z0-9_]+`).
pub(crate) fn bad_name(name: &str) -> bool {
    name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `redis.register_function(name, f)` or `redis.register_function{...}`: nil, or the error
/// table to raise.
pub(crate) fn register(lua: &Lua, args: MultiValue) -> LuaResult<Option<Table>> {
    let fail = |msg: &str| error_table(lua, msg.as_bytes()).map(Some);
    if lua.app_data_ref::<LoadCtx>().is_none() {
        return fail("redis.register_function can only be called on FUNCTION LOAD command");
    }
    if args.is_empty() || args.len() > 2 {
        return fail("wrong number of arguments to redis.register_function");
    }
    let mut name = None;
    let mut callback = None;
    let mut flags = ScriptFlags::default();
    let mut description = None;
    if args.len() == 1 {
        let Lv::Table(t) = &args[0] else {
            return fail(
                "calling redis.register_function with a single argument is only applicable to \
                 Lua table (representing named arguments).",
            );
        };
        for pair in t.pairs::<Lv, Lv>() {
            let (k, v) = pair?;
            let Lv::String(k) = k else {
                return fail("named argument key given to redis.register_function is not a string");
            };
            match k.to_string_lossy().to_ascii_lowercase().as_str() {
                "function_name" => match v {
                    Lv::String(s) => name = Some(s.to_string_lossy()),
                    _ => return fail(
                        "function_name argument given to redis.register_function must be a string",
                    ),
                },
                "description" => match v {
                    Lv::String(s) => description = Some(s.to_string_lossy()),
                    _ => return fail(
                        "description argument given to redis.register_function must be a string",
                    ),
                },
                "callback" => {
                    match v {
                        Lv::Function(f) => callback = Some(f),
                        _ => return fail(
                            "callback argument given to redis.register_function must be a function",
                        ),
                    }
                }
                "flags" => {
                    let Lv::Table(list) = v else {
                        return fail(
                            "flags argument to redis.register_function must be a table representing \
                             function flags",
                        );
                    };
                    for flag in list.sequence_values::<Lv>() {
                        let ok = match flag? {
                            Lv::String(s) => flags.set(&s.as_bytes()),
                            _ => false,
                        };
                        if !ok {
                            return fail("unknown flag given");
                        }
                    }
                }
                _ => return fail("unknown argument given to redis.register_function"),
            }
        }
        if name.is_none() {
            return fail("redis.register_function must get a function name argument");
        }
        if callback.is_none() {
            return fail("redis.register_function must get a callback argument");
        }
    } else {
        let Lv::String(n) = &args[0] else {
            return fail("first argument to redis.register_function must be a string");
        };
        let Lv::Function(f) = &args[1] else {
            return fail("second argument to redis.register_function must be a function");
        };
        name = Some(n.to_string_lossy());
        callback = Some(f.clone());
    }
    let (Some(name), Some(f)) = (name, callback) else {
        return fail("redis.register_function must get a callback argument");
    };
    if bad_name(&name) {
        return fail(
            "Library names can only contain letters, numbers, or underscores(_) and must be at \
             least one character long",
        );
    }
    let Some(mut ctx) = lua.app_data_mut::<LoadCtx>() else {
        return fail("redis.register_function can only be called on FUNCTION LOAD command");
    };
    if ctx.functions.iter().any(|(n, _)| *n == name) {
        drop(ctx);
        return fail("Function already exists in the library");
    }
    ctx.functions.push((
        name,
        Func {
            f,
            flags,
            description,
        },
    ));
    Ok(None)
}
