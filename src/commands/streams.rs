//! Stream commands: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID,
//! XREAD (with BLOCK), and the consumer-group commands XGROUP (CREATE,
//! SETID, DESTROY, CREATECONSUMER, DELCONSUMER), XREADGROUP, XACK, XCLAIM,
//! XAUTOCLAIM, XPENDING and XINFO (STREAM [FULL], GROUPS, CONSUMERS).
//!
//! Streams are `crdt::stream`: entries are immutable and keyed by IDs that
//! are unique across regions (auto IDs carry their origin in `seq`), XDEL
//! and trims are observed-removes, and each consumer group replicates as
//! one register (docs/semantics.md, "Streams"). XREAD returns what arrived
//! on this node after the given ID, in arrival order, so a follower never
//! skips a peer's entry that arrived late with a smaller ID. A blocking
//! XREAD with `$` waits for entries past what had arrived when it blocked:
//! the parked request is rewritten with that cursor before it waits.

use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::args::{err, err_owned, int, is, Args, CmdResult, NOT_AN_INTEGER, SYNTAX_ERROR};
use super::context::{Park, WaitOn};
use super::flags::{DENYOOM, FAST, MOVABLEKEYS, NOSCRIPT, RANDOM, READONLY, WRITE};
use super::typed::{self, read, write};
use super::{container_handler, spec, CommandSpec, Context};
use crate::crdt::stream::{
    auto_id, origin_tag, Fields, Group, Meta, Pending, Removal, Stream, StreamDelta, StreamId,
};
use crate::crdt::ElementCrdt;
use crate::protocol::{Reply, RespVersion};
use crate::pubsub::notify;
use crate::store::events::EventCodes;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("xadd", -5, WRITE | DENYOOM | FAST, (1, 1, 1), "stream", "5.0.0", "Appends a new message to a stream. Creates the key if it doesn't exist.", xadd),
    spec("xrange", -4, READONLY, (1, 1, 1), "stream", "5.0.0", "Returns the messages from a stream within a range of IDs.", xrange),
    spec("xrevrange", -4, READONLY, (1, 1, 1), "stream", "5.0.0", "Returns the messages from a stream within a range of IDs in reverse order.", xrevrange),
    spec("xlen", 2, READONLY | FAST, (1, 1, 1), "stream", "5.0.0", "Return the number of messages in a stream.", xlen),
    spec("xdel", -3, WRITE | FAST, (1, 1, 1), "stream", "5.0.0", "Returns the number of messages after removing them from a stream.", xdel),
    spec("xtrim", -4, WRITE, (1, 1, 1), "stream", "5.0.0", "Deletes messages from the beginning of a stream.", xtrim),
    spec("xsetid", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "stream", "5.0.0", "An internal command for replicating stream values.", xsetid),
    spec("xread", -4, READONLY | MOVABLEKEYS, (0, 0, 0), "stream", "5.0.0", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", xread),
    spec("xreadgroup", -7, WRITE | MOVABLEKEYS, (0, 0, 0), "stream", "5.0.0", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", xreadgroup),
    spec("xack", -4, WRITE | FAST, (1, 1, 1), "stream", "5.0.0", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", xack),
    spec("xclaim", -6, WRITE | FAST, (1, 1, 1), "stream", "5.0.0", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", xclaim),
    spec("xautoclaim", -6, WRITE | FAST, (1, 1, 1), "stream", "6.2.0", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", xautoclaim),
    spec("xpending", -3, READONLY, (1, 1, 1), "stream", "5.0.0", "Returns the information and entries from a stream consumer group's pending entries list.", xpending),
    CommandSpec { name: "xgroup", arity: -2, flags: 0, first_key: 0, last_key: 0, step: 0, group: "stream", since: "5.0.0", summary: "A container for consumer groups commands.", handler: container_handler, subcommands: XGROUP_SUBCOMMANDS },
    CommandSpec { name: "xinfo", arity: -2, flags: 0, first_key: 0, last_key: 0, step: 0, group: "stream", since: "5.0.0", summary: "A container for stream introspection commands.", handler: container_handler, subcommands: XINFO_SUBCOMMANDS },
];

#[rustfmt::skip]
static XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    spec("create", -5, WRITE | DENYOOM, (2, 2, 1), "stream", "5.0.0", "Creates a consumer group.", xgroup_create),
    spec("setid", -5, WRITE, (2, 2, 1), "stream", "5.0.0", "Sets the last-delivered ID of a consumer group.", xgroup_setid),
    spec("destroy", 4, WRITE, (2, 2, 1), "stream", "5.0.0", "Destroys a consumer group.", xgroup_destroy),
    spec("createconsumer", 5, WRITE | DENYOOM, (2, 2, 1), "stream", "6.2.0", "Creates a consumer in a consumer group.", xgroup_createconsumer),
    spec("delconsumer", 5, WRITE, (2, 2, 1), "stream", "5.0.0", "Deletes a consumer from a consumer group.", xgroup_delconsumer),
    spec("help", 2, 0, (0, 0, 0), "stream", "5.0.0", "Returns helpful text about the different subcommands.", xgroup_help),
];

#[rustfmt::skip]
static XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    spec("stream", -3, READONLY, (2, 2, 1), "stream", "5.0.0", "Returns information about a stream.", xinfo_stream),
    spec("groups", 3, READONLY, (2, 2, 1), "stream", "5.0.0", "Returns a list of the consumer groups of a stream.", xinfo_groups),
    spec("consumers", 4, READONLY | NOSCRIPT | RANDOM, (2, 2, 1), "stream", "5.0.0", "Returns a list of the consumers in a consumer group.", xinfo_consumers),
    spec("help", 2, 0, (0, 0, 0), "stream", "5.0.0", "Returns helpful text about the different subcommands.", xinfo_help),
];

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const ID_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const ID_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";
const EXHAUSTED: &str =
    "ERR The stream has exhausted the last possible ID, unable to add more items";
const NEEDS_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.render())
}

