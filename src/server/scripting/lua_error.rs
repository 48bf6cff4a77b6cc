//! Errors raised from Rust the way C's `luaL_error` raises them: a leaf the Lua VM and the
//! libraries it loads (cjson, bit) share.

use mlua::Lua;

/// Marks a plain (string) error raised from Rust, as C's `luaL_error` raises them.
pub(crate) const PLAIN: &str = "\u{1}lua:";

/// A Lua error with `msg` as `luaL_error` words it: prefixed by where the calling Lua code
/// is (`user_script:1: `).
pub(crate) fn lua_error(lua: &Lua, msg: &str) -> mlua::Error {
    let place = lua
        .inspect_stack(1, |d| {
            let src = d.source();
            match (src.what, src.short_src, d.current_line()) {
                ("C", _, _) => None,
                (_, Some(s), Some(line)) => Some(format!("{s}:{line}: ")),
                _ => None,
            }
        })
        .flatten()
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{PLAIN}{place}{msg}"))
}

/// A Lua error with `msg` and no position, as the Lua core raises them inside a C function
/// (`luaG_runerror`: `table index is nil`).
pub(crate) fn core_error(msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{PLAIN}{msg}"))
}
