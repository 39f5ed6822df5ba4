//! The extra libraries Redis gives scripts, written here in Rust: `bit`
//! (LuaBitOp's API: 32-bit operations on Lua numbers) and `cjson`
//! (encode/decode with lua-cjson's settings for depth and invalid
//! numbers). `cmsgpack` is in `msgpack.rs`, `struct` in `structlib.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use mlua::{Lua, MultiValue, Table, Value};

fn to_bit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Number(n) => *n,
        Value::Integer(n) => *n as f64,
        Value::String(s) => std::str::from_utf8(&s.as_bytes())
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| mlua::Error::RuntimeError("bad argument #1 (number expected)".into()))?,
        _ => {
            return Err(mlua::Error::RuntimeError(
                "bad argument #1 (number expected)".into(),
            ))
        }
    };
    // LuaBitOp's normalisation: add 2^52+2^51 and take the low 32 bits.
    let shifted = n + 6_755_399_441_055_744.0;
    Ok(shifted.to_bits() as u32 as i32)
}

/// LuaBitOp's `bit` table.
pub fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let mut it = args.iter();
            let first = it.next().ok_or_else(|| {
                mlua::Error::RuntimeError("bad argument #1 (number expected)".into())
            })?;
            let mut acc = to_bit(first)?;
            for v in it {
                acc = f(acc, to_bit(v)?);
            }
            Ok(acc as f64)
        })
    };
    t.set("band", fold(lua, |a, b| a & b)?)?;
    t.set("bor", fold(lua, |a, b| a | b)?)?;
    t.set("bxor", fold(lua, |a, b| a ^ b)?)?;
    t.set(
        "tobit",
        lua.create_function(|_, v: Value| Ok(to_bit(&v)? as f64))?,
    )?;
    t.set(
        "bnot",
        lua.create_function(|_, v: Value| Ok(!to_bit(&v)? as f64))?,
    )?;
    t.set(
        "bswap",
        lua.create_function(|_, v: Value| Ok(to_bit(&v)?.swap_bytes() as f64))?,
    )?;
    let shift = |lua: &Lua, f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (v, n): (Value, Value)| {
            Ok(f(to_bit(&v)?, (to_bit(&n)? & 31) as u32) as f64)
        })
    };
    t.set("lshift", shift(lua, |a, n| ((a as u32) << n) as i32)?)?;
    t.set("rshift", shift(lua, |a, n| ((a as u32) >> n) as i32)?)?;
    t.set("arshift", shift(lua, |a, n| a >> n)?)?;
    t.set("rol", shift(lua, |a, n| (a as u32).rotate_left(n) as i32)?)?;
    t.set("ror", shift(lua, |a, n| (a as u32).rotate_right(n) as i32)?)?;
    t.set(
        "tohex",
        lua.create_function(|_, (v, n): (Value, Option<Value>)| {
            let x = to_bit(&v)? as u32;
            let n = match n {
                Some(n) => to_bit(&n)?,
                None => 8,
            };
            let (upper, digits) = if n < 0 {
                (true, (-n) as usize)
            } else {
                (false, n as usize)
            };
            let digits = digits.min(8);
            let full = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(full[8 - digits..].to_owned())
        })?,
    )?;
    Ok(t)
}

/// lua-cjson's settings that scripts may change.
struct CjsonConfig {
    encode_max_depth: AtomicUsize,
    decode_max_depth: AtomicUsize,
    encode_invalid_numbers: AtomicBool,
}

/// The `cjson` table.
pub fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let config = Arc::new(CjsonConfig {
        encode_max_depth: AtomicUsize::new(1000),
        decode_max_depth: AtomicUsize::new(1000),
        encode_invalid_numbers: AtomicBool::new(false),
    });
    let null = Value::LightUserData(mlua::LightUserData(std::ptr::null_mut()));
    t.set("null", null.clone())?;
    let c = config.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let mut out = Vec::new();
            encode(&v, &mut out, 1, &c).map_err(mlua::Error::RuntimeError)?;
            lua.create_string(&out)
        })?,
    )?;
    let c = config.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, s: mlua::LuaString| {
            let bytes = s.as_bytes();
            let mut parser = Parser {
                text: &bytes,
                at: 0,
                max_depth: c.decode_max_depth.load(Ordering::Relaxed),
            };
            let v = parser.value(lua, 1).map_err(mlua::Error::RuntimeError)?;
            parser.skip_space();
            if parser.at != bytes.len() {
                return Err(mlua::Error::RuntimeError(format!(
                    "Expected the end but found invalid token at character {}",
                    parser.at + 1
                )));
            }
            Ok(v)
        })?,
    )?;
    let c = config.clone();
    t.set(
        "encode_max_depth",
        lua.create_function(move |_, n: Option<usize>| {
            if let Some(n) = n {
                c.encode_max_depth.store(n.max(1), Ordering::Relaxed);
            }
            Ok(c.encode_max_depth.load(Ordering::Relaxed))
        })?,
    )?;
    let c = config.clone();
    t.set(
        "decode_max_depth",
        lua.create_function(move |_, n: Option<usize>| {
            if let Some(n) = n {
                c.decode_max_depth.store(n.max(1), Ordering::Relaxed);
            }
            Ok(c.decode_max_depth.load(Ordering::Relaxed))
        })?,
    )?;
    let c = config;
    t.set(
        "encode_invalid_numbers",
        lua.create_function(move |_, on: Option<Value>| {
            if let Some(on) = on {
                let on = matches!(on, Value::Boolean(true))
                    || matches!(&on, Value::String(s) if &*s.as_bytes() == b"on");
                c.encode_invalid_numbers.store(on, Ordering::Relaxed);
            }
            Ok(c.encode_invalid_numbers.load(Ordering::Relaxed))
        })?,
    )?;
    for setting in [
        "encode_keep_buffer",
        "encode_number_precision",
        "encode_sparse_array",
        "decode_invalid_numbers",
    ] {
        t.set(setting, lua.create_function(|_, v: MultiValue| Ok(v))?)?;
    }
    Ok(t)
}

