//! [`Reply`], the value a command answers with, and its RESP2/RESP3 encoder; also
//! [`format_double`], Redis's human-friendly double formatting.
//!
//! The encoder writes straight into the connection's output `BytesMut`: numbers are formatted
//! into small stack buffers, so encoding a reply allocates nothing beyond the output buffer.
//! Types RESP2 lacks degrade the way Redis degrades them (maps become flat arrays, booleans
//! integers, doubles bulk strings, nulls `$-1`/`*-1`).

use std::fmt::{self, Write as _};

use bytes::{BufMut, Bytes, BytesMut};

const CRLF: &[u8] = b"\r\n";

/// The protocol version a connection speaks (`HELLO 3` switches to RESP3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RespVersion {
    #[default]
    Resp2,
    Resp3,
}

/// A reply to a command, encodable as RESP2 or RESP3.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Status reply, `+OK`. Any `\r` or `\n` is sent as a space.
    Simple(Bytes),
    /// Error reply: the full text without the leading `-`, e.g. `ERR syntax error`.
    /// Any `\r` or `\n` is sent as a space, as Redis does.
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// A missing string: RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// A missing array: RESP2 `*-1`, RESP3 `_`.
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 `%`; RESP2 a flat array of keys and values.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~`; RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 `,`; RESP2 a bulk string. Both use [`format_double`].
    Double(f64),
    /// A double whose text the command formats itself (GEOPOS prints
    /// coordinates with Redis's 17 decimals): RESP3 `,text`, RESP2 a bulk
    /// string of the same text.
    FormattedDouble(Bytes),
    /// RESP3 `#t`/`#f`; RESP2 the integer 1/0.
    Bool(bool),
    /// RESP3 verbatim text (`=...txt:...`); RESP2 a plain bulk string. Used by INFO and friends.
    Verbatim(Bytes),
    /// Out-of-band data (Pub/Sub messages, invalidations): RESP3 `>`, RESP2
    /// an array.
    Push(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple(Bytes::from_static(b"OK"))
    }

    /// A status reply with fixed text, e.g. `Reply::simple("PONG")`.
    pub fn simple(text: &'static str) -> Reply {
        Reply::Simple(Bytes::from_static(text.as_bytes()))
    }

    /// An error reply; `message` is the full text including its code, e.g. `ERR syntax error`.
    pub fn error(message: impl Into<Bytes>) -> Reply {
        Reply::Error(message.into())
    }

    /// A bulk string reply.
    pub fn bulk(data: impl Into<Bytes>) -> Reply {
        Reply::Bulk(data.into())
    }

    /// Appends this reply's wire form in `version` to `out`.
    pub fn encode(&self, version: RespVersion, out: &mut BytesMut) {
        match self {
            Reply::Simple(text) => put_line(out, b'+', text),
            Reply::Error(message) => put_line(out, b'-', message),
            Reply::Integer(value) => put_integer(out, *value),
            Reply::Bulk(data) => put_bulk(out, data),
            Reply::Nil => out.extend_from_slice(match version {
                RespVersion::Resp2 => b"$-1\r\n",
                RespVersion::Resp3 => b"_\r\n",
            }),
            Reply::NilArray => out.extend_from_slice(match version {
                RespVersion::Resp2 => b"*-1\r\n",
                RespVersion::Resp3 => b"_\r\n",
            }),
            Reply::Array(items) => {
                put_header(out, b'*', items.len());
                for item in items {
                    item.encode(version, out);
                }
            }
            Reply::Push(items) => {
                let prefix = match version {
                    RespVersion::Resp2 => b'*',
                    RespVersion::Resp3 => b'>',
                };
                put_header(out, prefix, items.len());
                for item in items {
                    item.encode(version, out);
                }
            }
            Reply::Map(pairs) => {
                match version {
                    RespVersion::Resp2 => put_header(out, b'*', pairs.len().saturating_mul(2)),
                    RespVersion::Resp3 => put_header(out, b'%', pairs.len()),
                }
                for (key, value) in pairs {
                    key.encode(version, out);
                    value.encode(version, out);
                }
            }
            Reply::Set(items) => {
                let prefix = match version {
                    RespVersion::Resp2 => b'*',
                    RespVersion::Resp3 => b'~',
                };
                put_header(out, prefix, items.len());
                for item in items {
                    item.encode(version, out);
                }
            }
            Reply::Double(value) => {
                let text = DoubleText::new(*value);
                match version {
                    RespVersion::Resp2 => put_bulk(out, text.as_bytes()),
                    RespVersion::Resp3 => {
                        out.reserve(text.as_bytes().len() + 3);
                        out.put_u8(b',');
                        out.extend_from_slice(text.as_bytes());
                        out.extend_from_slice(CRLF);
                    }
                }
            }
            Reply::FormattedDouble(text) => match version {
                RespVersion::Resp2 => put_bulk(out, text),
                RespVersion::Resp3 => {
                    out.reserve(text.len() + 3);
                    out.put_u8(b',');
                    out.extend_from_slice(text);
                    out.extend_from_slice(CRLF);
                }
            },
            Reply::Bool(value) => out.extend_from_slice(match (version, value) {
                (RespVersion::Resp2, true) => b":1\r\n",
                (RespVersion::Resp2, false) => b":0\r\n",
                (RespVersion::Resp3, true) => b"#t\r\n",
                (RespVersion::Resp3, false) => b"#f\r\n",
            }),
            Reply::Verbatim(text) => match version {
                RespVersion::Resp2 => put_bulk(out, text),
                RespVersion::Resp3 => {
                    // The length covers the 4-byte "txt:" format prefix too.
                    put_header(out, b'=', text.len().saturating_add(4));
                    out.reserve(text.len() + 6);
                    out.extend_from_slice(b"txt:");
                    out.extend_from_slice(text);
                    out.extend_from_slice(CRLF);
                }
            },
        }
    }
}

