//! The `struct` library as Redis bundles it (Roberto Ierusalimschy's struct, Redis' copy):
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, s [, pos])`, `struct.size(fmt)` with the
//! options `< > ! x b B h H l L T i[n] I[n] f d s c[n]`, native (little) endian by default,
//! its alignment rules and its error wording.

use mlua::{Lua, MultiValue, Result as LuaResult, Table, Value as Lv};

use super::lauxlib::{arg_error, check_number, check_stack, check_string, opt_integer};
use super::lua_error::lua_error;

/// Widest `i[n]`/`I[n]`.
const MAX_INT_SIZE: usize = 32;
/// `!` without a number aligns to this (x86-64: a double's alignment).
const MAX_ALIGN: usize = 8;

/// The parse state of a format string: position, endianness, alignment.
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
    little: bool,
    align: usize,
}

impl Fmt<'_> {
    fn new(s: &[u8]) -> Fmt<'_> {
        Fmt {
            s,
            i: 0,
            little: true,
            align: 1,
        }
    }

    /// `getnum`: a decimal number at the cursor, or `default`.
    fn num(&mut self, lua: &Lua, default: usize) -> LuaResult<usize> {
        if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut n: i32 = 0;
        while let Some(d) = self.s.get(self.i).filter(|d| d.is_ascii_digit()) {
            let d = i32::from(d - b'0');
            if n > i32::MAX / 10 || n * 10 > i32::MAX - d {
                return Err(lua_error(lua, "integral size overflow"));
            }
            n = n * 10 + d;
            self.i += 1;
        }
        Ok(n as usize)
    }

    /// The next option byte, if any.
    fn next_opt(&mut self) -> Option<u8> {
        let opt = *self.s.get(self.i)?;
        self.i += 1;
        Some(opt)
    }

    /// `optsize`: the size of option `opt` (reading its number), 0 for the others.
    fn size(&mut self, lua: &Lua, opt: u8) -> LuaResult<usize> {
        Ok(match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.num(lua, 1)?,
            b'i' | b'I' => {
                let n = self.num(lua, 4)?;
                if n > MAX_INT_SIZE {
                    return Err(lua_error(
                        lua,
                        &format!("integral size {n} is larger than limit of {MAX_INT_SIZE}"),
                    ));
                }
                n
            }
            _ => 0,
        })
    }

    /// `controloptions`: spaces, endianness and alignment; anything else is an error.
    fn control(&mut self, lua: &Lua, opt: u8, func: &str) -> LuaResult<()> {
        match opt {
            b' ' => {}
            b'>' => self.little = false,
            b'<' => self.little = true,
            b'!' => {
                let a = self.num(lua, MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(lua_error(
                        lua,
                        &format!("alignment {a} is not a power of 2"),
                    ));
                }
                self.align = a;
            }
            other => {
                let msg = format!("invalid format option '{}'", char::from(other));
                return Err(arg_error(lua, 1, func, &msg));
            }
        }
        Ok(())
    }

    /// `gettoalign`: padding before an item of `size` at offset `len`.
    fn padding(&self, len: usize, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.align);
        (size - (len & (size - 1))) & (size - 1)
    }
}

fn is_int(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// `putinteger`: the low `size` bytes of the number as a 64-bit two's complement value
/// (bytes past the eighth are zero, as C's shift leaves them).
fn put_integer(n: f64, size: usize, little: bool, out: &mut Vec<u8>) {
    let mut v = if n < 0.0 { n as i64 as u64 } else { n as u64 };
    let mut bytes = vec![0u8; size];
    for b in bytes.iter_mut() {
        *b = (v & 0xff) as u8;
        v = v.checked_shr(8).unwrap_or(0);
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

/// `getinteger`: `size` bytes as an unsigned or sign-extended 64-bit number.
fn get_integer(data: &[u8], little: bool, signed: bool, size: usize) -> f64 {
    let mut v: u64 = 0;
    let mut push = |b: u8| v = (v << 8) | u64::from(b);
    if little {
        data.iter().rev().for_each(|&b| push(b));
    } else {
        data.iter().for_each(|&b| push(b));
    }
    if !signed {
        return v as f64;
    }
    if size == 0 {
        return v as i64 as f64;
    }
    let mask = u64::MAX.checked_shl(8 * size as u32 - 1).unwrap_or(0);
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

fn pack(lua: &Lua, mut args: MultiValue) -> LuaResult<mlua::String> {
    let fmt_s = check_string(lua, &args, 1, "pack")?;
    // C's b_pack pushes a nil after its arguments (a mark before its string buffer): a
    // missing first value is "got nil", later ones "got no value".
    args.push_back(Lv::Nil);
    let mut f = Fmt::new(&fmt_s);
    let mut out = Vec::new();
    let mut arg = 2;
    while let Some(opt) = f.next_opt() {
        let mut size = f.size(lua, opt)?;
        let pad = f.padding(out.len(), opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            _ if is_int(opt) => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                put_integer(n, size, f.little, &mut out);
            }
            b'x' => out.push(0),
            b'f' | b'd' => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                let mut bytes = if opt == b'f' {
                    (n as f32).to_le_bytes().to_vec()
                } else {
                    n.to_le_bytes().to_vec()
                };
                if !f.little {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            b'c' | b's' => {
                let s = check_string(lua, &args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // C's luaL_argcheck names the argument after the string (arg++ ran).
                    return Err(arg_error(lua, arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => f.control(lua, opt, "pack")?,
        }
    }
    lua.create_string(out)
}

fn unpack(lua: &Lua, args: MultiValue) -> LuaResult<MultiValue> {
    let fmt_s = check_string(lua, &args, 1, "unpack")?;
    let data = check_string(lua, &args, 2, "unpack")?;
    let start = opt_integer(lua, &args, 3, "unpack", 1)?;
    if start == 0 {
        return Err(arg_error(lua, 3, "unpack", "offset must be 1 or greater"));
    }
    // C keeps the position in a size_t: a negative offset wraps to a huge one.
    let mut pos = (start as u64).wrapping_sub(1) as usize;
    let mut f = Fmt::new(&fmt_s);
    let mut out: Vec<Lv> = Vec::new();
    let ld = data.len();
    let short = || arg_error(lua, 2, "unpack", "data string too short");
    while let Some(opt) = f.next_opt() {
        let mut size = f.size(lua, opt)?;
        pos = pos.wrapping_add(f.padding(pos, opt, size));
        if size > ld || pos > ld - size {
            return Err(short());
        }
        check_stack(lua, args.len() + out.len(), 2, "too many results")?;
        match opt {
            _ if is_int(opt) => {
                let bytes = &data[pos..pos + size];
                let signed = opt.is_ascii_lowercase();
                out.push(Lv::Number(get_integer(bytes, f.little, signed, size)));
            }
            b'x' => {}
            b'f' | b'd' => {
                let mut bytes = data[pos..pos + size].to_vec();
                if !f.little {
                    bytes.reverse();
                }
                let n = match (opt, bytes.as_slice()) {
                    (b'f', &[a, b, c, d]) => f64::from(f32::from_le_bytes([a, b, c, d])),
                    (_, b) => {
                        let mut eight = [0u8; 8];
                        eight.copy_from_slice(&b[..8]);
                        f64::from_le_bytes(eight)
                    }
                };
                out.push(Lv::Number(n));
            }
            b'c' => {
                if size == 0 {
                    let prev = match out.last() {
                        Some(v @ (Lv::Number(_) | Lv::Integer(_) | Lv::String(_))) => {
                            lua.coerce_number(v.clone())?
                        }
                        _ => None,
                    };
                    let Some(prev) = prev else {
                        return Err(lua_error(lua, "format 'c0' needs a previous size"));
                    };
                    out.pop();
                    size = if prev < 0.0 {
                        usize::MAX
                    } else {
                        prev as usize
                    };
                    if size > ld || pos > ld - size {
                        return Err(short());
                    }
                }
                out.push(Lv::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(lua_error(lua, "unfinished string in data"));
                };
                out.push(Lv::String(lua.create_string(&data[pos..pos + end])?));
                size = end + 1;
            }
            _ => f.control(lua, opt, "unpack")?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Lv::Number(pos.wrapping_add(1) as f64));
    Ok(out.into_iter().collect())
}

fn size(lua: &Lua, args: MultiValue) -> LuaResult<f64> {
    let fmt_s = check_string(lua, &args, 1, "size")?;
    let mut f = Fmt::new(&fmt_s);
    let mut total = 0usize;
    while let Some(opt) = f.next_opt() {
        let size = f.size(lua, opt)?;
        total += f.padding(total, opt, size);
        if opt == b's' {
            return Err(arg_error(lua, 1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "size", "option 'c0' has no fixed size"));
        }
        // Letters without a size (unknown options) are skipped here, as in C.
        if !opt.is_ascii_alphanumeric() {
            f.control(lua, opt, "size")?;
        }
        total += size;
    }
    Ok(total as f64)
}

/// Register `struct` in `globals`.
///
/// # Errors
/// Out of Lua memory.
pub(crate) fn register(lua: &Lua, globals: &Table) -> LuaResult<()> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(size)?)?;
    globals.raw_set("struct", t)
}
