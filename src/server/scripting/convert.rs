//! Redis' conversions between command replies and Lua values, both ways, for RESP2 and RESP3
//! scripts (`redis.setresp`), as `script_lua.c` does them.

use bytes::Bytes;
use mlua::{Lua, Result as LuaResult, Table, Value as Lv};

use crate::resp::Value;

/// The Lua error table `{err = "CODE message"}` for error text `text`, as Redis'
/// `luaPushErrorBuff`: `-CODE msg` keeps its code, text without a leading `-` gets `ERR`.
pub(crate) fn error_table(lua: &Lua, text: &[u8]) -> LuaResult<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(text))?)?;
    Ok(t)
}

/// The `CODE message` string of [`error_table`].
pub(crate) fn error_text(text: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let trim = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = msg.iter().position(|b| !trim(b)).unwrap_or(msg.len());
    let end = msg.iter().rposition(|b| !trim(b)).map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end - start);
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&msg[start..end]);
    out
}

fn single(lua: &Lua, field: &str, v: impl mlua::IntoLua) -> LuaResult<Lv> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Lv::Table(t))
}

/// A command's reply as the Lua value `redis.call` returns. `resp3` is the script's protocol:
/// under RESP2 a reply is first shaped as a RESP2 client would read it.
pub(crate) fn reply_to_lua(lua: &Lua, v: &Value, resp3: bool) -> LuaResult<Lv> {
    Ok(match v {
        Value::Integer(n) => Lv::Number(*n as f64),
        Value::BulkString(b) => Lv::String(lua.create_string(b)?),
        Value::SimpleString(s) => single(lua, "ok", lua.create_string(s)?)?,
        Value::Error(e) => {
            let mut text = Vec::with_capacity(e.len() + 1);
            text.push(b'-');
            text.extend_from_slice(e);
            let t = error_table(lua, &text)?;
            t.raw_set("ignore_error_stats_update", true)?;
            Lv::Table(t)
        }
        Value::Null | Value::NullArray => {
            if resp3 {
                Lv::Nil
            } else {
                Lv::Boolean(false)
            }
        }
        Value::Array(items) | Value::Push(items) => array(lua, items, resp3)?,
        Value::Set(items) if !resp3 => array(lua, items, resp3)?,
        Value::Set(items) => {
            let inner = lua.create_table()?;
            for item in items {
                inner.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            single(lua, "set", inner)?
        }
        Value::Map(pairs) if !resp3 => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(i * 2 + 1, reply_to_lua(lua, k, resp3)?)?;
                t.raw_set(i * 2 + 2, reply_to_lua(lua, v, resp3)?)?;
            }
            Lv::Table(t)
        }
        Value::Map(pairs) => {
            let inner = lua.create_table()?;
            for (k, v) in pairs {
                inner.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            single(lua, "map", inner)?
        }
        Value::Double(d) if !resp3 => {
            Lv::String(lua.create_string(crate::resp::format_double(*d))?)
        }
        Value::Double(d) => single(lua, "double", *d)?,
        Value::Boolean(b) if !resp3 => Lv::Number(f64::from(u8::from(*b))),
        Value::Boolean(b) => Lv::Boolean(*b),
        Value::BigNumber(n) if !resp3 => Lv::String(lua.create_string(n)?),
        Value::BigNumber(n) => single(lua, "big_number", lua.create_string(n)?)?,
        Value::Verbatim { text, .. } if !resp3 => Lv::String(lua.create_string(text)?),
        Value::Verbatim { format, text } => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(text)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            single(lua, "verbatim_string", inner)?
        }
        Value::Attribute { value, .. } => reply_to_lua(lua, value, resp3)?,
    })
}

fn array(lua: &Lua, items: &[Value], resp3: bool) -> LuaResult<Lv> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Lv::Table(t))
}

/// Nesting a reply deeper than this answers an error instead (Lua's C stack would overflow
/// first in Redis: "reached lua stack limit").
const MAX_DEPTH: usize = 1000;

/// A script's return value as the reply to its caller (Redis' `luaReplyToRedisReply`).
/// `resp3` is the script's protocol (`redis.setresp`), which decides how booleans go out.
pub(crate) fn lua_to_reply(v: &Lv, resp3: bool) -> Value {
    to_reply(v, resp3, 0)
}

fn field(t: &Table, name: &str) -> Lv {
    t.raw_get(name).unwrap_or(Lv::Nil)
}

fn to_reply(v: &Lv, resp3: bool, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::error("ERR reached lua stack limit");
    }
    match v {
        Lv::String(s) => Value::BulkString(Bytes::copy_from_slice(&s.as_bytes())),
        Lv::Boolean(b) if !resp3 => {
            if *b {
                Value::Integer(1)
            } else {
                Value::Null
            }
        }
        Lv::Boolean(b) => Value::Boolean(*b),
        Lv::Integer(n) => Value::Integer(*n),
        Lv::Number(n) => Value::Integer(double_to_i64(*n)),
        Lv::Table(t) => table_reply(t, resp3, depth),
        _ => Value::Null,
    }
}