/// Parses `ms-seq`, `ms` (seq = `missing_seq`), and unless `strict`, `-`
/// and `+`. With `seq_star`, `ms-*` gives `(ms, None)`.
fn parse_id_full(arg: &[u8], missing_seq: u64, strict: bool) -> Result<(StreamId, bool), Reply> {
    let bad = || err(INVALID_ID);
    if arg.len() > 127 {
        return Err(bad());
    }
    match arg {
        b"-" if !strict => return Ok((StreamId::MIN, true)),
        b"+" if !strict => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let number = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) || (s.len() > 1 && s[0] == b'0') {
            // Redis's string2ull accepts leading zeros? It does not for
            // multi-digit numbers with a sign; digits only here.
            if s.len() > 1 && s[0] == b'0' && s.iter().all(u8::is_ascii_digit) {
                return std::str::from_utf8(s).ok()?.parse().ok();
            }
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    match arg.iter().position(|&b| b == b'-') {
        None => Ok((
            StreamId::new(number(arg).ok_or_else(bad)?, missing_seq),
            true,
        )),
        Some(at) => {
            let ms = number(&arg[..at]).ok_or_else(bad)?;
            let rest = &arg[at + 1..];
            if rest == b"*" {
                return Ok((StreamId::new(ms, 0), false));
            }
            Ok((StreamId::new(ms, number(rest).ok_or_else(bad)?), true))
        }
    }
}

/// A strict ID (no `-`/`+`, no `ms-*`).
fn parse_strict(arg: &[u8]) -> Result<StreamId, Reply> {
    match parse_id_full(arg, 0, true)? {
        (id, true) => Ok(id),
        _ => Err(err(INVALID_ID)),
    }
}

/// A range bound: `-`, `+`, an ID, or `(ID` (exclusive).
fn parse_bound(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        return Ok((parse_strict_with(&arg[1..], missing_seq)?, true));
    }
    match parse_id_full(arg, missing_seq, false)? {
        (id, true) => Ok((id, false)),
        _ => Err(err(INVALID_ID)),
    }
}

fn parse_strict_with(arg: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    match parse_id_full(arg, missing_seq, true)? {
        (id, true) => Ok(id),
        _ => Err(err(INVALID_ID)),
    }
}

fn entry_reply(id: StreamId, fields: &Fields) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(
            fields
                .iter()
                .map(|f| Reply::Bulk(Bytes::copy_from_slice(f)))
                .collect(),
        ),
    ])
}

/// `stream-node-max-entries`, kept in step with the configuration by
/// `ServerState::replace_config` (not parsed per XADD).
fn node_max_entries(ctx: &Context) -> u64 {
    ctx.server.stream_node_max_entries.load(Ordering::Relaxed)
}

