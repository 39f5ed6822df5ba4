//! LCS: the longest common subsequence of two string keys, as the string,
//! its length (LEN) or the matching ranges (IDX, MINMATCHLEN,
//! WITHMATCHLEN).
//!
//! A read: it replicates nothing. It uses Redis's dynamic-programming
//! table and walks it back the way Redis does, so when several longest
//! subsequences exist the same one is reported; the table's size is
//! refused beyond `proto-max-bulk-len` bytes, as in Redis, so a request
//! cannot allocate without bound.

use bytes::Bytes;

use super::args::{err, int, is, Args, CmdResult, SYNTAX_ERROR};
use super::flags::READONLY;
use super::strings::read_string;
use super::{spec, CommandSpec, Context};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("lcs", -3, READONLY, (1, 2, 1), "string", "7.0.0", "Finds the longest common subsequence of the strings of two keys.", lcs),
];

const NOT_STRINGS: &str = "ERR The specified keys must contain string values";
const TABLE_TOO_LARGE: &str =
    "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";

/// The options after the two keys.
#[derive(Default)]
struct Options {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn options(args: &mut Args) -> Result<Options, Reply> {
    let mut o = Options::default();
    while let Some(option) = args.next_if_any() {
        if is(option, "idx") {
            o.idx = true;
        } else if is(option, "len") {
            o.len = true;
        } else if is(option, "withmatchlen") {
            o.with_match_len = true;
        } else if is(option, "minmatchlen") && !args.is_done() {
            // Negative lengths count as no minimum.
            o.min_match_len = int(args.next()?)?.max(0) as u64;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if o.len && o.idx {
        return Err(err(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(o)
}

/// `table[i][j]` = LCS length of `a[..i]` and `b[..j]`, row-major with
/// rows of `b.len() + 1`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        Table { cells, width }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }
}

/// One matching run: `a[a_start..=a_end]` equals `b[b_start..=b_end]`.
struct Match {
    a_start: usize,
    a_end: usize,
    b_start: usize,
    b_end: usize,
}

impl Match {
    fn len(&self) -> usize {
        self.a_end - self.a_start + 1
    }
}

/// Walks the table back from the end: the subsequence itself and its
/// contiguous runs, last run first (Redis's order).
fn walk_back(a: &[u8], b: &[u8], table: &Table) -> (Vec<u8>, Vec<Match>) {
    let total = table.at(a.len(), b.len()) as usize;
    let mut subsequence = vec![0u8; total];
    let mut runs = Vec::new();
    let mut open: Option<Match> = None;
    let (mut i, mut j, mut left) = (a.len(), b.len(), total);
    while i > 0 && j > 0 {
        let mut close = false;
        if a[i - 1] == b[j - 1] {
            subsequence[left - 1] = a[i - 1];
            match &mut open {
                None => {
                    open = Some(Match {
                        a_start: i - 1,
                        a_end: i - 1,
                        b_start: j - 1,
                        b_end: j - 1,
                    })
                }
                // A match right before the open run extends it.
                Some(run) if run.a_start == i && run.b_start == j => {
                    run.a_start -= 1;
                    run.b_start -= 1;
                }
                Some(_) => close = true,
            }
            // A run that reached the start of either string is complete.
            if open
                .as_ref()
                .is_some_and(|r| r.a_start == 0 || r.b_start == 0)
            {
                close = true;
            }
            left -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table.at(i - 1, j) > table.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            close = open.is_some();
        }
        if close {
            runs.extend(open.take());
        }
    }
    (subsequence, runs)
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`.
fn lcs(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (first, second) = (args.key()?, args.key()?);
    // Both keys are looked up before the options are read, as in Redis.
    let (a, b) = (read_string(ctx, first), read_string(ctx, second));
    let (a, b) = (
        a.map_err(|_| err(NOT_STRINGS))?,
        b.map_err(|_| err(NOT_STRINGS))?,
    );
    let o = options(args)?;
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(err("ERR String too long for LCS"));
    }
    let cells = (a.len() as u128 + 1) * (b.len() as u128 + 1);
    let table_bytes = cells * std::mem::size_of::<u32>() as u128;
    if table_bytes > ctx.server.config.read().proto_max_bulk_len as u128 {
        return Err(err(TABLE_TOO_LARGE));
    }
    let table = Table::build(&a, &b);
    let total = table.at(a.len(), b.len()) as i64;
    if o.len {
        return Ok(Reply::Integer(total));
    }
    let (subsequence, runs) = walk_back(&a, &b, &table);
    if !o.idx {
        return Ok(Reply::Bulk(Bytes::from(subsequence)));
    }
    let pair = |start: usize, end: usize| {
        Reply::Array(vec![
            Reply::Integer(start as i64),
            Reply::Integer(end as i64),
        ])
    };
    let matches = runs
        .iter()
        .filter(|run| o.min_match_len == 0 || run.len() as u64 >= o.min_match_len)
        .map(|run| {
            let mut item = vec![pair(run.a_start, run.a_end), pair(run.b_start, run.b_end)];
            if o.with_match_len {
                item.push(Reply::Integer(run.len() as i64));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Map(vec![
        (Reply::bulk("matches"), Reply::Array(matches)),
        (Reply::bulk("len"), Reply::Integer(total)),
    ]))
}
