//! The `cmsgpack` library as Redis bundles it (lua-cmsgpack 0.4.0): `cmsgpack.pack(...)`,
//! `cmsgpack.unpack(s)`, `cmsgpack.unpack_one(s [, offset])`,
//! `cmsgpack.unpack_limit(s, limit [, offset])`, with its choices: tables with keys 1..n
//! are arrays, integral numbers take the smallest integer encoding, other numbers float32
//! when exact else float64, strings as str8/16/32, nesting past 16 levels packed as nil;
//! and its error wording.

use mlua::{Lua, MultiValue, Result as LuaResult, Table, Value as Lv};

use super::lauxlib::{arg_error, check_integer, check_stack, check_string, opt_integer};
use super::lua_error::{core_error, lua_error};

/// Nesting deeper than this packs as nil (lua-cmsgpack's `LUACMSGPACK_MAX_NESTING`).
const MAX_NESTING: usize = 16;

const TOO_MANY: &str = "too many return values at once; use unpack_one or unpack_limit instead.";

/// Register `cmsgpack` in `globals`.
///
/// # Errors
/// Out of Lua memory.
pub(crate) fn register(lua: &Lua, globals: &Table) -> LuaResult<()> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(arg_error(lua, 0, "pack", "MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                pack(v, 0, &mut out)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let s = check_string(lua, &args, 1, "unpack")?;
            unpack_full(lua, &s, 0, 0)
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let offset = opt_integer(lua, &args, 2, "unpack_one", 0)?;
            let s = check_string(lua, &args, 1, "unpack_one")?;
            unpack_full(lua, &s, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = check_integer(lua, &args, 2, "unpack_limit")?;
            let offset = opt_integer(lua, &args, 3, "unpack_limit", 0)?;
            let s = check_string(lua, &args, 1, "unpack_limit")?;
            unpack_full(lua, &s, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    globals.raw_set("cmsgpack", t)
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// `IS_INT64_EQUIVALENT`: finite and unchanged by a round trip through `int64_t`.
fn is_int64(n: f64) -> bool {
    (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) && n.trunc() == n
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    if is_int64(n) {
        pack_int(n as i64, out);
    } else if f64::from(n as f32) == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_len(len: usize, fix: u8, codes: [u8; 2], out: &mut Vec<u8>) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(codes[0]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(codes[1]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// lua-cmsgpack's `table_is_an_array`: every key a number equal to a positive C `int`, and
/// no holes (as many keys as the largest).
fn array_len(t: &Table) -> LuaResult<Option<usize>> {
    let (mut count, mut max) = (0usize, 0usize);
    for pair in t.clone().pairs::<Lv, Lv>() {
        let (k, _) = pair?;
        let n = match k {
            Lv::Integer(i) => i as f64,
            Lv::Number(n) => n,
            _ => return Ok(None),
        };
        if n <= 0.0 || n > f64::from(i32::MAX) || n.trunc() != n {
            return Ok(None);
        }
        count += 1;
        max = max.max(n as usize);
    }
    Ok((max == count).then_some(count))
}

fn pack(v: &Lv, depth: usize, out: &mut Vec<u8>) -> LuaResult<()> {
    match v {
        Lv::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Lv::Integer(i) => pack_number(*i as f64, out),
        Lv::Number(n) => pack_number(*n, out),
        Lv::String(s) => {
            let b = s.as_bytes();
            if b.len() < 32 {
                out.push(0xa0 | b.len() as u8);
            } else if b.len() <= 0xff {
                out.extend_from_slice(&[0xd9, b.len() as u8]);
            } else if b.len() <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Lv::Table(t) if depth < MAX_NESTING => match array_len(t)? {
            Some(n) => {
                pack_len(n, 0x90, [0xdc, 0xdd], out);
                for i in 1..=n {
                    pack(&t.get::<Lv>(i)?, depth + 1, out)?;
                }
            }
            None => {
                let pairs: Vec<(Lv, Lv)> = t.clone().pairs::<Lv, Lv>().collect::<LuaResult<_>>()?;
                pack_len(pairs.len(), 0x80, [0xde, 0xdf], out);
                for (k, val) in &pairs {
                    pack(k, depth + 1, out)?;
                    pack(val, depth + 1, out)?;
                }
            }
        },
        _ => out.push(0xc0),
    }
    Ok(())
}

/// Why decoding stopped: lua-cmsgpack's `MP_CUR_ERROR_EOF` / `MP_CUR_ERROR_BADFMT`, or a
/// Lua error (stack overflow, bad table key) raised as is.
enum Stop {
    Eof,
    BadFormat,
    Lua(mlua::Error),
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Stop {
        Stop::Lua(e)
    }
}

/// A decoding cursor over the input.
struct Cur<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cur<'_> {
    /// The `n` bytes after the type byte, leaving the cursor on the type byte.
    fn peek(&self, n: usize) -> Result<&[u8], Stop> {
        self.s.get(self.pos + 1..self.pos + 1 + n).ok_or(Stop::Eof)
    }

    fn be(&self, n: usize) -> Result<u64, Stop> {
        Ok(self
            .peek(n)?
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A number of `n` bytes: consumes the type byte and the bytes.
    fn number(&mut self, n: usize, f: impl Fn(u64) -> f64) -> Result<Lv, Stop> {
        let v = self.be(n)?;
        self.pos += 1 + n;
        Ok(Lv::Number(f(v)))
    }

    /// A string whose length takes `n` bytes after the type byte (0: in the type byte).
    fn string(&mut self, lua: &Lua, n: usize, len: usize) -> Result<Lv, Stop> {
        let start = self.pos + 1 + n;
        let bytes = self.s.get(start..start + len).ok_or(Stop::Eof)?;
        let v = Lv::String(lua.create_string(bytes)?);
        self.pos = start + len;
        Ok(v)
    }
}

/// A table being filled while its elements decode (iteratively: deep nesting cannot
/// overflow the Rust stack; Lua's C stack limit stops it first, as in lua-cmsgpack).
enum Frame {
    Array {
        t: Table,
        len: usize,
        i: usize,
    },
    Map {
        t: Table,
        len: usize,
        i: usize,
        key: Option<Lv>,
    },
}

/// What one type byte starts: a whole value, or a table with `len` elements/pairs.
enum Start {
    Value(Lv),
    Array(usize),
    Map(usize),
}

/// `mp_decode_to_lua_type` for one type byte: a scalar, or the header of a table.
fn start(lua: &Lua, c: &mut Cur<'_>, t: u8) -> Result<Start, Stop> {
    Ok(Start::Value(match t {
        0xcc => c.number(1, |v| v as f64)?,
        0xcd => c.number(2, |v| v as f64)?,
        0xce => c.number(4, |v| v as f64)?,
        // `lua_pushunsigned` is `lua_pushinteger` on 64-bit builds: above i64 wraps.
        0xcf => c.number(8, |v| v as i64 as f64)?,
        0xd0 => c.number(1, |v| f64::from(v as u8 as i8))?,
        0xd1 => c.number(2, |v| f64::from(v as u16 as i16))?,
        0xd2 => c.number(4, |v| f64::from(v as u32 as i32))?,
        0xd3 => c.number(8, |v| v as i64 as f64)?,
        0xca => c.number(4, |v| f64::from(f32::from_bits(v as u32)))?,
        0xcb => c.number(8, f64::from_bits)?,
        0xc0 | 0xc2 | 0xc3 => {
            c.pos += 1;
            match t {
                0xc0 => Lv::Nil,
                0xc2 => Lv::Boolean(false),
                _ => Lv::Boolean(true),
            }
        }
        0xd9 => {
            let len = c.be(1)? as usize;
            c.string(lua, 1, len)?
        }
        0xda => {
            let len = c.be(2)? as usize;
            c.string(lua, 2, len)?
        }
        0xdb => {
            let len = c.be(4)? as usize;
            c.string(lua, 4, len)?
        }
        0xdc..=0xdf => {
            let n = if t == 0xdc || t == 0xde { 2 } else { 4 };
            let len = c.be(n)? as usize;
            c.pos += 1 + n;
            return Ok(if t <= 0xdd {
                Start::Array(len)
            } else {
                Start::Map(len)
            });
        }
        0x00..=0x7f => {
            c.pos += 1;
            Lv::Number(f64::from(t))
        }
        0xe0..=0xff => {
            c.pos += 1;
            Lv::Number(f64::from(t as i8))
        }
        0xa0..=0xbf => c.string(lua, 0, usize::from(t & 0x1f))?,
        0x90..=0x9f => {
            c.pos += 1;
            return Ok(Start::Array(usize::from(t & 0x0f)));
        }
        0x80..=0x8f => {
            c.pos += 1;
            return Ok(Start::Map(usize::from(t & 0x0f)));
        }
        _ => return Err(Stop::BadFormat),
    }))
}

/// One whole value; `held` values are on the C stack already. lua-cmsgpack keeps a table
/// and its index (or key) on the stack while an element decodes, so deep nesting meets
/// Lua's C stack limit.
fn unpack(lua: &Lua, c: &mut Cur<'_>, mut held: usize) -> Result<Lv, Stop> {
    let mut frames: Vec<Frame> = Vec::new();
    loop {
        let Some(&t) = c.s.get(c.pos) else {
            return Err(Stop::Eof);
        };
        check_stack(lua, held, 1, TOO_MANY)?;
        let mut done = match start(lua, c, t)? {
            Start::Value(v) => Some(v),
            Start::Array(len) => {
                check_stack(lua, held + 1, 1, "in function mp_decode_to_lua_array")?;
                let t = lua.create_table()?;
                if len == 0 {
                    Some(Lv::Table(t))
                } else {
                    held += 2;
                    frames.push(Frame::Array { t, len, i: 0 });
                    None
                }
            }
            Start::Map(len) => {
                let t = lua.create_table()?;
                if len == 0 {
                    Some(Lv::Table(t))
                } else {
                    held += 1;
                    frames.push(Frame::Map {
                        t,
                        len,
                        i: 0,
                        key: None,
                    });
                    None
                }
            }
        };
        // Hand finished values to their tables, closing the tables they complete.
        while let Some(v) = done.take() {
            match frames.last_mut() {
                None => return Ok(v),
                Some(Frame::Array { t, len, i }) => {
                    *i += 1;
                    t.raw_set(*i, v)?;
                    if *i == *len {
                        done = Some(Lv::Table(t.clone()));
                        frames.pop();
                        held -= 2;
                    }
                }
                Some(Frame::Map { t, len, i, key }) => match key.take() {
                    None => {
                        *key = Some(v);
                        held += 1;
                    }
                    Some(k) => {
                        held -= 1;
                        match &k {
                            Lv::Nil => return Err(Stop::Lua(core_error("table index is nil"))),
                            Lv::Number(n) if n.is_nan() => {
                                return Err(Stop::Lua(core_error("table index is NaN")))
                            }
                            _ => t.raw_set(k, v)?,
                        }
                        *i += 1;
                        if *i == *len {
                            done = Some(Lv::Table(t.clone()));
                            frames.pop();
                            held -= 1;
                        }
                    }
                },
            }
        }
    }
}

/// `mp_unpack_full`: up to `limit` values from `offset` (both 0: every value, and no
/// offset returned); otherwise the next offset (-1 at the end) comes first.
fn unpack_full(lua: &Lua, s: &[u8], limit: i64, offset: i64) -> LuaResult<MultiValue> {
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // lua-cmsgpack prints the input length where it means the limit.
        return Err(lua_error(
            lua,
            &format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32,
                s.len() as i32
            ),
        ));
    }
    if offset as u64 > s.len() as u64 {
        return Err(lua_error(
            lua,
            &format!(
                "Start offset {} greater than input length {}.",
                offset as i32,
                s.len() as i32
            ),
        ));
    }
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut c = Cur {
        s,
        pos: offset as usize,
    };
    let mut out = Vec::new();
    while c.pos < s.len() && (out.len() as i64) < limit {
        match unpack(lua, &mut c, 1 + out.len()) {
            Ok(v) => out.push(v),
            Err(Stop::Eof) => return Err(lua_error(lua, "Missing bytes in input.")),
            Err(Stop::BadFormat) => return Err(lua_error(lua, "Bad data format in input.")),
            Err(Stop::Lua(e)) => return Err(e),
        }
    }
    if !decode_all {
        let next = if c.pos == s.len() { -1 } else { c.pos as i64 };
        out.insert(0, Lv::Number(next as f64));
    }
    Ok(out.into_iter().collect())
}
