//! The parameter table: one row per configuration parameter cordis knows —
//! every Redis 7.0 parameter plus cordis's own — with its aliases, value
//! kind, Redis's default, mutability and cordis's honesty status, and the
//! parsing that turns a value into the text CONFIG GET prints.
//!
//! The table is data; `super::Config` stores the values and runs CONFIG
//! SET's checks in Redis's order. Names, bounds, defaults and error texts
//! follow Redis 7.0.15's `config.c`; the code is cordis's own.
//!
//! Honesty rule: a value is accepted only if cordis does what it says
//! ([`Status::Supported`]), or if it merely describes cordis or shapes
//! reporting ([`Status::Descriptive`]). Values that would ask for a feature
//! cordis lacks are refused with an error naming the feature.

/// A validity check of a text value; the error is Redis's reason.
pub type TextCheck = fn(&str) -> Result<(), String>;

/// How a parameter's value is written and checked.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `yes` / `no` (any case).
    Bool,
    /// A plain integer within `min..=max`.
    Int { min: i128, max: i128 },
    /// Bytes, with Redis's units: `1k`=1000, `1kb`=1024, `m`, `mb`, `g`,
    /// `gb`, any case; printed as a plain byte count.
    Memory { min: i128, max: i128 },
    /// Bytes, or `N%` (of maxmemory), stored as `-N`; printed back as `N%`.
    MemoryOrPercent { min: i128, max: i128 },
    /// An octal number (file permissions), printed in octal.
    Octal { min: i128, max: i128 },
    /// One of `words` (any case). With `flags`, several space-separated
    /// words whose values are OR-ed, printed in table order.
    Enum {
        words: &'static [(&'static str, u32)],
        flags: bool,
    },
    /// Free text, with an optional validity check giving Redis's reason.
    Text { check: Option<TextCheck> },
    /// A parameter with its own syntax: `parse(new, current)` returns the
    /// canonical text or the reason it is invalid (`current` matters for
    /// partial updates such as `client-output-buffer-limit pubsub 0 0 0`).
    Special {
        parse: fn(&str, &str) -> Result<String, String>,
    },
}

/// Whether CONFIG SET may change a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    Mutable,
    /// Redis: "can't set immutable config"; start-time only.
    Immutable,
    /// Redis's PROTECTED_CONFIG: settable only when
    /// `enable-protected-configs` allows it.
    Protected,
}

/// What cordis does with a parameter's value (the honesty rule).
#[derive(Clone, Copy, Debug)]
pub enum Status {
    /// cordis does what the value says.
    Supported,
    /// Accepted and stored: it describes cordis or only shapes reporting
    /// (encoding thresholds, knobs of features that are off).
    Descriptive,
    /// Accepted only for these canonical values, which describe cordis
    /// today; others are refused naming `missing`.
    OnlyValues {
        values: &'static [&'static str],
        missing: &'static str,
    },
    /// Accepted when `accepts(canonical)` holds (`rule` says which values
    /// those are, for the docs); otherwise refused naming `missing`.
    Accepts {
        accepts: fn(&str) -> bool,
        rule: &'static str,
        missing: &'static str,
    },
    /// Honoured at start; CONFIG SET may only restate the current value
    /// because cordis cannot apply a change while running.
    StartOnly { missing: &'static str },
}

/// Where a parameter comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Redis,
    Cordis,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    /// Older names that still work (CONFIG GET lists them too).
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// Redis 7.0's default as CONFIG GET prints it (for cordis's own
    /// parameters: cordis's default).
    pub redis_default: &'static str,
    /// cordis's start value where Redis's default would describe a feature
    /// cordis lacks (e.g. `save`): `None` = Redis's default.
    pub cordis_default: Option<&'static str>,
    /// Computed start value (e.g. `dir` = the working directory).
    pub dynamic_default: Option<fn() -> String>,
    pub mutability: Mutability,
    /// Redis's HIDDEN_CONFIG: CONFIG GET shows it only for its exact name,
    /// never through a glob.
    pub hidden: bool,
    pub status: Status,
    pub origin: Origin,
}

impl Param {
    const fn new(name: &'static str, kind: Kind, default: &'static str, status: Status) -> Param {
        Param {
            name,
            aliases: &[],
            kind,
            redis_default: default,
            cordis_default: None,
            dynamic_default: None,
            mutability: Mutability::Mutable,
            hidden: false,
            status,
            origin: Origin::Redis,
        }
    }

    const fn alias(mut self, aliases: &'static [&'static str]) -> Param {
        self.aliases = aliases;
        self
    }

    const fn immutable(mut self) -> Param {
        self.mutability = Mutability::Immutable;
        self
    }

    const fn protected(mut self) -> Param {
        self.mutability = Mutability::Protected;
        self
    }

    const fn hidden(mut self) -> Param {
        self.hidden = true;
        self
    }

    const fn starts_as(mut self, value: &'static str) -> Param {
        self.cordis_default = Some(value);
        self
    }

    const fn cordis(mut self) -> Param {
        self.origin = Origin::Cordis;
        self
    }

    /// The name and then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// Position in [`all`] (the index of the value store).
    pub fn index(&self) -> usize {
        all()
            .iter()
            .position(|p| p.name == self.name)
            .expect("rows come from the table")
    }

    /// The value cordis starts with, as CONFIG GET prints it.
    pub fn start_default(&self) -> String {
        if let Some(compute) = self.dynamic_default {
            return compute();
        }
        self.cordis_default
            .unwrap_or(self.redis_default)
            .to_string()
    }

    /// Validates `value` and returns the canonical text CONFIG GET will
    /// print, or Redis's reason it is invalid. `current` is the present
    /// canonical value (for partial updates).
    pub fn parse(&self, value: &str, current: &str) -> Result<String, String> {
        match self.kind {
            Kind::Bool => parse_bool(value).map(|b| yes_no(b).to_string()),
            Kind::Int { min, max } => {
                let n =
                    parse_integer(value).ok_or("argument couldn't be parsed into an integer")?;
                check_bounds(n, min, max)?;
                Ok(n.to_string())
            }
            Kind::Memory { min, max } => {
                let n = parse_memory(value).ok_or("argument must be a memory value")?;
                check_bounds(n, min, max)?;
                Ok(n.to_string())
            }
            Kind::MemoryOrPercent { min, max } => {
                let n = parse_memory(value)
                    .or_else(|| parse_percent(value).map(|p| -p))
                    .ok_or("argument must be a memory or percent value")?;
                if n < 0 {
                    if n < min {
                        return Err(format!(
                            "percentage argument must be less or equal to {}",
                            -min
                        ));
                    }
                    return Ok(format!("{}%", -n));
                }
                check_bounds(n, min, max)?;
                Ok(n.to_string())
            }
            Kind::Octal { min, max } => {
                let n =
                    parse_octal(value).ok_or("argument couldn't be parsed as an octal number")?;
                if n < min || n > max {
                    return Err(format!(
                        "argument must be between {min:o} and {max:o} inclusive"
                    ));
                }
                Ok(format!("{n:o}"))
            }
            Kind::Enum { words, flags } => parse_enum(self.name, words, flags, value),
            Kind::Text { check } => {
                if let Some(check) = check {
                    check(value)?;
                }
                Ok(value.to_string())
            }
            Kind::Special { parse } => parse(value, current),
        }
    }

    /// Whether cordis honours the canonical `value` at all (the honesty
    /// rule); the error names the missing feature.
    pub fn check_status(&self, value: &str) -> Result<(), String> {
        match self.status {
            Status::OnlyValues { values, missing } if !values.contains(&value) => {
                let accepted: Vec<String> = values.iter().map(|v| show_value(v)).collect();
                Err(format!(
                    "{missing} (only {} accepted)",
                    match accepted.as_slice() {
                        [one] => format!("{one} is"),
                        many => format!("{} are", many.join(", ")),
                    }
                ))
            }
            Status::Accepts {
                accepts,
                rule,
                missing,
            } if !accepts(value) => Err(format!("{missing} ({rule})")),
            _ => Ok(()),
        }
    }
}