/// Appends `value` as Redis 7.0's `addReplyDouble` prints it (what [`Reply::Double`] sends in
/// both protocols): C's `%.17g`, so 0.1 → `0.10000000000000001`, 3.0 → `3`, -1.0 → `-1`,
/// 1e17 → `1e+17`, 1.5e-7 → `1.4999999999999999e-07`; infinities are `inf` and `-inf`, NaN `nan`.
pub fn format_double(value: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(DoubleText::new(value).as_bytes());
}

/// Appends `value` as Redis's `d2string` prints a score into a string (ZSCAN's scores, the text a
/// sorted set stores): an integral value that fits an `i64` in plain digits (1e17 →
/// `100000000000000000`), `0` and `-0` for zeros, `inf`, `-inf`, `nan`, else `%.17g`.
pub fn format_score(value: f64, out: &mut Vec<u8>) {
    if value.is_finite() && value != 0.0 && value.fract() == 0.0 && value.abs() < 9.2e18 {
        out.extend_from_slice((value as i64).to_string().as_bytes());
    } else {
        format_double(value, out);
    }
}

/// C's `%.17g` for a finite double: 17 significant digits, trailing zeros dropped, exponent form
/// (`e+XX`, at least two exponent digits) when the exponent is below -4 or at least 17.
fn write_g17(text: &mut impl fmt::Write, value: f64) -> fmt::Result {
    if value == 0.0 {
        return text.write_str(if value.is_sign_negative() { "-0" } else { "0" });
    }
    // Rounded to 17 significant digits first: the exponent is the rounded one, as in C.
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes a decimal exponent");
    if !(-4..17).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        write!(text, "{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let decimals = (16 - exponent) as usize;
        text.write_str(trim_fraction(&format!("{value:.decimals$}")))
    }
}

/// `1.2500` → `1.25`, `3.000` → `3`; text without a point is left alone.
fn trim_fraction(digits: &str) -> &str {
    if digits.contains('.') {
        digits.trim_end_matches('0').trim_end_matches('.')
    } else {
        digits
    }
}

/// `+text\r\n` or `-text\r\n`, with CR/LF turned into spaces so the line can't be split.
fn put_line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    if text.iter().any(|&byte| is_line_break(byte)) {
        out.extend(
            text.iter()
                .map(|&byte| if is_line_break(byte) { b' ' } else { byte }),
        );
    } else {
        out.extend_from_slice(text);
    }
    out.extend_from_slice(CRLF);
}

fn is_line_break(byte: u8) -> bool {
    byte == b'\r' || byte == b'\n'
}

fn put_integer(out: &mut BytesMut, value: i64) {
    let digits = DecimalText::new(value.unsigned_abs());
    out.reserve(digits.as_bytes().len() + 4);
    out.put_u8(b':');
    if value < 0 {
        out.put_u8(b'-');
    }
    out.extend_from_slice(digits.as_bytes());
    out.extend_from_slice(CRLF);
}

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_header(out, b'$', data.len());
    out.reserve(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
}

