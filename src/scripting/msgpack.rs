//! The `cmsgpack` library Redis gives scripts: MessagePack encoding of Lua
//! values (`pack`) and decoding back (`unpack`, `unpack_one`,
//! `unpack_limit`), with the choices of the lua-cmsgpack module Redis
//! embeds, so the bytes a script builds are the ones it builds on Redis:
//!
//! - a number equal to a 64-bit integer is packed as the smallest integer
//!   form; any other number as a float32 when that is exact, else a
//!   float64;
//! - a table whose keys are exactly 1..n is an array, any other a map
//!   (pairs in Lua's own iteration order); tables nested 16 deep are
//!   packed as nil, which also ends circular references;
//! - functions, userdata and threads pack as nil;
//! - every integer unpacks as a Lua number, binary strings as strings.

use mlua::{Lua, MultiValue, Table, Value};

/// Tables nested deeper than this pack as nil.
const MAX_PACK_NESTING: usize = 16;

/// Nesting beyond this in an input is refused while unpacking (the Lua C
/// stack would otherwise grow with hostile input).
const MAX_UNPACK_NESTING: usize = 256;

fn runtime(message: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(message.into())
}

/// The `cmsgpack` table.
pub fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(runtime(
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                pack_value(v, &mut out, 0)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let input = string_arg(lua, &args, "unpack")?;
            unpack(lua, &input.as_bytes(), 0, 0)
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let input = string_arg(lua, &args, "unpack_one")?;
            let offset = int_arg(&args, 1, "unpack_one")?.unwrap_or(0);
            unpack(lua, &input.as_bytes(), 1, offset)
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let input = string_arg(lua, &args, "unpack_limit")?;
            let Some(limit) = int_arg(&args, 1, "unpack_limit")? else {
                return Err(runtime(
                    "bad argument #2 to 'unpack_limit' (number expected, got no value)",
                ));
            };
            let offset = int_arg(&args, 2, "unpack_limit")?.unwrap_or(0);
            unpack(lua, &input.as_bytes(), limit, offset)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// The input string (a number is taken as its text, as Lua's
/// `luaL_checklstring` does).
fn string_arg(lua: &Lua, args: &MultiValue, function: &str) -> mlua::Result<mlua::LuaString> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => lua.create_string(super::convert::format_g(*n, 14)),
        Some(Value::Integer(n)) => lua.create_string(n.to_string()),
        other => Err(runtime(format!(
            "bad argument #1 to '{function}' (string expected, got {})",
            other.map_or("no value", |v| v.type_name())
        ))),
    }
}

fn int_arg(args: &MultiValue, at: usize, function: &str) -> mlua::Result<Option<i64>> {
    match args.get(at) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Integer(n)) => Ok(Some(*n)),
        Some(Value::Number(n)) => Ok(Some(*n as i64)),
        Some(Value::String(s)) => std::str::from_utf8(&s.as_bytes())
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(|n| Some(n as i64))
            .ok_or_else(|| {
                runtime(format!(
                    "bad argument #{} to '{function}' (number expected, got string)",
                    at + 1
                ))
            }),
        Some(other) => Err(runtime(format!(
            "bad argument #{} to '{function}' (number expected, got {})",
            at + 1,
            other.type_name()
        ))),
    }
}

// ----- packing -----

fn pack_value(v: &Value, out: &mut Vec<u8>, level: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => pack_int(*n, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => pack_bytes(&s.as_bytes(), out),
        Value::Table(t) if level < MAX_PACK_NESTING => pack_table(t, out, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && (n as i64) as f64 == n {
        pack_int(n as i64, out);
        return;
    }
    let single = n as f32;
    if single as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&single.to_bits().to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_bits().to_be_bytes());
    }
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        match n {
            0..=0x7f => out.push(n as u8),
            0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= i16::MIN as i64 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// A header for a collection of `len` items: the fix form up to 15, then
/// the 16- and 32-bit forms.
fn pack_header(len: usize, fix: u8, wide: u8, out: &mut Vec<u8>) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(wide);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(wide + 1);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// The length of `t` as an array: its keys are exactly 1..n.
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    let (mut count, mut max) = (0usize, 0f64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.floor() != n {
            return Ok(None);
        }
        count += 1;
        max = max.max(n);
    }
    Ok((max == count as f64).then_some(count))
}

fn pack_table(t: &Table, out: &mut Vec<u8>, level: usize) -> mlua::Result<()> {
    if let Some(len) = array_len(t)? {
        pack_header(len, 0x90, 0xdc, out);
        for i in 1..=len {
            pack_value(&t.raw_get::<Value>(i)?, out, level + 1)?;
        }
        return Ok(());
    }
    // Two walks in Lua's (unchanged) order: the count, then the pairs.
    // Values are dropped as the walk goes: each held one takes a slot of
    // the binding's reference stack, which a big table would exhaust.
    let mut count = 0;
    for pair in t.clone().pairs::<Value, Value>() {
        pair?;
        count += 1;
    }
    pack_header(count, 0x80, 0xde, out);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        pack_value(&k, out, level + 1)?;
        pack_value(&v, out, level + 1)?;
    }
    Ok(())
}

