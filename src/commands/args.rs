//! How handlers read their request and report errors: the [`Args`] cursor
//! over one request's arguments, Redis's canonical error texts, and the
//! limits several families share. Every handler has the shape
//! `fn(&mut Context, &mut Args) -> CmdResult`, so a parse error or a
//! refused write travels with `?` and the dispatcher sends it as the reply.
//!
//! One text, one constant: when two commands answer the same condition,
//! they use the same item from here rather than each spelling it out.

use bytes::Bytes;

use crate::crdt::number::{parse_decimal, Amount, DecimalError};
use crate::protocol::{parse_integer, Reply};

/// What a handler returns: the reply, or the error reply that ends it.
/// The dispatcher sends either one; `Err` exists so that `?` works.
pub type CmdResult = Result<Reply, Reply>;

pub const SYNTAX_ERROR: &str = "ERR syntax error";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_A_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const OUT_OF_RANGE: &str = "ERR value is out of range";
pub const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
/// Redis refuses `i64::MIN` where it would negate a count.
pub const COUNT_OUT_OF_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
/// A timeout in seconds (BLPOP…) that does not parse.
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
/// A timeout in milliseconds (WAIT…) that does not parse.
pub const TIMEOUT_NOT_INTEGER: &str = "ERR timeout is not an integer or out of range";
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// Most picks a negative count may ask of SRANDMEMBER, HRANDFIELD or
/// ZRANDMEMBER (picks with repetition): each pick is a reply element, and
/// Redis would try to build any size and run out of memory; cordis refuses
/// beyond this (docs/semantics.md).
pub const MAX_REPEATED_PICKS: u64 = 1 << 24;

/// Refuses a random-pick count whose negative form (picks with repetition)
/// asks for more than [`MAX_REPEATED_PICKS`].
pub fn check_repeated_picks(count: i64) -> Result<i64, Reply> {
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(err_owned(format!(
            "ERR value is out of range, cordis returns at most {MAX_REPEATED_PICKS} repeated picks"
        )));
    }
    Ok(count)
}

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

/// A float as Redis's `strtod` reads it (`inf`, `-inf`, `1e3`…), NaN,
/// surrounding spaces and overlong texts refused; values beyond the `f64`
/// range saturate (`1e400` is infinity), as range bounds accept them.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    parse_float_within(arg, 256)
}

fn parse_float_within(arg: &[u8], max_len: usize) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty()
        || text.len() > max_len
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// Like [`parse_float`], and like Redis's `getDoubleFromObject` also
/// refusing values out of the `f64` range (`1e400`, `1e-400`), at any
/// length (DBL_MAX written out in full is over 300 digits).
pub fn strict_float(arg: &[u8]) -> Option<f64> {
    let value = parse_float_within(arg, usize::MAX)?;
    let mantissa = arg.split(|&b| b == b'e' || b == b'E').next().unwrap_or(b"");
    let overflow = value.is_infinite() && !arg.to_ascii_lowercase().windows(3).any(|w| w == b"inf");
    let underflow = value == 0.0 && mantissa.iter().any(|b| (b'1'..=b'9').contains(b));
    (!overflow && !underflow).then_some(value)
}

/// Copies an argument into its own allocation, so a stored value does not
/// keep a whole network read buffer alive (short values in one block with
/// their reference count, see [`crate::crdt::compact::stored_bytes`]).
pub fn owned(arg: &Bytes) -> Bytes {
    crate::crdt::compact::stored_bytes(arg)
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

/// A cursor over one request. It starts after the command name (after the
/// subcommand, for a subcommand's handler); each reader takes the next
/// argument and fails with Redis's text for that condition. Arity is
/// checked before a handler runs, so the arguments the row requires are
/// there; a reader that runs past the end (a missing option value) fails
/// with `ERR syntax error`, as Redis does.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    argv: &'a [Bytes],
    at: usize,
}

impl<'a> Args<'a> {
    /// A cursor over `argv` (command name included) positioned at `start`.
    pub fn new(argv: &'a [Bytes], start: usize) -> Self {
        Args {
            argv,
            at: start.min(argv.len()),
        }
    }