/// `<prefix><len>\r\n`, the header of bulk strings and aggregates.
fn put_header(out: &mut BytesMut, prefix: u8, len: usize) {
    let digits = DecimalText::new(len as u64);
    out.reserve(digits.as_bytes().len() + 3);
    out.put_u8(prefix);
    out.extend_from_slice(digits.as_bytes());
    out.extend_from_slice(CRLF);
}

/// "00", "01", ..., "99": formatting two digits per division halves the divisions.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut pair = 0;
    while pair < 100 {
        table[2 * pair] = b'0' + (pair / 10) as u8;
        table[2 * pair + 1] = b'0' + (pair % 10) as u8;
        pair += 1;
    }
    table
};

/// The decimal digits of a `u64`, formatted on the stack (u64::MAX has 20 digits).
struct DecimalText {
    digits: [u8; 20],
    start: usize,
}

impl DecimalText {
    fn new(mut value: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        while value >= 100 {
            let pair = (value % 100) as usize * 2;
            value /= 100;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if value >= 10 {
            let pair = value as usize * 2;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            start -= 1;
            digits[start] = b'0' + value as u8;
        }
        Self { digits, start }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// Longest `%.17g` output: `-1.2345678901234567e-308` is 24 bytes.
const DOUBLE_TEXT_CAPACITY: usize = 32;

/// A double formatted by [`format_double`]'s rules into a stack buffer.
struct DoubleText {
    text: [u8; DOUBLE_TEXT_CAPACITY],
    len: usize,
}

impl DoubleText {
    fn new(value: f64) -> Self {
        let mut text = Self {
            text: [0; DOUBLE_TEXT_CAPACITY],
            len: 0,
        };
        let special = if value.is_nan() {
            Some("nan")
        } else if value == f64::INFINITY {
            Some("inf")
        } else if value == f64::NEG_INFINITY {
            Some("-inf")
        } else {
            None
        };
        let written = match special {
            Some(spelling) => text.write_str(spelling),
            None => write_g17(&mut text, value),
        };
        debug_assert!(written.is_ok(), "%.17g fits the buffer");
        text
    }

    fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

impl fmt::Write for DoubleText {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let end = self
            .len
            .checked_add(piece.len())
            .filter(|&end| end <= self.text.len())
            .ok_or(fmt::Error)?;
        self.text[self.len..end].copy_from_slice(piece.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use redis_protocol::resp2::types::OwnedFrame as Resp2Frame;
    use redis_protocol::resp3::types::{OwnedFrame as Resp3Frame, VerbatimStringFormat};

    fn encoded(reply: &Reply, version: RespVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        reply.encode(version, &mut out);
        out.to_vec()
    }

    fn assert_encodes(reply: Reply, resp2: &[u8], resp3: &[u8]) {
        assert_eq!(
            encoded(&reply, RespVersion::Resp2),
            resp2,
            "RESP2 of {reply:?}"
        );
        assert_eq!(
            encoded(&reply, RespVersion::Resp3),
            resp3,
            "RESP3 of {reply:?}"
        );
    }

    fn double_text(value: f64) -> String {
        let mut out = Vec::new();
        format_double(value, &mut out);
        String::from_utf8(out).expect("doubles format as ASCII")
    }

    #[test]
    fn simple_and_constructors() {
        assert_encodes(Reply::ok(), b"+OK\r\n", b"+OK\r\n");
        assert_encodes(Reply::simple("PONG"), b"+PONG\r\n", b"+PONG\r\n");
        assert_encodes(Reply::simple(""), b"+\r\n", b"+\r\n");
    }

    #[test]
    fn simple_line_breaks_become_spaces() {
        assert_encodes(
            Reply::Simple(Bytes::from_static(b"a\r\nb")),
            b"+a  b\r\n",
            b"+a  b\r\n",
        );
    }

    #[test]
    fn error_is_prefixed_with_dash() {
        assert_encodes(
            Reply::error("ERR syntax error"),
            b"-ERR syntax error\r\n",
            b"-ERR syntax error\r\n",
        );
    }

    #[test]
    fn error_line_breaks_become_spaces() {
        assert_encodes(
            Reply::error(String::from("ERR bad\r\nthing\n")),
            b"-ERR bad  thing \r\n",
            b"-ERR bad  thing \r\n",
        );
    }

    #[test]
    fn integers() {
        assert_encodes(Reply::Integer(0), b":0\r\n", b":0\r\n");
        assert_encodes(Reply::Integer(7), b":7\r\n", b":7\r\n");
        assert_encodes(Reply::Integer(-42), b":-42\r\n", b":-42\r\n");
        assert_encodes(Reply::Integer(1000), b":1000\r\n", b":1000\r\n");
        assert_encodes(
            Reply::Integer(i64::MAX),
            b":9223372036854775807\r\n",
            b":9223372036854775807\r\n",
        );
        assert_encodes(
            Reply::Integer(i64::MIN),
            b":-9223372036854775808\r\n",
            b":-9223372036854775808\r\n",
        );
    }

    #[test]
    fn decimal_text_matches_display_for_every_magnitude() {
        let mut value: u64 = 1;
        for _ in 0..20 {
            for candidate in [value - 1, value, value + 1, value.saturating_mul(9)] {
                assert_eq!(
                    DecimalText::new(candidate).as_bytes(),
                    candidate.to_string().as_bytes()
                );
            }
            value = value.saturating_mul(10);
        }
        assert_eq!(
            DecimalText::new(u64::MAX).as_bytes(),
            b"18446744073709551615"
        );
    }

    #[test]
    fn bulk_strings_are_binary_safe() {
        assert_encodes(Reply::bulk("foo"), b"$3\r\nfoo\r\n", b"$3\r\nfoo\r\n");
        assert_encodes(Reply::bulk(""), b"$0\r\n\r\n", b"$0\r\n\r\n");
        assert_encodes(
            Reply::bulk(&b"a\r\n\0b"[..]),
            b"$5\r\na\r\n\0b\r\n",
            b"$5\r\na\r\n\0b\r\n",
        );
    }

    #[test]
    fn nils() {
        assert_encodes(Reply::Nil, b"$-1\r\n", b"_\r\n");
        assert_encodes(Reply::NilArray, b"*-1\r\n", b"_\r\n");
    }

    #[test]
    fn arrays_nest() {
        assert_encodes(Reply::Array(vec![]), b"*0\r\n", b"*0\r\n");
        assert_encodes(
            Reply::Array(vec![
                Reply::bulk("a"),
                Reply::Integer(1),
                Reply::Array(vec![Reply::Nil]),
            ]),
            b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n$-1\r\n",
            b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n_\r\n",
        );
    }

    #[test]
    fn maps_flatten_in_resp2() {
        assert_encodes(
            Reply::Map(vec![
                (Reply::bulk("k1"), Reply::Integer(1)),
                (Reply::bulk("k2"), Reply::Bool(true)),
            ]),
            b"*4\r\n$2\r\nk1\r\n:1\r\n$2\r\nk2\r\n:1\r\n",
            b"%2\r\n$2\r\nk1\r\n:1\r\n$2\r\nk2\r\n#t\r\n",
        );
        assert_encodes(Reply::Map(vec![]), b"*0\r\n", b"%0\r\n");
    }

    #[test]
    fn sets_are_arrays_in_resp2() {
        assert_encodes(
            Reply::Set(vec![Reply::bulk("x"), Reply::bulk("y")]),
            b"*2\r\n$1\r\nx\r\n$1\r\ny\r\n",
            b"~2\r\n$1\r\nx\r\n$1\r\ny\r\n",
        );
    }

    #[test]
    fn doubles() {
        assert_encodes(Reply::Double(10.5), b"$4\r\n10.5\r\n", b",10.5\r\n");
        assert_encodes(Reply::Double(3.0), b"$1\r\n3\r\n", b",3\r\n");
        assert_encodes(Reply::Double(-0.25), b"$5\r\n-0.25\r\n", b",-0.25\r\n");
        assert_encodes(Reply::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n");
        assert_encodes(
            Reply::Double(f64::NEG_INFINITY),
            b"$4\r\n-inf\r\n",
            b",-inf\r\n",
        );
        assert_encodes(Reply::Double(f64::NAN), b"$3\r\nnan\r\n", b",nan\r\n");
    }

    #[test]
    fn booleans_are_integers_in_resp2() {
        assert_encodes(Reply::Bool(true), b":1\r\n", b"#t\r\n");
        assert_encodes(Reply::Bool(false), b":0\r\n", b"#f\r\n");
    }

    #[test]
    fn verbatim_is_plain_bulk_in_resp2() {
        assert_encodes(
            Reply::Verbatim(Bytes::from_static(b"# Server\r\nx:1")),
            b"$13\r\n# Server\r\nx:1\r\n",
            b"=17\r\ntxt:# Server\r\nx:1\r\n",
        );
        assert_encodes(
            Reply::Verbatim(Bytes::new()),
            b"$0\r\n\r\n",
            b"=4\r\ntxt:\r\n",
        );
    }

    #[test]
    fn format_double_is_c_percent_17g() {
        // Expected texts from C's printf("%.17g"), as Redis 7.0's addReplyDouble prints.
        let cases: &[(f64, &str)] = &[
            (10.5, "10.5"),
            (3.0, "3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-1.0, "-1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.1, "0.10000000000000001"),
            (1.1, "1.1000000000000001"),
            (1e20, "1e+20"),
            (-1e20, "-1e+20"),
            (123456789.125, "123456789.125"),
            (1e-5, "1.0000000000000001e-05"),
            (1.5e-7, "1.4999999999999999e-07"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (9007199254740993.0, "9007199254740992"),
            (0.0001, "0.0001"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (-5e-324, "-4.9406564584124654e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for &(value, expected) in cases {
            assert_eq!(double_text(value), expected, "formatting {value:?}");
        }
    }

    #[test]
    fn format_double_round_trips() {
        for value in [
            1e300,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            0.1 + 0.2,
            1.0 / 3.0,
        ] {
            assert_eq!(double_text(value).parse::<f64>(), Ok(value));
        }
    }

    #[test]
    fn format_score_is_redis_d2string() {
        let score = |value: f64| {
            let mut out = Vec::new();
            format_score(value, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(score(1e17), "100000000000000000");
        assert_eq!(score(-3.0), "-3");
        assert_eq!(score(-0.0), "-0");
        assert_eq!(score(0.1), "0.10000000000000001");
        assert_eq!(score(1e20), "1e+20");
        assert_eq!(score(f64::NEG_INFINITY), "-inf");
    }

    fn sanitized(data: &[u8]) -> Vec<u8> {
        data.iter()
            .map(|&byte| if is_line_break(byte) { b' ' } else { byte })
            .collect()
    }

    fn double_bytes(value: f64) -> Vec<u8> {
        let mut out = Vec::new();
        format_double(value, &mut out);
        out
    }

    /// What `redis-protocol`'s RESP2 decoder must produce for `reply`.
    fn expected_resp2(reply: &Reply) -> Resp2Frame {
        match reply {
            Reply::Simple(text) => Resp2Frame::SimpleString(sanitized(text)),
            Reply::Error(message) => Resp2Frame::Error(
                String::from_utf8(sanitized(message)).expect("tests use UTF-8 errors"),
            ),
            Reply::Integer(value) => Resp2Frame::Integer(*value),
            Reply::Bulk(data) | Reply::Verbatim(data) => Resp2Frame::BulkString(data.to_vec()),
            Reply::Nil | Reply::NilArray => Resp2Frame::Null,
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
                Resp2Frame::Array(items.iter().map(expected_resp2).collect())
            }
            Reply::Map(pairs) => Resp2Frame::Array(
                pairs
                    .iter()
                    .flat_map(|(key, value)| [expected_resp2(key), expected_resp2(value)])
                    .collect(),
            ),
            Reply::Double(value) => Resp2Frame::BulkString(double_bytes(*value)),
            Reply::FormattedDouble(text) => Resp2Frame::BulkString(text.to_vec()),
            Reply::Bool(value) => Resp2Frame::Integer(i64::from(*value)),
        }
    }

    /// What `redis-protocol`'s RESP3 decoder must produce for `reply`.
    fn expected_resp3(reply: &Reply) -> Resp3Frame {
        match reply {
            Reply::Simple(text) => Resp3Frame::SimpleString {
                data: sanitized(text),
                attributes: None,
            },
            Reply::Error(message) => Resp3Frame::SimpleError {
                data: String::from_utf8(sanitized(message)).expect("tests use UTF-8 errors"),
                attributes: None,
            },
            Reply::Integer(value) => Resp3Frame::Number {
                data: *value,
                attributes: None,
            },
            Reply::Bulk(data) => Resp3Frame::BlobString {
                data: data.to_vec(),
                attributes: None,
            },
            Reply::Nil | Reply::NilArray => Resp3Frame::Null,
            Reply::Array(items) => Resp3Frame::Array {
                data: items.iter().map(expected_resp3).collect(),
                attributes: None,
            },
            Reply::Map(pairs) => Resp3Frame::Map {
                data: pairs
                    .iter()
                    .map(|(key, value)| (expected_resp3(key), expected_resp3(value)))
                    .collect(),
                attributes: None,
            },
            Reply::Set(items) => Resp3Frame::Set {
                data: items.iter().map(expected_resp3).collect(),
                attributes: None,
            },
            Reply::Double(value) => Resp3Frame::Double {
                data: *value,
                attributes: None,
            },
            Reply::FormattedDouble(text) => Resp3Frame::Double {
                data: std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .expect("tests use numeric double texts"),
                attributes: None,
            },
            Reply::Bool(value) => Resp3Frame::Boolean {
                data: *value,
                attributes: None,
            },
            Reply::Verbatim(data) => Resp3Frame::VerbatimString {
                data: data.to_vec(),
                format: VerbatimStringFormat::Text,
                attributes: None,
            },
            Reply::Push(items) => Resp3Frame::Push {
                data: items.iter().map(expected_resp3).collect(),
                attributes: None,
            },
        }
    }

    /// Non-aggregate replies; these can also be RESP3 map keys and set members, which the oracle
    /// keeps in hash containers. NaN is left out because it never compares equal.
    fn scalar_reply() -> impl Strategy<Value = Reply> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from);
        let double = prop_oneof![
            proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (-1_000_000i64..1_000_000).prop_map(|n| n as f64 / 8.0),
        ];
        prop_oneof![
            bytes().prop_map(Reply::Simple),
            "\\PC{0,16}".prop_map(Reply::error),
            any::<i64>().prop_map(Reply::Integer),
            bytes().prop_map(Reply::Bulk),
            Just(Reply::Nil),
            Just(Reply::NilArray),
            double.prop_map(Reply::Double),
            any::<bool>().prop_map(Reply::Bool),
            bytes().prop_map(Reply::Verbatim),
        ]
    }

    /// Drops entries whose key repeats an earlier one as RESP3 sees it: the oracle keeps map keys
    /// and set members in hash containers, where duplicates would collapse.
    fn unique_by_resp3<T>(entries: Vec<T>, key: impl Fn(&T) -> &Reply) -> Vec<T> {
        let mut seen: Vec<Resp3Frame> = Vec::new();
        let mut unique = Vec::new();
        for entry in entries {
            let frame = expected_resp3(key(&entry));
            if !seen.contains(&frame) {
                seen.push(frame);
                unique.push(entry);
            }
        }
        unique
    }

    fn nested_reply() -> impl Strategy<Value = Reply> {
        scalar_reply().prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Array),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Push),
                proptest::collection::vec((scalar_reply(), inner), 0..5)
                    .prop_map(|pairs| Reply::Map(unique_by_resp3(pairs, |(key, _)| key))),
                proptest::collection::vec(scalar_reply(), 0..5)
                    .prop_map(|members| Reply::Set(unique_by_resp3(members, |member| member))),
            ]
        })
    }

    proptest! {
        /// `redis-protocol` is the oracle: every encoding must decode to one complete frame
        /// equal in content to the reply.
        #[test]
        fn encodings_decode_to_equal_frames_with_redis_protocol(reply in nested_reply()) {
            let resp2 = encoded(&reply, RespVersion::Resp2);
            let decoded = redis_protocol::resp2::decode::decode(&resp2)
                .expect("well-formed RESP2")
                .expect("complete RESP2 frame");
            prop_assert_eq!(decoded.1, resp2.len());
            prop_assert_eq!(decoded.0, expected_resp2(&reply));

            let resp3 = encoded(&reply, RespVersion::Resp3);
            let decoded = redis_protocol::resp3::decode::complete::decode(&resp3)
                .expect("well-formed RESP3")
                .expect("complete RESP3 frame");
            prop_assert_eq!(decoded.1, resp3.len());
            prop_assert_eq!(decoded.0, expected_resp3(&reply));
        }

        #[test]
        fn format_double_round_trips_any(value in proptest::num::f64::ANY) {
            // 17 significant digits always identify a double exactly.
            let text = double_text(value);
            let parsed: f64 = text.parse().expect("parses back");
            if value.is_nan() {
                prop_assert!(parsed.is_nan());
            } else {
                prop_assert_eq!(parsed.to_bits(), value.to_bits());
            }
        }
    }
}