// ----- unpacking -----

enum Bad {
    /// The input ends inside an object.
    Eof,
    /// A byte no object starts with, or nesting too deep.
    Format,
    Lua(mlua::Error),
}

impl From<mlua::Error> for Bad {
    fn from(e: mlua::Error) -> Self {
        Bad::Lua(e)
    }
}

/// Decodes up to `limit` objects from `input[offset..]` (all of them when
/// both are 0). With a limit or offset, the first result is the offset
/// after the last object decoded, or -1 at the end of the input.
fn unpack(lua: &Lua, input: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    if offset < 0 || limit < 0 {
        return Err(runtime(format!(
            "Invalid request to unpack with offset of {offset} and limit of {limit}."
        )));
    }
    if offset as u64 > input.len() as u64 {
        return Err(runtime(format!(
            "Start offset {offset} greater than input length {}.",
            input.len()
        )));
    }
    let all = limit == 0 && offset == 0;
    let limit = if all { i64::MAX } else { limit };
    let mut reader = Reader {
        data: input,
        at: offset as usize,
    };
    let mut values = Vec::new();
    while reader.at < input.len() && (values.len() as i64) < limit {
        match reader.value(lua, 0) {
            Ok(v) => values.push(v),
            Err(Bad::Eof) => return Err(runtime("Missing bytes in input.")),
            Err(Bad::Format) => return Err(runtime("Bad data format in input.")),
            Err(Bad::Lua(e)) => return Err(e),
        }
    }
    if !all {
        let next = if reader.at == input.len() {
            -1
        } else {
            reader.at as i64
        };
        values.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_iter(values))
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Bad> {
        let end = self.at.checked_add(n).ok_or(Bad::Eof)?;
        let bytes = self.data.get(self.at..end).ok_or(Bad::Eof)?;
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Bad> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("took N bytes"))
    }

    fn len(&mut self, width: usize) -> Result<usize, Bad> {
        Ok(match width {
            1 => self.array::<1>()?[0] as usize,
            2 => u16::from_be_bytes(self.array()?) as usize,
            _ => u32::from_be_bytes(self.array()?) as usize,
        })
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, Bad> {
        let tag = self.array::<1>()?[0];
        let number = |n: f64| Ok(Value::Number(n));
        match tag {
            0x00..=0x7f => number(tag as f64),
            0x80..=0x8f => self.map(lua, (tag & 0x0f) as usize, depth),
            0x90..=0x9f => self.list(lua, (tag & 0x0f) as usize, depth),
            0xa0..=0xbf => self.string(lua, (tag & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.len(1)?;
                self.string(lua, n)
            }
            0xc5 | 0xda => {
                let n = self.len(2)?;
                self.string(lua, n)
            }
            0xc6 | 0xdb => {
                let n = self.len(4)?;
                self.string(lua, n)
            }
            0xca => number(f32::from_bits(u32::from_be_bytes(self.array()?)) as f64),
            0xcb => number(f64::from_bits(u64::from_be_bytes(self.array()?))),
            0xcc => number(self.array::<1>()?[0] as f64),
            0xcd => number(u16::from_be_bytes(self.array()?) as f64),
            0xce => number(u32::from_be_bytes(self.array()?) as f64),
            0xcf => number(u64::from_be_bytes(self.array()?) as f64),
            0xd0 => number(self.array::<1>()?[0] as i8 as f64),
            0xd1 => number(i16::from_be_bytes(self.array()?) as f64),
            0xd2 => number(i32::from_be_bytes(self.array()?) as f64),
            0xd3 => number(i64::from_be_bytes(self.array()?) as f64),
            0xdc => {
                let n = self.len(2)?;
                self.list(lua, n, depth)
            }
            0xdd => {
                let n = self.len(4)?;
                self.list(lua, n, depth)
            }
            0xde => {
                let n = self.len(2)?;
                self.map(lua, n, depth)
            }
            0xdf => {
                let n = self.len(4)?;
                self.map(lua, n, depth)
            }
            0xe0..=0xff => number(tag as i8 as f64),
            _ => Err(Bad::Format),
        }
    }

    fn string(&mut self, lua: &Lua, n: usize) -> Result<Value, Bad> {
        let bytes = self.take(n)?;
        Ok(Value::String(lua.create_string(bytes)?))
    }

    fn list(&mut self, lua: &Lua, n: usize, depth: usize) -> Result<Value, Bad> {
        if depth >= MAX_UNPACK_NESTING {
            return Err(Bad::Format);
        }
        // Every item takes at least a byte: a claimed length beyond the
        // input is cut short by EOF, never preallocated.
        let t = lua.create_table_with_capacity(n.min(self.data.len() - self.at), 0)?;
        for i in 1..=n {
            let v = self.value(lua, depth + 1)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> Result<Value, Bad> {
        if depth >= MAX_UNPACK_NESTING {
            return Err(Bad::Format);
        }
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            // A nil (or NaN) key cannot be set in a Lua table: skipped.
            let settable = match &k {
                Value::Nil => false,
                Value::Number(x) => !x.is_nan(),
                _ => true,
            };
            if settable {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}