fn encode_number(n: f64, out: &mut Vec<u8>, config: &CjsonConfig) -> Result<(), String> {
    if !n.is_finite() && !config.encode_invalid_numbers.load(Ordering::Relaxed) {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    if n.is_nan() {
        out.extend_from_slice(b"nan");
    } else {
        out.extend_from_slice(super::convert::format_g(n, 14).as_bytes());
    }
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize, config: &CjsonConfig) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => encode_number(*n, out, config)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth > config.encode_max_depth.load(Ordering::Relaxed) {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            // An array when every key is a positive integer (lua-cjson
            // also refuses very sparse arrays; those become errors there).
            let mut max = 0usize;
            let mut count = 0usize;
            let mut is_array = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair.map_err(|e| e.to_string())?;
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i as usize),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
                    _ => is_array = false,
                }
            }
            if is_array && count > 0 && max > count * 2 && max > 10 {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
            if is_array && count > 0 {
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                    encode(&item, out, depth + 1, config)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for pair in t.pairs::<Value, Value>() {
                    let (k, item) = pair.map_err(|e| e.to_string())?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => encode_string(&s.as_bytes(), out),
                        Value::Integer(i) => encode_string(i.to_string().as_bytes(), out),
                        Value::Number(n) => {
                            encode_string(super::convert::format_g(*n, 14).as_bytes(), out)
                        }
                        _ => {
                            return Err(
                                "Cannot serialise table: table key must be a number or string"
                                    .into(),
                            )
                        }
                    }
                    out.push(b':');
                    encode(&item, out, depth + 1, config)?;
                }
                out.push(b'}');
            }
        }
        Value::Function(_) => return Err("Cannot serialise function: type not supported".into()),
        _ => return Err("Cannot serialise userdata: type not supported".into()),
    }
    Ok(())
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len()
            && matches!(self.text[self.at], b' ' | b'\t' | b'\n' | b'\r')
        {
            self.at += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        format!(
            "Expected {what} but found invalid token at character {}",
            self.at + 1
        )
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, String> {
        self.skip_space();
        let Some(&c) = self.text.get(self.at) else {
            return Err(format!(
                "Expected value but found T_END at character {}",
                self.at + 1
            ));
        };
        match c {
            b'{' | b'[' => {
                if depth > self.max_depth {
                    return Err(format!(
                        "Found too many nested data structures ({depth}) at character {}",
                        self.at + 1
                    ));
                }
                self.at += 1;
                let t = lua.create_table().map_err(|e| e.to_string())?;
                let close = if c == b'{' { b'}' } else { b']' };
                self.skip_space();
                if self.text.get(self.at) == Some(&close) {
                    self.at += 1;
                    return Ok(Value::Table(t));
                }
                let mut index = 1;
                loop {
                    if c == b'{' {
                        self.skip_space();
                        if self.text.get(self.at) != Some(&b'"') {
                            return Err(self.error("object key string"));
                        }
                        let key = self.string()?;
                        self.skip_space();
                        if self.text.get(self.at) != Some(&b':') {
                            return Err(self.error("colon"));
                        }
                        self.at += 1;
                        let v = self.value(lua, depth + 1)?;
                        let key = lua.create_string(&key).map_err(|e| e.to_string())?;
                        t.raw_set(key, v).map_err(|e| e.to_string())?;
                    } else {
                        let v = self.value(lua, depth + 1)?;
                        t.raw_set(index, v).map_err(|e| e.to_string())?;
                        index += 1;
                    }
                    self.skip_space();
                    match self.text.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(&x) if x == close => {
                            self.at += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => {
                            return Err(self.error(if c == b'{' {
                                "comma or object end"
                            } else {
                                "comma or array end"
                            }))
                        }
                    }
                }
            }
            b'"' => {
                let s = self.string()?;
                Ok(Value::String(
                    lua.create_string(&s).map_err(|e| e.to_string())?,
                ))
            }
            b't' if self.text[self.at..].starts_with(b"true") => {
                self.at += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.text[self.at..].starts_with(b"false") => {
                self.at += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.text[self.at..].starts_with(b"null") => {
                self.at += 4;
                Ok(Value::LightUserData(mlua::LightUserData(
                    std::ptr::null_mut(),
                )))
            }
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while self.at < self.text.len()
                    && matches!(
                        self.text[self.at],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.at += 1;
                }
                std::str::from_utf8(&self.text[start..self.at])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .map(Value::Number)
                    .ok_or_else(|| {
                        format!(
                            "Expected value but found invalid number at character {}",
                            start + 1
                        )
                    })
            }
            _ => Err(self.error("value")),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.text.get(self.at) else {
                return Err(format!(
                    "Expected value but found invalid string at character {}",
                    start + 1
                ));
            };
            self.at += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.text.get(self.at) else {
                        return Err(format!(
                            "Expected value but found invalid string at character {}",
                            start + 1
                        ));
                    };
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = self.text.get(self.at..self.at + 4).and_then(|h| {
                                u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
                            });
                            let Some(code) = hex else {
                                return Err(format!(
                                    "Expected value but found invalid unicode escape code at character {}",
                                    start + 1
                                ));
                            };
                            self.at += 4;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            return Err(format!(
                                "Expected value but found invalid escape code at character {}",
                                start + 1
                            ))
                        }
                    }
                }
                b => out.push(b),
            }
        }
    }
}
