//! The `struct` library Redis 7.0 gives scripts (Roberto Ierusalimschy's
//! lua_struct, which Redis embeds): `struct.pack(fmt, ...)`,
//! `struct.unpack(fmt, data [, pos])` and `struct.size(fmt)`, written here
//! to give the bytes, values and error texts Redis gives, quirks included:
//!
//! - options: `>` `<` (byte order; native is little), `!n` / `!` (largest
//!   alignment, `!` alone being 8), `x` (a zero byte), `b B h H l L T`
//!   (1, 1, 2, 2, 8, 8, 8 bytes; lower case signed), `i`/`I` with an
//!   optional size up to 32 (default 4), `c` with an optional count
//!   (default 1; `c0` is the whole string when packing and the previous
//!   value's length when unpacking), `s` (zero-terminated), `f` `d`, and
//!   spaces. `=` is not an option in this version of the library;
//! - integers travel through a 64-bit word as Lua numbers (doubles) do in
//!   C: bytes past the eighth pack as zero, a double out of range
//!   converts as x86-64 converts it, and no overflow is reported (Redis
//!   packs 70000 as `>I2` into `\x11\x70`);
//! - a format ends at its first zero byte, as a C string does;
//! - errors are raised from a C function (see [`c_function`]) so a
//!   script sees Lua's own `bad argument #n to 'pack' (...)` wording, with
//!   its position in front, exactly as from the C library.

use mlua::{Function, Lua, LuaString, Table, Value};

/// The largest integer size `i`/`I` take.
const MAX_INT_SIZE: usize = 32;

/// The alignment `!` alone sets: a double's, on our 64-bit targets.
const NATIVE_ALIGN: usize = 8;

/// 2^63, where doubles stop fitting a signed 64-bit word.
const TWO_63: f64 = (1u64 << 63) as f64;

/// Lua 5.1's limit on the values a C function may hold on its stack.
const MAX_C_STACK: usize = 8000;

/// A failure, raised the way the C library raises it.
#[derive(Debug, PartialEq)]
enum Failure {
    /// `luaL_error`: the message, after the caller's position.
    Plain(Vec<u8>),
    /// `luaL_argerror`: `bad argument #n to 'f' (message)`.
    Arg(i32, Vec<u8>),
}

fn plain(message: impl Into<Vec<u8>>) -> Failure {
    Failure::Plain(message.into())
}

fn bad_arg(n: usize, message: impl Into<Vec<u8>>) -> Failure {
    Failure::Arg(n as i32, message.into())
}

/// A format being read, with the byte order and alignment its control
/// options have set so far.
struct Format<'a> {
    rest: &'a [u8],
    big_endian: bool,
    max_align: usize,
}

impl<'a> Format<'a> {
    fn new(text: &'a [u8]) -> Self {
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        Format {
            rest: &text[..end],
            big_endian: false,
            max_align: 1,
        }
    }

    fn next_option(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    /// The decimal number that follows, or `default` when none does.
    fn number(&mut self, default: usize) -> Result<usize, Failure> {
        if !self.rest.first().is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut n: i32 = 0;
        while let Some(&d) = self.rest.first().filter(|d| d.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i32::from(d - b'0')))
                .ok_or_else(|| plain("integral size overflow"))?;
            self.rest = &self.rest[1..];
        }
        Ok(n as usize)
    }

    /// The bytes option `opt` occupies (0 for the variable and control
    /// options), reading its size digits.
    fn option_size(&mut self, opt: u8) -> Result<usize, Failure> {
        Ok(match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(plain(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size
            }
            _ => 0,
        })
    }

    /// Zero bytes to put before an option of `size` bytes at offset `at`.
    /// The arithmetic is the C library's, which for sizes that are not
    /// powers of two gives odd (but relied upon) results.
    fn padding(&self, at: usize, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.max_align);
        size.wrapping_sub(at & (size - 1)) & (size - 1)
    }

    /// Applies a control option; anything else is not a valid option.
    fn control(&mut self, opt: u8) -> Result<(), Failure> {
        match opt {
            b' ' => {}
            b'>' => self.big_endian = true,
            b'<' => self.big_endian = false,
            b'!' => {
                let align = self.number(NATIVE_ALIGN)?;
                if !align.is_power_of_two() {
                    return Err(plain(format!("alignment {align} is not a power of 2")));
                }
                self.max_align = align;
            }
            _ => {
                let mut message = b"invalid format option '".to_vec();
                message.extend_from_slice(&[opt, b'\'']);
                return Err(bad_arg(1, message));
            }
        }
        Ok(())
    }
}

