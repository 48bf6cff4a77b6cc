//! The `cjson` library as Redis bundles it (lua-cjson 2.1): `cjson.encode`, `cjson.decode`,
//! `cjson.null`, with lua-cjson's number format (`%.14g`), escapes (`/` too), sparse-array
//! rule and error wording.

use mlua::{LightUserData, Lua, MultiValue, Result as LuaResult, Table, Value as Lv};

use super::lua_error::lua_error;

/// Deepest nesting either direction accepts (lua-cjson's default).
const MAX_DEPTH: usize = 1000;

fn null() -> Lv {
    Lv::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Register `cjson` in `globals`.
///
/// # Errors
/// Out of Lua memory.
pub(crate) fn register(lua: &Lua, globals: &Table) -> LuaResult<()> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(lua_error(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(lua, &args[0], 0, &mut out)?;
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| {
            let Some(Lv::String(s)) = args.front() else {
                return Err(lua_error(
                    lua,
                    "bad argument #1 to 'decode' (string expected)",
                ));
            };
            let bytes = s.as_bytes().to_vec();
            let mut p = Parser {
                s: &bytes,
                i: 0,
                lua,
            };
            let v = p.value(0)?;
            let tok = p.token();
            if tok.0 != "T_END" {
                return Err(p.fail("the end", tok));
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    // Settings lua-cjson exposes; Redis scripts call them to tweak output. We keep the
    // defaults and report them back.
    for (name, value) in [
        ("encode_max_depth", Lv::Integer(MAX_DEPTH as i64)),
        ("decode_max_depth", Lv::Integer(MAX_DEPTH as i64)),
        ("encode_number_precision", Lv::Integer(14)),
        ("encode_keep_buffer", Lv::Boolean(true)),
        ("encode_invalid_numbers", Lv::Boolean(false)),
        ("decode_invalid_numbers", Lv::Boolean(true)),
    ] {
        t.raw_set(
            name,
            lua.create_function(move |_, _: MultiValue| Ok(value.clone()))?,
        )?;
    }
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(|_, _: MultiValue| Ok((false, 2, 10)))?,
    )?;
    globals.raw_set("cjson", t)
}

/// `%.14g`, as lua-cjson prints numbers.
pub(crate) fn fmt_g14(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{n:.13e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..14).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (13 - exp).max(0) as usize;
        trim(&format!("{n:.decimals$}"))
    }
}

fn type_name(v: &Lv) -> &'static str {
    v.type_name()
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_number(lua: &Lua, n: f64, out: &mut Vec<u8>) -> LuaResult<()> {
    if !n.is_finite() {
        return Err(lua_error(
            lua,
            "Cannot serialise number: must not be NaN or Inf",
        ));
    }
    out.extend_from_slice(fmt_g14(n).as_bytes());
    Ok(())
}

fn encode(lua: &Lua, v: &Lv, depth: usize, out: &mut Vec<u8>) -> LuaResult<()> {
    match v {
        Lv::Nil => out.extend_from_slice(b"null"),
        Lv::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Lv::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Lv::Integer(i) => encode_number(lua, *i as f64, out)?,
        Lv::Number(n) => encode_number(lua, *n, out)?,
        Lv::String(s) => encode_string(&s.as_bytes(), out),
        Lv::Table(t) => {
            if depth + 1 > MAX_DEPTH {
                return Err(lua_error(
                    lua,
                    &format!("Cannot serialise, excessive nesting ({})", depth + 1),
                ));
            }
            match array_length(lua, t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(lua, &t.raw_get::<Lv>(i)?, depth + 1, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Lv, Lv>() {
                        let (k, val) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Lv::String(s) => encode_string(&s.as_bytes(), out),
                            Lv::Integer(i) => {
                                out.push(b'"');
                                out.extend_from_slice(fmt_g14(*i as f64).as_bytes());
                                out.push(b'"');
                            }
                            Lv::Number(n) => {
                                out.push(b'"');
                                encode_number(lua, *n, out)?;
                                out.push(b'"');
                            }
                            other => {
                                return Err(lua_error(
                                    lua,
                                    &format!(
                                        "Cannot serialise {}: table key must be a number or string",
                                        type_name(other)
                                    ),
                                ))
                            }
                        }
                        out.push(b':');
                        encode(lua, &val, depth + 1, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(lua_error(
                lua,
                &format!("Cannot serialise {}: type not supported", type_name(other)),
            ))
        }
    }
    Ok(())
}

/// lua-cjson's `lua_array_length`: `Some(max index)` when every key is a positive integer
/// (and the array is not excessively sparse), `None` for an object.
fn array_length(lua: &Lua, t: &Table) -> LuaResult<Option<usize>> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in t.clone().pairs::<Lv, Lv>() {
        let (k, _) = pair?;
        let n = match k {
            Lv::Integer(i) => i as f64,
            Lv::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(n as usize);
        items += 1;
    }
    if max > 10 && max > items * 2 {
        return Err(lua_error(
            lua,
            "Cannot serialise table: excessively sparse array",
        ));
    }
    Ok(Some(max))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    lua: &'a Lua,
}

/// A token: its lua-cjson name and where it starts (1-based, as errors print it).
type Tok = (&'static str, usize);

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// Look at the next token without consuming it.
    fn token(&mut self) -> Tok {
        self.skip_ws();
        let at = self.i + 1;
        let name = match self.s.get(self.i) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b',') => "T_COMMA",
            Some(b':') => "T_COLON",
            Some(b'"') => "T_STRING",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            Some(b't') if self.s[self.i..].starts_with(b"true") => "T_BOOLEAN",
            Some(b'f') if self.s[self.i..].starts_with(b"false") => "T_BOOLEAN",
            Some(b'n') if self.s[self.i..].starts_with(b"null") => "T_NULL",
            _ => "invalid token",
        };
        (name, at)
    }

    fn fail(&self, expected: &str, tok: Tok) -> mlua::Error {
        lua_error(
            self.lua,
            &format!(
                "Expected {expected} but found {} at character {}",
                tok.0, tok.1
            ),
        )
    }

    fn value(&mut self, depth: usize) -> LuaResult<Lv> {
        let tok = self.token();
        match tok.0 {
            "T_OBJ_BEGIN" | "T_ARR_BEGIN" if depth + 1 > MAX_DEPTH => Err(lua_error(
                self.lua,
                &format!(
                    "Found too many nested data structures ({}) at character {}",
                    depth + 1,
                    tok.1
                ),
            )),
            "T_OBJ_BEGIN" => {
                self.i += 1;
                let t = self.lua.create_table()?;
                if self.token().0 == "T_OBJ_END" {
                    self.i += 1;
                    return Ok(Lv::Table(t));
                }
                loop {
                    let k = self.token();
                    if k.0 != "T_STRING" {
                        return Err(self.fail("object key string", k));
                    }
                    let key = self.string()?;
                    let colon = self.token();
                    if colon.0 != "T_COLON" {
                        return Err(self.fail("colon", colon));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    t.raw_set(key, v)?;
                    let next = self.token();
                    self.i += 1;
                    match next.0 {
                        "T_COMMA" => continue,
                        "T_OBJ_END" => return Ok(Lv::Table(t)),
                        _ => {
                            self.i -= 1;
                            return Err(self.fail("comma or object end", next));
                        }
                    }
                }
            }
            "T_ARR_BEGIN" => {
                self.i += 1;
                let t = self.lua.create_table()?;
                if self.token().0 == "T_ARR_END" {
                    self.i += 1;
                    return Ok(Lv::Table(t));
                }
                let mut n = 1;
                loop {
                    let v = self.value(depth + 1)?;
                    t.raw_set(n, v)?;
                    n += 1;
                    let next = self.token();
                    self.i += 1;
                    match next.0 {
                        "T_COMMA" => continue,
                        "T_ARR_END" => return Ok(Lv::Table(t)),
                        _ => {
                            self.i -= 1;
                            return Err(self.fail("comma or array end", next));
                        }
                    }
                }
            }
            "T_STRING" => Ok(Lv::String(self.string()?)),
            "T_NUMBER" => self.number(tok),
            "T_BOOLEAN" => {
                let v = self.s[self.i] == b't';
                self.i += if v { 4 } else { 5 };
                Ok(Lv::Boolean(v))
            }
            "T_NULL" => {
                self.i += 4;
                Ok(null())
            }
            _ => Err(self.fail("value", tok)),
        }
    }

    fn number(&mut self, tok: Tok) -> LuaResult<Lv> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => Ok(Lv::Number(n)),
            Err(_) => {
                self.i = start;
                Err(self.fail("value", ("invalid number", tok.1)))
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    fn string(&mut self) -> LuaResult<mlua::String> {
        let at = self.i + 1;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.fail("value", ("unexpected end of string", at)));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.fail("value", ("invalid escape code", at)));
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let bad = || ("invalid unicode escape code", at);
                            let Some(mut cp) = self.hex4() else {
                                return Err(self.fail("value", bad()));
                            };
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(self.fail("value", bad()));
                                }
                                self.i += 2;
                                let Some(lo) = self.hex4().filter(|l| (0xDC00..0xE000).contains(l))
                                else {
                                    return Err(self.fail("value", bad()));
                                };
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.fail("value", ("invalid escape code", at))),
                    }
                }
                c => out.push(c),
            }
        }
        self.lua.create_string(out)
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_g14;

    #[test]
    fn numbers_like_percent_g14() {
        assert_eq!(fmt_g14(1.5), "1.5");
        assert_eq!(fmt_g14(1.0 / 3.0), "0.33333333333333");
        assert_eq!(fmt_g14(1e20), "1e+20");
        assert_eq!(fmt_g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(fmt_g14(9007199254740992.0), "9.007199254741e+15");
        assert_eq!(fmt_g14(125.0), "125");
        assert_eq!(fmt_g14(0.0001), "0.0001");
        assert_eq!(fmt_g14(0.00001), "1e-05");
        assert_eq!(fmt_g14(-0.0), "-0");
    }
}