/// A value as an error message shows it: `""` for the empty string.
fn show_value(v: &str) -> String {
    if v.is_empty() {
        "\"\"".into()
    } else {
        v.to_string()
    }
}

/// Every row, in table order (CONFIG GET's order).
pub fn all() -> &'static [Param] {
    TABLE
}

/// The row a name or alias (any case) belongs to.
pub fn lookup(name: &str) -> Option<&'static Param> {
    TABLE
        .iter()
        .find(|p| p.names().any(|n| n.eq_ignore_ascii_case(name)))
}

/// Like [`lookup`], also returning the spelling as registered (the name or
/// the alias that matched), which Redis's errors print.
pub fn lookup_spelled(name: &str) -> Option<(&'static Param, &'static str)> {
    TABLE.iter().find_map(|p| {
        p.names()
            .find(|n| n.eq_ignore_ascii_case(name))
            .map(|n| (p, n))
    })
}

/// Canonical names of the rows a glob over every name may list (hidden
/// rows excluded), as a fixed array so `Config::NAMES` stays a slice.
pub const VISIBLE_NAMES: [&str; visible_count()] = visible_names();

const fn visible_count() -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < TABLE.len() {
        if !TABLE[i].hidden {
            count += 1;
        }
        i += 1;
    }
    count
}

const fn visible_names() -> [&'static str; visible_count()] {
    let mut names = [""; visible_count()];
    let (mut i, mut j) = (0, 0);
    while i < TABLE.len() {
        if !TABLE[i].hidden {
            names[j] = TABLE[i].name;
            j += 1;
        }
        i += 1;
    }
    names
}

// ----- value syntax -----

pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

fn check_bounds(n: i128, min: i128, max: i128) -> Result<(), String> {
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(())
}

/// Redis's strict integer syntax: optional `-`, digits, no leading zeros,
/// no spaces or `+`, within 64 bits.
pub fn parse_integer(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let valid = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && digits.len() == text.len() || !digits.starts_with('0'));
    if !valid {
        return None;
    }
    let n: i128 = text.parse().ok()?;
    (i64::MIN as i128..=i64::MAX as i128)
        .contains(&n)
        .then_some(n)
}

/// Redis's memory syntax: digits (possibly none, meaning 0) followed by an
/// optional unit `b`, `k`, `kb`, `m`, `mb`, `g`, `gb` in any case.
pub fn parse_memory(text: &str) -> Option<i128> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    n.checked_mul(factor).map(i128::from)
}

fn parse_percent(text: &str) -> Option<i128> {
    let number = text.strip_suffix('%')?;
    parse_integer(number).filter(|n| *n >= 0)
}

fn parse_octal(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let n = i128::from(i64::from_str_radix(digits, 8).ok()?);
    Some(if negative { -n } else { n })
}

/// Splits a multi-word value the way Redis does: on single spaces, with
/// the empty string meaning no words.
pub(crate) fn words(value: &str) -> Vec<&str> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(' ').collect()
    }
}

fn parse_enum(
    name: &str,
    table: &'static [(&'static str, u32)],
    flags: bool,
    value: &str,
) -> Result<String, String> {
    let given = if flags { words(value) } else { vec![value] };
    let mut bits = 0u32;
    let mut all_known = !given.is_empty();
    for word in &given {
        match table.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)) {
            Some((_, v)) => bits |= v,
            None => all_known = false,
        }
    }
    if !all_known {
        let names: Vec<&str> = table.iter().map(|(w, _)| *w).collect();
        return Err(format!(
            "argument(s) must be one of the following: {}",
            names.join(", ")
        ));
    }
    if name.starts_with("shutdown-on-sig")
        && bits & SHUTDOWN_SAVE != 0
        && bits & SHUTDOWN_NOSAVE != 0
    {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    Ok(enum_name(table, bits, flags))
}

