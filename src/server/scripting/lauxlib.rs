//! Argument checks with Lua 5.1's `lauxlib` wording (`luaL_checknumber`,
//! `luaL_checklstring`, `luaL_optinteger`, `luaL_checkstack`), for the C libraries Redis
//! bundles and this crate writes in Rust (`struct`, `cmsgpack`): a script sees the same
//! error text from them as from redis-server.

use mlua::{Lua, MultiValue, Value as Lv};

use super::lua_error::lua_error;

/// Lua 5.1's `LUAI_MAXCSTACK`: most values a C function may hold on its stack.
pub(crate) const MAX_C_STACK: usize = 8000;

/// `luaL_typename`, with `no value` for a missing argument.
fn type_name(v: Option<&Lv>) -> &'static str {
    match v {
        None => "no value",
        Some(Lv::Nil) => "nil",
        Some(Lv::Boolean(_)) => "boolean",
        Some(Lv::Integer(_) | Lv::Number(_)) => "number",
        Some(Lv::String(_)) => "string",
        Some(Lv::Table(_)) => "table",
        Some(Lv::Function(_)) => "function",
        Some(Lv::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// `luaL_argerror`: `bad argument #n to 'func' (msg)`, placed like `luaL_error`.
pub(crate) fn arg_error(lua: &Lua, n: usize, func: &str, msg: &str) -> mlua::Error {
    lua_error(lua, &format!("bad argument #{n} to '{func}' ({msg})"))
}

fn type_error(lua: &Lua, args: &MultiValue, n: usize, func: &str, want: &str) -> mlua::Error {
    let got = type_name(args.get(n - 1));
    arg_error(lua, n, func, &format!("{want} expected, got {got}"))
}

/// `luaL_checknumber` of argument `n` (1-based): numbers and numeric strings.
pub(crate) fn check_number(
    lua: &Lua,
    args: &MultiValue,
    n: usize,
    func: &str,
) -> mlua::Result<f64> {
    let v = args.get(n - 1).cloned().unwrap_or(Lv::Nil);
    match lua.coerce_number(v)? {
        Some(x) => Ok(x),
        None => Err(type_error(lua, args, n, func, "number")),
    }
}

/// `luaL_checklstring` of argument `n`: strings and numbers (converted as Lua does).
pub(crate) fn check_string(
    lua: &Lua,
    args: &MultiValue,
    n: usize,
    func: &str,
) -> mlua::Result<Vec<u8>> {
    let v = args.get(n - 1).cloned().unwrap_or(Lv::Nil);
    match v {
        Lv::String(_) | Lv::Integer(_) | Lv::Number(_) => match lua.coerce_string(v)? {
            Some(s) => Ok(s.as_bytes().to_vec()),
            None => Err(type_error(lua, args, n, func, "string")),
        },
        _ => Err(type_error(lua, args, n, func, "string")),
    }
}

/// `luaL_checkinteger` (numbers truncated toward zero, as `lua_tointeger` on x86-64).
pub(crate) fn check_integer(
    lua: &Lua,
    args: &MultiValue,
    n: usize,
    func: &str,
) -> mlua::Result<i64> {
    check_number(lua, args, n, func).map(|x| x as i64)
}

/// `luaL_optinteger`: `default` when the argument is missing or nil.
pub(crate) fn opt_integer(
    lua: &Lua,
    args: &MultiValue,
    n: usize,
    func: &str,
    default: i64,
) -> mlua::Result<i64> {
    match args.get(n - 1) {
        None | Some(Lv::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, n, func),
    }
}

/// `luaL_checkstack(L, extra, msg)` for a C function holding `held` values.
pub(crate) fn check_stack(lua: &Lua, held: usize, extra: usize, msg: &str) -> mlua::Result<()> {
    if held + extra > MAX_C_STACK {
        return Err(lua_error(lua, &format!("stack overflow ({msg})")));
    }
    Ok(())
}
