//! The `bit` library (LuaBitOp's API, which Redis bundles): 32-bit operations on numbers.

use mlua::{Lua, MultiValue, Result as LuaResult, Table, Value as Lv};

/// LuaBitOp's normalisation: a number to a signed 32-bit integer (modulo 2^32).
fn tobit(v: &Lv) -> LuaResult<i32> {
    let n = match v {
        Lv::Integer(i) => *i as f64,
        Lv::Number(n) => *n,
        Lv::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| mlua::Error::RuntimeError("bad argument (number expected)".into()))?,
        _ => {
            return Err(mlua::Error::RuntimeError(
                "bad argument (number expected)".into(),
            ))
        }
    };
    // LuaBitOp adds 2^52+2^51 and takes the low word: that is rounding to nearest, mod 2^32.
    let r = n.round_ties_even();
    Ok((r.rem_euclid(4_294_967_296.0) as u64 as u32) as i32)
}

fn args(a: &MultiValue) -> LuaResult<Vec<i32>> {
    a.iter().map(tobit).collect()
}

/// Register `bit` in `globals`.
///
/// # Errors
/// Out of Lua memory.
pub(crate) fn register(lua: &Lua, globals: &Table) -> LuaResult<()> {
    let bit = lua.create_table()?;
    bit.raw_set(
        "tobit",
        lua.create_function(|_, v: Lv| Ok(f64::from(tobit(&v)?)))?,
    )?;
    bit.raw_set(
        "bnot",
        lua.create_function(|_, v: Lv| Ok(f64::from(!tobit(&v)?)))?,
    )?;
    for (name, op) in [
        ("band", (|a: i32, b: i32| a & b) as fn(i32, i32) -> i32),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ] {
        bit.raw_set(
            name,
            lua.create_function(move |_, a: MultiValue| {
                let v = args(&a)?;
                let first = *v.first().ok_or_else(|| {
                    mlua::Error::RuntimeError(
                        "bad argument #1 (number expected, got no value)".into(),
                    )
                })?;
                Ok(f64::from(v[1..].iter().fold(first, |acc, x| op(acc, *x))))
            })?,
        )?;
    }
    for (name, op) in [
        (
            "lshift",
            (|a: i32, n: u32| ((a as u32) << n) as i32) as fn(i32, u32) -> i32,
        ),
        ("rshift", |a, n| ((a as u32) >> n) as i32),
        ("arshift", |a, n| a >> n),
        ("rol", |a, n| (a as u32).rotate_left(n) as i32),
        ("ror", |a, n| (a as u32).rotate_right(n) as i32),
    ] {
        bit.raw_set(
            name,
            lua.create_function(move |_, (a, n): (Lv, Lv)| {
                let (a, n) = (tobit(&a)?, tobit(&n)? as u32 & 31);
                Ok(f64::from(op(a, n)))
            })?,
        )?;
    }
    bit.raw_set(
        "bswap",
        lua.create_function(|_, v: Lv| Ok(f64::from(tobit(&v)?.swap_bytes())))?,
    )?;
    bit.raw_set(
        "tohex",
        lua.create_function(|_, (v, n): (Lv, Option<Lv>)| {
            let x = tobit(&v)? as u32;
            let mut n = match n {
                Some(n) => tobit(&n)?,
                None => 8,
            };
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.clamp(1, 8) as usize;
            let s = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    globals.raw_set("bit", bit)
}
