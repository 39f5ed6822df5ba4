//! [`RequestParser`]: turns the bytes a client sends into argument lists.
//!
//! Two request forms exist, as in Redis: RESP multibulk (`*<n>\r\n` then `n` bulk strings
//! `$<len>\r\n<bytes>\r\n`) and inline commands (a text line split on whitespace with
//! `sdssplitargs` quoting rules). Malformed input yields a [`ProtocolError`] with Redis's text.
//!
//! The parser is resumable: a multibulk that arrives over many reads keeps its finished
//! arguments in the parser and their bytes are consumed from the buffer, so nothing is scanned
//! twice. Arguments are zero-copy `Bytes` views of the read buffer; they keep that buffer's
//! allocation alive, so a caller storing a small argument long-term may want to copy it.

use bytes::{Buf, Bytes, BytesMut};

use super::errors::ProtocolError;

/// Redis's `proto-max-bulk-len` default.
pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Redis's `PROTO_INLINE_MAX_SIZE`.
pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
/// Most arguments a multibulk may announce.
pub const DEFAULT_MAX_MULTIBULK_LEN: usize = 1024 * 1024;
/// Most arguments a client that has not authenticated may send in one
/// request (Redis's rule; AUTH and HELLO need fewer).
pub const UNAUTHENTICATED_MAX_MULTIBULK_LEN: i64 = 10;
/// Largest bulk a client that has not authenticated may send.
pub const UNAUTHENTICATED_MAX_BULK_LEN: usize = 16 * 1024;

/// Bulks at least this long get room reserved for their payload (Redis's `PROTO_MBULK_BIG_ARG`).
const BIG_BULK_LEN: usize = 32 * 1024;
/// A big bulk's payload gets room for up to this much at once, later for as much again as has
/// arrived: few moves of the data, while memory stays proportional to what the client sent.
const MIN_BULK_RESERVE: usize = 1024 * 1024;
/// Extra room past a big bulk's end, so the caller's own pre-read reservation (up to this size)
/// does not force one last copy of the whole payload.
const BULK_TAIL_SLACK: usize = 16 * 1024;
/// Parsed-argument vectors never start larger than this, whatever count the client announced.
const MAX_PREALLOCATED_ARGS: usize = 1024;

/// Size limits on requests; exceeding one is a protocol error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string argument (default 512 MB).
    pub max_bulk_len: usize,
    /// Longest inline command line, and longest `*<n>` / `$<len>` header line (default 64 KB).
    pub max_inline_len: usize,
    /// Most arguments in one multibulk request (default 1024 * 1024).
    pub max_multibulk_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: DEFAULT_MAX_BULK_LEN,
            max_inline_len: DEFAULT_MAX_INLINE_LEN,
            max_multibulk_len: DEFAULT_MAX_MULTIBULK_LEN,
        }
    }
}

/// Incremental request parser for one connection.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    /// False while the connection still has to AUTH: requests are then
    /// capped much lower, so an unauthenticated client cannot make the
    /// server buffer large amounts of memory.
    authenticated: bool,
    /// The multibulk being assembled, if its `*<n>` header has been consumed.
    multibulk: Option<PartialMultibulk>,
    /// Bytes at the start of the buffer already searched for the current line's terminator, so a
    /// long line arriving in pieces is not rescanned from its start.
    line_scanned: usize,
}

#[derive(Debug)]
struct PartialMultibulk {
    expected_args: usize,
    args: Vec<Bytes>,
    /// Length announced by a consumed `$<len>` header whose payload has not fully arrived.
    pending_bulk_len: Option<usize>,
}

