//! Keyspace notifications: the classes of `notify-keyspace-events`, the
//! table of event names (whose positions are the codes key deltas carry to
//! peers), which events each write command raises on which of its keys,
//! and the [`Notifications`] hub that turns events into Pub/Sub messages on
//! `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`.
//!
//! Events are raised where the change lands: for a local command when its
//! batch closes, for a peer's batch when it is applied (with the event
//! names the origin's command chose, carried as codes), for an expiry when
//! the key expires on this node. `new` and the `del` of a collection that
//! became empty are worked out on each node from the key's presence there.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::channels::PubSub;
use super::tracking::Tracking;
use crate::store::{EventCodes, Notifier, Presence};

/// Class bits, as Redis numbers them.
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 12;
    pub const NEW: u32 = 1 << 13;
    /// `A`: every class but key-miss and new (Redis's NOTIFY_ALL).
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// The letters of `notify-keyspace-events` and their classes.
const LETTERS: &[(u8, u32)] = &[
    (b'g', class::GENERIC),
    (b'$', class::STRING),
    (b'l', class::LIST),
    (b's', class::SET),
    (b'h', class::HASH),
    (b'z', class::ZSET),
    (b'x', class::EXPIRED),
    (b'e', class::EVICTED),
    (b't', class::STREAM),
    (b'd', class::MODULE),
    (b'n', class::NEW),
];

/// Why a `notify-keyspace-events` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassError {
    /// Not a class letter at all (Redis's error).
    Invalid,
    /// A class Redis has that cordis does not raise yet.
    NotBuilt(&'static str),
}

/// Parses a `notify-keyspace-events` value. `m` (key misses) is a class
/// cordis does not raise yet, so it is refused rather than accepted and
/// never fired. `d` (module events) is accepted: cordis loads no modules,
/// so there are none to raise, exactly as on a Redis without modules.
pub fn parse_classes(text: &[u8]) -> Result<u32, ClassError> {
    let mut flags = 0;
    for &c in text {
        flags |= match c {
            b'A' => class::ALL,
            b'K' => class::KEYSPACE,
            b'E' => class::KEYEVENT,
            b'm' => {
                return Err(ClassError::NotBuilt(
                    "key-miss events (class 'm') are not raised by cordis yet",
                ))
            }
            _ => match LETTERS.iter().find(|(l, _)| *l == c) {
                Some((_, bit)) => *bit,
                None => return Err(ClassError::Invalid),
            },
        };
    }
    Ok(flags)
}

/// The value CONFIG GET shows, in Redis's letter order.
pub fn format_classes(flags: u32) -> String {
    let mut out = String::new();
    if flags & class::ALL == class::ALL {
        out.push('A');
    } else {
        for (letter, bit) in LETTERS {
            if flags & bit != 0 {
                out.push(*letter as char);
            }
        }
    }
    if flags & class::KEYSPACE != 0 {
        out.push('K');
    }
    if flags & class::KEYEVENT != 0 {
        out.push('E');
    }
    if flags & class::KEY_MISS != 0 {
        out.push('m');
    }
    out
}

/// Every event name cordis raises and its class. An event's code is its
/// position plus one; codes travel to peers, so entries are only ever
/// appended.
pub const EVENTS: &[(&str, u32)] = &[
    ("del", class::GENERIC),
    ("expire", class::GENERIC),
    ("persist", class::GENERIC),
    ("rename_from", class::GENERIC),
    ("rename_to", class::GENERIC),
    ("copy_to", class::GENERIC),
    ("restore", class::GENERIC),
    ("move_from", class::GENERIC),
    ("move_to", class::GENERIC),
    ("set", class::STRING),
    ("setrange", class::STRING),
    ("incrby", class::STRING),
    ("incrbyfloat", class::STRING),
    ("append", class::STRING),
    ("setbit", class::STRING),
    ("pfadd", class::STRING),
    ("lpush", class::LIST),
    ("rpush", class::LIST),
    ("lpop", class::LIST),
    ("rpop", class::LIST),
    ("linsert", class::LIST),
    ("lset", class::LIST),
    ("lrem", class::LIST),
    ("ltrim", class::LIST),
    ("sortstore", class::LIST),
    ("sadd", class::SET),
    ("srem", class::SET),
    ("spop", class::SET),
    ("sinterstore", class::SET),
    ("sunionstore", class::SET),
    ("sdiffstore", class::SET),
    ("hset", class::HASH),
    ("hdel", class::HASH),
    ("hincrby", class::HASH),
    ("hincrbyfloat", class::HASH),
    ("zadd", class::ZSET),
    ("zincr", class::ZSET),
    ("zrem", class::ZSET),
    ("zpopmin", class::ZSET),
    ("zpopmax", class::ZSET),
    ("zremrangebyscore", class::ZSET),
    ("zremrangebyrank", class::ZSET),
    ("zremrangebylex", class::ZSET),
    ("zunionstore", class::ZSET),
    ("zinterstore", class::ZSET),
    ("zdiffstore", class::ZSET),
    ("zrangestore", class::ZSET),
    ("expired", class::EXPIRED),
    ("evicted", class::EVICTED),
    ("new", class::NEW),
    ("geosearchstore", class::ZSET),
    ("georadiusstore", class::ZSET),
    ("xadd", class::STREAM),
    ("xtrim", class::STREAM),
    ("xdel", class::STREAM),
    ("xsetid", class::STREAM),
    ("xgroup-create", class::STREAM),
    ("xgroup-setid", class::STREAM),
    ("xgroup-destroy", class::STREAM),
    ("xgroup-createconsumer", class::STREAM),
    ("xgroup-delconsumer", class::STREAM),
];

