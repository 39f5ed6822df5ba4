//! COMMAND and its subcommands (COUNT, INFO, DOCS, LIST [FILTERBY],
//! GETKEYS, GETKEYSANDFLAGS, HELP), all generated from the command tables:
//! every row's name, arity, flags, key positions, group and summary.
//!
//! Keys: a row's fixed key positions (`CommandSpec::key_args`), or for a
//! command whose keys move ([`movable_keys`]) the positions its `numkeys`
//! argument says.

use bytes::Bytes;

use super::args::{self, err, err_owned, help_reply, Args, CmdResult};
use super::flags::{ADMIN, FAST, LOADING, MOVABLEKEYS, READONLY, STALE, WRITE};
use super::{all_commands, lookup, lookup_subcommand, spec, CommandSpec, Context};
use crate::protocol::Reply;
use crate::store::pattern::glob_match;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: COMMAND_SUBCOMMANDS,
        ..spec("command", -1, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns detailed information about all commands.", command_list)
    },
];

#[rustfmt::skip]
static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec("count", 2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns a count of commands.", command_count),
    spec("docs", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "Returns documentary information about one, multiple or all commands.", command_docs),
    spec("getkeys", -4, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Extracts the key names from an arbitrary command.", command_getkeys),
    spec("getkeysandflags", -4, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "Extracts the key names and access flags for an arbitrary command.", command_getkeysandflags),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", "Returns helpful text about the different subcommands.", command_help),
    spec("info", -2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns information about one, multiple or all commands.", command_info),
    spec("list", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", "Returns a list of command names.", command_names),
];

fn name_reply(name: &str) -> Reply {
    Reply::Bulk(Bytes::from(name.to_string()))
}

/// A command by its full name: `get`, or `config|get` for a subcommand.
fn lookup_full(name: &[u8]) -> Option<(&'static CommandSpec, String)> {
    let mut parts = name.split(|&b| b == b'|');
    let top = lookup(parts.next()?)?;
    match parts.next() {
        None => Some((top, top.name.to_string())),
        Some(sub) => {
            let sub = lookup_subcommand(top, sub)?;
            if parts.next().is_some() {
                return None;
            }
            Some((sub, format!("{}|{}", top.name, sub.name)))
        }
    }
}

/// One COMMAND INFO entry, Redis 7 shape: name, arity, flags, first key,
/// last key, step, ACL categories, tips, key specs, subcommands.
fn command_entry(c: &CommandSpec, full_name: &str) -> Reply {
    let flags = c
        .flag_names()
        .into_iter()
        .map(|f| Reply::Simple(Bytes::from_static(f.as_bytes())))
        .collect();
    let subcommands = c
        .subcommands
        .iter()
        .map(|s| command_entry(s, &format!("{full_name}|{}", s.name)))
        .collect();
    Reply::Array(vec![
        name_reply(full_name),
        Reply::Integer(c.arity as i64),
        Reply::Set(flags),
        Reply::Integer(c.first_key as i64),
        Reply::Integer(c.last_key as i64),
        Reply::Integer(c.step as i64),
        Reply::Set(
            acl_categories(c)
                .into_iter()
                .map(|cat| Reply::Simple(Bytes::from_static(cat.as_bytes())))
                .collect(),
        ),
        // Tips and key specs are sets in RESP3, as are absent subcommands.
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        if c.subcommands.is_empty() {
            Reply::Set(vec![])
        } else {
            Reply::Array(subcommands)
        },
    ])
}

/// ACL categories derived from the flags and group, in Redis's category
/// order (keyspace, read, write, string, admin, fast/slow, dangerous,
/// connection).
fn acl_categories(c: &CommandSpec) -> Vec<&'static str> {
    let mut out = Vec::new();
    if c.group == "generic" {
        out.push("@keyspace");
    }
    if c.flags & READONLY != 0 {
        out.push("@read");
    }
    if c.flags & WRITE != 0 {
        out.push("@write");
    }
    match c.group {
        "string" => out.push("@string"),
        "list" => out.push("@list"),
        "set" => out.push("@set"),
        "sorted-set" => out.push("@sortedset"),
        "hash" => out.push("@hash"),
        "transactions" => out.push("@transaction"),
        "geo" => out.push("@geo"),
        _ => {}
    }
    if c.flags & ADMIN != 0 {
        out.push("@admin");
    }
    out.push(if c.flags & FAST != 0 {
        "@fast"
    } else {
        "@slow"
    });
    if c.flags & ADMIN != 0 {
        out.push("@dangerous");
    }
    if c.group == "connection" {
        out.push("@connection");
    }
    if c.group == "scripting" {
        out.push("@scripting");
    }
    out
}

/// Bare `COMMAND`: every command's entry. (A word after it is resolved
/// as a subcommand before this runs; the check here is a safeguard.)
fn command_list(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    if let Some(word) = args.next_if_any() {
        return Err(err_owned(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            args::text(word)
        )));
    }
    Ok(every_command_entry())
}

fn every_command_entry() -> Reply {
    Reply::Array(all_commands().map(|c| command_entry(c, c.name)).collect())
}

fn command_count(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Integer(all_commands().count() as i64))
}