/// Where the terminator of the line at the start of the buffer is, if known.
enum LineEnd {
    At(usize),
    Incomplete,
    TooLong,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            authenticated: true,
            multibulk: None,
            line_scanned: 0,
        }
    }

    /// Changes the limits for the requests that follow (CONFIG SET).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Applies (false) or lifts (true) the unauthenticated request caps.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.authenticated = authenticated;
    }

    /// Whether part of a multibulk request has been consumed and the rest
    /// is still to come (the buffer may be empty meanwhile). Connections use
    /// this for the request deadline.
    pub fn is_mid_request(&self) -> bool {
        self.multibulk.is_some()
    }

    /// Parses the next complete request from `buf`, consuming its bytes. `Ok(None)` means more
    /// bytes are needed: append them to the same `buf` (only ever append) and call again.
    /// Empty requests (`*0`, `*-1`, blank inline lines) are skipped silently.
    ///
    /// Returned arguments are zero-copy `Bytes` split off `buf` where possible. After an error the
    /// connection is meant to be closed; the parser is reset but the buffer's contents are not
    /// meaningful any more.
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let result = self.parse(buf);
        if result.is_err() {
            self.multibulk = None;
            self.line_scanned = 0;
        }
        result
    }

    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.multibulk.is_none() {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => match self.read_multibulk_header(buf)? {
                        None => return Ok(None),
                        Some(0) => continue,
                        Some(expected_args) => {
                            self.multibulk = Some(PartialMultibulk {
                                expected_args,
                                args: Vec::with_capacity(expected_args.min(MAX_PREALLOCATED_ARGS)),
                                pending_bulk_len: None,
                            })
                        }
                    },
                    Some(_) => match self.read_inline(buf)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    },
                }
            }
            return self.read_bulks(buf);
        }
    }

    /// Consumes a `*<n>` line; `Some(0)` stands for an empty request (Redis skips `n <= 0`).
    fn read_multibulk_header(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<usize>, ProtocolError> {
        let cr = match find_header_end(buf, &mut self.line_scanned, self.limits.max_inline_len) {
            LineEnd::At(cr) => cr,
            LineEnd::Incomplete => return Ok(None),
            LineEnd::TooLong => return Err(ProtocolError::too_big_mbulk_count_string()),
        };
        let count =
            parse_integer(&buf[1..cr]).ok_or_else(ProtocolError::invalid_multibulk_length)?;
        if count > i64::from(i32::MAX)
            || count > i64::try_from(self.limits.max_multibulk_len).unwrap_or(i64::MAX)
        {
            return Err(ProtocolError::invalid_multibulk_length());
        }
        if !self.authenticated && count > UNAUTHENTICATED_MAX_MULTIBULK_LEN {
            return Err(ProtocolError::unauthenticated_multibulk_length());
        }
        buf.advance(cr + 2);
        self.line_scanned = 0;
        Ok(Some(usize::try_from(count).unwrap_or(0)))
    }

    /// Reads bulk arguments of the current multibulk until it is complete or the buffer runs dry.
    fn read_bulks(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(multibulk) = self.multibulk.as_mut() else {
            return Ok(None);
        };
        while multibulk.args.len() < multibulk.expected_args {
            let bulk_len = match multibulk.pending_bulk_len {
                Some(len) => len,
                None => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'$' {
                        return Err(ProtocolError::expected_dollar(first));
                    }
                    let cr = match find_header_end(
                        buf,
                        &mut self.line_scanned,
                        self.limits.max_inline_len,
                    ) {
                        LineEnd::At(cr) => cr,
                        LineEnd::Incomplete => return Ok(None),
                        LineEnd::TooLong => return Err(ProtocolError::too_big_bulk_count_string()),
                    };
                    let len = parse_integer(&buf[1..cr])
                        .and_then(|len| usize::try_from(len).ok())
                        .filter(|&len| len <= self.limits.max_bulk_len)
                        .ok_or_else(ProtocolError::invalid_bulk_length)?;
                    if !self.authenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
                        return Err(ProtocolError::unauthenticated_bulk_length());
                    }
                    buf.advance(cr + 2);
                    self.line_scanned = 0;
                    multibulk.pending_bulk_len = Some(len);
                    len
                }
            };
            let framed_len = bulk_len.saturating_add(2);
            if buf.len() < framed_len {
                if bulk_len >= BIG_BULK_LEN {
                    reserve_for_bulk(buf, framed_len);
                }
                return Ok(None);
            }
            multibulk.args.push(buf.split_to(bulk_len).freeze());
            // Like Redis, the two bytes after the payload are taken as its CRLF unchecked.
            buf.advance(2);
            multibulk.pending_bulk_len = None;
        }
        Ok(self.multibulk.take().map(|multibulk| multibulk.args))
    }

    /// Consumes one inline line and splits it; an empty vector stands for a blank line.
    fn read_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let max_len = self.limits.max_inline_len;
        // The line may be `max_len` bytes plus "\r\n", so its '\n' can be at index max_len + 1.
        let window = buf.len().min(max_len.saturating_add(2));
        let newline = buf[self.line_scanned.min(window)..window]
            .iter()
            .position(|&byte| byte == b'\n')
            .map(|offset| offset + self.line_scanned.min(window));
        let Some(newline) = newline else {
            if buf.len() >= max_len.saturating_add(2) {
                return Err(ProtocolError::too_big_inline_request());
            }
            self.line_scanned = window;
            return Ok(None);
        };
        let content_end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        if content_end > max_len {
            return Err(ProtocolError::too_big_inline_request());
        }
        let mut line = buf.split_to(newline + 1).freeze();
        self.line_scanned = 0;
        line.truncate(content_end);
        // Redis splits the line as a C string, so it ends at the first NUL.
        if let Some(nul) = line.iter().position(|&byte| byte == 0) {
            line.truncate(nul);
        }
        split_inline_args(&line).map(Some)
    }
}