/// The code of an event name (0 if cordis does not know it).
pub fn code(name: &str) -> u8 {
    EVENTS
        .iter()
        .position(|(n, _)| *n == name)
        .map_or(0, |i| i as u8 + 1)
}

fn event(code: u8) -> Option<(&'static str, u32)> {
    EVENTS.get((code as usize).checked_sub(1)?).copied()
}

/// The events a write command raises on one of its keys. `position` is the
/// key's place among the command's keys (0: the first), `args` the whole
/// request, `presence` how the key changed. The `del` of a key that a
/// command emptied and the `new` of a created key are added by the
/// notifier, not here.
pub fn command_events(
    command: &str,
    args: &[Bytes],
    position: usize,
    presence: Presence,
) -> EventCodes {
    let one = |name: &str| EventCodes::one(code(name));
    // Whether any argument from `from` on is one of `words`.
    let any_of = |from: usize, words: &[&str]| {
        args.get(from..)
            .unwrap_or_default()
            .iter()
            .any(|a| words.iter().any(|w| a.eq_ignore_ascii_case(w.as_bytes())))
    };
    let side = |i: usize, left: &'static str, right: &'static str| {
        let word = args.get(i).map_or(&b""[..], |a| &a[..]);
        if word.eq_ignore_ascii_case(b"left") || word.eq_ignore_ascii_case(b"min") {
            left
        } else {
            right
        }
    };
    // A store command whose result is empty deletes its destination: the
    // only event is then the `del` the notifier adds.
    let stored = |name: &str| {
        if presence.removed {
            EventCodes::NONE
        } else {
            one(name)
        }
    };
    match command {
        "set" if any_of(3, &["ex", "px", "exat", "pxat"]) => {
            EventCodes::two(code("set"), code("expire"))
        }
        "set" | "setnx" | "mset" | "msetnx" | "getset" => one("set"),
        "setex" | "psetex" => EventCodes::two(code("set"), code("expire")),
        "getex" if any_of(2, &["persist"]) => one("persist"),
        "getex" => one("expire"),
        "setrange" => one("setrange"),
        "incr" | "decr" | "incrby" | "decrby" => one("incrby"),
        "incrbyfloat" => one("incrbyfloat"),
        "append" => one("append"),
        "setbit" | "bitfield" => one("setbit"),
        "bitop" => stored("set"),
        "pfadd" | "pfmerge" => one("pfadd"),
        "del" | "unlink" | "getdel" => one("del"),
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            if presence.removed {
                one("del")
            } else {
                one("expire")
            }
        }
        "persist" => one("persist"),
        "rename" | "renamenx" => {
            if position == 0 {
                one("rename_from")
            } else {
                one("rename_to")
            }
        }
        "copy" if position == 1 => one("copy_to"),
        "move" => one("move_from"),
        "restore" => one("restore"),
        "lpush" | "lpushx" => one("lpush"),
        "rpush" | "rpushx" => one("rpush"),
        "lpop" | "blpop" => one("lpop"),
        "rpop" | "brpop" => one("rpop"),
        "lmpop" => one(side(2 + num(args, 1), "lpop", "rpop")),
        "blmpop" => one(side(3 + num(args, 2), "lpop", "rpop")),
        "rpoplpush" | "brpoplpush" => one(if position == 0 { "rpop" } else { "lpush" }),
        "lmove" | "blmove" => {
            if position == 0 {
                one(side(3, "lpop", "rpop"))
            } else {
                one(side(4, "lpush", "rpush"))
            }
        }
        "linsert" => one("linsert"),
        "lset" => one("lset"),
        "lrem" => one("lrem"),
        "ltrim" => one("ltrim"),
        "sort" => stored("sortstore"),
        "sadd" => one("sadd"),
        "srem" => one("srem"),
        "spop" => one("spop"),
        "smove" => one(if position == 0 { "srem" } else { "sadd" }),
        "sinterstore" => stored("sinterstore"),
        "sunionstore" => stored("sunionstore"),
        "sdiffstore" => stored("sdiffstore"),
        "hset" | "hmset" | "hsetnx" => one("hset"),
        "hdel" => one("hdel"),
        "hincrby" => one("hincrby"),
        "hincrbyfloat" => one("hincrbyfloat"),
        "zadd" if any_of(2, &["incr"]) => one("zincr"),
        "zadd" => one("zadd"),
        "zincrby" => one("zincr"),
        "zrem" => one("zrem"),
        "zpopmin" | "bzpopmin" => one("zpopmin"),
        "zpopmax" | "bzpopmax" => one("zpopmax"),
        "zmpop" => one(side(2 + num(args, 1), "zpopmin", "zpopmax")),
        "bzmpop" => one(side(3 + num(args, 2), "zpopmin", "zpopmax")),
        "zremrangebyscore" => one("zremrangebyscore"),
        "zremrangebyrank" => one("zremrangebyrank"),
        "zremrangebylex" => one("zremrangebylex"),
        "zunionstore" => stored("zunionstore"),
        "zinterstore" => stored("zinterstore"),
        "zdiffstore" => stored("zdiffstore"),
        "zrangestore" => stored("zrangestore"),
        "geoadd" => one("zadd"),
        "georadius" | "georadiusbymember" => stored("georadiusstore"),
        "geosearchstore" => stored("geosearchstore"),
        "xadd" if any_of(2, &["maxlen", "minid"]) => EventCodes::two(code("xadd"), code("xtrim")),
        "xadd" => one("xadd"),
        "xtrim" => one("xtrim"),
        "xdel" => one("xdel"),
        "xsetid" => one("xsetid"),
        "xgroup" => match args.get(1).map(|a| a.to_ascii_lowercase()).as_deref() {
            Some(b"create") => one("xgroup-create"),
            Some(b"setid") => one("xgroup-setid"),
            Some(b"destroy") => one("xgroup-destroy"),
            Some(b"createconsumer") => one("xgroup-createconsumer"),
            Some(b"delconsumer") => one("xgroup-delconsumer"),
            _ => EventCodes::NONE,
        },
        _ => EventCodes::NONE,
    }
}