/// `double` to `long` as x86-64 converts: out of range (and NaN) gives
/// the lowest value.
fn c_double_to_i64(n: f64) -> i64 {
    if (-TWO_63..TWO_63).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// `double` to `unsigned long` as compilers for x86-64 emit it: a signed
/// conversion below 2^63, otherwise one of `n - 2^63` with the top bit
/// flipped (so 2^64 and beyond give 0).
fn c_double_to_u64(n: f64) -> u64 {
    if n >= TWO_63 {
        c_double_to_i64(n - TWO_63) as u64 ^ (1 << 63)
    } else {
        c_double_to_i64(n) as u64
    }
}

/// The `size` bytes of an integer, held as the C library holds it in a
/// 64-bit word (so bytes past the eighth are zero).
fn integer_bytes(n: f64, size: usize, big_endian: bool, out: &mut Vec<u8>) {
    let word = if n < 0.0 {
        c_double_to_i64(n) as u64
    } else {
        c_double_to_u64(n)
    };
    let little = (0..size).map(|i| if i < 8 { (word >> (8 * i)) as u8 } else { 0 });
    if big_endian {
        let bytes: Vec<u8> = little.collect();
        out.extend(bytes.iter().rev());
    } else {
        out.extend(little);
    }
}

/// The integer in `bytes`, read into a 64-bit word (only the eight least
/// significant bytes survive) and sign-extended from the option's width
/// with the shift x86-64 does (its count taken modulo 64).
fn integer_value(bytes: &[u8], big_endian: bool, signed: bool) -> f64 {
    let mut word: u64 = 0;
    let mut take = |b: &u8| word = (word << 8) | u64::from(*b);
    if big_endian {
        bytes.iter().for_each(&mut take);
    } else {
        bytes.iter().rev().for_each(&mut take);
    }
    if !signed {
        return word as f64;
    }
    let sign_bits = u64::MAX.wrapping_shl((bytes.len() * 8).wrapping_sub(1) as u32);
    if word & sign_bits != 0 {
        word |= sign_bits;
    }
    word as i64 as f64
}

/// The names `luaL_typename` gives.
fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// A function's arguments as the C library's `luaL_check*` calls see them.
struct Args<'a> {
    lua: &'a Lua,
    values: Vec<Value>,
    /// What an index past the arguments reads as: `pack` pushes a nil
    /// before its buffer, so there it is "nil" rather than "no value".
    past_end: Option<Value>,
}

impl Args<'_> {
    fn get(&self, n: usize) -> Option<&Value> {
        self.values.get(n - 1).or(self.past_end.as_ref())
    }

    fn number(&self, n: usize) -> Result<f64, Failure> {
        let v = self.get(n);
        match v.and_then(|v| self.lua.coerce_number(v.clone()).ok().flatten()) {
            Some(x) => Ok(x),
            None => Err(bad_arg(n, format!("number expected, got {}", type_name(v)))),
        }
    }

    fn string(&self, n: usize) -> Result<LuaString, Failure> {
        let v = self.get(n);
        match v.and_then(|v| self.lua.coerce_string(v.clone()).ok().flatten()) {
            Some(s) => Ok(s),
            None => Err(bad_arg(n, format!("string expected, got {}", type_name(v)))),
        }
    }
}