/// Finds the '\r' ending the `*`/`$` header line at the start of `buf`. Like Redis, the byte
/// after it is taken as the '\n' unchecked; the line (before '\r') may be at most `max_len` long.
fn find_header_end(buf: &[u8], scanned: &mut usize, max_len: usize) -> LineEnd {
    let window = buf.len().min(max_len.saturating_add(1));
    let from = (*scanned).min(window);
    match buf[from..window].iter().position(|&byte| byte == b'\r') {
        Some(offset) => {
            let cr = from + offset;
            *scanned = cr;
            if cr + 1 < buf.len() {
                LineEnd::At(cr)
            } else {
                LineEnd::Incomplete
            }
        }
        None if buf.len() > max_len => LineEnd::TooLong,
        None => {
            *scanned = window;
            LineEnd::Incomplete
        }
    }
}

/// Makes room so the rest of a big bulk lands in place instead of being copied on every read.
/// Room grows with what has already arrived (so announcing 512 MB and sending nothing reserves
/// little) and never reaches far past the bulk's end.
fn reserve_for_bulk(buf: &mut BytesMut, framed_len: usize) {
    let missing = framed_len - buf.len();
    let wanted_spare = missing
        .min(buf.len().max(MIN_BULK_RESERVE))
        .saturating_add(BULK_TAIL_SLACK);
    let spare = buf.capacity() - buf.len();
    if spare < wanted_spare {
        buf.reserve(wanted_spare);
    }
}

/// Parses an integer the way Redis's `string2ll` does: optional `-`, no
/// `+`, no leading zeros, no spaces, must fit in `i64`. Used for request
/// headers here and for integer arguments by the command layer.
pub fn parse_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] if digits.len() <= 19 => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude * 10 + u64::from(byte - b'0');
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits an inline line into arguments like Redis's `sdssplitargs`
/// (also what a function library's metadata line is split with).
pub fn split_inline_args(line: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    let mut args = Vec::new();
    let mut pos = 0;
    loop {
        while line.get(pos).is_some_and(|&byte| is_c_space(byte)) {
            pos += 1;
        }
        if pos >= line.len() {
            return Ok(args);
        }
        let (arg, next) = read_inline_arg(line, pos)?;
        args.push(arg);
        pos = next;
    }
}