/// `numkeys` at `at`, as a count of key arguments (0 if unreadable: the
/// command refused it, and raised no event).
fn num(args: &[Bytes], at: usize) -> usize {
    args.get(at)
        .and_then(|a| std::str::from_utf8(a).ok()?.parse().ok())
        .unwrap_or(0)
}

/// The node's keyspace notifications: the configured classes and the
/// Pub/Sub tables the messages go to. Installed in the store as its
/// [`Notifier`].
pub struct Notifications {
    pub pubsub: Arc<PubSub>,
    /// Told about every changed key too (client-side caching).
    pub tracking: Arc<Tracking>,
    classes: AtomicU32,
}

impl Notifications {
    pub fn new(pubsub: Arc<PubSub>, tracking: Arc<Tracking>, classes: u32) -> Self {
        Notifications {
            pubsub,
            tracking,
            classes: AtomicU32::new(classes),
        }
    }

    pub fn classes(&self) -> u32 {
        self.classes.load(Ordering::Relaxed)
    }

    pub fn set_classes(&self, classes: u32) {
        self.classes.store(classes, Ordering::Relaxed);
    }

    /// Publishes one event, as Redis's `notifyKeyspaceEvent`.
    fn raise(&self, classes: u32, db: usize, key: &[u8], name: &str, class: u32) {
        if classes & class == 0 {
            return;
        }
        if classes & class::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(key);
            self.pubsub.publish(&channel, name.as_bytes());
        }
        if classes & class::KEYEVENT != 0 {
            let channel = format!("__keyevent@{db}__:{name}");
            self.pubsub.publish(channel.as_bytes(), key);
        }
    }
}

