//! Redis's conversion rules between Lua values and replies, both ways
//! (`script_lua.c`): what `redis.call` hands the script for a command's
//! reply (in the RESP version the script chose with `redis.setresp`), and
//! the reply a script's return value becomes.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::protocol::Reply;

/// How deep a returned table may nest before the reply stops with
/// Redis's "reached lua stack limit" (Redis runs out of Lua stack there).
pub const MAX_REPLY_DEPTH: usize = 1000;

/// A command's reply as the script sees it. Errors are not converted here
/// (the caller raises or returns them as error tables).
pub fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Simple(text) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(text)?)?;
            Value::Table(t)
        }
        Reply::Error(text) => Value::Table(command_error_table(lua, text)?),
        Reply::Integer(n) => Value::Number(*n as f64),
        Reply::Bulk(data) => Value::String(lua.create_string(data)?),
        Reply::Nil | Reply::NilArray => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Reply::Array(items) | Reply::Push(items) => array(lua, items, resp3)?,
        Reply::Set(items) => {
            if resp3 {
                let set = lua.create_table()?;
                for item in items {
                    set.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
                }
                single(lua, "set", Value::Table(set))?
            } else {
                array(lua, items, resp3)?
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                let map = lua.create_table()?;
                for (k, v) in pairs {
                    map.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
                }
                single(lua, "map", Value::Table(map))?
            } else {
                let t = lua.create_table()?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    t.raw_set(2 * i + 1, reply_to_lua(lua, k, resp3)?)?;
                    t.raw_set(2 * i + 2, reply_to_lua(lua, v, resp3)?)?;
                }
                Value::Table(t)
            }
        }
        Reply::Double(d) => {
            if resp3 {
                single(lua, "double", Value::Number(*d))?
            } else {
                let mut text = Vec::new();
                crate::protocol::format_double(*d, &mut text);
                Value::String(lua.create_string(&text)?)
            }
        }
        Reply::FormattedDouble(text) => {
            if resp3 {
                let d = std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0);
                single(lua, "double", Value::Number(d))?
            } else {
                Value::String(lua.create_string(text)?)
            }
        }
        Reply::Bool(b) => {
            if resp3 {
                Value::Boolean(*b)
            } else {
                Value::Number(if *b { 1.0 } else { 0.0 })
            }
        }
        Reply::Verbatim(text) => {
            if resp3 {
                let inner = lua.create_table()?;
                inner.raw_set("string", lua.create_string(text)?)?;
                inner.raw_set("format", "txt")?;
                single(lua, "verbatim_string", Value::Table(inner))?
            } else {
                Value::String(lua.create_string(text)?)
            }
        }
    })
}

fn array(lua: &Lua, items: &[Reply], resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(t))
}

fn single(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

/// Redis's `luaPushErrorBuff`: an error text (with or without its leading
/// `-`) as the `{err='CODE message'}` table scripts see, its code split
/// at the first space (`ERR` when there is none), CR/LF trimmed from the
/// message's ends.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(text))?)?;
    Ok(t)
}

/// The field Redis sets on the error table of a command's error reply
/// (or of a command refused inside the script): that error was counted
/// in the error statistics when the command answered, so the script's
/// reply made of it is not counted again.
pub const COUNTED: &str = "ignore_error_stats_update";

/// [`error_table`] for the error reply of a command the script called:
/// marked [`COUNTED`].
pub fn command_error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = error_table(lua, text)?;
    t.raw_set(COUNTED, true)?;
    Ok(t)
}

/// Whether `value`, a script's reply or raised error, is an error table
/// marked [`COUNTED`].
pub fn error_counted(value: &Value) -> bool {
    let Value::Table(t) = value else {
        return false;
    };
    matches!(t.raw_get::<Value>("err"), Ok(Value::String(_)))
        && matches!(t.raw_get::<Value>(COUNTED), Ok(Value::Boolean(true)))
}