/// `struct.pack(fmt, ...)`.
fn pack(args: &mut Args) -> Result<Vec<u8>, Failure> {
    let fmt = args.string(1)?;
    let fmt = fmt.as_bytes();
    args.past_end = Some(Value::Nil);
    let mut format = Format::new(&fmt);
    let mut out = Vec::new();
    let mut arg = 2;
    while let Some(opt) = format.next_option() {
        let mut size = format.option_size(opt)?;
        let padding = format.padding(out.len(), opt, size);
        out.resize(out.len() + padding, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = args.number(arg)?;
                arg += 1;
                integer_bytes(n, size, format.big_endian, &mut out);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = args.number(arg)? as f32;
                arg += 1;
                out.extend(if format.big_endian {
                    f.to_be_bytes()
                } else {
                    f.to_le_bytes()
                });
            }
            b'd' => {
                let d = args.number(arg)?;
                arg += 1;
                out.extend(if format.big_endian {
                    d.to_be_bytes()
                } else {
                    d.to_le_bytes()
                });
            }
            b'c' | b's' => {
                let s = args.string(arg)?;
                let s = s.as_bytes();
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                // The C library names the argument after this one.
                if s.len() < size {
                    return Err(bad_arg(arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => format.control(opt)?,
        }
    }
    Ok(out)
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position after
/// the last byte read.
fn unpack(args: &Args) -> Result<Vec<Value>, Failure> {
    let fmt = args.string(1)?;
    let fmt = fmt.as_bytes();
    let data = args.string(2)?;
    let data = data.as_bytes();
    let start = match args.get(3) {
        None | Some(Value::Nil) => 1,
        Some(_) => c_double_to_i64(args.number(3)?),
    };
    // An offset is a size_t in C: a negative one is huge, not refused.
    let mut pos = start as u64 as usize;
    if pos == 0 {
        return Err(bad_arg(3, "offset must be 1 or greater"));
    }
    pos -= 1;
    let too_short = || bad_arg(2, "data string too short");
    let fits = |pos: usize, size: usize| size <= data.len() && pos <= data.len() - size;
    let mut format = Format::new(&fmt);
    let mut values: Vec<Value> = Vec::new();
    while let Some(opt) = format.next_option() {
        let mut size = format.option_size(opt)?;
        pos = pos.wrapping_add(format.padding(pos, opt, size));
        if !fits(pos, size) {
            return Err(too_short());
        }
        // The value and the final position must fit on a C stack.
        if args.values.len() + values.len() + 2 > MAX_C_STACK {
            return Err(plain("stack overflow (too many results)"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[pos..pos + size];
                let n = integer_value(bytes, format.big_endian, opt.is_ascii_lowercase());
                values.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let bytes: [u8; 4] = data[pos..pos + 4].try_into().expect("four bytes");
                let f = if format.big_endian {
                    f32::from_be_bytes(bytes)
                } else {
                    f32::from_le_bytes(bytes)
                };
                values.push(Value::Number(f64::from(f)));
            }
            b'd' => {
                let bytes: [u8; 8] = data[pos..pos + 8].try_into().expect("eight bytes");
                let d = if format.big_endian {
                    f64::from_be_bytes(bytes)
                } else {
                    f64::from_le_bytes(bytes)
                };
                values.push(Value::Number(d));
            }
            b'c' => {
                if size == 0 {
                    // The length is the previous value, which leaves the
                    // results (a string of digits counts, as in Lua).
                    let length = values
                        .last()
                        .and_then(|v| args.lua.coerce_number(v.clone()).ok().flatten())
                        .ok_or_else(|| plain("format 'c0' needs a previous size"))?;
                    values.pop();
                    size = c_double_to_u64(length) as usize;
                    if !fits(pos, size) {
                        return Err(too_short());
                    }
                }
                values.push(lua_string(args.lua, &data[pos..pos + size])?);
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(plain("unfinished string in data"));
                };
                values.push(lua_string(args.lua, &data[pos..pos + len])?);
                size = len + 1;
            }
            _ => format.control(opt)?,
        }
        pos = pos.wrapping_add(size);
    }
    values.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(values)
}

fn lua_string(lua: &Lua, bytes: &[u8]) -> Result<Value, Failure> {
    lua.create_string(bytes)
        .map(Value::String)
        .map_err(|e| plain(e.to_string()))
}

/// `struct.size(fmt)`: the bytes `pack` makes for a fixed-size format.
fn size(args: &Args) -> Result<f64, Failure> {
    let fmt = args.string(1)?;
    let fmt = fmt.as_bytes();
    let mut format = Format::new(&fmt);
    let mut total: usize = 0;
    while let Some(opt) = format.next_option() {
        let size = format.option_size(opt)?;
        total = total.wrapping_add(format.padding(total, opt, size));
        if opt == b's' {
            return Err(bad_arg(1, "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(bad_arg(1, "option 'c0' has no fixed size"));
        }
        // Letters and digits that are no option count as nothing here.
        if !opt.is_ascii_alphanumeric() {
            format.control(opt)?;
        }
        total = total.wrapping_add(size);
    }
    Ok(total as i64 as f64)
}

/// The `struct` table.
pub fn structlib(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        native(lua, |lua, values| {
            let mut args = Args {
                lua,
                values,
                past_end: None,
            };
            let bytes = pack(&mut args)?;
            Ok(vec![lua_string(lua, &bytes)?])
        })?,
    )?;
    t.set(
        "unpack",
        native(lua, |lua, values| {
            unpack(&Args {
                lua,
                values,
                past_end: None,
            })
        })?,
    )?;
    t.set(
        "size",
        native(lua, |lua, values| {
            let n = size(&Args {
                lua,
                values,
                past_end: None,
            })?;
            Ok(vec![Value::Number(n)])
        })?,
    )?;
    Ok(t)
}

/// One of the library's functions as Lua sees it. `body` gets the
/// arguments and answers values or a [`Failure`]; between them and Lua
/// sits a C function (see [`c_function`]), which holds as many
/// arguments and results as the C library's functions can.
fn native(
    lua: &Lua,
    body: fn(&Lua, Vec<Value>) -> Result<Vec<Value>, Failure>,
) -> mlua::Result<Function> {
    let inner = lua.create_function(move |lua, (packed, count): (Table, i64)| {
        let args = (1..=count)
            .map(|i| packed.raw_get(i))
            .collect::<mlua::Result<Vec<Value>>>()?;
        let (argument, message) = match body(lua, args) {
            Ok(values) => {
                let count = values.len();
                let results = lua.create_sequence_from(values)?;
                return Ok((true, Value::Table(results), Value::Integer(count as i64)));
            }
            Err(Failure::Plain(message)) => (0, message),
            Err(Failure::Arg(n, message)) => (n, message),
        };
        let message = Value::String(lua.create_string(message)?);
        Ok((false, Value::Integer(argument.into()), message))
    })?;
    c_function(lua, inner)
}

/// Wraps `inner` (taking `(arguments table, count)`, answering `(true,
/// results table, count)` or `(false, argument, message)`) in a C
/// function taking and returning the values themselves, that raises a
/// failure as the C library's checks do: with `luaL_argerror` when it
/// names an argument (1 and up), else after the caller's position. Being
/// the function the script called, it is what Lua names in `bad argument
/// #n to 'pack'` (and `calling 'pack' on bad self` for `struct:pack()`).
fn c_function(lua: &Lua, inner: Function) -> mlua::Result<Function> {
    unsafe extern "C-unwind" fn trampoline(
        state: *mut mlua::ffi::lua_State,
    ) -> std::os::raw::c_int {
        use mlua::ffi;
        // SAFETY: called by Lua with `inner` as upvalue 1. Lua guarantees
        // LUA_MINSTACK free slots above the arguments and each step below
        // uses at most three, but for the results, whose room is checked
        // first. Nothing owned by Rust is alive when an error jumps.
        unsafe {
            let n = ffi::lua_gettop(state);
            ffi::lua_createtable(state, n, 0);
            ffi::lua_insert(state, 1);
            for i in (1..=n).rev() {
                ffi::lua_rawseti(state, 1, i as ffi::lua_Integer);
            }
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_insert(state, 1);
            ffi::lua_pushinteger(state, n as ffi::lua_Integer);
            ffi::lua_call(state, 2, 3);
            if ffi::lua_toboolean(state, 1) != 0 {
                let count = ffi::lua_tointeger(state, 3) as std::os::raw::c_int;
                ffi::lua_remove(state, 1);
                ffi::lua_settop(state, 1);
                // `unpack` has kept within Lua's limit, so this holds.
                if ffi::lua_checkstack(state, count) == 0 {
                    ffi::luaL_where(state, 1);
                    ffi::lua_pushstring(state, c"stack overflow (too many results)".as_ptr());
                    ffi::lua_concat(state, 2);
                    ffi::lua_error(state);
                }
                for i in 1..=count {
                    ffi::lua_rawgeti(state, 1, i as ffi::lua_Integer);
                }
                return count;
            }
            let argument = ffi::lua_tointeger(state, 2) as std::os::raw::c_int;
            if argument > 0 {
                return ffi::luaL_argerror(state, argument, ffi::lua_tostring(state, 3));
            }
            ffi::luaL_where(state, 1);
            ffi::lua_pushvalue(state, 3);
            ffi::lua_concat(state, 2);
            ffi::lua_error(state)
        }
    }
    // SAFETY: pushes one closure over `inner` (the only argument on the
    // stack) and leaves it as the result.
    unsafe {
        lua.exec_raw(inner, |state| {
            mlua::ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals()
            .set("struct", structlib(&lua).unwrap())
            .unwrap();
        lua
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The bytes `struct.pack(args)` makes, as hex.
    fn packed(lua: &Lua, args: &str) -> String {
        let s: LuaString = lua
            .load(format!("return struct.pack({args})"))
            .eval()
            .unwrap();
        hex(&s.as_bytes())
    }

    /// The message a call raises, as a script on line 1 of chunk `t`
    /// sees it.
    fn error_of(lua: &Lua, call: &str) -> String {
        let chunk =
            format!("local ok, e = pcall(function() return {call} end) assert(not ok) return e");
        lua.load(chunk).set_name("=t").eval::<String>().unwrap()
    }

    /// `unpack`'s results, rendered as `%.17g` numbers and quoted strings.
    fn unpacked(lua: &Lua, args: &str) -> String {
        let chunk = format!(
            "local r = {{struct.unpack({args})}} local o = {{}} \
             for i = 1, #r do o[i] = type(r[i]) == 'string' and string.format('%q', r[i]) \
             or string.format('%.17g', r[i]) end return table.concat(o, ' ')"
        );
        lua.load(chunk).eval::<String>().unwrap()
    }

    #[test]
    fn every_option_round_trips() {
        let lua = lua();
        let script = r#"
            local fmt = '>bBhHlLTiIi1I3i8I16fdc3sxc0'
            local p = struct.pack(fmt, -5, 250, -300, 65000, -2^40, 2^53, 77,
                -70000, 4000000000, -1, 16777215, -2^62, 12345, 0.5, 1/3,
                'abc', 'zero\0less?', 'tail')
            assert(#p == 97, #p)
            local r = {struct.unpack(fmt:sub(1, -3), p)}
            local want = {-5, 250, -300, 65000, -2^40, 2^53, 77, -70000,
                4000000000, -1, 16777215, -2^62, 12345, 0.5, 1/3, 'abc', 'zero'}
            for i, w in ipairs(want) do assert(r[i] == w, i .. ': ' .. tostring(r[i])) end
            return r[#r]
        "#;
        // "zero\0less?" packs whole under `s`, so unpacking `s` stops at
        // its zero and the next position falls inside it.
        let next: f64 = lua.load(script).eval().unwrap();
        assert_eq!(next, 88.0);
        assert_eq!(packed(&lua, "'<i', 1"), "01000000");
        assert_eq!(packed(&lua, "'>i', 1"), "00000001");
        assert_eq!(packed(&lua, "'T', 5"), "0500000000000000");
        assert_eq!(
            packed(&lua, "'>lL', -2, 3"),
            "fffffffffffffffe0000000000000003"
        );
        assert_eq!(packed(&lua, "'>f', 0.1"), "3dcccccd");
        assert_eq!(packed(&lua, "'>d', 0.1"), "3fb999999999999a");
        assert_eq!(packed(&lua, "'<d', -0.0"), "0000000000000080");
        assert_eq!(packed(&lua, "'<f', 1e300"), "0000807f");
        assert_eq!(
            unpacked(&lua, "'>f', '\\61\\204\\204\\205'"),
            "0.10000000149011612 5"
        );
        assert_eq!(unpacked(&lua, "'xb', '\\1\\2'"), "2 3");
        assert_eq!(unpacked(&lua, "'ss', 'ab\\0cd\\0e'"), "\"ab\" \"cd\" 7");
        assert_eq!(packed(&lua, "'s', 'a\\0b'"), "61006200");
        assert_eq!(packed(&lua, "'s', 12.5"), "31322e3500");
        assert_eq!(packed(&lua, "'c0', 1e100"), "31652b313030");
        assert_eq!(packed(&lua, "'c', 'abcd'"), "61");
        assert_eq!(packed(&lua, "'c2 c0', 'abcd', 'xy'"), "61627879");
        assert_eq!(packed(&lua, "'b\\0b', 1, 2"), "01");
        assert_eq!(packed(&lua, "'>h', '0x10'"), "0010");
        assert_eq!(packed(&lua, "'>h', ' 12 '"), "000c");
    }

    #[test]
    fn alignment_follows_the_bang_option() {
        let lua = lua();
        assert_eq!(packed(&lua, "'b!h', 1, 2"), "01000200");
        assert_eq!(packed(&lua, "'b!4i', 1, 2"), "0100000002000000");
        assert_eq!(packed(&lua, "'b!4d', 1, 2"), "010000000000000000000040");
        assert_eq!(
            packed(&lua, "'b!d', 1, 2"),
            "01000000000000000000000000000040"
        );
        assert_eq!(packed(&lua, "'b!2d', 1, 2"), "01000000000000000040");
        assert_eq!(
            packed(&lua, "'b!16d', 1, 2"),
            "01000000000000000000000000000040"
        );
        assert_eq!(packed(&lua, "'!4bc3i', 1, 'abc', 2"), "0161626302000000");
        assert_eq!(packed(&lua, "'!4bsi', 1, 'ab', 2"), "0161620002000000");
        assert_eq!(
            packed(&lua, "'!4bfi', 1, 2.5, 3"),
            "010000000000204003000000"
        );
        assert_eq!(packed(&lua, "'!xh', 1"), "00000100");
        // Sizes that are not powers of two align as the C arithmetic has it.
        assert_eq!(packed(&lua, "'!4i3h', 1, 2"), "0000010000000200");
        assert_eq!(packed(&lua, "'bbb!8i3', 1, 2, 3, 4"), "010203040000");
        assert_eq!(packed(&lua, "'!8bbi5', 1, 2, 3"), "0102000000000300000000");
        assert_eq!(packed(&lua, "'!8bi6', 1, 2"), "010000000000020000000000");
        assert_eq!(
            packed(&lua, "'!8bi12', 1, 2"),
            "0100000000000000020000000000000000000000"
        );
        assert_eq!(
            unpacked(&lua, "'!4bi', '\\1\\0\\0\\0\\2\\0\\0\\0'"),
            "1 2 9"
        );
        assert_eq!(
            unpacked(&lua, "'!4si', 'a\\0\\0\\0\\1\\0\\0\\0'"),
            "\"a\" 1 9"
        );
        let size = |fmt: &str| -> f64 {
            lua.load(format!("return struct.size('{fmt}')"))
                .eval()
                .unwrap()
        };
        assert_eq!(size(">i!4bi"), 12.0);
        assert_eq!(size("bi"), 5.0);
        assert_eq!(size("!bd"), 16.0);
        assert_eq!(size("bhlLTfdxiI3"), 47.0);
        assert_eq!(size("c7"), 7.0);
        // Letters and digits that are no option are skipped by size.
        assert_eq!(size("z5"), 0.0);
    }

    #[test]
    fn integers_go_through_a_64_bit_word() {
        let lua = lua();
        assert_eq!(packed(&lua, "'>I2', 70000"), "1170");
        assert_eq!(packed(&lua, "'<B', 256"), "00");
        assert_eq!(packed(&lua, "'<b', -129"), "7f");
        assert_eq!(packed(&lua, "'<i', -1.7"), "ffffffff");
        assert_eq!(packed(&lua, "'<i', 1.7"), "01000000");
        assert_eq!(packed(&lua, "'<i10', -1"), "ffffffffffffffff0000");
        assert_eq!(
            packed(&lua, "'>i16', -2"),
            "0000000000000000fffffffffffffffe"
        );
        assert_eq!(packed(&lua, "'<i0', 5"), "");
        // Out-of-range doubles convert as x86-64 converts them.
        assert_eq!(packed(&lua, "'>L', 2^64"), "0000000000000000");
        assert_eq!(packed(&lua, "'>L', 2^63 + 4096"), "8000000000001000");
        assert_eq!(packed(&lua, "'>L', 0/0"), "8000000000000000");
        assert_eq!(packed(&lua, "'>l', -2^63 - 4096"), "8000000000000000");
        assert_eq!(packed(&lua, "'<i', 1/0"), "00000000");
        assert_eq!(packed(&lua, "'<I9', 2^70"), "000000000000000000");
    }

    #[test]
    fn signed_values_are_sign_extended_on_unpack() {
        let lua = lua();
        assert_eq!(unpacked(&lua, "'>h', '\\128\\0'"), "-32768 3");
        assert_eq!(unpacked(&lua, "'>H', '\\128\\0'"), "32768 3");
        assert_eq!(unpacked(&lua, "'<i3', '\\255\\255\\128'"), "-8323073 4");
        assert_eq!(unpacked(&lua, "'<I3', '\\1\\2\\3'"), "197121 4");
        assert_eq!(unpacked(&lua, "'>l', string.rep('\\255', 8)"), "-1 9");
        assert_eq!(
            unpacked(&lua, "'>L', string.rep('\\255', 8)"),
            "1.8446744073709552e+19 9"
        );
        // Past eight bytes only the low eight survive, and the sign bit is
        // found with the shift count taken modulo 64.
        assert_eq!(unpacked(&lua, "'<i16', string.rep('\\255', 16)"), "-1 17");
        assert_eq!(
            unpacked(
                &lua,
                "'>i16', string.rep('\\0', 8) .. '\\128' .. string.rep('\\0', 7)"
            ),
            "-9.2233720368547758e+18 17"
        );
        assert_eq!(
            unpacked(&lua, "'<i9', '\\0\\0\\0\\0\\0\\0\\0\\128\\0'"),
            "-128 10"
        );
        assert_eq!(
            unpacked(&lua, "'<i9', '\\0\\0\\0\\0\\0\\0\\0\\0\\1'"),
            "0 10"
        );
        assert_eq!(unpacked(&lua, "'<i0', ''"), "0 1");
    }

    #[test]
    fn unpack_takes_a_start_and_c0_lengths() {
        let lua = lua();
        assert_eq!(unpacked(&lua, "'>I2', '\\1\\2\\3', 2"), "515 4");
        assert_eq!(unpacked(&lua, "'<c3', 'abcdef', 3"), "\"cde\" 6");
        assert_eq!(unpacked(&lua, "'b', '\\1\\2\\3', '2'"), "2 3");
        assert_eq!(unpacked(&lua, "'b', '\\1\\2\\3', 2.9"), "2 3");
        assert_eq!(unpacked(&lua, "'b', '\\1\\2\\3', nil"), "1 2");
        assert_eq!(unpacked(&lua, "'b', 123"), "49 2");
        assert_eq!(unpacked(&lua, "'', 'abc', 100"), "100");
        // A negative start is a huge size_t in C; so is the position back.
        assert_eq!(unpacked(&lua, "'', 'abc', -1"), "-1");
        assert_eq!(unpacked(&lua, "'bc0', '\\3abcd'"), "\"abc\" 5");
        assert_eq!(unpacked(&lua, "'bc0', '\\0abcd'"), "\"\" 2");
        assert_eq!(unpacked(&lua, "'c1c0', '3abcd'"), "\"abc\" 5");
        assert_eq!(unpacked(&lua, "'Bc0b', '\\2abcd'"), "\"ab\" 99 5");
    }

    #[test]
    fn errors_read_as_the_c_library_words_them() {
        let lua = lua();
        let cases = [
            (
                "struct.pack('i33', 1)",
                "t:1: integral size 33 is larger than limit of 32",
            ),
            ("struct.size('i99999999999')", "t:1: integral size overflow"),
            (
                "struct.pack('c99999999999', 'a')",
                "t:1: integral size overflow",
            ),
            (
                "struct.pack('=i', 1)",
                "t:1: bad argument #1 to 'pack' (invalid format option '=')",
            ),
            (
                "struct.pack('b5', 1)",
                "t:1: bad argument #1 to 'pack' (invalid format option '5')",
            ),
            (
                "struct.pack(12, 1)",
                "t:1: bad argument #1 to 'pack' (invalid format option '1')",
            ),
            (
                "struct.pack('b!3i', 1, 2)",
                "t:1: alignment 3 is not a power of 2",
            ),
            ("struct.pack('!0')", "t:1: alignment 0 is not a power of 2"),
            (
                "struct.pack('<i0')",
                "t:1: bad argument #2 to 'pack' (number expected, got nil)",
            ),
            (
                "struct.pack('>h', 'x')",
                "t:1: bad argument #2 to 'pack' (number expected, got string)",
            ),
            (
                "struct.pack('>h', {})",
                "t:1: bad argument #2 to 'pack' (number expected, got table)",
            ),
            (
                "struct.pack('!4bi', 1)",
                "t:1: bad argument #3 to 'pack' (number expected, got nil)",
            ),
            (
                "struct.pack('c5', 'ab')",
                "t:1: bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack('s')",
                "t:1: bad argument #2 to 'pack' (string expected, got nil)",
            ),
            (
                "struct.pack()",
                "t:1: bad argument #1 to 'pack' (string expected, got no value)",
            ),
            (
                "struct:pack('b', 1)",
                "t:1: calling 'pack' on bad self (string expected, got table)",
            ),
            (
                "struct.unpack('>I2', '\\1\\2\\3', 3)",
                "t:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('>I2', '\\1\\2\\3', 0)",
                "t:1: bad argument #3 to 'unpack' (offset must be 1 or greater)",
            ),
            (
                "struct.unpack('>I2', '\\1\\2\\3', -1)",
                "t:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('>', 'abc', 100)",
                "t:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('b', 'abc', 'x')",
                "t:1: bad argument #3 to 'unpack' (number expected, got string)",
            ),
            (
                "struct.unpack('b')",
                "t:1: bad argument #2 to 'unpack' (string expected, got no value)",
            ),
            (
                "struct.unpack('bc0', '\\9abcd')",
                "t:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('bc0', '\\255abcd')",
                "t:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('c1c0', 'xabcd')",
                "t:1: format 'c0' needs a previous size",
            ),
            (
                "struct.unpack('sc0', 'a\\0bc')",
                "t:1: format 'c0' needs a previous size",
            ),
            (
                "struct.unpack('c0', 'abc')",
                "t:1: format 'c0' needs a previous size",
            ),
            (
                "struct.unpack('s', 'abc')",
                "t:1: unfinished string in data",
            ),
            (
                "struct.unpack('b z', '\\1\\2')",
                "t:1: bad argument #1 to 'unpack' (invalid format option 'z')",
            ),
            (
                "struct.unpack('c2147483647', 'ab')",
                "t:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.size('s')",
                "t:1: bad argument #1 to 'size' (option 's' has no fixed size)",
            ),
            (
                "struct.size('c0')",
                "t:1: bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ),
            (
                "struct.size('#')",
                "t:1: bad argument #1 to 'size' (invalid format option '#')",
            ),
            ("struct.size('!3')", "t:1: alignment 3 is not a power of 2"),
            (
                "struct.size()",
                "t:1: bad argument #1 to 'size' (string expected, got no value)",
            ),
        ];
        for (call, want) in cases {
            assert_eq!(error_of(&lua, call), want, "{call}");
        }
    }

    #[test]
    fn unpack_stops_where_a_c_stack_would() {
        let lua = lua();
        // Two arguments, 7997 values and the position: the most Lua 5.1
        // lets a C function hold.
        let count: f64 = lua
            .load("return select('#', struct.unpack(string.rep('B', 7997), string.rep('a', 7997)))")
            .eval()
            .unwrap();
        assert_eq!(count, 7998.0);
        assert_eq!(
            error_of(
                &lua,
                "struct.unpack(string.rep('B', 7998), string.rep('a', 7998))"
            ),
            "t:1: stack overflow (too many results)"
        );
        // Extra arguments take room from the results, as on a C stack.
        assert_eq!(
            error_of(
                &lua,
                "struct.unpack(string.rep('B', 7996), string.rep('a', 7996), 1, 1)"
            ),
            "t:1: stack overflow (too many results)"
        );
        // And pack takes thousands of arguments.
        let len: f64 = lua
            .load(
                "local t = {} for i = 1, 7990 do t[i] = i % 256 end \
                   return #struct.pack(string.rep('B', 7990), unpack(t))",
            )
            .eval()
            .unwrap();
        assert_eq!(len, 7990.0);
    }

    #[test]
    fn alignment_arithmetic_matches_c() {
        let mut f = Format::new(b"");
        f.max_align = 4;
        assert_eq!(f.padding(0, b'i', 3), 2);
        assert_eq!(f.padding(5, b'h', 2), 1);
        assert_eq!(f.padding(1, b'c', 4), 0);
        assert_eq!(f.padding(1, b'i', 0), 0);
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
        assert_eq!(c_double_to_u64(f64::INFINITY), 0);
        assert_eq!(c_double_to_i64(f64::NAN), i64::MIN);
    }
}