/// `stream-node-max-entries` as configured (Redis's default 100).
pub(crate) fn configured_node_max_entries(config: &crate::config::Config) -> u64 {
    config
        .get("stream-node-max-entries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

// ----- trimming -----

#[derive(Clone, Copy, PartialEq)]
enum Strategy {
    None,
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Clone, Copy)]
struct Trim {
    strategy: Strategy,
    approx: bool,
    limit: Option<u64>,
}

/// The IDs a trim removes from `s` (oldest first). `pending` is an entry
/// being added by the same XADD (larger than every ID in `s`): the trim
/// sees the stream as it will be after the add, without building it.
fn trim_victims(s: &Stream, pending: Option<StreamId>, trim: Trim, node: u64) -> Vec<StreamId> {
    let extra = pending.is_some() as u64;
    let count = s.entry_count() as u64 + extra;
    let ids = || (s.range(StreamId::MIN, StreamId::MAX).map(|(id, _)| id)).chain(pending);
    let excess = match trim.strategy {
        Strategy::None => return Vec::new(),
        Strategy::MaxLen(max) => count.saturating_sub(max),
        Strategy::MinId(min) => ids().take_while(|id| *id < min).count() as u64,
    };
    // Counted first and collected after, so a `~` trim that removes
    // nothing (the common XADD case) allocates nothing.
    let removed = if trim.approx {
        // Whole nodes only, as Redis's radix-tree nodes: entry k (in the
        // order entries were added) sits in node k / node-max-entries.
        let first_ordinal = (s.meta().entries_added + extra).saturating_sub(count);
        whole_nodes(first_ordinal, excess, node, trim.limit)
    } else {
        excess
    };
    ids().take(removed as usize).collect()
}

/// How many of the `excess` oldest entries a `~` trim removes: whole
/// nodes only, up to `limit` entries. `first_ordinal` is the oldest
/// entry's position among all entries ever added.
fn whole_nodes(first_ordinal: u64, excess: u64, node: u64, limit: Option<u64>) -> u64 {
    if node == 0 {
        return 0;
    }
    let limit = limit.unwrap_or(u64::MAX);
    let mut size = node - first_ordinal % node;
    let mut removed = 0u64;
    while excess - removed >= size && removed + size <= limit {
        removed += size;
        size = node;
    }
    removed
}

/// Parses XADD/XTRIM's trim options from the cursor; for XADD stops at
/// the ID (returned with `nomkstream`).
fn parse_trim(args: &mut Args, xadd: bool, ctx: &Context) -> Result<(Trim, bool), Reply> {
    let mut trim = Trim {
        strategy: Strategy::None,
        approx: false,
        limit: None,
    };
    let mut nomkstream = false;
    let mut limit_given = false;
    while let Some(opt) = args.peek() {
        let more = args.remaining() - 1;
        if xadd && opt.as_ref() == b"*" {
            break;
        }
        if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            args.next()?;
            if trim.strategy != Strategy::None {
                return Err(err(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            trim.approx = false;
            if more >= 2 {
                match args.peek().map(|a| a.as_ref()) {
                    Some(b"~") => {
                        trim.approx = true;
                        args.next()?;
                    }
                    Some(b"=") => {
                        args.next()?;
                    }
                    _ => {}
                }
            }
            let value = args.next()?;
            if is(opt, "maxlen") {
                let n = int(value)?;
                if n < 0 {
                    return Err(err("ERR The MAXLEN argument must be >= 0."));
                }
                trim.strategy = Strategy::MaxLen(n as u64);
            } else {
                trim.strategy = Strategy::MinId(parse_strict(value)?);
            }
        } else if is(opt, "limit") && more > 0 {
            args.next()?;
            let n = int(args.next()?)?;
            if n < 0 {
                return Err(err("ERR The LIMIT argument must be >= 0."));
            }
            trim.limit = Some(n as u64);
            limit_given = true;
        } else if xadd && is(opt, "nomkstream") {
            args.next()?;
            nomkstream = true;
        } else if xadd {
            break;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if trim.limit.is_some_and(|l| l > 0) && trim.strategy == Strategy::None {
        return Err(err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && trim.strategy == Strategy::None {
        return Err(err(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !trim.approx {
            return Err(err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        if trim.limit == Some(0) {
            trim.limit = None;
        }
    } else if trim.approx {
        let node = node_max_entries(ctx) as i64;
        let mut limit = node.saturating_mul(100);
        if limit <= 0 {
            limit = 10000;
        }
        trim.limit = Some(limit.min(1_000_000) as u64);
    }
    Ok((trim, nomkstream))
}

// ----- XADD, XRANGE, XLEN, XDEL, XTRIM, XSETID -----

fn xadd(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let (trim, nomkstream) = parse_trim(args, true, ctx)?;
    let id_arg = args.next()?;
    let requested = if id_arg.as_ref() == b"*" {
        None
    } else {
        Some(parse_id_full(id_arg, 0, true)?)
    };
    let fields = args.rest();
    if fields.is_empty() || fields.len() % 2 == 1 {
        return Err(args.wrong_arity());
    }
    if let Some((id, true)) = requested {
        if id == StreamId::MIN {
            return Err(err(ID_ZERO));
        }
    }
    let existing = typed::peek::<Stream>(ctx, key)?;
    if existing.is_none() && nomkstream {
        return Ok(Reply::Nil);
    }
    let node = node_max_entries(ctx);
    let fields = Fields::pack(fields);
    let added = write::<Stream, _>(ctx, key, |s, w| {
        let last = s.last_id();
        if last == StreamId::MAX {
            return Err(err(EXHAUSTED));
        }
        let id = match requested {
            None => auto_id(w.ts().physical_ms(), origin_tag(w.replica()), last)
                .ok_or_else(|| err(EXHAUSTED))?,
            Some((id, true)) => {
                if id <= last {
                    return Err(err(ID_TOO_SMALL));
                }
                id
            }
            Some((ms_only, false)) => {
                let id = if ms_only.ms == last.ms {
                    match last.seq.checked_add(1) {
                        Some(seq) => StreamId::new(ms_only.ms, seq),
                        None => return Err(err(ID_TOO_SMALL)),
                    }
                } else if ms_only.ms > last.ms {
                    StreamId::new(ms_only.ms, 0)
                } else {
                    return Err(err(ID_TOO_SMALL));
                };
                if id == StreamId::MIN {
                    StreamId::new(0, 1)
                } else {
                    id
                }
            }
        };
        let victims = trim_victims(s, Some(id), trim, node);
        let delta = s.delta_add_trimming(id, fields, &victims, &mut || w.next_dot());
        Ok((delta, id))
    })?;
    Ok(id_reply(added))
}

fn range_command(ctx: &mut Context, args: &mut Args, rev: bool) -> CmdResult {
    let key = args.key()?;
    let (first, second) = (args.next()?, args.next()?);
    let (start_arg, end_arg) = if rev {
        (second, first)
    } else {
        (first, second)
    };
    let (mut start, start_ex) = parse_bound(start_arg, 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or_else(|| err("ERR invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = parse_bound(end_arg, u64::MAX)?;
    if end_ex {
        end = end
            .prev()
            .ok_or_else(|| err("ERR invalid end ID for the interval"))?;
    }
    let mut count: Option<usize> = None;
    while let Some(opt) = args.next_if_any() {
        if is(opt, "count") && !args.is_done() {
            let n = int(args.next()?)?;
            count = Some(n.max(0) as usize);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    let Some(s) = read::<Stream>(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == Some(0) {
        return Ok(Reply::NilArray);
    }
    let limit = count.unwrap_or(usize::MAX);
    let items: Vec<Reply> = if rev {
        s.range(start, end)
            .rev()
            .take(limit)
            .map(|(id, f)| entry_reply(id, f))
            .collect()
    } else {
        s.range(start, end)
            .take(limit)
            .map(|(id, f)| entry_reply(id, f))
            .collect()
    };
    Ok(Reply::Array(items))
}

fn xrange(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, false)
}

fn xrevrange(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, true)
}

fn xlen(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    Ok(Reply::Integer(
        read::<Stream>(ctx, key)?.map_or(0, |s| s.entry_count() as i64),
    ))
}

fn xdel(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let ids = args
        .rest()
        .iter()
        .map(|a| parse_strict(a))
        .collect::<Result<Vec<_>, _>>()?;
    if typed::peek::<Stream>(ctx, key)?.is_none() {
        return Ok(Reply::Integer(0));
    }
    let deleted = write::<Stream, _>(ctx, key, |s, w| {
        let (delta, found) = s.delta_remove(&ids, Removal::Delete, &mut || w.next_dot());
        Ok((delta, found))
    })?;
    Ok(Reply::Integer(deleted as i64))
}

fn xtrim(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let (trim, _) = parse_trim(args, false, ctx)?;
    if typed::peek::<Stream>(ctx, key)?.is_none() {
        return Ok(Reply::Integer(0));
    }
    let node = node_max_entries(ctx);
    let removed = write::<Stream, _>(ctx, key, |s, w| {
        let victims = trim_victims(s, None, trim, node);
        let (delta, found) = s.delta_remove(&victims, Removal::Trim, &mut || w.next_dot());
        Ok((delta, found))
    })?;
    Ok(Reply::Integer(removed as i64))
}

fn xsetid(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let id = parse_strict(args.next()?)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted: Option<StreamId> = None;
    while let Some(opt) = args.next_if_any() {
        if is(opt, "entriesadded") && !args.is_done() {
            let n = int(args.next()?)?;
            if n < 0 {
                return Err(err("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if is(opt, "maxdeletedid") && !args.is_done() {
            let m = parse_strict(args.next()?)?;
            if id < m {
                return Err(err(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            max_deleted = Some(m);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if typed::peek::<Stream>(ctx, key)?.is_none() {
        return Err(err(super::args::NO_SUCH_KEY));
    }
    write::<Stream, _>(ctx, key, |s, w| {
        if let Some(top) = s.top_id() {
            if id < top {
                return Err(err(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added.is_some_and(|n| (s.entry_count() as u64) > n) {
                return Err(err(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        let old = s.meta();
        let meta = Meta {
            last_id: id,
            entries_added: entries_added.unwrap_or(old.entries_added),
            max_deleted: max_deleted.unwrap_or(old.max_deleted),
        };
        Ok((s.delta_set_meta(meta, &mut || w.next_dot()), ()))
    })?;
    Ok(Reply::ok())
}

// ----- XREAD / XREADGROUP -----

struct ReadRequest<'a> {
    block: Option<Option<Duration>>,
    count: usize,
    group: Option<(&'a Bytes, &'a Bytes)>,
    noack: bool,
    keys: &'a [Bytes],
    ids: &'a [Bytes],
    /// Index in argv of the first ID (for rewriting `$`).
    ids_at: usize,
}

fn parse_read<'a>(
    args: &mut Args<'a>,
    group_cmd: bool,
    in_script: bool,
) -> Result<ReadRequest<'a>, Reply> {
    let mut req = ReadRequest {
        block: None,
        count: 0,
        group: None,
        noack: false,
        keys: &[],
        ids: &[],
        ids_at: 0,
    };
    let mut found_streams = false;
    while let Some(opt) = args.next_if_any() {
        let more = args.remaining();
        if is(opt, "block") && more > 0 {
            if in_script {
                // Redis refuses BLOCK itself inside a script (not only
                // the wait), keeping its error from before 7.0.
                return Err(err_owned(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args.argv()[0])
                )));
            }
            let ms = int(args.next()?)
                .map_err(|_| err("ERR timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(err("ERR timeout is negative"));
            }
            req.block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
        } else if is(opt, "count") && more > 0 {
            req.count = int(args.next()?)?.max(0) as usize;
        } else if is(opt, "streams") && more > 0 {
            let rest = args.rest();
            if !rest.len().is_multiple_of(2) {
                return Err(err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            let half = rest.len() / 2;
            req.keys = &rest[..half];
            req.ids = &rest[half..];
            req.ids_at = args.argv().len() - half;
            found_streams = true;
            break;
        } else if is(opt, "group") && more >= 2 {
            if !group_cmd {
                return Err(err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            let g = args.next()?;
            let c = args.next()?;
            req.group = Some((g, c));
        } else if is(opt, "noack") {
            if !group_cmd {
                return Err(err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            req.noack = true;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if !found_streams {
        return Err(err(SYNTAX_ERROR));
    }
    if group_cmd && req.group.is_none() {
        return Err(err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(req)
}

fn keyed_results(ctx: &Context, results: Vec<(Bytes, Reply)>) -> Reply {
    if ctx.client.resp == RespVersion::Resp3 {
        Reply::Map(
            results
                .into_iter()
                .map(|(k, v)| (Reply::Bulk(k), v))
                .collect(),
        )
    } else {
        Reply::Array(
            results
                .into_iter()
                .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                .collect(),
        )
    }
}

/// Parks a read that found nothing, or answers nil without BLOCK.
fn park_read(ctx: &mut Context, block: Option<Option<Duration>>) -> CmdResult {
    match block {
        None => Ok(Reply::NilArray),
        Some(timeout) => {
            let deadline = timeout.map(|t| Instant::now() + t);
            ctx.park(
                Park::Keys {
                    wait_on: WaitOn::DeclaredKeys,
                    deadline,
                },
                Reply::NilArray,
            )
        }
    }
}

fn xread(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let argv = args.argv();
    let req = parse_read(args, false, ctx.client.in_script)?;
    let mut after = Vec::with_capacity(req.keys.len());
    let mut rewritten = false;
    for (key, id) in req.keys.iter().zip(req.ids) {
        let s = read::<Stream>(ctx, key)?;
        if id.as_ref() == b"$" {
            after.push(s.map_or(StreamId::MIN, |s| s.end_cursor()));
            rewritten = true;
        } else if id.as_ref() == b">" {
            return Err(err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
        } else {
            after.push(parse_strict(id)?);
        }
    }
    let mut results = Vec::new();
    let limit = if req.count == 0 {
        usize::MAX
    } else {
        req.count
    };
    for (key, gt) in req.keys.iter().zip(&after) {
        let Some(s) = read::<Stream>(ctx, key)? else {
            continue;
        };
        // By this node's arrival order: a peer's entry that arrived after
        // `gt` is returned even when its ID sorts below `gt`.
        let entries: Vec<Reply> = s
            .read_after(s.position_after(*gt), limit)
            .into_iter()
            .map(|(id, f)| entry_reply(id, f))
            .collect();
        if !entries.is_empty() {
            results.push((key.clone(), Reply::Array(entries)));
        }
    }
    if !results.is_empty() {
        return Ok(keyed_results(ctx, results));
    }
    if req.block.is_some() && rewritten && !ctx.client.deny_blocking {
        // `$` means "after what is there now": wait with the IDs it meant.
        let mut resolved = argv.to_vec();
        for (i, id) in after.iter().enumerate() {
            resolved[req.ids_at + i] = id.render();
        }
        ctx.client.parked_argv = Some(resolved);
    }
    park_read(ctx, req.block)
}

fn nogroup_read(key: &[u8], group: &[u8]) -> Reply {
    err_owned(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

fn xreadgroup(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let req = parse_read(args, true, ctx.client.in_script)?;
    let (group_name, consumer) = req.group.expect("checked by parse_read");
    let mut wanted = Vec::with_capacity(req.keys.len());
    for (key, id) in req.keys.iter().zip(req.ids) {
        let s = read::<Stream>(ctx, key)?;
        if s.and_then(|s| s.group(group_name)).is_none() {
            return Err(nogroup_read(key, group_name));
        }
        if id.as_ref() == b"$" {
            return Err(err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
        }
        wanted.push(if id.as_ref() == b">" {
            None
        } else {
            Some(parse_strict(id)?)
        });
    }
    let limit = if req.count == 0 {
        usize::MAX
    } else {
        req.count
    };
    let now = ctx.store.now_ms();
    let mut results = Vec::new();
    for (key, from) in req.keys.iter().zip(&wanted) {
        let ops_before = ctx.store.open_ops_len();
        let mut created = false;
        let reply = write::<Stream, _>(ctx, key, |s, w| {
            let Some(current) = s.group(group_name) else {
                return Err(nogroup_read(key, group_name));
            };
            let mut group = current.clone();
            created = group.consumers.insert(consumer.clone(), now).is_none();
            let mut entries = Vec::new();
            match from {
                Some(start) => {
                    // History: this consumer's pending entries after
                    // `start` (exclusive, as every XREAD ID is).
                    let ids: Vec<StreamId> = group
                        .pending
                        .range((Bound::Excluded(*start), Bound::Unbounded))
                        .filter(|(_, p)| p.consumer == *consumer)
                        .map(|(id, _)| *id)
                        .take(limit)
                        .collect();
                    for id in ids {
                        match s.get(id) {
                            Some(f) => {
                                entries.push(entry_reply(id, f));
                                if let Some(p) = group.pending.get_mut(&id) {
                                    p.delivered_ms = now;
                                    p.deliveries += 1;
                                }
                            }
                            None => entries.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
                        }
                    }
                }
                None => {
                    let deliver = |group: &mut Group, id: StreamId| {
                        if !req.noack {
                            group.pending.insert(
                                id,
                                Pending {
                                    consumer: consumer.clone(),
                                    delivered_ms: now,
                                    deliveries: 1,
                                },
                            );
                        }
                    };
                    // First what arrived here after the group had passed
                    // it (a peer's late entry), then new IDs.
                    let mut settled = Vec::new();
                    for id in s.owed_to(group_name) {
                        if entries.len() >= limit {
                            break;
                        }
                        settled.push(id);
                        if id > group.last_id || group.pending.contains_key(&id) {
                            continue; // reached by ID below, or delivered
                        }
                        if let Some(f) = s.get(id) {
                            entries.push(entry_reply(id, f));
                            group.entries_read = group.entries_read.map(|n| n + 1);
                            deliver(&mut group, id);
                        }
                    }
                    s.settle_owed(group_name, &settled);
                    let remaining = limit - entries.len();
                    if let Some(start) = group.last_id.next() {
                        let new: Vec<StreamId> = (s.range(start, StreamId::MAX))
                            .take(remaining)
                            .map(|(id, f)| {
                                entries.push(entry_reply(id, f));
                                id
                            })
                            .collect();
                        for id in new {
                            group.last_id = id;
                            group.entries_read = read_counter(s, group.entries_read, id);
                            deliver(&mut group, id);
                        }
                    }
                    if entries.is_empty() {
                        // Nothing new: only a new consumer is worth a write.
                        if current.consumers.contains_key(consumer.as_ref()) {
                            return Ok((StreamDelta::default(), None));
                        }
                        let delta =
                            s.delta_group(group_name, Some(group), w.ts(), &mut || w.next_dot());
                        return Ok((delta, None));
                    }
                }
            }
            let delta = s.delta_group(group_name, Some(group), w.ts(), &mut || w.next_dot());
            Ok((delta, Some(Reply::Array(entries))))
        })?;
        if created {
            tag_created_consumer(ctx, key, ops_before);
        }
        let history = from.is_some();
        match reply {
            Some(r) => results.push((key.clone(), r)),
            None if history => results.push((key.clone(), Reply::Array(Vec::new()))),
            None => {}
        }
    }
    if !results.is_empty() {
        return Ok(keyed_results(ctx, results));
    }
    park_read(ctx, req.block)
}

/// Gives the deltas of `key` since op `from` the `xgroup-createconsumer`
/// event. XREADGROUP, XCLAIM and XAUTOCLAIM create a consumer implicitly,
/// which only the handler knows, so they tag their deltas themselves
/// (the dispatcher leaves these three commands' tags alone).
fn tag_created_consumer(ctx: &mut Context, key: &[u8], from: usize) {
    let created = EventCodes::one(notify::code("xgroup-createconsumer"));
    ctx.store.tag_ops(
        from,
        |_, k, _| {
            if k == key {
                created
            } else {
                EventCodes::NONE
            }
        },
    );
}

/// A group's entries-read after delivering `id` (beyond its last ID):
/// one more while the count is known and no XDEL gap lies ahead, else
/// an estimate from the stream's counters (Redis's rule).
fn read_counter(s: &Stream, known: Option<u64>, id: StreamId) -> Option<u64> {
    match known {
        Some(n) if !deleted_at_or_after(s, id) => Some(n + 1),
        _ => distance_from_first_ever(s, id),
    }
}

/// Whether an XDEL left a gap at or after `from` among the entries
/// present (Redis's streamRangeHasTombstones with an open end).
fn deleted_at_or_after(s: &Stream, from: StreamId) -> bool {
    let max_deleted = s.meta().max_deleted;
    match s.first_id() {
        None => false,
        _ if max_deleted == StreamId::MIN => false,
        Some(first) if first > max_deleted => false,
        Some(_) => from <= max_deleted,
    }
}

/// How many entries were ever added up to and including `id`, when the
/// stream's counters tell it exactly (Redis's
/// streamEstimateDistanceFromFirstEverEntry): at the last ID, or at or
/// before the first entry with no XDEL gap; `None` otherwise.
fn distance_from_first_ever(s: &Stream, id: StreamId) -> Option<u64> {
    let meta = s.meta();
    if meta.entries_added == 0 {
        return Some(0);
    }
    let Some(first) = s.first_id() else {
        return (id <= meta.last_id).then_some(meta.entries_added);
    };
    match id.cmp(&meta.last_id) {
        std::cmp::Ordering::Equal => return Some(meta.entries_added),
        std::cmp::Ordering::Greater => return None,
        std::cmp::Ordering::Less => {}
    }
    let no_gap = meta.max_deleted == StreamId::MIN || meta.max_deleted < first;
    let before_first = meta.entries_added - s.entry_count() as u64;
    match id.cmp(&first) {
        std::cmp::Ordering::Less if no_gap => Some(before_first),
        std::cmp::Ordering::Equal if no_gap => Some(before_first + 1),
        _ => None,
    }
}

// ----- groups -----

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    err_owned(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

fn nokey_or_group(key: &[u8], group: &[u8]) -> Reply {
    err_owned(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// Parses XGROUP CREATE/SETID's options after the ID.
fn group_options(args: &mut Args, create: bool) -> Result<(bool, Option<i64>), Reply> {
    let mut mkstream = false;
    let mut entries_read = None;
    while let Some(opt) = args.next_if_any() {
        if create && is(opt, "mkstream") {
            mkstream = true;
        } else if is(opt, "entriesread") && !args.is_done() {
            let n = int(args.next()?)?;
            if n < 0 && n != -1 {
                return Err(err("ERR value for ENTRIESREAD must be positive or -1"));
            }
            entries_read = Some(n);
        } else {
            return Err(subcommand_syntax(args));
        }
    }
    Ok((mkstream, entries_read))
}

fn subcommand_syntax(args: &Args) -> Reply {
    let name = args
        .argv()
        .get(1)
        .map_or(String::new(), |n| String::from_utf8_lossy(n).to_string());
    err_owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{name}'. Try XGROUP HELP."
    ))
}

fn xgroup_create(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let id_arg = args.next()?;
    if args.argv().len() > 8 {
        return Err(subcommand_syntax(args));
    }
    let (mkstream, entries_read) = group_options(args, true)?;
    let existing = typed::peek::<Stream>(ctx, key)?;
    if existing.is_none() && !mkstream {
        return Err(err(NEEDS_KEY));
    }
    let id = if id_arg.as_ref() == b"$" {
        existing.map_or(StreamId::MIN, |s| s.last_id())
    } else {
        parse_strict(id_arg)?
    };
    write::<Stream, _>(ctx, key, |s, w| {
        if s.group(name).is_some() {
            return Err(err("BUSYGROUP Consumer Group name already exists"));
        }
        let group = Group {
            last_id: id,
            entries_read: entries_read.filter(|&n| n >= 0).map(|n| n as u64),
            ..Group::default()
        };
        let ts = w.ts();
        let mut next_dot = || w.next_dot();
        let mut delta = if s.is_empty() {
            s.delta_touch(&mut next_dot)
        } else {
            StreamDelta::default()
        };
        <Stream as ElementCrdt>::delta_then(
            &mut delta,
            s.delta_group(name, Some(group), ts, &mut next_dot),
        );
        Ok((delta, ()))
    })?;
    Ok(Reply::ok())
}

/// Runs `change` on the existing group `name` of `key`, with XGROUP's
/// errors for a missing key or group.
fn with_group<R>(
    ctx: &mut Context,
    key: &[u8],
    name: &[u8],
    change: impl FnOnce(&Stream, &mut Group) -> Result<(bool, R), Reply>,
) -> Result<R, Reply> {
    match typed::peek::<Stream>(ctx, key)? {
        None => return Err(err(NEEDS_KEY)),
        Some(s) if s.group(name).is_none() => return Err(nogroup(key, name)),
        Some(_) => {}
    }
    write::<Stream, _>(ctx, key, |s, w| {
        let mut group = s.group(name).cloned().unwrap_or_default();
        let (changed, result) = change(s, &mut group)?;
        let delta = if changed {
            s.delta_group(name, Some(group), w.ts(), &mut || w.next_dot())
        } else {
            StreamDelta::default()
        };
        Ok((delta, result))
    })
}

fn xgroup_setid(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let id_arg = args.next()?;
    let n = args.argv().len();
    if n != 5 && n != 7 {
        return Err(subcommand_syntax(args));
    }
    let (_, entries_read) = group_options(args, false)?;
    let id = if id_arg.as_ref() == b"$" {
        None
    } else {
        Some(parse_bound(id_arg, 0)?.0)
    };
    with_group(ctx, key, name, |s, g| {
        g.last_id = id.unwrap_or_else(|| s.last_id());
        g.entries_read = entries_read.filter(|&n| n >= 0).map(|n| n as u64);
        Ok((true, ()))
    })?;
    Ok(Reply::ok())
}

fn xgroup_destroy(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    match typed::peek::<Stream>(ctx, key)? {
        None => return Err(err(NEEDS_KEY)),
        Some(s) if s.group(name).is_none() => return Ok(Reply::Integer(0)),
        Some(_) => {}
    }
    write::<Stream, _>(ctx, key, |s, w| {
        Ok((s.delta_group(name, None, w.ts(), &mut || w.next_dot()), ()))
    })?;
    Ok(Reply::Integer(1))
}

fn xgroup_createconsumer(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let consumer = args.next()?;
    let now = ctx.store.now_ms();
    let created = with_group(ctx, key, name, |_, g| {
        if g.consumers.contains_key(consumer.as_ref()) {
            return Ok((false, 0));
        }
        g.consumers.insert(consumer.clone(), now);
        Ok((true, 1))
    })?;
    Ok(Reply::Integer(created))
}

fn xgroup_delconsumer(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let consumer = args.next()?;
    let pending = with_group(ctx, key, name, |_, g| {
        if g.consumers.remove(consumer.as_ref()).is_none() {
            return Ok((false, 0));
        }
        let before = g.pending.len();
        g.pending.retain(|_, p| p.consumer != *consumer);
        Ok((true, (before - g.pending.len()) as i64))
    })?;
    Ok(Reply::Integer(pending))
}

fn xgroup_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(super::args::help_reply(&[
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Print this help.",
    ]))
}

// ----- XACK, XCLAIM, XAUTOCLAIM, XPENDING -----

/// Runs `change` on group `name` of `key` for the commands whose error
/// for a missing key or group is "No such key … or consumer group …";
/// `missing` is the reply when the key or group is absent and no error
/// is due.
fn on_group<R>(
    ctx: &mut Context,
    key: &[u8],
    name: &[u8],
    change: impl FnOnce(&Stream, &mut Group) -> Result<(bool, R), Reply>,
) -> Result<Option<R>, Reply> {
    match typed::peek::<Stream>(ctx, key)? {
        Some(s) if s.group(name).is_some() => {}
        _ => return Ok(None),
    }
    write::<Stream, _>(ctx, key, |s, w| {
        let mut group = s.group(name).cloned().unwrap_or_default();
        let (changed, result) = change(s, &mut group)?;
        let delta = if changed {
            s.delta_group(name, Some(group), w.ts(), &mut || w.next_dot())
        } else {
            StreamDelta::default()
        };
        Ok((delta, result))
    })
    .map(Some)
}

fn xack(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let ids = args
        .rest()
        .iter()
        .map(|a| parse_strict(a))
        .collect::<Result<Vec<_>, _>>()?;
    let acked = on_group(ctx, key, name, |_, g| {
        let n = ids
            .iter()
            .filter(|id| g.pending.remove(id).is_some())
            .count();
        Ok((n > 0, n as i64))
    })?;
    Ok(Reply::Integer(acked.unwrap_or(0)))
}

fn parse_ms_option(arg: &[u8], text: &'static str) -> Result<i64, Reply> {
    int(arg).map_err(|_| err(text))
}

fn xclaim(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let consumer = args.next()?;
    let exists = match typed::peek::<Stream>(ctx, key)? {
        Some(s) => s.group(name).is_some(),
        None => false,
    };
    if !exists {
        return Err(nokey_or_group(key, name));
    }
    let min_idle = parse_ms_option(
        args.next()?,
        "ERR Invalid min-idle-time argument for XCLAIM",
    )?
    .max(0);
    let mut ids = Vec::new();
    while let Some(a) = args.peek() {
        match parse_strict(a) {
            Ok(id) => {
                ids.push(id);
                args.next()?;
            }
            Err(_) => break,
        }
    }
    let now = ctx.store.now_ms() as i64;
    let (mut force, mut justid) = (false, false);
    let mut delivery: Option<i64> = None;
    let mut retry: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while let Some(opt) = args.next_if_any() {
        let more = !args.is_done();
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more {
            delivery = Some(
                now - parse_ms_option(args.next()?, "ERR Invalid IDLE option argument for XCLAIM")?,
            );
        } else if is(opt, "time") && more {
            delivery = Some(parse_ms_option(
                args.next()?,
                "ERR Invalid TIME option argument for XCLAIM",
            )?);
        } else if is(opt, "retrycount") && more {
            retry = Some(parse_ms_option(
                args.next()?,
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?);
        } else if is(opt, "lastid") && more {
            last_id = parse_strict(args.next()?)?;
        } else {
            return Err(err_owned(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    let delivery_ms = match delivery {
        Some(t) if t >= 0 && t <= now => t,
        _ => now,
    } as u64;
    let ops_before = ctx.store.open_ops_len();
    let mut created = false;
    let replies = on_group(ctx, key, name, |s, g| {
        let mut changed = false;
        if last_id > g.last_id {
            g.last_id = last_id;
            changed = true;
        }
        let mut out = Vec::new();
        for id in &ids {
            let Some(fields) = s.get(*id) else {
                changed |= g.pending.remove(id).is_some();
                continue;
            };
            if force && !g.pending.contains_key(id) {
                g.pending.insert(
                    *id,
                    Pending {
                        consumer: consumer.clone(),
                        delivered_ms: now as u64,
                        deliveries: 0,
                    },
                );
            }
            let Some(p) = g.pending.get_mut(id) else {
                continue;
            };
            if min_idle > 0 && (now as u64).saturating_sub(p.delivered_ms) < min_idle as u64 {
                continue;
            }
            p.consumer = consumer.clone();
            p.delivered_ms = delivery_ms;
            match retry {
                Some(r) if r >= 0 => p.deliveries = r as u64,
                _ if !justid => p.deliveries += 1,
                _ => {}
            }
            changed = true;
            out.push(if justid {
                id_reply(*id)
            } else {
                entry_reply(*id, fields)
            });
        }
        if changed || !out.is_empty() {
            created = !g.consumers.contains_key(consumer.as_ref());
            g.consumers.entry(consumer.clone()).or_insert(now as u64);
        }
        Ok((changed, out))
    })?;
    if created {
        tag_created_consumer(ctx, key, ops_before);
    }
    Ok(Reply::Array(replies.unwrap_or_default()))
}

fn xautoclaim(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let consumer = args.next()?;
    let min_idle = parse_ms_option(
        args.next()?,
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    )?
    .max(0) as u64;
    let start = parse_bound(args.next()?, 0)?.0;
    let mut count: usize = 100;
    let mut justid = false;
    while let Some(opt) = args.next_if_any() {
        if is(opt, "count") && !args.is_done() {
            let n = int(args.next()?)?;
            const MAX: i64 = i64::MAX / (8 * 10);
            if !(1..=MAX).contains(&n) {
                return Err(err("ERR COUNT must be > 0"));
            }
            count = n as usize;
        } else if is(opt, "justid") {
            justid = true;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    let exists = match typed::peek::<Stream>(ctx, key)? {
        Some(s) => s.group(name).is_some(),
        None => false,
    };
    if !exists {
        return Err(nokey_or_group(key, name));
    }
    let now = ctx.store.now_ms();
    let ops_before = ctx.store.open_ops_len();
    let mut created = false;
    let result = on_group(ctx, key, name, |s, g| {
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        // Redis's loop: up to COUNT answers (claimed or deleted), at most
        // ten attempts per answer; the cursor is the next pending ID.
        let mut remaining = count;
        let mut attempts = count.saturating_mul(10);
        let ids: Vec<StreamId> = g.pending.range(start..).map(|(id, _)| *id).collect();
        let mut iter = ids.into_iter();
        let mut next = StreamId::MIN;
        let mut changed = false;
        loop {
            if attempts == 0 || remaining == 0 {
                next = iter.next().unwrap_or(StreamId::MIN);
                break;
            }
            let Some(id) = iter.next() else { break };
            attempts -= 1;
            let Some(fields) = s.get(id) else {
                g.pending.remove(&id);
                deleted.push(id_reply(id));
                changed = true;
                remaining -= 1;
                continue;
            };
            let p = g.pending.get_mut(&id).expect("listed above");
            if min_idle > 0 && now.saturating_sub(p.delivered_ms) < min_idle {
                continue;
            }
            p.consumer = consumer.clone();
            p.delivered_ms = now;
            if !justid {
                p.deliveries += 1;
            }
            changed = true;
            remaining -= 1;
            claimed.push(if justid {
                id_reply(id)
            } else {
                entry_reply(id, fields)
            });
        }
        if changed {
            created = !g.consumers.contains_key(consumer.as_ref());
            g.consumers.entry(consumer.clone()).or_insert(now);
        }
        Ok((
            changed,
            Reply::Array(vec![
                id_reply(next),
                Reply::Array(claimed),
                Reply::Array(deleted),
            ]),
        ))
    })?;
    if created {
        tag_created_consumer(ctx, key, ops_before);
    }
    Ok(result.expect("group checked above"))
}

fn xpending(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let extended = !args.is_done();
    let mut min_idle: u64 = 0;
    let mut range = None;
    if extended {
        let mut next = args.next()?;
        if is(next, "idle") {
            let n = int(args.next()?)?;
            min_idle = n.max(0) as u64;
            next = args.next()?;
        }
        let start = parse_bound(next, 0)?;
        let end = parse_bound(args.next()?, u64::MAX)?;
        let count = int(args.next()?)?.max(0) as usize;
        let consumer = args.next_if_any();
        args.finish()?;
        let mut lo = start.0;
        if start.1 {
            lo = lo
                .next()
                .ok_or_else(|| err("ERR invalid start ID for the interval"))?;
        }
        let mut hi = end.0;
        if end.1 {
            hi = hi
                .prev()
                .ok_or_else(|| err("ERR invalid end ID for the interval"))?;
        }
        range = Some((lo, hi, count, consumer));
    }
    let now = ctx.store.now_ms();
    let Some(s) = read::<Stream>(ctx, key)? else {
        return Err(nokey_or_group(key, name));
    };
    let Some(g) = s.group(name) else {
        return Err(nokey_or_group(key, name));
    };
    match range {
        None => {
            if g.pending.is_empty() {
                return Ok(Reply::Array(vec![
                    Reply::Integer(0),
                    Reply::Nil,
                    Reply::Nil,
                    Reply::NilArray,
                ]));
            }
            let mut per: std::collections::BTreeMap<&Bytes, i64> = Default::default();
            for p in g.pending.values() {
                *per.entry(&p.consumer).or_default() += 1;
            }
            Ok(Reply::Array(vec![
                Reply::Integer(g.pending.len() as i64),
                id_reply(*g.pending.keys().next().expect("non-empty")),
                id_reply(*g.pending.keys().next_back().expect("non-empty")),
                Reply::Array(
                    per.into_iter()
                        .map(|(c, n)| {
                            Reply::Array(vec![
                                Reply::Bulk(c.clone()),
                                Reply::Bulk(Bytes::from(n.to_string())),
                            ])
                        })
                        .collect(),
                ),
            ]))
        }
        Some((lo, hi, count, consumer)) => {
            if lo > hi {
                return Ok(Reply::Array(Vec::new()));
            }
            let items = g
                .pending
                .range(lo..=hi)
                .filter(|(_, p)| consumer.is_none_or(|c| p.consumer == *c))
                .filter(|(_, p)| now.saturating_sub(p.delivered_ms) >= min_idle)
                .take(count)
                .map(|(id, p)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Bulk(p.consumer.clone()),
                        Reply::Integer(now.saturating_sub(p.delivered_ms) as i64),
                        Reply::Integer(p.deliveries as i64),
                    ])
                })
                .collect();
            Ok(Reply::Array(items))
        }
    }
}

// ----- XINFO -----

fn pairs(items: Vec<(&'static str, Reply)>) -> Reply {
    Reply::Map(
        items
            .into_iter()
            .map(|(k, v)| (Reply::Bulk(Bytes::from_static(k.as_bytes())), v))
            .collect(),
    )
}

fn entry_or_nil(s: &Stream, id: Option<StreamId>) -> Reply {
    match id.and_then(|id| s.get(id).map(|f| (id, f))) {
        Some((id, f)) => entry_reply(id, f),
        None => Reply::Nil,
    }
}

/// The entries a group has yet to read, or nil when XDEL gaps make it
/// unknowable (Redis's streamReplyWithCGLag).
fn group_lag(s: &Stream, g: &Group) -> Reply {
    let added = s.meta().entries_added;
    let read = match g.entries_read {
        _ if added == 0 => Some(added),
        Some(read) if !deleted_at_or_after(s, g.last_id) => Some(read),
        _ => distance_from_first_ever(s, g.last_id),
    };
    read.map_or(Reply::Nil, |read| {
        Reply::Integer(added.saturating_sub(read) as i64)
    })
}

fn entries_read_reply(g: &Group) -> Reply {
    g.entries_read
        .map_or(Reply::Nil, |n| Reply::Integer(n as i64))
}

fn xinfo_stream(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let mut full = false;
    let mut count: usize = 10;
    if let Some(opt) = args.next_if_any() {
        if !is(opt, "full") {
            return Err(err(SYNTAX_ERROR));
        }
        full = true;
        if let Some(c) = args.next_if_any() {
            if !is(c, "count") {
                return Err(err(SYNTAX_ERROR));
            }
            let n = int(args.next()?)?;
            count = if n <= 0 { usize::MAX } else { n as usize };
        }
        args.finish()?;
    }
    let now = ctx.store.now_ms();
    let Some(s) = read::<Stream>(ctx, key)? else {
        return Err(err(super::args::NO_SUCH_KEY));
    };
    let meta = s.meta();
    let mut items = vec![
        ("length", Reply::Integer(s.entry_count() as i64)),
        (
            "radix-tree-keys",
            Reply::Integer(s.entry_count().div_ceil(100).max(1) as i64),
        ),
        (
            "radix-tree-nodes",
            Reply::Integer((s.entry_count().div_ceil(100) + 1) as i64),
        ),
        ("last-generated-id", id_reply(meta.last_id)),
        ("max-deleted-entry-id", id_reply(meta.max_deleted)),
        ("entries-added", Reply::Integer(meta.entries_added as i64)),
        (
            "recorded-first-entry-id",
            id_reply(s.first_id().unwrap_or_default()),
        ),
    ];
    if !full {
        items.push(("groups", Reply::Integer(s.groups().count() as i64)));
        items.push(("first-entry", entry_or_nil(s, s.first_id())));
        items.push(("last-entry", entry_or_nil(s, s.top_id())));
        return Ok(pairs(items));
    }
    items.push((
        "entries",
        Reply::Array(
            s.range(StreamId::MIN, StreamId::MAX)
                .take(count)
                .map(|(id, f)| entry_reply(id, f))
                .collect(),
        ),
    ));
    let groups = s
        .groups()
        .map(|(name, g)| {
            let pel = g
                .pending
                .iter()
                .take(count)
                .map(|(id, p)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Bulk(p.consumer.clone()),
                        Reply::Integer(p.delivered_ms as i64),
                        Reply::Integer(p.deliveries as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(c, seen)| {
                    let own: Vec<(&StreamId, &Pending)> =
                        g.pending.iter().filter(|(_, p)| p.consumer == *c).collect();
                    pairs(vec![
                        ("name", Reply::Bulk(c.clone())),
                        ("seen-time", Reply::Integer(*seen as i64)),
                        ("pel-count", Reply::Integer(own.len() as i64)),
                        (
                            "pending",
                            Reply::Array(
                                own.iter()
                                    .take(count)
                                    .map(|(id, p)| {
                                        Reply::Array(vec![
                                            id_reply(**id),
                                            Reply::Integer(p.delivered_ms as i64),
                                            Reply::Integer(p.deliveries as i64),
                                        ])
                                    })
                                    .collect(),
                            ),
                        ),
                    ])
                })
                .collect();
            let _ = now;
            pairs(vec![
                ("name", Reply::Bulk(name.clone())),
                ("last-delivered-id", id_reply(g.last_id)),
                ("entries-read", entries_read_reply(g)),
                ("lag", group_lag(s, g)),
                ("pel-count", Reply::Integer(g.pending.len() as i64)),
                ("pending", Reply::Array(pel)),
                ("consumers", Reply::Array(consumers)),
            ])
        })
        .collect();
    items.push(("groups", Reply::Array(groups)));
    Ok(pairs(items))
}

fn xinfo_groups(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let Some(s) = read::<Stream>(ctx, key)? else {
        return Err(err(super::args::NO_SUCH_KEY));
    };
    Ok(Reply::Array(
        s.groups()
            .map(|(name, g)| {
                pairs(vec![
                    ("name", Reply::Bulk(name.clone())),
                    ("consumers", Reply::Integer(g.consumers.len() as i64)),
                    ("pending", Reply::Integer(g.pending.len() as i64)),
                    ("last-delivered-id", id_reply(g.last_id)),
                    ("entries-read", entries_read_reply(g)),
                    ("lag", group_lag(s, g)),
                ])
            })
            .collect(),
    ))
}

fn xinfo_consumers(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let name = args.next()?;
    let now = ctx.store.now_ms();
    let Some(s) = read::<Stream>(ctx, key)? else {
        return Err(err(super::args::NO_SUCH_KEY));
    };
    let Some(g) = s.group(name) else {
        return Err(nogroup(key, name));
    };
    Ok(Reply::Array(
        g.consumers
            .iter()
            .map(|(c, seen)| {
                let pending = g.pending.values().filter(|p| p.consumer == *c).count();
                pairs(vec![
                    ("name", Reply::Bulk(c.clone())),
                    ("pending", Reply::Integer(pending as i64)),
                    ("idle", Reply::Integer(now.saturating_sub(*seen) as i64)),
                ])
            })
            .collect(),
    ))
}

fn xinfo_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(super::args::help_reply(&[
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Print this help.",
    ]))
}

#[allow(dead_code)]
const _: &str = NOT_AN_INTEGER;

/// The key positions of an XREAD/XREADGROUP request: the first half of
/// the words after STREAMS (`None` when unbalanced or missing).
pub fn stream_key_positions(argv: &[Bytes]) -> Option<Vec<usize>> {
    let at = argv.iter().skip(1).position(|a| is(a, "streams"))? + 2;
    let rest = argv.len().checked_sub(at)?;
    if rest == 0 || rest % 2 != 0 {
        return None;
    }
    Some((at..at + rest / 2).collect())
}
