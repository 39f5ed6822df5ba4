//! The `redis`-crate client side of the socket test harness: [`Conn`], a
//! blocking connection with short-hand query helpers, reply converters, and
//! the command-coverage list the family suites declare.
//!
//! Each family suite (`tests/*_over_socket.rs`) names the commands it
//! covers in a header line starting with `//! covers:`; the guard test in
//! `commands_over_socket.rs` fails for any command COMMAND LIST reports
//! that no suite covers.

#![allow(dead_code)]

use redis::Value;

use super::{Node, IO_TIMEOUT};

/// `redis`-crate connections to a support [`Node`].
impl Node {
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub fn client(&self) -> Conn {
        Conn::open(&self.url())
    }
}

/// A blocking `redis` connection with short-hand query helpers.
pub struct Conn(pub redis::Connection);

impl Conn {
    pub fn open(url: &str) -> Conn {
        let client = redis::Client::open(url).expect("valid url");
        let con = client
            .get_connection_with_timeout(IO_TIMEOUT)
            .expect("connects");
        con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        con.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Conn(con)
    }

    pub fn try_query(&mut self, args: &[&str]) -> redis::RedisResult<Value> {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut self.0)
    }

    pub fn v(&mut self, args: &[&str]) -> Value {
        self.try_query(args)
            .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
    }

    pub fn ok(&mut self, args: &[&str]) {
        assert_eq!(self.v(args), Value::Okay, "{args:?}");
    }

    pub fn int(&mut self, args: &[&str]) -> i64 {
        match self.v(args) {
            Value::Int(n) => n,
            other => panic!("{args:?}: expected an integer, got {other:?}"),
        }
    }

    /// A bulk string (None for nil).
    pub fn bulk(&mut self, args: &[&str]) -> Option<String> {
        match self.v(args) {
            Value::Nil => None,
            Value::BulkString(b) => Some(String::from_utf8(b).expect("utf-8")),
            Value::VerbatimString { text, .. } => Some(text),
            other => panic!("{args:?}: expected a bulk string, got {other:?}"),
        }
    }

    pub fn status(&mut self, args: &[&str]) -> String {
        match self.v(args) {
            Value::SimpleString(s) => s,
            Value::Okay => "OK".into(),
            other => panic!("{args:?}: expected a status, got {other:?}"),
        }
    }

    pub fn strings(&mut self, args: &[&str]) -> Vec<String> {
        strings_of(self.v(args))
    }

    /// The full error text, e.g. `ERR syntax error`.
    pub fn err(&mut self, args: &[&str]) -> String {
        match self.try_query(args) {
            Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
            Err(e) => error_text(&e),
        }
    }
}

pub fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => panic!("not a server error: {e:?}"),
    }
}

pub fn strings_of(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                Value::SimpleString(s) => s,
                Value::Nil => "(nil)".into(),
                Value::Int(n) => n.to_string(),
                other => panic!("unexpected element {other:?}"),
            })
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Command names listed on `//! covers:` header lines of the test suites.
pub fn covered_by_family_suites() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).expect("tests directory") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("readable test file");
            for line in text.lines() {
                if let Some(list) = line.strip_prefix("//! covers:") {
                    names.extend(list.split_whitespace().map(|w| w.to_ascii_lowercase()));
                }
            }
        }
    }
    names
}