    /// The whole request, command name included (MULTI queues it, errors
    /// quote it).
    pub fn argv(&self) -> &'a [Bytes] {
        self.argv
    }

    /// The command name as the client sent it.
    pub fn name(&self) -> &'a Bytes {
        &self.argv[0]
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.argv.len() - self.at
    }

    /// Whether every argument was read.
    pub fn is_done(&self) -> bool {
        self.at == self.argv.len()
    }

    /// The next argument without taking it.
    pub fn peek(&self) -> Option<&'a Bytes> {
        self.argv.get(self.at)
    }

    /// Takes the next argument; `ERR syntax error` when there is none.
    /// (Not `Iterator::next`: running out is an error here, not the end.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<&'a Bytes, Reply> {
        self.next_if_any().ok_or_else(|| err(SYNTAX_ERROR))
    }

    /// Takes the next argument if there is one.
    pub fn next_if_any(&mut self) -> Option<&'a Bytes> {
        let arg = self.argv.get(self.at)?;
        self.at += 1;
        Some(arg)
    }

    /// Takes the next argument as a key (the same as [`Args::next`]; the
    /// name says what the handler reads).
    pub fn key(&mut self) -> Result<&'a Bytes, Reply> {
        self.next()
    }

    /// Takes the next argument as an integer with Redis's strict rules
    /// (`ERR value is not an integer or out of range`).
    pub fn int(&mut self) -> Result<i64, Reply> {
        int(self.next()?)
    }

    /// Takes an integer that must lie in `range`, `error` otherwise (a
    /// non-integer still gets the not-an-integer text).
    pub fn int_in(
        &mut self,
        range: std::ops::RangeInclusive<i64>,
        error: &'static str,
    ) -> Result<i64, Reply> {
        let n = self.int()?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(err(error))
        }
    }

    /// Takes a non-negative integer; [`MUST_BE_POSITIVE`] for a negative one.
    pub fn count(&mut self) -> Result<u64, Reply> {
        Ok(self.int_in(0..=i64::MAX, MUST_BE_POSITIVE)? as u64)
    }

    /// Takes the next argument as a float, as Redis's `getDoubleFromObject`
    /// reads it (`ERR value is not a valid float`).
    pub fn float(&mut self) -> Result<f64, Reply> {
        strict_float(self.next()?).ok_or_else(|| err(NOT_A_FLOAT))
    }

    /// Takes the next argument as an exact decimal (INCRBYFLOAT).
    pub fn decimal(&mut self) -> Result<Amount, Reply> {
        decimal(self.next()?)
    }

    /// Takes the next argument if it is `keyword` (any case).
    pub fn keyword(&mut self, keyword: &str) -> bool {
        let matches = self.peek().is_some_and(|a| is(a, keyword));
        if matches {
            self.at += 1;
        }
        matches
    }

    /// Takes the next argument, which must be `keyword`; syntax error
    /// otherwise.
    pub fn expect(&mut self, keyword: &str) -> Result<(), Reply> {
        if self.keyword(keyword) {
            Ok(())
        } else {
            Err(err(SYNTAX_ERROR))
        }
    }

    /// Takes the next argument as one of `choices` (keyword → value, any
    /// case); syntax error for anything else.
    pub fn one_of<T: Copy>(&mut self, choices: &[(&str, T)]) -> Result<T, Reply> {
        let arg = self.next()?;
        choices
            .iter()
            .find(|(word, _)| is(arg, word))
            .map(|&(_, value)| value)
            .ok_or_else(|| err(SYNTAX_ERROR))
    }

    /// Takes every argument left.
    pub fn rest(&mut self) -> &'a [Bytes] {
        let rest = &self.argv[self.at..];
        self.at = self.argv.len();
        rest
    }

    /// Takes the next `n` arguments; syntax error if fewer are left.
    pub fn take(&mut self, n: usize) -> Result<&'a [Bytes], Reply> {
        if n > self.remaining() {
            return Err(err(SYNTAX_ERROR));
        }
        let taken = &self.argv[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    /// Succeeds when every argument was read; `ERR syntax error` when some
    /// are left over.
    pub fn finish(&self) -> Result<(), Reply> {
        if self.is_done() {
            Ok(())
        } else {
            Err(err(SYNTAX_ERROR))
        }
    }

    /// Redis's wrong-arity error for this command (for commands whose
    /// argument count has a rule the table's arity cannot say, such as
    /// MSET's pairs).
    pub fn wrong_arity(&self) -> Reply {
        wrong_arity(&text(self.name()).to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn error_text(reply: Reply) -> String {
        match reply {
            Reply::Error(text) => String::from_utf8_lossy(&text).into_owned(),
            other => panic!("expected an error reply, got {other:?}"),
        }
    }

    #[test]
    fn a_cursor_starts_after_the_command_name_and_reads_in_order() {
        let argv = request(&["SET", "k", "v", "EX", "10"]);
        let mut args = Args::new(&argv, 1);
        assert_eq!(args.remaining(), 4);
        assert_eq!(args.key().unwrap().as_ref(), b"k");
        assert_eq!(args.next().unwrap().as_ref(), b"v");
        assert!(!args.keyword("px"));
        assert!(args.keyword("ex"));
        assert_eq!(args.int().unwrap(), 10);
        assert!(args.is_done());
        assert!(args.finish().is_ok());
        assert_eq!(args.name().as_ref(), b"SET");
        assert_eq!(args.argv().len(), 5);
    }

    #[test]
    fn a_subcommand_cursor_starts_after_the_subcommand() {
        let argv = request(&["CONFIG", "GET", "maxmemory"]);
        let mut args = Args::new(&argv, 2);
        assert_eq!(args.rest().len(), 1);
        assert!(args.is_done());
    }

    #[test]
    fn reading_past_the_end_is_a_syntax_error() {
        let argv = request(&["GETEX", "k", "EX"]);
        let mut args = Args::new(&argv, 3);
        assert_eq!(error_text(args.next().unwrap_err()), SYNTAX_ERROR);
        assert_eq!(error_text(args.int().unwrap_err()), SYNTAX_ERROR);
        assert!(args.next_if_any().is_none());
        assert_eq!(error_text(args.take(1).unwrap_err()), SYNTAX_ERROR);
    }

    #[test]
    fn leftover_arguments_fail_finish_with_a_syntax_error() {
        let argv = request(&["GET", "k", "extra"]);
        let mut args = Args::new(&argv, 1);
        args.key().unwrap();
        assert_eq!(error_text(args.finish().unwrap_err()), SYNTAX_ERROR);
    }

    #[test]
    fn integers_are_read_with_redis_strict_rules() {
        for bad in [
            "+1",
            " 1",
            "1 ",
            "01",
            "-0",
            "1.0",
            "",
            "9223372036854775808",
        ] {
            let argv = request(&["X", bad]);
            let mut args = Args::new(&argv, 1);
            assert_eq!(
                error_text(args.int().unwrap_err()),
                NOT_AN_INTEGER,
                "{bad:?}"
            );
        }
        let argv = request(&["X", "-9223372036854775808", "0"]);
        let mut args = Args::new(&argv, 1);
        assert_eq!(args.int().unwrap(), i64::MIN);
        assert_eq!(args.int().unwrap(), 0);
    }

    #[test]
    fn ranged_integers_and_counts_have_their_own_texts() {
        let argv = request(&["X", "-1", "5", "abc", "-3"]);
        let mut args = Args::new(&argv, 1);
        assert_eq!(error_text(args.count().unwrap_err()), MUST_BE_POSITIVE);
        assert_eq!(
            error_text(args.int_in(0..=4, OUT_OF_RANGE).unwrap_err()),
            OUT_OF_RANGE
        );
        assert_eq!(error_text(args.count().unwrap_err()), NOT_AN_INTEGER);
        assert_eq!(args.int_in(-5..=0, OUT_OF_RANGE).unwrap(), -3);
    }

    #[test]
    fn floats_follow_get_double_from_object() {
        let argv = request(&["X", "1.5", "-inf", "1e3", "nan", "1e400", " 1", "abc"]);
        let mut args = Args::new(&argv, 1);
        assert_eq!(args.float().unwrap(), 1.5);
        assert_eq!(args.float().unwrap(), f64::NEG_INFINITY);
        assert_eq!(args.float().unwrap(), 1000.0);
        for _ in 0..4 {
            assert_eq!(error_text(args.float().unwrap_err()), NOT_A_FLOAT);
        }
        assert_eq!(parse_float(b"1e400"), Some(f64::INFINITY));
    }

    #[test]
    fn decimals_distinguish_invalid_from_out_of_range() {
        let argv = request(&["X", "0.1", "x", "1e5000"]);
        let mut args = Args::new(&argv, 1);
        assert!(args.decimal().is_ok());
        assert_eq!(error_text(args.decimal().unwrap_err()), NOT_A_FLOAT);
        assert_eq!(error_text(args.decimal().unwrap_err()), NAN_OR_INFINITY);
    }

    #[test]
    fn keyword_choices_are_case_insensitive_and_strict() {
        let argv = request(&["LMOVE", "a", "b", "left", "Right", "up"]);
        let mut args = Args::new(&argv, 3);
        let ends = [("left", 0), ("right", 1)];
        assert_eq!(args.one_of(&ends).unwrap(), 0);
        assert_eq!(args.one_of(&ends).unwrap(), 1);
        assert_eq!(error_text(args.one_of(&ends).unwrap_err()), SYNTAX_ERROR);
    }

    #[test]
    fn expect_and_take_consume_exactly_what_they_name() {
        let argv = request(&["X", "WEIGHTS", "1", "2", "3"]);
        let mut args = Args::new(&argv, 1);
        assert_eq!(
            error_text(args.clone().expect("AGGREGATE").unwrap_err()),
            SYNTAX_ERROR
        );
        args.expect("weights").unwrap();
        assert_eq!(args.take(2).unwrap().len(), 2);
        assert_eq!(args.peek().unwrap().as_ref(), b"3");
        assert_eq!(args.remaining(), 1);
    }

    #[test]
    fn wrong_arity_names_the_command_in_lower_case() {
        let argv = request(&["MSET", "a"]);
        let args = Args::new(&argv, 1);
        assert_eq!(
            error_text(args.wrong_arity()),
            "ERR wrong number of arguments for 'mset' command"
        );
    }
}
