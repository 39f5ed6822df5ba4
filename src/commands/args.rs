//! Argument parsing helpers and Redis's canonical error replies, shared by
//! every command family.

use bytes::Bytes;

use crate::crdt::number::{parse_decimal, Amount, DecimalError};
use crate::protocol::{parse_integer, Reply};

pub const SYNTAX_ERROR: &str = "ERR syntax error";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_A_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// A static error reply.
pub fn err(text: &'static str) -> Reply {
    Reply::Error(Bytes::from_static(text.as_bytes()))
}

/// An error reply built at run time.
pub fn err_owned(text: String) -> Reply {
    Reply::Error(Bytes::from(text))
}

pub fn wrong_arity(name: &str) -> Reply {
    err_owned(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Parses an integer argument with Redis's strict rules.
pub fn int(arg: &[u8]) -> Result<i64, Reply> {
    parse_integer(arg).ok_or_else(|| err(NOT_AN_INTEGER))
}

/// Parses a float argument (INCRBYFLOAT's increment) exactly.
pub fn decimal(arg: &[u8]) -> Result<Amount, Reply> {
    match parse_decimal(arg) {
        Ok(a) => Ok(a),
        Err(DecimalError::Invalid) => Err(err(NOT_A_FLOAT)),
        Err(DecimalError::OutOfRange) => Err(err(NAN_OR_INFINITY)),
    }
}

/// Copies an argument into its own allocation, so a stored value does not
/// keep a whole network read buffer alive.
pub fn owned(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// Lossy UTF-8 text of an argument, for error messages.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// A `... HELP` reply: one status line per entry, as Redis sends them.
pub fn help_reply(lines: &[&'static str]) -> Reply {
    Reply::Array(
        lines
            .iter()
            .map(|l| Reply::Simple(Bytes::from_static(l.as_bytes())))
            .collect(),
    )
}