fn command_info(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.is_done() {
        return Ok(every_command_entry());
    }
    Ok(Reply::Array(
        args.rest()
            .iter()
            .map(|name| {
                lookup_full(name).map_or(Reply::NilArray, |(c, full)| command_entry(c, &full))
            })
            .collect(),
    ))
}

/// Every command and subcommand by full name (`client|list`), as COMMAND
/// LIST reports them.
fn every_full_name() -> Vec<(String, &'static CommandSpec)> {
    let mut out = Vec::new();
    for c in all_commands() {
        out.push((c.name.to_string(), c));
        for s in c.subcommands {
            out.push((format!("{}|{}", c.name, s.name), s));
        }
    }
    out
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]`.
fn command_names(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    let filter = match args.remaining() {
        0 => None,
        3 => {
            args.expect("filterby")?;
            let kind = args.one_of(&[("module", 0), ("aclcat", 1), ("pattern", 2)])?;
            Some((kind, args.next()?))
        }
        _ => return Err(err(args::SYNTAX_ERROR)),
    };
    let names = every_full_name()
        .into_iter()
        .filter(|(full, c)| match filter {
            None => true,
            // No modules: no command belongs to one.
            Some((0, _)) => false,
            Some((1, cat)) => acl_categories(c)
                .iter()
                .any(|have| have.as_bytes()[1..].eq_ignore_ascii_case(cat)),
            Some((_, pattern)) => glob_match(pattern, full.as_bytes(), true),
        })
        .map(|(full, _)| name_reply(&full))
        .collect();
    Ok(Reply::Array(names))
}

/// COMMAND DOCS map for one command: summary, since, group, subcommands.
fn command_doc(c: &CommandSpec, full_name: &str) -> Reply {
    let text = |s: &str| Reply::Bulk(Bytes::from(s.to_string()));
    let mut fields = vec![
        (text("summary"), text(c.summary)),
        (text("since"), text(c.since)),
        (text("group"), text(c.group)),
    ];
    if !c.subcommands.is_empty() {
        let subs = c
            .subcommands
            .iter()
            .map(|s| {
                let name = format!("{full_name}|{}", s.name);
                (name_reply(&name), command_doc(s, &name))
            })
            .collect();
        fields.push((text("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(fields)
}

fn command_docs(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    let docs = if args.is_done() {
        all_commands()
            .map(|c| (name_reply(c.name), command_doc(c, c.name)))
            .collect()
    } else {
        args.rest()
            .iter()
            .filter_map(|name| lookup_full(name))
            .map(|(c, full)| (name_reply(&full), command_doc(c, &full)))
            .collect()
    };
    Ok(Reply::Map(docs))
}

fn command_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help_reply(&[
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Print this help.",
    ]))
}

// ----- GETKEYS -----

/// Keys of a command whose key positions move: the positions (into
/// `argv`, the command's own words) its `numkeys` names; `None` when the
/// arguments do not say (a bad `numkeys`), which Redis reports as invalid
/// arguments.
pub fn movable_keys(name: &str, argv: &[Bytes]) -> Option<Vec<usize>> {
    match name {
        "sort" => return Some(super::sort::sort_key_positions(argv)),
        "sort_ro" => return Some(vec![1]),
        "xread" | "xreadgroup" => return super::streams::stream_key_positions(argv),
        "migrate" => return super::dump::migrate_key_positions(argv),
        _ => {}
    }
    // (index of numkeys, keys that come before it).
    let (numkeys_at, before): (usize, &[usize]) = match name {
        "sintercard" | "zinter" | "zunion" | "zdiff" | "zintercard" | "lmpop" | "zmpop" => (1, &[]),
        "zunionstore" | "zinterstore" | "zdiffstore" => (2, &[1]),
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall"
        | "fcall_ro" => (2, &[]),
        _ => return None,
    };
    let numkeys = args::int(argv.get(numkeys_at)?).ok()?;
    let first = numkeys_at + 1;
    let is_script = matches!(
        name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    );
    if numkeys < 0 || (numkeys == 0 && !is_script) {
        return None;
    }
    let numkeys = numkeys as usize;
    if first + numkeys > argv.len() {
        return None;
    }
    let mut keys = before.to_vec();
    keys.extend(first..first + numkeys);
    Some(keys)
}

/// The key positions of `argv` (a full command) for `c`, its resolved row
/// (`top` names it for movable keys).
fn key_positions(top: &CommandSpec, c: &CommandSpec, argv: &[Bytes]) -> Option<Vec<usize>> {
    if c.flags & MOVABLEKEYS != 0 {
        return movable_keys(top.name, argv);
    }
    if c.first_key <= 0 || c.step <= 0 {
        return None;
    }
    let first = c.first_key as usize;
    let last = if c.last_key < 0 {
        argv.len() as i64 + c.last_key as i64
    } else {
        c.last_key as i64
    };
    if last < first as i64 || last as usize >= argv.len() {
        return None;
    }
    Some((first..=last as usize).step_by(c.step as usize).collect())
}

/// Redis's key-spec flags for one key of a command, from the row (the
/// common cases Redis's key specs name).
fn key_flags(c: &CommandSpec, name: &str, nth: usize) -> &'static [&'static str] {
    match (name, nth) {
        ("set" | "mset" | "msetnx" | "setex" | "psetex" | "setnx", _) => &["OW", "update"],
        ("del" | "unlink", _) => &["RM", "delete"],
        ("sort", 1) => &["OW", "update"],
        ("sort" | "sort_ro", _) => &["RO", "access"],
        ("lmove" | "blmove" | "rpoplpush" | "brpoplpush" | "smove", 0) => {
            &["RW", "access", "delete"]
        }
        ("lmove" | "blmove" | "rpoplpush" | "brpoplpush" | "smove", _) => &["RW", "insert"],
        (
            "zunionstore" | "zinterstore" | "zdiffstore" | "sinterstore" | "sunionstore"
            | "sdiffstore" | "zrangestore",
            0,
        ) => &["OW", "update"],
        (
            "zunionstore" | "zinterstore" | "zdiffstore" | "sinterstore" | "sunionstore"
            | "sdiffstore" | "zrangestore",
            _,
        ) => &["RO", "access"],
        (
            "lpush" | "rpush" | "lpushx" | "rpushx" | "sadd" | "zadd" | "hset" | "hsetnx" | "hmset",
            _,
        ) => &["RW", "insert"],
        (
            "lpop" | "rpop" | "blpop" | "brpop" | "spop" | "zpopmin" | "zpopmax" | "getdel"
            | "lmpop" | "blmpop" | "zmpop" | "bzmpop" | "bzpopmin" | "bzpopmax",
            _,
        ) => &["RW", "access", "delete"],
        _ if c.flags & WRITE != 0 => &["RW", "access", "update"],
        _ => &["RO", "access"],
    }
}

fn getkeys(args: &mut Args, with_flags: bool) -> CmdResult {
    let argv = args.rest();
    let Some(top) = lookup(&argv[0]) else {
        return Err(err("ERR Invalid command specified"));
    };
    let c = if top.subcommands.is_empty() || argv.len() < 2 {
        top
    } else {
        lookup_subcommand(top, &argv[1]).ok_or_else(|| err("ERR Invalid command specified"))?
    };
    if c.first_key <= 0 && c.flags & MOVABLEKEYS == 0 {
        return Err(err("ERR The command has no key arguments"));
    }
    if !c.arity_ok(argv.len()) {
        return Err(err("ERR Invalid number of arguments specified for command"));
    }
    let Some(positions) = key_positions(top, c, argv) else {
        return Err(err("ERR Invalid arguments specified for command"));
    };
    Ok(Reply::Array(
        positions
            .iter()
            .enumerate()
            .map(|(nth, &at)| {
                let key = Reply::Bulk(argv[at].clone());
                if with_flags {
                    let flags = key_flags(c, top.name, nth)
                        .iter()
                        .map(|f| Reply::Simple(Bytes::from_static(f.as_bytes())))
                        .collect();
                    Reply::Array(vec![key, Reply::Set(flags)])
                } else {
                    key
                }
            })
            .collect(),
    ))
}

/// `COMMAND GETKEYS cmd arg ...`: the key arguments of that command.
fn command_getkeys(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    getkeys(args, false)
}

/// `COMMAND GETKEYSANDFLAGS cmd arg ...`: each key with its access flags.
fn command_getkeysandflags(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    getkeys(args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<Bytes> {
        w.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn movable_keys_follow_numkeys() {
        let argv = words(&["zunionstore", "dst", "2", "a", "b", "WEIGHTS", "1", "2"]);
        assert_eq!(movable_keys("zunionstore", &argv), Some(vec![1, 3, 4]));
        let argv = words(&["sintercard", "2", "a", "b", "LIMIT", "1"]);
        assert_eq!(movable_keys("sintercard", &argv), Some(vec![2, 3]));
        let argv = words(&["sintercard", "5", "a"]);
        assert_eq!(movable_keys("sintercard", &argv), None);
        let argv = words(&["eval", "return 1", "0"]);
        assert_eq!(movable_keys("eval", &argv), Some(vec![]));
    }
}