/// C's `(long long)` cast of a double as x86-64 does it: truncation, and the "integer
/// indefinite" value (`i64::MIN`) for NaN, infinities and out-of-range values.
fn double_to_i64(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_finite() && (-LIMIT..LIMIT).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

fn no_newlines(b: &[u8]) -> Bytes {
    b.iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect::<Vec<u8>>()
        .into()
}

fn table_reply(t: &Table, resp3: bool, depth: usize) -> Value {
    if let Lv::String(e) = field(t, "err") {
        let mut text = no_newlines(&e.as_bytes()).to_vec();
        // The error line carries its own code ("ERR ...", "MY custom ...").
        if text.first() == Some(&b'-') {
            text.remove(0);
        }
        return Value::Error(text.into());
    }
    if let Lv::String(s) = field(t, "ok") {
        return Value::SimpleString(no_newlines(&s.as_bytes()));
    }
    match field(t, "double") {
        Lv::Number(d) => return Value::Double(d),
        Lv::Integer(d) => return Value::Double(d as f64),
        _ => {}
    }
    if let Lv::String(s) = field(t, "big_number") {
        return Value::BigNumber(no_newlines(&s.as_bytes()));
    }
    if let Lv::Table(v) = field(t, "verbatim_string") {
        if let (Lv::String(format), Lv::String(text)) = (field(&v, "format"), field(&v, "string")) {
            return Value::Verbatim {
                format: Bytes::copy_from_slice(&format.as_bytes()),
                text: Bytes::copy_from_slice(&text.as_bytes()),
            };
        }
    }
    if let Lv::Table(m) = field(t, "map") {
        let mut pairs = Vec::new();
        for (k, v) in m.pairs::<Lv, Lv>().flatten() {
            pairs.push((
                to_reply(&k, resp3, depth + 1),
                to_reply(&v, resp3, depth + 1),
            ));
        }
        return Value::Map(pairs);
    }
    if let Lv::Table(s) = field(t, "set") {
        let mut items = Vec::new();
        for (k, _) in s.pairs::<Lv, Lv>().flatten() {
            items.push(to_reply(&k, resp3, depth + 1));
        }
        return Value::Set(items);
    }
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        let v: Lv = t.raw_get(i).unwrap_or(Lv::Nil);
        if v.is_nil() {
            break;
        }
        items.push(to_reply(&v, resp3, depth + 1));
        i += 1;
    }
    Value::Array(items)
}

/// A Lua argument of `redis.call` as the command argument Redis makes of it: strings as they
/// are, numbers printed as integers when they are integral (else shortest round-trip form);
/// `None` for any other type.
pub(crate) fn lua_to_arg(v: &Lv) -> Option<Bytes> {
    match v {
        Lv::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Lv::Integer(n) => Some(Bytes::from(n.to_string())),
        Lv::Number(n) => Some(Bytes::from(number_text(*n))),
        _ => None,
    }
}

/// A number as Redis prints it into a command argument (`double2ll`, else `fpconv_dtoa`).
pub(crate) fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.2e18 {
        return (n as i64).to_string();
    }
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = n.abs();
    if (1e-5..1e21).contains(&abs) {
        format!("{n}")
    } else {
        // Shortest digits in exponent form, as fpconv writes them (1e+21, 1.5e-07).
        let s = format!("{n:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            Some((m, e)) => {
                let digits = e.trim_start_matches('-');
                format!("{m}e-{digits}")
            }
            None => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_keeps_or_adds_the_code() {
        assert_eq!(error_text(b"-WRONGTYPE bad"), b"WRONGTYPE bad");
        assert_eq!(error_text(b"-nocode"), b"ERR nocode");
        assert_eq!(error_text(b"plain words\r\n"), b"ERR plain words");
    }

    #[test]
    fn numbers_print_like_redis() {
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(-0.5), "-0.5");
        assert_eq!(number_text(1e300), "1e+300");
        assert_eq!(number_text(3.99), "3.99");
    }

    #[test]
    fn replies_round_trip_through_lua() {
        let lua = Lua::new();
        let reply = Value::Array(vec![
            Value::Integer(7),
            Value::bulk("x"),
            Value::Null,
            Value::SimpleString(Bytes::from_static(b"OK")),
        ]);
        let v = reply_to_lua(&lua, &reply, false).unwrap();
        // The nil-ish false in the middle ends nothing: false is a value in Lua tables.
        assert_eq!(
            lua_to_reply(&v, false),
            Value::Array(vec![
                Value::Integer(7),
                Value::bulk("x"),
                Value::Null,
                Value::SimpleString(Bytes::from_static(b"OK")),
            ])
        );
    }
}