/// Reads the argument starting at `start`; returns it and the position after it.
fn read_inline_arg(line: &Bytes, start: usize) -> Result<(Bytes, usize), ProtocolError> {
    let ends_unquoted = |byte: u8| matches!(byte, b' ' | b'\n' | b'\r' | b'\t' | 0);
    let plain_len = line[start..]
        .iter()
        .position(|&byte| ends_unquoted(byte) || byte == b'"' || byte == b'\'')
        .unwrap_or(line.len() - start);
    let plain_end = start + plain_len;
    // Common case: no quotes, so the argument is a view of the line.
    if line.get(plain_end).is_none_or(|&byte| ends_unquoted(byte)) {
        return Ok((line.slice(start..plain_end), plain_end));
    }

    let mut arg = line[start..plain_end].to_vec();
    let mut pos = plain_end;
    let mut quote: Option<u8> = None;
    loop {
        let byte = line.get(pos).copied();
        match (quote, byte) {
            (None, None) => return Ok((Bytes::from(arg), pos)),
            (None, Some(byte)) if ends_unquoted(byte) => return Ok((Bytes::from(arg), pos)),
            (None, Some(opening @ (b'"' | b'\''))) => {
                quote = Some(opening);
                pos += 1;
            }
            (None, Some(byte)) => {
                arg.push(byte);
                pos += 1;
            }
            (Some(_), None) => return Err(ProtocolError::unbalanced_quotes()),
            (Some(closing), Some(byte)) if byte == closing => {
                // A closing quote must end the argument.
                if line.get(pos + 1).is_some_and(|&next| !is_c_space(next)) {
                    return Err(ProtocolError::unbalanced_quotes());
                }
                return Ok((Bytes::from(arg), pos + 1));
            }
            (Some(b'"'), Some(b'\\')) => match line.get(pos + 1).copied() {
                Some(b'x') => match hex_byte(line.get(pos + 2..pos + 4)) {
                    Some(value) => {
                        arg.push(value);
                        pos += 4;
                    }
                    None => {
                        arg.push(b'x');
                        pos += 2;
                    }
                },
                Some(escaped) => {
                    arg.push(match escaped {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    pos += 2;
                }
                None => {
                    arg.push(b'\\');
                    pos += 1;
                }
            },
            (Some(b'\''), Some(b'\\')) if line.get(pos + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                pos += 2;
            }
            (Some(_), Some(byte)) => {
                arg.push(byte);
                pos += 1;
            }
        }
    }
}

/// The byte two hex digits spell, if `digits` is exactly two hex digits.
fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let hex_value = |digit: u8| char::from(digit).to_digit(16).map(|value| value as u8);
    match digits? {
        [high, low] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Request(Vec<Vec<u8>>),
        Error(ProtocolError),
    }

    fn owned(args: Vec<Bytes>) -> Vec<Vec<u8>> {
        args.into_iter().map(|arg| arg.to_vec()).collect()
    }

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|arg| arg.as_bytes().to_vec()).collect()
    }

    /// Feeds `input` in pieces of the given sizes (cycled), draining requests after each piece,
    /// until an error or the input runs out. Checks that every request consumed bytes.
    fn run_chunked(input: &[u8], chunk_sizes: &[usize], limits: Limits) -> Vec<Outcome> {
        let mut parser = RequestParser::new(limits);
        let mut buf = BytesMut::new();
        let mut outcomes = Vec::new();
        let mut fed = 0;
        let mut consumed = 0;
        let mut sizes = chunk_sizes.iter().copied().cycle();
        loop {
            let size = sizes.next().unwrap_or(input.len()).max(1);
            let end = input.len().min(fed + size);
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            loop {
                match parser.next_request(&mut buf) {
                    Ok(Some(request)) => {
                        let now_consumed = fed - buf.len();
                        assert!(now_consumed > consumed, "a request must consume bytes");
                        consumed = now_consumed;
                        outcomes.push(Outcome::Request(owned(request)));
                    }
                    Ok(None) => break,
                    Err(error) => {
                        outcomes.push(Outcome::Error(error));
                        return outcomes;
                    }
                }
            }
            // Asking again without new bytes must keep asking for more.
            assert_eq!(parser.next_request(&mut buf), Ok(None));
            if fed == input.len() {
                return outcomes;
            }
        }
    }

    fn run_whole(input: &[u8], limits: Limits) -> Vec<Outcome> {
        run_chunked(input, &[input.len()], limits)
    }

    fn first_error(input: &[u8]) -> ProtocolError {
        first_error_with(input, Limits::default())
    }

    fn first_error_with(input: &[u8], limits: Limits) -> ProtocolError {
        match run_whole(input, limits).pop() {
            Some(Outcome::Error(error)) => error,
            other => panic!(
                "expected an error for {:?}, got {other:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    fn requests(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        run_whole(input, Limits::default())
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Request(request) => request,
                Outcome::Error(error) => panic!("unexpected {error}"),
            })
            .collect()
    }

    fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    const PIPELINE: &[u8] = b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n\
        GET k\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";

    fn pipeline_requests() -> Vec<Vec<Vec<u8>>> {
        vec![
            args(&["PING"]),
            args(&["SET", "k", "value"]),
            args(&["GET", "k"]),
            args(&["GET", "k"]),
        ]
    }

    #[test]
    fn pipelined_batch_in_one_buffer() {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(PIPELINE);
        let mut parsed = Vec::new();
        while let Some(request) = parser.next_request(&mut buf).unwrap() {
            parsed.push(owned(request));
        }
        assert_eq!(parsed, pipeline_requests());
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_at_a_time_yields_the_same_requests() {
        let expected: Vec<Outcome> = pipeline_requests()
            .into_iter()
            .map(Outcome::Request)
            .collect();
        assert_eq!(run_chunked(PIPELINE, &[1], Limits::default()), expected);
        assert_eq!(
            run_chunked(PIPELINE, &[2, 3, 5], Limits::default()),
            expected
        );
    }

    #[test]
    fn incomplete_request_asks_for_more() {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r"[..]);
        assert_eq!(parser.next_request(&mut buf), Ok(None));
        buf.extend_from_slice(b"\nk\r\n");
        assert_eq!(
            parser.next_request(&mut buf).unwrap().map(owned),
            Some(args(&["GET", "k"]))
        );
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        assert_eq!(
            requests(b"*0\r\n*-1\r\n*-5\r\n*1\r\n$4\r\nPING\r\n*0\r\n"),
            vec![args(&["PING"])]
        );
    }

    #[test]
    fn binary_safe_bulk_keeps_crlf_inside() {
        let value = b"a\r\n\0\r\n*1\r\n".to_vec();
        let input = multibulk(&[b"SET".to_vec(), b"k".to_vec(), value.clone()]);
        assert_eq!(
            requests(&input),
            vec![vec![b"SET".to_vec(), b"k".to_vec(), value]]
        );
    }

    #[test]
    fn empty_bulk_is_an_empty_argument() {
        assert_eq!(
            requests(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"),
            vec![args(&["ECHO", ""])]
        );
    }

    #[test]
    fn args_are_zero_copy_views_of_the_read_buffer() {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let range = start..start + buf.len();
        let request = parser.next_request(&mut buf).unwrap().unwrap();
        for arg in &request {
            assert!(
                range.contains(&(arg.as_ptr() as usize)),
                "{arg:?} was copied"
            );
        }
    }

    #[test]
    fn multibulk_count_that_is_not_a_number_is_refused() {
        for input in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*01\r\n",
            b"*+1\r\n",
            b"* 1\r\n",
            b"*-0\r\n",
            b"*1x\r\n",
        ] {
            assert_eq!(
                first_error(input),
                ProtocolError::invalid_multibulk_length()
            );
        }
        assert_eq!(
            first_error(b"*99999999999999999999\r\n").to_string(),
            "Protocol error: invalid multibulk length"
        );
    }

    #[test]
    fn unauthenticated_clients_get_small_request_caps() {
        let mut parser = RequestParser::new(Limits::default());
        parser.set_authenticated(false);
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut buf).unwrap_err().to_string(),
            "Protocol error: unauthenticated multibulk length"
        );
        let mut parser = RequestParser::new(Limits::default());
        parser.set_authenticated(false);
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut buf).unwrap_err().to_string(),
            "Protocol error: unauthenticated bulk length"
        );
        let mut parser = RequestParser::new(Limits::default());
        parser.set_authenticated(false);
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"[..]);
        assert_eq!(parser.next_request(&mut buf).unwrap().unwrap().len(), 2);
    }

    #[test]
    fn multibulk_count_over_limit_is_refused() {
        assert_eq!(
            first_error(b"*1048577\r\n").to_string(),
            "Protocol error: invalid multibulk length"
        );
        assert!(run_whole(b"*1048576\r\n", Limits::default()).is_empty());
        let limits = Limits {
            max_multibulk_len: 2,
            ..Limits::default()
        };
        assert_eq!(
            first_error_with(b"*3\r\n", limits),
            ProtocolError::invalid_multibulk_length()
        );
    }

    #[test]
    fn missing_dollar_prefix_is_reported_with_the_byte_found() {
        assert_eq!(
            first_error(b"*1\r\n:3\r\n").to_string(),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            first_error(b"*2\r\n$3\r\nGET\r\nkey\r\n").to_string(),
            "Protocol error: expected '$', got 'k'"
        );
    }

    #[test]
    fn bulk_length_that_is_not_a_number_is_refused() {
        for input in [
            &b"*1\r\n$abc\r\n"[..],
            b"*1\r\n$\r\n",
            b"*1\r\n$03\r\n",
            b"*1\r\n$3 \r\n",
        ] {
            assert_eq!(
                first_error(input).to_string(),
                "Protocol error: invalid bulk length"
            );
        }
    }

    #[test]
    fn negative_bulk_length_is_refused() {
        assert_eq!(
            first_error(b"*1\r\n$-1\r\n"),
            ProtocolError::invalid_bulk_length()
        );
    }

    #[test]
    fn bulk_longer_than_limit_is_refused() {
        assert_eq!(
            first_error(b"*1\r\n$536870913\r\n").to_string(),
            "Protocol error: invalid bulk length"
        );
        assert!(run_whole(b"*1\r\n$536870912\r\n", Limits::default()).is_empty());

        let limits = Limits {
            max_bulk_len: 3,
            ..Limits::default()
        };
        assert_eq!(
            first_error_with(b"*1\r\n$4\r\n", limits),
            ProtocolError::invalid_bulk_length()
        );
        assert_eq!(
            run_whole(b"*1\r\n$3\r\nabc\r\n", limits),
            vec![Outcome::Request(args(&["abc"]))]
        );
    }

    #[test]
    fn mbulk_count_line_over_64k_is_refused() {
        let mut line = vec![b'*'];
        line.resize(65536, b'1');
        // Exactly 64 KB without CR yet: still waiting.
        assert!(run_whole(&line, Limits::default()).is_empty());
        line.push(b'1');
        assert_eq!(
            first_error(&line).to_string(),
            "Protocol error: too big mbulk count string"
        );
    }

    #[test]
    fn bulk_count_line_over_64k_is_refused() {
        let mut input = b"*1\r\n$".to_vec();
        input.resize(4 + 65537, b'1');
        assert_eq!(
            first_error(&input).to_string(),
            "Protocol error: too big bulk count string"
        );
    }

    #[test]
    fn inline_line_over_64k_is_refused() {
        let mut line = vec![b'a'; 65538];
        assert_eq!(
            first_error(&line).to_string(),
            "Protocol error: too big inline request"
        );

        // A line with a newline is still refused when its content exceeds the limit.
        line.truncate(65537);
        line.push(b'\n');
        assert_eq!(first_error(&line), ProtocolError::too_big_inline_request());

        // Exactly 64 KB of content is accepted, with "\r\n" or "\n".
        let mut exact = vec![b'a'; 65536];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(requests(&exact), vec![vec![vec![b'a'; 65536]]]);
        assert_eq!(run_chunked(&exact, &[65537, 1], Limits::default()).len(), 1);
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        for input in [
            &b"SET \"foo bar\r\n"[..],
            b"SET 'foo\r\n",
            b"SET \"foo\"bar\r\n",
            b"SET 'a'b\r\n",
            b"ECHO \"abc\\\r\n",
            b"\"\r\n",
        ] {
            assert_eq!(
                first_error(input).to_string(),
                "Protocol error: unbalanced quotes in request",
                "for {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn inline_commands_split_on_whitespace() {
        assert_eq!(requests(b"SET  k\tv \r\n"), vec![args(&["SET", "k", "v"])]);
        assert_eq!(requests(b"PING\n"), vec![args(&["PING"])]);
        // As in sdssplitargs, \v and \f are skipped between arguments but do not end one.
        assert_eq!(
            requests(b"\x0b\x0c PING \x0b\x0c\r\n"),
            vec![args(&["PING"])]
        );
        assert_eq!(requests(b"PING\x0b\r\n"), vec![args(&["PING\x0b"])]);
        assert_eq!(requests(b"A\rB\r\r\n"), vec![args(&["A", "B"])]);
    }

    #[test]
    fn inline_quoting() {
        assert_eq!(
            requests(b"SET \"a b\" 'c d'\r\n"),
            vec![args(&["SET", "a b", "c d"])]
        );
        assert_eq!(
            requests(b"ECHO \"\\n\\r\\t\\b\\a\\\\\\\"\\x41\\x4a\\xzz\\q\"\r\n"),
            vec![vec![b"ECHO".to_vec(), b"\n\r\t\x08\x07\\\"AJxzzq".to_vec()]]
        );
        assert_eq!(
            requests(b"ECHO 'it\\'s' 'a\\nb'\r\n"),
            vec![args(&["ECHO", "it's", "a\\nb"])]
        );
        assert_eq!(requests(b"ECHO \"\" ''\r\n"), vec![args(&["ECHO", "", ""])]);
        assert_eq!(
            requests(b"ECHO foo\"bar baz\"\r\n"),
            vec![args(&["ECHO", "foobar baz"])]
        );
        assert_eq!(
            requests(b"ECHO \"a\"\t'b'\r\n"),
            vec![args(&["ECHO", "a", "b"])]
        );
        assert_eq!(
            requests(b"ECHO \"\\xff\"\r\n"),
            vec![vec![b"ECHO".to_vec(), vec![0xff]]]
        );
    }

    #[test]
    fn empty_inline_line_is_skipped() {
        assert_eq!(requests(b"\r\n\n   \r\nPING\r\n"), vec![args(&["PING"])]);
        assert!(requests(b"\r\n \t\n").is_empty());
    }

    #[test]
    fn inline_line_stops_at_nul() {
        assert_eq!(requests(b"GET a\0b c\r\n"), vec![args(&["GET", "a"])]);
    }

    #[test]
    fn parser_starts_fresh_after_an_error() {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n:1\r\n"[..]);
        assert!(parser.next_request(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"PING\r\n"[..]);
        assert_eq!(
            parser.next_request(&mut buf).unwrap().map(owned),
            Some(args(&["PING"]))
        );
    }

    #[test]
    fn huge_multibulk_in_small_reads_is_consumed_incrementally() {
        let count = DEFAULT_MAX_MULTIBULK_LEN;
        let mut input = format!("*{count}\r\n").into_bytes();
        for _ in 0..count {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut request = None;
        for chunk in input.chunks(1000) {
            buf.extend_from_slice(chunk);
            if let Some(done) = parser.next_request(&mut buf).unwrap() {
                request = Some(done);
            }
            // Parsed arguments leave the buffer: only a partial argument may remain.
            assert!(buf.len() < 7, "{} bytes left unconsumed", buf.len());
        }
        let request = request.expect("the request completes");
        assert_eq!(request.len(), count);
        assert!(request.iter().all(|arg| arg[..] == b"x"[..]));
    }

    #[test]
    fn large_bulk_in_small_reads_is_not_copied_repeatedly() {
        let value_len = 8 * 1024 * 1024;
        let mut input = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${value_len}\r\n").into_bytes();
        input.resize(input.len() + value_len, b'v');
        input.extend_from_slice(b"\r\n");

        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut moves = 0;
        let mut max_capacity = 0;
        let mut request = None;
        let mut last = (buf.as_ptr(), buf.len());
        // The data moved (was copied) if its start changed without bytes being consumed.
        let mut note_moves = |buf: &BytesMut| {
            if buf.as_ptr() != last.0 && buf.len() >= last.1 {
                moves += 1;
            }
            last = (buf.as_ptr(), buf.len());
        };
        for chunk in input.chunks(4096) {
            // A typical read loop: make sure there is room for one read, then read into it.
            if buf.capacity() - buf.len() < chunk.len() {
                buf.reserve(chunk.len());
            }
            buf.extend_from_slice(chunk);
            note_moves(&buf);
            max_capacity = max_capacity.max(buf.capacity());
            if let Some(done) = parser.next_request(&mut buf).unwrap() {
                request = Some(done);
            }
            note_moves(&buf);
        }
        let request = request.expect("the request completes");
        assert_eq!(request[2].len(), value_len);
        // Plain doubling from the caller's reserve would move it 9 times, to 16 MB.
        assert!(moves <= 5, "buffer moved {moves} times");
        assert!(
            max_capacity <= value_len + value_len / 4,
            "capacity grew to {max_capacity}"
        );
    }

    #[test]
    fn announcing_a_huge_bulk_reserves_little_up_front() {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\nabc"[..]);
        assert_eq!(parser.next_request(&mut buf), Ok(None));
        assert!(
            buf.capacity() < 2 * 1024 * 1024,
            "reserved {}",
            buf.capacity()
        );
    }

    #[test]
    fn redis_integer_parsing_is_strict() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"-12"), Some(-12));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"99999999999999999999",
        ] {
            assert_eq!(
                parse_integer(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn small_limits() -> Limits {
        Limits {
            max_bulk_len: 40,
            max_inline_len: 24,
            max_multibulk_len: 8,
        }
    }

    /// Bytes biased towards the protocol's own punctuation, so random input reaches deep states.
    fn protocol_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => proptest::sample::select(b"*$\r\n0123456789- \"'\\xab\0".to_vec()),
            1 => any::<u8>(),
        ]
    }

    fn valid_command() -> impl Strategy<Value = (bool, Vec<Vec<u8>>)> {
        prop_oneof![
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..5)
                .prop_map(|args| (false, args)),
            proptest::collection::vec("[a-z0-9]{1,6}".prop_map(String::into_bytes), 1..4)
                .prop_map(|args| (true, args)),
        ]
    }

    fn encode_commands(commands: &[(bool, Vec<Vec<u8>>)]) -> Vec<u8> {
        let mut input = Vec::new();
        for (inline, args) in commands {
            if *inline {
                input.extend_from_slice(&args.join(&b' '));
                input.extend_from_slice(b"\r\n");
            } else {
                input.extend_from_slice(&multibulk(args));
            }
        }
        input
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        Replace(usize, u8),
        Insert(usize, u8),
        Delete(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), protocol_byte()).prop_map(|(at, byte)| Mutation::Replace(at, byte)),
            (any::<usize>(), protocol_byte()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
            any::<usize>().prop_map(Mutation::Delete),
        ]
    }

    fn mutate(input: &mut Vec<u8>, mutation: &Mutation) {
        if input.is_empty() {
            return;
        }
        match *mutation {
            Mutation::Replace(at, byte) => {
                let at = at % input.len();
                input[at] = byte;
            }
            Mutation::Insert(at, byte) => input.insert(at % (input.len() + 1), byte),
            Mutation::Delete(at) => {
                input.remove(at % input.len());
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_chunking_changes_nothing(
            input in proptest::collection::vec(protocol_byte(), 0..400),
            chunk_sizes in proptest::collection::vec(1usize..32, 1..8),
        ) {
            for limits in [small_limits(), Limits::default()] {
                let whole = run_whole(&input, limits);
                let chunked = run_chunked(&input, &chunk_sizes, limits);
                prop_assert_eq!(whole, chunked);
            }
        }

        #[test]
        fn valid_requests_parse_back_in_any_chunking(
            commands in proptest::collection::vec(valid_command(), 1..6),
            chunk_sizes in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let input = encode_commands(&commands);
            let expected: Vec<Outcome> =
                commands.into_iter().map(|(_, args)| Outcome::Request(args)).collect();
            prop_assert_eq!(run_chunked(&input, &chunk_sizes, Limits::default()), expected);
        }

        #[test]
        fn mutated_requests_never_panic_and_chunking_changes_nothing(
            commands in proptest::collection::vec(valid_command(), 1..6),
            mutations in proptest::collection::vec(mutation(), 1..6),
            chunk_sizes in proptest::collection::vec(1usize..32, 1..8),
        ) {
            let mut input = encode_commands(&commands);
            for mutation in &mutations {
                mutate(&mut input, mutation);
            }
            for limits in [small_limits(), Limits::default()] {
                let whole = run_whole(&input, limits);
                let chunked = run_chunked(&input, &chunk_sizes, limits);
                prop_assert_eq!(whole, chunked);
            }
        }
    }
}