impl Notifier for Notifications {
    fn wants_key_events(&self) -> bool {
        let classes = self.classes();
        (classes & (class::KEYSPACE | class::KEYEVENT) != 0 && !self.pubsub.is_idle())
            || self.tracking.is_active()
    }

    fn key_changed(&self, db: usize, key: &[u8], codes: EventCodes, presence: Presence) {
        self.tracking.key_changed(key);
        let classes = self.classes();
        if presence.created {
            self.raise(classes, db, key, "new", class::NEW);
        }
        let mut ended = false;
        for c in codes.iter() {
            if let Some((name, class)) = event(c) {
                ended |= matches!(name, "del" | "rename_from" | "move_from" | "evicted");
                self.raise(classes, db, key, name, class);
            }
        }
        if presence.removed && !ended {
            // A collection emptied by the command, or a key a peer's
            // write removed without saying so.
            self.raise(classes, db, key, "del", class::GENERIC);
        }
    }

    fn key_expired(&self, db: usize, key: &[u8]) {
        self.tracking.key_changed(key);
        self.raise(self.classes(), db, key, "expired", class::EXPIRED);
    }

    fn flushed(&self) {
        self.tracking.flushed();
    }

    fn end_of_batch(&self) {
        self.tracking.broadcast();
    }

    fn message(&self, channel: &[u8], message: &[u8], shard: bool) {
        if shard {
            self.pubsub.publish_shard(channel, message);
        } else {
            self.pubsub.publish(channel, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_as_redis_prints_them() {
        let cases: &[(&str, &str)] = &[
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("", ""),
            ("Kn", "nK"),
        ];
        for (input, shown) in cases {
            let flags = parse_classes(input.as_bytes()).unwrap();
            assert_eq!(format_classes(flags), *shown, "{input}");
        }
        assert_eq!(parse_classes(b"Kq"), Err(ClassError::Invalid));
        assert!(matches!(parse_classes(b"Km"), Err(ClassError::NotBuilt(_))));
        assert_eq!(format_classes(parse_classes(b"Kd").unwrap()), "dK");
    }

    #[test]
    fn every_event_has_a_code_that_names_it_back() {
        for (i, (name, class)) in EVENTS.iter().enumerate() {
            assert_eq!(code(name) as usize, i + 1);
            assert_eq!(event(code(name)), Some((*name, *class)));
        }
        assert!(EVENTS.len() < 255);
        assert_eq!(code("evicted"), EventCodes::EVICTED);
        assert_eq!(code("no-such-event"), 0);
        assert_eq!(event(0), None);
        assert_eq!(event(250), None);
    }

    fn words(w: &[&str]) -> Vec<Bytes> {
        w.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn commands_name_their_events_per_key() {
        let none = Presence::default();
        let names = |codes: EventCodes| {
            codes
                .iter()
                .map(|c| event(c).unwrap().0)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(command_events("set", &words(&["set", "k", "v"]), 0, none)),
            ["set"]
        );
        assert_eq!(
            names(command_events(
                "set",
                &words(&["set", "k", "v", "EX", "5"]),
                0,
                none
            )),
            ["set", "expire"]
        );
        let lmove = words(&["lmove", "a", "b", "LEFT", "RIGHT"]);
        assert_eq!(names(command_events("lmove", &lmove, 0, none)), ["lpop"]);
        assert_eq!(names(command_events("lmove", &lmove, 1, none)), ["rpush"]);
        let zmpop = words(&["zmpop", "2", "a", "b", "MAX"]);
        assert_eq!(names(command_events("zmpop", &zmpop, 0, none)), ["zpopmax"]);
        let removed = Presence {
            created: false,
            removed: true,
        };
        assert!(command_events(
            "sinterstore",
            &words(&["sinterstore", "d", "a"]),
            0,
            removed
        )
        .is_empty());
        assert_eq!(
            names(command_events(
                "expire",
                &words(&["expire", "k", "-1"]),
                0,
                removed
            )),
            ["del"]
        );
        assert!(command_events("get", &words(&["get", "k"]), 0, none).is_empty());
    }
}