/// The words for `bits`, the way Redis prints an enum: the first word with
/// exactly that value, else (flags) the words whose bits it holds, in
/// table order; "unknown" if bits are left over.
fn enum_name(table: &[(&'static str, u32)], bits: u32, flags: bool) -> String {
    if let Some((word, _)) = table.iter().find(|(_, v)| *v == bits) {
        return (*word).to_string();
    }
    let mut left = bits;
    let mut names = Vec::new();
    if flags {
        for (word, v) in table {
            if *v != 0 && left & v == *v {
                names.push(*word);
                left &= !v;
            }
        }
    }
    if names.is_empty() || left != 0 {
        return "unknown".into();
    }
    names.join(" ")
}

// ----- special parameters -----

/// `save`: pairs of seconds (>= 1) and changes (>= 0); "" = no save points.
fn parse_save(value: &str, _current: &str) -> Result<String, String> {
    let args = words(value);
    let invalid = || "Invalid save parameters".to_string();
    if !args.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let mut numbers = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let n: i64 = arg.parse().map_err(|_| invalid())?;
        let least = if i % 2 == 0 { 1 } else { 0 };
        if n < least {
            return Err(invalid());
        }
        numbers.push(n.to_string());
    }
    Ok(numbers.join(" "))
}

/// The output-buffer classes in the order Redis prints them.
const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// `client-output-buffer-limit`: groups of `<class> <hard> <soft>
/// <seconds>`; classes not named keep their current limits.
fn parse_client_output_buffer_limit(value: &str, current: &str) -> Result<String, String> {
    let args = words(value);
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut limits: Vec<[String; 3]> = OBUF_CLASSES
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let now = words(current);
            let at = |k: usize| now.get(i * 4 + k).unwrap_or(&"0").to_string();
            [at(1), at(2), at(3)]
        })
        .collect();
    let mut updates = Vec::new();
    for group in args.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let seconds = group[3].parse::<i64>().ok().filter(|s| *s >= 0);
        match (parse_memory(group[1]), parse_memory(group[2]), seconds) {
            (Some(hard), Some(soft), Some(seconds)) => updates.push((
                class,
                [hard.to_string(), soft.to_string(), seconds.to_string()],
            )),
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                )
            }
        }
    }
    for (class, limit) in updates {
        limits[class] = limit;
    }
    Ok(OBUF_CLASSES
        .iter()
        .zip(&limits)
        .map(|(class, [hard, soft, secs])| format!("{class} {hard} {soft} {secs}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// cordis has no output-buffer limit for normal clients: only `0 0 0`
/// describes it. Replica and pub/sub clients do not exist in cordis, so
/// their limits only describe.
fn normal_clients_unlimited(canonical: &str) -> bool {
    canonical.starts_with("normal 0 0 0 ")
}

/// `oom-score-adj-values`: three integers in -2000..=2000.
fn parse_oom_score_adj_values(value: &str, _current: &str) -> Result<String, String> {
    let args = words(value);
    if args.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut out = Vec::new();
    for arg in args {
        match arg.parse::<i64>() {
            Ok(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
            _ => {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into(),
                )
            }
        }
    }
    Ok(out.join(" "))
}

fn parse_notify_keyspace_events(value: &str, _current: &str) -> Result<String, String> {
    use crate::pubsub::notify::{format_classes, parse_classes, ClassError};
    match parse_classes(value.as_bytes()) {
        Ok(bits) => Ok(format_classes(bits)),
        Err(ClassError::Invalid) => {
            Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
        }
        Err(ClassError::NotBuilt(what)) => Err(what.into()),
    }
}

/// `bind`: up to 16 space-separated addresses. cordis listens on one.
fn parse_bind(value: &str, _current: &str) -> Result<String, String> {
    let addresses = words(value);
    if addresses.len() > 16 {
        return Err("Too many bind addresses specified.".into());
    }
    if addresses.len() != 1 {
        return Err("cordis listens on exactly one address yet".into());
    }
    Ok(addresses.join(" "))
}

/// `replicaof`: `<host> <port>` or `no one`; printed as "" without a master.
fn parse_replicaof(value: &str, _current: &str) -> Result<String, String> {
    let args = words(value);
    match args.as_slice() {
        [] => Ok(String::new()),
        [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => {
            Ok(String::new())
        }
        [host, port] => match port.parse::<i64>() {
            Ok(p) if (0..=65535).contains(&p) => Ok(format!("{host} {p}")),
            _ => Err("Invalid master port".into()),
        },
        _ => Err("wrong number of arguments".into()),
    }
}

/// `latency-tracking-info-percentiles`: numbers in 0..=100, printed
/// without trailing zeros.
fn parse_percentiles(value: &str, _current: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for arg in words(value) {
        let p: f64 = arg
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite())
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        let text = format!("{p:.6}");
        out.push(text.trim_end_matches('0').trim_end_matches('.').to_string());
    }
    Ok(out.join(" "))
}

/// `dir`: must name an existing directory (Redis changes into it; cordis
/// writes no files there, so it only records the path).
fn parse_dir(value: &str, _current: &str) -> Result<String, String> {
    match std::fs::metadata(value) {
        Ok(meta) if meta.is_dir() => Ok(value.to_string()),
        Ok(_) => Err("Not a directory".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("No such file or directory".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn working_directory() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

/// `hz`: any non-negative int is accepted and capped to 1..=500, as Redis
/// does (it is a hint).
fn parse_hz(value: &str, _current: &str) -> Result<String, String> {
    let n = parse_integer(value).ok_or("argument couldn't be parsed into an integer")?;
    check_bounds(n, 0, INT_MAX)?;
    Ok(n.clamp(1, 500).to_string())
}

/// cordis's `loglevel` is a tracing filter; Redis's four words are
/// accepted too and mapped when the filter is built.
fn parse_loglevel(value: &str, _current: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("argument must be a log filter such as info or cordis=debug".into());
    }
    Ok(value.to_string())
}

/// `peers`: HOST:PORT peer listeners, space- or comma-separated.
fn parse_peers(value: &str, _current: &str) -> Result<String, String> {
    let peers: Vec<&str> = value.split([' ', ',']).filter(|p| !p.is_empty()).collect();
    for peer in &peers {
        if !peer.contains(':') {
            return Err(format!("peer '{peer}' must be HOST:PORT"));
        }
    }
    Ok(peers.join(" "))
}

/// `peer-port`: a port, or "" for client port + 10000.
fn parse_optional_port(value: &str, _current: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let n = parse_integer(value).ok_or("argument couldn't be parsed into an integer")?;
    check_bounds(n, 0, 65535)?;
    Ok(n.to_string())
}

fn check_replica_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    super::parse_replica_id(value).map(|_| ())
}

fn check_base_name(what: &'static str) -> impl Fn(&str) -> Result<(), String> {
    move |value: &str| {
        if value.contains('/') {
            Err(format!("{what} can't be a path, just a filename"))
        } else {
            Ok(())
        }
    }
}

fn check_dbfilename(value: &str) -> Result<(), String> {
    check_base_name("dbfilename")(value)
}

fn check_appendfilename(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("appendfilename can't be empty".into());
    }
    check_base_name("appendfilename")(value)
}

fn check_appenddirname(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("appenddirname can't be empty".into());
    }
    if value.contains('/') {
        return Err("appenddirname can't be a path, just a dirname".into());
    }
    Ok(())
}

fn check_hostname(value: &str) -> Result<(), String> {
    if value.len() >= 256 {
        return Err("Hostnames must be less than 256 characters".into());
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
    }
    Ok(())
}

// ----- enum words -----

const SHUTDOWN_SAVE: u32 = 1;
const SHUTDOWN_NOSAVE: u32 = 2;

const MAXMEMORY_POLICIES: &[(&str, u32)] = &[
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
];
const SYSLOG_FACILITIES: &[(&str, u32)] = &[
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
const SUPERVISED_MODES: &[(&str, u32)] = &[("upstart", 0), ("systemd", 1), ("auto", 2), ("no", 3)];
const APPENDFSYNC_MODES: &[(&str, u32)] = &[("everysec", 0), ("always", 1), ("no", 2)];
const SHUTDOWN_FLAGS: &[(&str, u32)] = &[
    ("default", 0),
    ("save", SHUTDOWN_SAVE),
    ("nosave", SHUTDOWN_NOSAVE),
    ("now", 4),
    ("force", 8),
];
const DISKLESS_LOAD_MODES: &[(&str, u32)] = &[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
const TLS_AUTH_CLIENTS: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("optional", 2)];
/// `yes` and `relative` are one mode; Redis prints it as `yes`.
const OOM_SCORE_ADJ_MODES: &[(&str, u32)] =
    &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
const ACL_PUBSUB_DEFAULTS: &[(&str, u32)] = &[("allchannels", 1), ("resetchannels", 0)];
const SANITIZE_DUMP_MODES: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("clients", 2)];
const PROTECTED_ACTIONS: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("local", 2)];
const ENDPOINT_TYPES: &[(&str, u32)] = &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];
const PROPAGATION_ERROR_BEHAVIORS: &[(&str, u32)] =
    &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];