/// The `err` text [`error_table`] stores for a reply error `text` (which
/// has no leading `-`: replies carry the bare text).
pub fn error_text(text: &[u8]) -> Vec<u8> {
    let (code, message): (&[u8], &[u8]) = match text.iter().position(|&b| b == b' ') {
        Some(space) => (&text[..space], &text[space + 1..]),
        None => (b"ERR", text),
    };
    let trim = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = message
        .iter()
        .position(|b| !trim(b))
        .unwrap_or(message.len());
    let end = message
        .iter()
        .rposition(|b| !trim(b))
        .map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end - start);
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&message[start..end.max(start)]);
    out
}

/// A script's return value as the reply its caller gets. `resp3` is the
/// script's protocol (`redis.setresp`), which decides how booleans go out.
pub fn lua_to_reply(value: &Value, resp3: bool) -> Reply {
    to_reply(value, resp3, 0)
}

fn lua_bytes(s: &mlua::LuaString) -> Bytes {
    Bytes::copy_from_slice(&s.as_bytes())
}

fn to_reply(value: &Value, resp3: bool, depth: usize) -> Reply {
    if depth >= MAX_REPLY_DEPTH {
        return Reply::error("ERR reached lua stack limit");
    }
    match value {
        Value::String(s) => Reply::Bulk(lua_bytes(s)),
        Value::Boolean(b) => {
            if resp3 {
                Reply::Bool(*b)
            } else if *b {
                Reply::Integer(1)
            } else {
                Reply::Nil
            }
        }
        Value::Integer(n) => Reply::Integer(*n),
        Value::Number(n) => Reply::Integer(*n as i64),
        Value::Table(t) => table_to_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    if let Ok(Value::String(err)) = t.raw_get::<Value>("err") {
        return Reply::Error(without_newlines(&err.as_bytes()));
    }
    if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
        return Reply::Simple(without_newlines(&ok.as_bytes()));
    }
    match t.raw_get::<Value>("double") {
        Ok(Value::Number(d)) => return Reply::Double(d),
        Ok(Value::Integer(d)) => return Reply::Double(d as f64),
        _ => {}
    }
    if let Ok(Value::String(big)) = t.raw_get::<Value>("big_number") {
        // No big-number reply type: its digits go out as a bulk string
        // (what RESP2 clients get from Redis).
        return Reply::Bulk(without_newlines(&big.as_bytes()));
    }
    if let Ok(Value::Table(verbatim)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(_)), Ok(Value::String(text))) = (
            verbatim.raw_get::<Value>("format"),
            verbatim.raw_get::<Value>("string"),
        ) {
            return Reply::Verbatim(lua_bytes(&text));
        }
    }
    if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
        let mut pairs = Vec::new();
        for (k, v) in map.pairs::<Value, Value>().flatten() {
            pairs.push((
                to_reply(&k, resp3, depth + 1),
                to_reply(&v, resp3, depth + 1),
            ));
        }
        return Reply::Map(pairs);
    }
    if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
        let mut items = Vec::new();
        for (k, _) in set.pairs::<Value, Value>().flatten() {
            items.push(to_reply(&k, resp3, depth + 1));
        }
        return Reply::Set(items);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => {
                let item = to_reply(&v, resp3, depth + 1);
                let stop = matches!(&item, Reply::Error(e) if depth + 1 >= MAX_REPLY_DEPTH && e.starts_with(b"ERR reached"));
                items.push(item);
                if stop {
                    break;
                }
            }
        }
    }
    Reply::Array(items)
}

fn without_newlines(text: &[u8]) -> Bytes {
    text.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect::<Vec<u8>>()
        .into()
}

/// Lua's number as `redis.call` passes it to a command: `%.17g`.
pub fn number_arg(n: f64) -> Bytes {
    Bytes::from(format_g(n, 17))
}

/// C's `%.<precision>g`.
pub fn format_g(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, n)).to_owned()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_c() {
        assert_eq!(format_g(1.0, 17), "1");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1e20, 17), "1e+20");
        assert_eq!(format_g(123456789.0, 14), "123456789");
        assert_eq!(format_g(1.5e-7, 14), "1.5e-07");
        assert_eq!(format_g(-2.5, 17), "-2.5");
    }

    #[test]
    fn error_text_splits_code() {
        assert_eq!(error_text(b"WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"oops"), b"ERR oops");
        assert_eq!(error_text(b"My Error\r\n"), b"My Error");
    }
}