// ----- the table -----

const INT_MIN: i128 = i32::MIN as i128;
const INT_MAX: i128 = i32::MAX as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;

const BOOL: Kind = Kind::Bool;
const TEXT: Kind = Kind::Text { check: None };
const fn int(min: i128, max: i128) -> Kind {
    Kind::Int { min, max }
}
const fn memory(min: i128, max: i128) -> Kind {
    Kind::Memory { min, max }
}
const fn one_of(words: &'static [(&'static str, u32)]) -> Kind {
    Kind::Enum {
        words,
        flags: false,
    }
}
const fn text(check: TextCheck) -> Kind {
    Kind::Text { check: Some(check) }
}
const fn special(parse: fn(&str, &str) -> Result<String, String>) -> Kind {
    Kind::Special { parse }
}

const SUPPORTED: Status = Status::Supported;
const DESCRIPTIVE: Status = Status::Descriptive;
const fn only(values: &'static [&'static str], missing: &'static str) -> Status {
    Status::OnlyValues { values, missing }
}
const fn start_only(missing: &'static str) -> Status {
    Status::StartOnly { missing }
}

const NO: &[&str] = &["no"];
const EMPTY: &[&str] = &[""];
const ZERO: &[&str] = &["0"];
const TLS_AT_START: &str = "TLS settings are read once at start; restart the node to change them";
const NO_CPU_PINNING: &str = "cordis does not pin threads to CPUs yet";
const NO_REBIND: &str = "cordis cannot move its client listener while running yet";
/// cordis's own start-time settings (identity, threads, peer links):
/// CONFIG SET restates them (Redis's CONFIG sanity test sets every
/// parameter to its current value) but cannot change them.
const READ_AT_START: &str = "read once at start; restart the node to change it";

/// Every parameter. Redis's rows come first in `config.c`'s order (bool,
/// string, enum, numeric, TLS, special), then cordis's own. The comment on
/// a row says why its status is what it is where that is not obvious.
const TABLE: &[Param] = &[
    // ----- Redis: bool -----
    // No RDB file is ever written, so the checksum knob is moot.
    Param::new("rdbchecksum", BOOL, "yes", DESCRIPTIVE).immutable(),
    Param::new(
        "daemonize",
        BOOL,
        "no",
        only(NO, "cordis does not daemonize; run it under a supervisor"),
    )
    .immutable(),
    // io-threads is 1, so threaded reads are off.
    Param::new("io-threads-do-reads", BOOL, "no", DESCRIPTIVE).immutable(),
    // Cosmetic: cordis prints no logo either way.
    Param::new("always-show-logo", BOOL, "no", DESCRIPTIVE).immutable(),
    // Redis's default `yes` would claim cordis refuses remote clients when
    // no password is set; it does not, so it starts as `no`.
    Param::new(
        "protected-mode",
        BOOL,
        "yes",
        only(NO, "cordis has no protected mode yet"),
    )
    .starts_as("no"),
    Param::new("rdbcompression", BOOL, "yes", DESCRIPTIVE),
    Param::new("rdb-del-sync-files", BOOL, "no", DESCRIPTIVE),
    // Rehashing is an internal detail of Redis's dict; cordis's maps resize
    // incrementally on their own.
    Param::new("activerehashing", BOOL, "yes", DESCRIPTIVE),
    // There is no BGSAVE that could fail.
    Param::new("stop-writes-on-bgsave-error", BOOL, "yes", DESCRIPTIVE),
    // Cosmetic: the process title stays as started.
    Param::new("set-proc-title", BOOL, "yes", DESCRIPTIVE).immutable(),
    // Only how often background work runs, never what a command returns.
    Param::new("dynamic-hz", BOOL, "yes", DESCRIPTIVE),
    // Freeing is synchronous or not with no visible difference to clients;
    // only the flushes have a lazyfree path so far (store::lazyfree).
    Param::new("lazyfree-lazy-eviction", BOOL, "no", DESCRIPTIVE),
    Param::new("lazyfree-lazy-expire", BOOL, "no", DESCRIPTIVE),
    Param::new("lazyfree-lazy-server-del", BOOL, "no", DESCRIPTIVE),
    Param::new("lazyfree-lazy-user-del", BOOL, "no", DESCRIPTIVE),
    Param::new("lazyfree-lazy-user-flush", BOOL, "no", SUPPORTED),
    // Knobs of Redis's primary/replica replication, which cordis does not
    // speak (its peers replicate active-active): moot.
    Param::new("repl-disable-tcp-nodelay", BOOL, "no", DESCRIPTIVE),
    Param::new("repl-diskless-sync", BOOL, "yes", DESCRIPTIVE),
    // Knobs of how the AOF and snapshot writers pace their fsyncs: cordis
    // writes each file in one go and fsyncs it at the end.
    Param::new("aof-rewrite-incremental-fsync", BOOL, "yes", DESCRIPTIVE),
    Param::new(
        "no-appendfsync-on-rewrite",
        BOOL,
        "no",
        only(
            NO,
            "cordis keeps its appendfsync policy during AOF rewrites",
        ),
    ),
    // Knobs of cluster mode, which is off (cluster-enabled).
    Param::new("cluster-require-full-coverage", BOOL, "yes", DESCRIPTIVE),
    Param::new("rdb-save-incremental-fsync", BOOL, "yes", DESCRIPTIVE),
    Param::new("aof-load-truncated", BOOL, "yes", SUPPORTED),
    Param::new("aof-use-rdb-preamble", BOOL, "yes", DESCRIPTIVE),
    Param::new("aof-timestamp-enabled", BOOL, "no", DESCRIPTIVE),
    Param::new("cluster-replica-no-failover", BOOL, "no", DESCRIPTIVE)
        .alias(&["cluster-slave-no-failover"]),
    // cordis is never a Redis replica, so replica-side knobs are moot.
    Param::new("replica-lazy-flush", BOOL, "no", DESCRIPTIVE).alias(&["slave-lazy-flush"]),
    Param::new("replica-serve-stale-data", BOOL, "yes", DESCRIPTIVE)
        .alias(&["slave-serve-stale-data"]),
    Param::new("replica-read-only", BOOL, "yes", DESCRIPTIVE).alias(&["slave-read-only"]),
    Param::new("replica-ignore-maxmemory", BOOL, "yes", DESCRIPTIVE)
        .alias(&["slave-ignore-maxmemory"]),
    // cordis does not use jemalloc.
    Param::new("jemalloc-bg-thread", BOOL, "yes", DESCRIPTIVE),
    Param::new(
        "activedefrag",
        BOOL,
        "no",
        only(NO, "cordis has no active defragmentation"),
    ),
    Param::new(
        "syslog-enabled",
        BOOL,
        "no",
        only(NO, "cordis logs to stderr only"),
    )
    .immutable(),
    Param::new(
        "cluster-enabled",
        BOOL,
        "no",
        only(NO, "cordis has no cluster mode"),
    )
    .immutable(),
    Param::new("appendonly", BOOL, "no", SUPPORTED),
    Param::new("cluster-allow-reads-when-down", BOOL, "no", DESCRIPTIVE),
    Param::new(
        "cluster-allow-pubsubshard-when-down",
        BOOL,
        "yes",
        DESCRIPTIVE,
    ),
    // Crash reporting is Rust's panic output either way.
    Param::new("crash-log-enabled", BOOL, "yes", DESCRIPTIVE),
    Param::new("crash-memcheck-enabled", BOOL, "yes", DESCRIPTIVE),
    Param::new("use-exit-on-panic", BOOL, "no", DESCRIPTIVE).hidden(),
    Param::new("disable-thp", BOOL, "yes", DESCRIPTIVE).immutable(),
    Param::new("cluster-allow-replica-migration", BOOL, "yes", DESCRIPTIVE),
    Param::new("replica-announced", BOOL, "yes", DESCRIPTIVE),
    // Shapes INFO latencystats only.
    Param::new("latency-tracking", BOOL, "yes", DESCRIPTIVE),
    Param::new("aof-disable-auto-gc", BOOL, "no", DESCRIPTIVE),
    Param::new("replica-ignore-disk-write-errors", BOOL, "no", DESCRIPTIVE),
    // ----- Redis: string -----
    Param::new(
        "aclfile",
        TEXT,
        "",
        only(EMPTY, "cordis has no ACL file support yet"),
    )
    .immutable(),
    Param::new(
        "unixsocket",
        TEXT,
        "",
        only(EMPTY, "cordis has no unix socket listener yet"),
    )
    .immutable(),
    Param::new(
        "pidfile",
        TEXT,
        "",
        only(EMPTY, "cordis does not write a pid file yet"),
    )
    .immutable(),
    Param::new("replica-announce-ip", TEXT, "", DESCRIPTIVE).alias(&["slave-announce-ip"]),
    // Credentials for replicaof, which is refused.
    Param::new("masteruser", TEXT, "", DESCRIPTIVE),
    Param::new("cluster-announce-ip", TEXT, "", DESCRIPTIVE),
    Param::new("cluster-config-file", TEXT, "nodes.conf", DESCRIPTIVE).immutable(),
    Param::new(
        "cluster-announce-hostname",
        text(check_hostname),
        "",
        DESCRIPTIVE,
    ),
    Param::new("syslog-ident", TEXT, "redis", DESCRIPTIVE).immutable(),
    // The snapshot's file name (a cordis snapshot, not an RDB file, under
    // Redis's default name); the AOF's directory and file names.
    Param::new("dbfilename", text(check_dbfilename), "dump.rdb", SUPPORTED).protected(),
    Param::new(
        "appendfilename",
        text(check_appendfilename),
        "appendonly.aof",
        SUPPORTED,
    )
    .immutable(),
    Param::new(
        "appenddirname",
        text(check_appenddirname),
        "appendonlydir",
        SUPPORTED,
    )
    .immutable(),
    Param::new("server_cpulist", TEXT, "", only(EMPTY, NO_CPU_PINNING)).immutable(),
    Param::new("bio_cpulist", TEXT, "", only(EMPTY, NO_CPU_PINNING)).immutable(),
    Param::new("aof_rewrite_cpulist", TEXT, "", only(EMPTY, NO_CPU_PINNING)).immutable(),
    Param::new("bgsave_cpulist", TEXT, "", only(EMPTY, NO_CPU_PINNING)).immutable(),
    Param::new("ignore-warnings", TEXT, "", DESCRIPTIVE),
    // Cosmetic, like set-proc-title.
    Param::new(
        "proc-title-template",
        TEXT,
        "{title} {listen-addr} {server-mode}",
        DESCRIPTIVE,
    ),
    // Redis binds outgoing replication/cluster links to it; cordis's peer
    // links would have to, so only "" is honest.
    Param::new(
        "bind-source-addr",
        TEXT,
        "",
        only(EMPTY, "cordis peer links do not bind a source address yet"),
    ),
    Param::new(
        "logfile",
        TEXT,
        "",
        only(EMPTY, "cordis logs to stderr only"),
    )
    .immutable(),
    Param::new("masterauth", TEXT, "", DESCRIPTIVE),
    Param::new("requirepass", TEXT, "", SUPPORTED),
    // ----- Redis: enum -----
    Param::new(
        "supervised",
        one_of(SUPERVISED_MODES),
        "no",
        only(NO, "cordis does not talk to upstart or systemd"),
    )
    .immutable(),
    Param::new(
        "syslog-facility",
        one_of(SYSLOG_FACILITIES),
        "local0",
        DESCRIPTIVE,
    )
    .immutable(),
    Param::new(
        "repl-diskless-load",
        one_of(DISKLESS_LOAD_MODES),
        "disabled",
        DESCRIPTIVE,
    ),
    // cordis's log filter (tracing syntax; Redis's debug/verbose/notice/
    // warning are mapped). It is installed once, at start.
    Param::new(
        "loglevel",
        special(parse_loglevel),
        "notice",
        start_only("cordis applies its log filter only at start"),
    )
    .starts_as("info"),
    Param::new(
        "maxmemory-policy",
        one_of(MAXMEMORY_POLICIES),
        "noeviction",
        SUPPORTED,
    ),
    Param::new(
        "appendfsync",
        one_of(APPENDFSYNC_MODES),
        "everysec",
        SUPPORTED,
    ),
    Param::new(
        "oom-score-adj",
        one_of(OOM_SCORE_ADJ_MODES),
        "no",
        only(NO, "cordis does not adjust its OOM score"),
    ),
    // ACL users do not exist yet; only the default user.
    Param::new(
        "acl-pubsub-default",
        one_of(ACL_PUBSUB_DEFAULTS),
        "resetchannels",
        DESCRIPTIVE,
    ),
    // RESTORE always validates payloads whole (every encoding, counts,
    // duplicates), as `sanitize-dump-payload yes` would.
    Param::new(
        "sanitize-dump-payload",
        one_of(SANITIZE_DUMP_MODES),
        "no",
        DESCRIPTIVE,
    ),
    // Enforced by CONFIG SET itself (protected parameters).
    Param::new(
        "enable-protected-configs",
        one_of(PROTECTED_ACTIONS),
        "no",
        SUPPORTED,
    )
    .immutable(),
    // cordis always serves DEBUG; Redis's `no` would claim it refuses it.
    Param::new(
        "enable-debug-command",
        one_of(PROTECTED_ACTIONS),
        "no",
        only(&["yes"], "cordis cannot restrict DEBUG yet"),
    )
    .immutable()
    .starts_as("yes"),
    Param::new(
        "enable-module-command",
        one_of(PROTECTED_ACTIONS),
        "no",
        only(NO, "cordis has no modules"),
    )
    .immutable(),
    Param::new(
        "cluster-preferred-endpoint-type",
        one_of(ENDPOINT_TYPES),
        "ip",
        DESCRIPTIVE,
    ),
    Param::new(
        "propagation-error-behavior",
        one_of(PROPAGATION_ERROR_BEHAVIORS),
        "ignore",
        DESCRIPTIVE,
    ),
    // cordis shuts down without saving on a signal (there is nothing to
    // save); only asking for a save is refused.
    Param::new(
        "shutdown-on-sigint",
        Kind::Enum {
            words: SHUTDOWN_FLAGS,
            flags: true,
        },
        "default",
        SUPPORTED,
    ),
    Param::new(
        "shutdown-on-sigterm",
        Kind::Enum {
            words: SHUTDOWN_FLAGS,
            flags: true,
        },
        "default",
        SUPPORTED,
    ),
    // ----- Redis: numeric -----
    Param::new(
        "databases",
        int(1, INT_MAX),
        "16",
        only(&["16"], "cordis has a fixed 16 databases"),
    )
    .immutable(),
    Param::new("port", int(0, 65535), "6379", start_only(NO_REBIND)),
    Param::new(
        "io-threads",
        int(1, 128),
        "1",
        only(
            &["1"],
            "cordis has no Redis-style I/O threads (see threads)",
        ),
    )
    .immutable(),
    Param::new(
        "auto-aof-rewrite-percentage",
        int(0, INT_MAX),
        "100",
        SUPPORTED,
    ),
    Param::new(
        "cluster-replica-validity-factor",
        int(0, INT_MAX),
        "10",
        DESCRIPTIVE,
    )
    .alias(&["cluster-slave-validity-factor"]),
    // Encoding thresholds: cordis's structures differ, OBJECT ENCODING
    // reporting is what they shape.
    Param::new(
        "list-max-listpack-size",
        int(INT_MIN, INT_MAX),
        "-2",
        DESCRIPTIVE,
    )
    .alias(&["list-max-ziplist-size"]),
    // cordis does not set SO_KEEPALIVE on client sockets, so Redis's 300
    // would be untrue.
    Param::new(
        "tcp-keepalive",
        int(0, INT_MAX),
        "300",
        only(
            ZERO,
            "cordis does not set TCP keepalive on client sockets yet",
        ),
    )
    .starts_as("0"),
    Param::new(
        "cluster-migration-barrier",
        int(0, INT_MAX),
        "1",
        DESCRIPTIVE,
    ),
    // Knobs of activedefrag, which is refused.
    Param::new("active-defrag-cycle-min", int(1, 99), "1", DESCRIPTIVE),
    Param::new("active-defrag-cycle-max", int(1, 99), "25", DESCRIPTIVE),
    Param::new(
        "active-defrag-threshold-lower",
        int(0, 1000),
        "10",
        DESCRIPTIVE,
    ),
    Param::new(
        "active-defrag-threshold-upper",
        int(0, 1000),
        "100",
        DESCRIPTIVE,
    ),
    Param::new("lfu-log-factor", int(0, INT_MAX), "10", SUPPORTED),
    Param::new("lfu-decay-time", int(0, INT_MAX), "1", SUPPORTED),
    Param::new("replica-priority", int(0, INT_MAX), "100", DESCRIPTIVE).alias(&["slave-priority"]),
    Param::new(
        "repl-diskless-sync-delay",
        int(0, INT_MAX),
        "5",
        DESCRIPTIVE,
    ),
    Param::new("maxmemory-samples", int(1, INT_MAX), "5", SUPPORTED),
    Param::new("maxmemory-eviction-tenacity", int(0, 100), "10", SUPPORTED),
    Param::new("timeout", int(0, INT_MAX), "0", SUPPORTED),
    Param::new("replica-announce-port", int(0, 65535), "0", DESCRIPTIVE)
        .alias(&["slave-announce-port"]),
    // The kernel's listen queue length; cordis's listener uses tokio's
    // backlog, and the value changes no reply.
    Param::new("tcp-backlog", int(0, INT_MAX), "511", DESCRIPTIVE).immutable(),
    Param::new("cluster-port", int(0, 65535), "0", DESCRIPTIVE).immutable(),
    Param::new("cluster-announce-bus-port", int(0, 65535), "0", DESCRIPTIVE),
    Param::new("cluster-announce-port", int(0, 65535), "0", DESCRIPTIVE),
    Param::new("cluster-announce-tls-port", int(0, 65535), "0", DESCRIPTIVE),
    Param::new("repl-timeout", int(1, INT_MAX), "60", DESCRIPTIVE),
    Param::new(
        "repl-ping-replica-period",
        int(1, INT_MAX),
        "10",
        DESCRIPTIVE,
    )
    .alias(&["repl-ping-slave-period"]),
    Param::new("list-compress-depth", int(0, INT_MAX), "0", DESCRIPTIVE),
    // Test hooks that slow RDB saving and loading, which never happen.
    Param::new(
        "rdb-key-save-delay",
        int(INT_MIN, INT_MAX),
        "0",
        DESCRIPTIVE,
    )
    .hidden(),
    Param::new("key-load-delay", int(INT_MIN, INT_MAX), "0", DESCRIPTIVE).hidden(),
    // How hard active expiry works per cycle; replies do not depend on it.
    Param::new("active-expire-effort", int(1, 10), "1", DESCRIPTIVE),
    Param::new("hz", special(parse_hz), "10", SUPPORTED),
    Param::new("min-replicas-to-write", int(0, INT_MAX), "0", SUPPORTED)
        .alias(&["min-slaves-to-write"]),
    Param::new("min-replicas-max-lag", int(0, INT_MAX), "10", SUPPORTED)
        .alias(&["min-slaves-max-lag"]),
    Param::new(
        "watchdog-period",
        int(0, INT_MAX),
        "0",
        only(ZERO, "cordis has no software watchdog"),
    )
    .hidden(),
    Param::new("shutdown-timeout", int(0, INT_MAX), "10", DESCRIPTIVE),
    Param::new(
        "repl-diskless-sync-max-replicas",
        int(0, INT_MAX),
        "0",
        DESCRIPTIVE,
    ),
    Param::new("maxclients", int(1, UINT_MAX), "10000", SUPPORTED),
    // Applies only to unixsocket, which is refused.
    Param::new(
        "unixsocketperm",
        Kind::Octal { min: 0, max: 0o777 },
        "0",
        DESCRIPTIVE,
    )
    .immutable(),
    Param::new(
        "socket-mark-id",
        int(0, UINT_MAX),
        "0",
        only(ZERO, "cordis does not mark its sockets"),
    )
    .immutable(),
    Param::new(
        "active-defrag-max-scan-fields",
        int(1, LONG_MAX),
        "1000",
        DESCRIPTIVE,
    ),
    // SLOWLOG is reporting only.
    Param::new("slowlog-max-len", int(0, LONG_MAX), "128", DESCRIPTIVE),
    Param::new("acllog-max-len", int(0, LONG_MAX), "128", DESCRIPTIVE),
    // How long a script runs before other clients get BUSY and SCRIPT KILL
    // can reach it (see docs/scripting.md).
    Param::new("busy-reply-threshold", int(0, LONG_MAX), "5000", SUPPORTED)
        .alias(&["lua-time-limit"]),
    Param::new(
        "cluster-node-timeout",
        int(0, LONG_MAX),
        "15000",
        DESCRIPTIVE,
    ),
    Param::new(
        "slowlog-log-slower-than",
        int(-1, LONG_MAX),
        "10000",
        DESCRIPTIVE,
    ),
    // LATENCY monitoring is reporting only.
    Param::new(
        "latency-monitor-threshold",
        int(0, LONG_MAX),
        "0",
        DESCRIPTIVE,
    ),
    Param::new(
        "proto-max-bulk-len",
        memory(1024 * 1024, LONG_MAX),
        "536870912",
        SUPPORTED,
    ),
    Param::new(
        "stream-node-max-entries",
        int(0, LONG_MAX),
        "100",
        DESCRIPTIVE,
    ),
    // Redis's backlog; cordis's own is replication-log-bytes.
    Param::new(
        "repl-backlog-size",
        memory(1, LONG_MAX),
        "1048576",
        DESCRIPTIVE,
    ),
    Param::new("maxmemory", memory(0, ULLONG_MAX), "0", SUPPORTED),
    Param::new(
        "cluster-link-sendbuf-limit",
        memory(0, ULLONG_MAX),
        "0",
        DESCRIPTIVE,
    ),
    Param::new(
        "hash-max-listpack-entries",
        int(0, LONG_MAX),
        "512",
        DESCRIPTIVE,
    )
    .alias(&["hash-max-ziplist-entries"]),
    Param::new(
        "set-max-intset-entries",
        int(0, LONG_MAX),
        "512",
        DESCRIPTIVE,
    ),
    Param::new(
        "zset-max-listpack-entries",
        int(0, LONG_MAX),
        "128",
        DESCRIPTIVE,
    )
    .alias(&["zset-max-ziplist-entries"]),
    Param::new(
        "active-defrag-ignore-bytes",
        memory(1, LONG_MAX),
        "104857600",
        DESCRIPTIVE,
    ),
    Param::new(
        "hash-max-listpack-value",
        memory(0, LONG_MAX),
        "64",
        DESCRIPTIVE,
    )
    .alias(&["hash-max-ziplist-value"]),
    Param::new(
        "stream-node-max-bytes",
        memory(0, LONG_MAX),
        "4096",
        DESCRIPTIVE,
    ),
    Param::new(
        "zset-max-listpack-value",
        memory(0, LONG_MAX),
        "64",
        DESCRIPTIVE,
    )
    .alias(&["zset-max-ziplist-value"]),
    Param::new(
        "hll-sparse-max-bytes",
        memory(0, LONG_MAX),
        "3000",
        SUPPORTED,
    ),
    Param::new(
        "tracking-table-max-keys",
        int(0, LONG_MAX),
        "1000000",
        SUPPORTED,
    ),
    Param::new(
        "client-query-buffer-limit",
        memory(1024 * 1024, LONG_MAX),
        "1073741824",
        SUPPORTED,
    ),
    Param::new(
        "maxmemory-clients",
        Kind::MemoryOrPercent {
            min: -100,
            max: LONG_MAX,
        },
        "0",
        only(ZERO, "cordis does not evict clients yet"),
    ),
    Param::new("repl-backlog-ttl", int(0, LONG_MAX), "3600", DESCRIPTIVE),
    Param::new(
        "auto-aof-rewrite-min-size",
        memory(0, LONG_MAX),
        "67108864",
        SUPPORTED,
    ),
    Param::new(
        "loading-process-events-interval-bytes",
        int(1024, INT_MAX),
        "2097152",
        DESCRIPTIVE,
    )
    .hidden(),
    // ----- Redis: TLS (present in TLS builds of Redis) -----
    Param::new("tls-port", int(0, 65535), "0", start_only(TLS_AT_START)),
    // Knobs rustls honours (see server::tls); session timeouts are rustls's.
    Param::new(
        "tls-session-cache-size",
        int(0, INT_MAX),
        "20480",
        start_only(TLS_AT_START),
    ),
    Param::new(
        "tls-session-cache-timeout",
        int(0, INT_MAX),
        "300",
        DESCRIPTIVE,
    ),
    Param::new(
        "tls-cluster",
        BOOL,
        "no",
        only(NO, "cordis has no cluster bus"),
    ),
    Param::new("tls-replication", BOOL, "no", start_only(TLS_AT_START)),
    Param::new(
        "tls-auth-clients",
        one_of(TLS_AUTH_CLIENTS),
        "yes",
        start_only(TLS_AT_START),
    ),
    Param::new(
        "tls-prefer-server-ciphers",
        BOOL,
        "no",
        start_only(TLS_AT_START),
    ),
    Param::new("tls-session-caching", BOOL, "yes", start_only(TLS_AT_START)),
    Param::new("tls-cert-file", TEXT, "", start_only(TLS_AT_START)),
    Param::new("tls-key-file", TEXT, "", start_only(TLS_AT_START)),
    Param::new(
        "tls-key-file-pass",
        TEXT,
        "",
        only(EMPTY, "cordis reads unencrypted PEM keys only"),
    ),
    Param::new("tls-client-cert-file", TEXT, "", start_only(TLS_AT_START)),
    Param::new("tls-client-key-file", TEXT, "", start_only(TLS_AT_START)),
    Param::new(
        "tls-client-key-file-pass",
        TEXT,
        "",
        only(EMPTY, "cordis reads unencrypted PEM keys only"),
    ),
    // rustls negotiates ECDHE only, so DH parameters are never used.
    Param::new("tls-dh-params-file", TEXT, "", DESCRIPTIVE),
    Param::new("tls-ca-cert-file", TEXT, "", start_only(TLS_AT_START)),
    Param::new("tls-ca-cert-dir", TEXT, "", start_only(TLS_AT_START)),
    Param::new("tls-protocols", TEXT, "", start_only(TLS_AT_START)),
    Param::new("tls-ciphers", TEXT, "", start_only(TLS_AT_START)),
    Param::new("tls-ciphersuites", TEXT, "", start_only(TLS_AT_START)),
    // ----- Redis: special -----
    // Where SAVE, BGSAVE and save points write the snapshot.
    Param {
        dynamic_default: Some(working_directory),
        ..Param::new("dir", special(parse_dir), "", SUPPORTED).protected()
    },
    Param::new(
        "save",
        special(parse_save),
        "3600 1 300 100 60 10000",
        SUPPORTED,
    )
    // No save points unless asked: a node writes no file by surprise.
    .starts_as(""),
    Param::new(
        "client-output-buffer-limit",
        special(parse_client_output_buffer_limit),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Status::Accepts {
            accepts: normal_clients_unlimited,
            rule: "normal clients must stay 0 0 0",
            missing: "cordis does not cap normal clients' replies yet",
        },
    ),
    // Used only when oom-score-adj is on, which is refused.
    Param::new(
        "oom-score-adj-values",
        special(parse_oom_score_adj_values),
        "0 200 800",
        DESCRIPTIVE,
    ),
    Param::new(
        "notify-keyspace-events",
        special(parse_notify_keyspace_events),
        "",
        SUPPORTED,
    ),
    // Redis's default binds every interface; cordis's is loopback only.
    Param::new("bind", special(parse_bind), "* -::*", start_only(NO_REBIND)).starts_as("127.0.0.1"),
    Param::new(
        "replicaof",
        special(parse_replicaof),
        "",
        only(
            EMPTY,
            "cordis cannot be a Redis replica; it replicates active-active with peers",
        ),
    )
    .immutable()
    .alias(&["slaveof"]),
    // Shapes INFO latencystats only.
    Param::new(
        "latency-tracking-info-percentiles",
        special(parse_percentiles),
        "50 99 99.9",
        DESCRIPTIVE,
    ),
    // ----- cordis's own -----
    Param::new(
        "replica-id",
        text(check_replica_id),
        "",
        start_only(READ_AT_START),
    )
    .alias(&["node-name"])
    .cordis(),
    Param::new("threads", int(0, 1024), "1", start_only(READ_AT_START)).cordis(),
    Param::new("request-deadline", int(0, LONG_MAX), "60", SUPPORTED).cordis(),
    Param::new(
        "replication-log-bytes",
        memory(0, LONG_MAX),
        "16777216",
        SUPPORTED,
    )
    .cordis(),
    // A silent peer stops holding back tombstone collection and log
    // trimming after this long or once this much is held for it (0 = no
    // bound); see docs/replication.md "Silent peers".
    Param::new(
        "peer-silence-limit-ms",
        int(0, LONG_MAX),
        "600000",
        SUPPORTED,
    )
    .cordis(),
    Param::new(
        "peer-silence-limit-bytes",
        memory(0, LONG_MAX),
        "268435456",
        SUPPORTED,
    )
    .cordis(),
    Param::new("peers", special(parse_peers), "", start_only(READ_AT_START)).cordis(),
    Param::new(
        "peer-port",
        special(parse_optional_port),
        "",
        start_only(READ_AT_START),
    )
    .cordis(),
    Param::new("peer-secret", TEXT, "", start_only(READ_AT_START)).cordis(),
    Param::new(
        "peer-timeout-ms",
        int(0, LONG_MAX),
        "10000",
        start_only(READ_AT_START),
    )
    .cordis(),
    Param::new(
        "peer-handshake-timeout-ms",
        int(1, LONG_MAX),
        "2000",
        start_only(READ_AT_START),
    )
    .cordis(),
    Param::new(
        "peer-heartbeat-ms",
        int(0, LONG_MAX),
        "1000",
        start_only(READ_AT_START),
    )
    .cordis(),
    Param::new(
        "max-clock-skew-ms",
        int(0, LONG_MAX),
        "5000",
        start_only(READ_AT_START),
    )
    .cordis(),
    Param::new(
        "anti-entropy-interval-ms",
        int(0, LONG_MAX),
        "30000",
        start_only(READ_AT_START),
    )
    .cordis(),
    Param::new(
        "reconnect-max-ms",
        int(0, LONG_MAX),
        "5000",
        start_only(READ_AT_START),
    )
    .cordis(),
];
