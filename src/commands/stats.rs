//! What the dispatcher records about every command it runs, for INFO
//! (commandstats, errorstats, latencystats, instantaneous rates), SLOWLOG
//! and LATENCY: per-command calls / time / rejected / failed counts with a
//! latency histogram, error replies by prefix, the slow log ring, and the
//! latency monitor's per-event time series.
//!
//! It all lives in [`Introspection`], a field of the store, so it is
//! guarded by the store lock the dispatcher already holds: recording a
//! command takes no other lock and (after a command's first call, which
//! allocates its histogram) allocates nothing unless an entry goes to the
//! slow log.
//!
//! The settings that shape it (`slowlog-log-slower-than`, `slowlog-max-len`,
//! `latency-monitor-threshold`, `latency-tracking`,
//! `latency-tracking-info-percentiles`) are read through `Config::get` when
//! the config epoch moves; a parameter the config does not know keeps
//! Redis's default.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;

use super::context::ServerState;
use super::{all_commands, CommandSpec};
use crate::protocol::Reply;

// ----- the clock -----

/// A cheap monotonic clock for timing every command: the CPU's time-stamp
/// counter where it ticks at a constant rate (x86-64 with `constant_tsc`,
/// calibrated once against `Instant` — Redis's monotonic clock does the
/// same), otherwise `Instant` in nanoseconds. A TSC read costs a few
/// nanoseconds, `Instant::now()` some 30 here, and the dispatcher reads
/// the clock twice per command.
pub mod clock {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    struct Calibration {
        /// Nanoseconds per tick; `None` = ticks are `Instant` nanoseconds.
        ns_per_tick: Option<f64>,
        /// `ns_per_tick` in 32.32 fixed point (1 << 32 for nanoseconds).
        scale: u64,
        epoch: Instant,
    }

    fn calibration() -> &'static Calibration {
        static CALIBRATION: OnceLock<Calibration> = OnceLock::new();
        CALIBRATION.get_or_init(|| {
            let epoch = Instant::now();
            let ns_per_tick = tsc_ns_per_tick();
            Calibration {
                ns_per_tick,
                scale: ns_per_tick.map_or(1 << 32, |ns| (ns * (1u64 << 32) as f64) as u64),
                epoch,
            }
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn tsc() -> u64 {
        // SAFETY: RDTSC has no preconditions on x86-64.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn tsc_ns_per_tick() -> Option<f64> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let flags = cpuinfo.lines().find(|l| l.starts_with("flags"))?;
        if !flags.split_whitespace().any(|f| f == "constant_tsc") {
            return None;
        }
        // Spin ~2 ms against Instant (once per process).
        let (t0, c0) = (Instant::now(), tsc());
        while t0.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let (dt, dc) = (
            t0.elapsed().as_nanos() as f64,
            tsc().wrapping_sub(c0) as f64,
        );
        (dc > 0.0).then(|| dt / dc)
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn tsc_ns_per_tick() -> Option<f64> {
        None
    }

    /// Calibrates now (at startup) rather than on the first command.
    pub fn init() {
        calibration();
    }

    /// The current reading.
    #[inline]
    pub fn ticks() -> u64 {
        let c = calibration();
        #[cfg(target_arch = "x86_64")]
        if c.ns_per_tick.is_some() {
            return tsc();
        }
        c.epoch.elapsed().as_nanos() as u64
    }

    /// Nanoseconds between two readings (`later` before `earlier` gives 0).
    #[inline]
    pub fn nanos_between(earlier: u64, later: u64) -> u64 {
        let ticks = later.saturating_sub(earlier) as u128;
        ((ticks * calibration().scale as u128) >> 32).min(u64::MAX as u128) as u64
    }

    /// The time between two readings.
    pub fn between(earlier: u64, later: u64) -> Duration {
        Duration::from_nanos(nanos_between(earlier, later))
    }

    /// How many ticks `d` lasts.
    pub fn ticks_in(d: Duration) -> u64 {
        ((d.as_nanos() << 32) / calibration().scale.max(1) as u128) as u64
    }
}

// ----- the command index -----

/// Every command row (subcommands included) with a dense id and its full
/// name (`config|get`), in table order.
pub struct CommandTable {
    pub entries: Vec<TableEntry>,
    by_addr: HashMap<usize, usize, foldhash::fast::FixedState>,
}

pub struct TableEntry {
    pub spec: &'static CommandSpec,
    pub full_name: String,
    /// Id of the container, for a subcommand.
    pub parent: Option<usize>,
}

impl CommandTable {
    pub fn id_of(&self, spec: &'static CommandSpec) -> Option<usize> {
        self.by_addr
            .get(&(spec as *const CommandSpec as usize))
            .copied()
    }
}

pub fn command_table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut entries = Vec::new();
        for spec in all_commands() {
            let parent = entries.len();
            entries.push(TableEntry {
                spec,
                full_name: spec.name.to_string(),
                parent: None,
            });
            for sub in spec.subcommands {
                entries.push(TableEntry {
                    spec: sub,
                    full_name: format!("{}|{}", spec.name, sub.name),
                    parent: Some(parent),
                });
            }
        }
        let by_addr = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.spec as *const CommandSpec as usize, i))
            .collect();
        CommandTable { entries, by_addr }
    })
}

// ----- latency histogram -----

/// Sub-buckets per power of two (3 bits: values within 12.5%).
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Recorded values are clamped to 1 µs ..= 1000 s (in ns), as Redis does.
const HIST_MIN_NS: u64 = 1_000;
const HIST_MAX_NS: u64 = 1_000_000_000_000;
const BUCKETS: usize = 40 * SUB;

/// A log-bucketed latency histogram in nanoseconds (a small HDR-like
/// layout: 8 linear sub-buckets per power of two).
pub struct Histogram {
    counts: [u64; BUCKETS],
    total: u64,
}

fn bucket_of(ns: u64) -> usize {
    let v = ns.max(1);
    let msb = 63 - v.leading_zeros();
    if msb < SUB_BITS {
        v as usize
    } else {
        (msb - SUB_BITS + 1) as usize * SUB + ((v >> (msb - SUB_BITS)) as usize & (SUB - 1))
    }
}

/// The largest value that falls into bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i / SUB - 1) as u32;
    let low = ((SUB + i % SUB) as u64) << shift;
    low + (1u64 << shift) - 1
}

impl Histogram {
    fn new() -> Box<Self> {
        Box::new(Histogram {
            counts: [0; BUCKETS],
            total: 0,
        })
    }

    fn record(&mut self, ns: u64) {
        let ns = ns.clamp(HIST_MIN_NS, HIST_MAX_NS);
        self.counts[bucket_of(ns).min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The value (ns) at percentile `p` (0..=100): the highest value of
    /// the bucket holding the sample of that rank.
    pub fn value_at_percentile(&self, p: f64) -> u64 {
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * self.total as f64).ceil() as u64;
        let rank = rank.max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank && c > 0 {
                return bucket_high(i);
            }
        }
        0
    }

    /// Redis's LATENCY HISTOGRAM shape: cumulative counts at power-of-two
    /// boundaries from 1024 ns, keyed by the boundary in µs, only where the
    /// count grew.
    pub fn cdf_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut previous = 0;
        let mut bit = 10u32;
        while previous < self.total && bit < 48 {
            let limit = 1u64 << bit;
            let cumulative: u64 = self
                .counts
                .iter()
                .enumerate()
                .take_while(|(i, _)| bucket_high(*i) < limit)
                .map(|(_, c)| c)
                .sum();
            if cumulative > previous {
                out.push(((limit - 1) / 1000, cumulative));
            }
            previous = cumulative;
            bit += 1;
        }
        out
    }
}

// ----- per-command counters -----

#[derive(Default)]
pub struct CommandStat {
    pub calls: u64,
    pub nanos: u64,
    pub rejected: u64,
    pub failed: u64,
    pub histogram: Option<Box<Histogram>>,
}

// ----- slow log -----

/// Redis shows at most this many arguments of a logged command…
pub const SLOWLOG_MAX_ARGC: usize = 32;
/// …and at most this many bytes of each.
pub const SLOWLOG_MAX_STRING: usize = 128;

pub struct SlowlogEntry {
    pub id: u64,
    pub unix_secs: u64,
    pub usec: u64,
    pub argv: Vec<Bytes>,
    pub peer: String,
    pub name: Bytes,
}

// ----- latency monitor -----

/// Samples kept per event.
pub const LATENCY_TS_LEN: usize = 160;

#[derive(Clone)]
pub struct LatencySeries {
    /// (unix seconds, latency ms); time 0 = empty slot.
    pub samples: Vec<(u64, u64)>,
    pub idx: usize,
    pub max: u64,
}

impl LatencySeries {
    fn new() -> Self {
        LatencySeries {
            samples: vec![(0, 0); LATENCY_TS_LEN],
            idx: 0,
            max: 0,
        }
    }

    fn add(&mut self, now: u64, ms: u64) {
        self.max = self.max.max(ms);
        let prev = (self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN;
        if self.samples[prev].0 == now {
            self.samples[prev].1 = self.samples[prev].1.max(ms);
            return;
        }
        self.samples[self.idx] = (now, ms);
        self.idx = (self.idx + 1) % LATENCY_TS_LEN;
    }

    /// Samples oldest first.
    pub fn in_order(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..LATENCY_TS_LEN)
            .map(move |j| self.samples[(self.idx + j) % LATENCY_TS_LEN])
            .filter(|s| s.0 != 0)
    }

    pub fn latest(&self) -> (u64, u64) {
        self.samples[(self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]
    }
}

// ----- instantaneous metrics -----

const METRIC_SAMPLES: usize = 16;
const METRIC_PERIOD: Duration = Duration::from_millis(100);

/// Redis's instantaneous metrics: a per-second rate sampled every 100 ms,
/// averaged over the last 16 samples. Sampled when a command runs or INFO
/// asks, so an idle stretch counts as that many zero-ish samples.
#[derive(Clone, Copy)]
struct Metric {
    last_reading: u64,
    /// [`clock::ticks`] of the last sample.
    last_time: Option<u64>,
    samples: [f64; METRIC_SAMPLES],
    idx: usize,
}

impl Metric {
    fn new() -> Self {
        Metric {
            last_reading: 0,
            last_time: None,
            samples: [0.0; METRIC_SAMPLES],
            idx: 0,
        }
    }

    fn track(&mut self, reading: u64, now: u64) {
        let Some(last) = self.last_time else {
            self.last_time = Some(now);
            self.last_reading = reading;
            return;
        };
        let elapsed = clock::between(last, now);
        if elapsed < METRIC_PERIOD / 2 {
            return;
        }
        let delta = reading.saturating_sub(self.last_reading);
        let rate = delta as f64 / elapsed.as_secs_f64();
        let periods =
            ((elapsed.as_millis() / METRIC_PERIOD.as_millis()) as usize).clamp(1, METRIC_SAMPLES);
        for _ in 0..periods {
            self.samples[self.idx] = rate;
            self.idx = (self.idx + 1) % METRIC_SAMPLES;
        }
        self.last_reading = reading;
        self.last_time = Some(now);
    }

    fn value(&self) -> f64 {
        self.samples.iter().sum::<f64>() / METRIC_SAMPLES as f64
    }
}

// ----- settings -----

#[derive(Clone)]
pub struct Settings {
    /// µs; negative = slow log off, 0 = log everything.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: usize,
    /// ms; 0 = latency monitor off.
    pub latency_monitor_threshold: u64,
    pub latency_tracking: bool,
    pub percentiles: Vec<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            percentiles: vec![50.0, 99.0, 99.9],
        }
    }
}

impl Settings {
    /// Reads the parameters the config knows; the others keep Redis's
    /// defaults.
    fn from_config(config: &crate::config::Config) -> Self {
        let mut s = Settings::default();
        let get = |name: &str| config.get(name);
        if let Some(v) = get("slowlog-log-slower-than").and_then(|v| v.parse().ok()) {
            s.slowlog_log_slower_than = v;
        }
        if let Some(v) = get("slowlog-max-len").and_then(|v| v.parse().ok()) {
            s.slowlog_max_len = v;
        }
        if let Some(v) = get("latency-monitor-threshold").and_then(|v| v.parse().ok()) {
            s.latency_monitor_threshold = v;
        }
        if let Some(v) = get("latency-tracking") {
            s.latency_tracking = v != "no";
        }
        if let Some(v) = get("latency-tracking-info-percentiles") {
            let parsed: Option<Vec<f64>> = v.split_whitespace().map(|p| p.parse().ok()).collect();
            if let Some(p) = parsed {
                s.percentiles = p;
            }
        }
        s
    }
}

// ----- the whole record -----

/// Error prefixes tracked at most (Redis's limit too).
const MAX_ERROR_KINDS: usize = 128;

pub struct Introspection {
    commands: Vec<CommandStat>,
    /// Error replies by prefix, sorted by prefix.
    errors: Vec<(Box<str>, u64)>,
    total_calls: u64,
    total_errors: u64,
    /// The next command recorded as run answers an error that was counted
    /// already (a script's error made of a command's error reply): it
    /// counts as failed, not again in the error statistics.
    error_counted: bool,
    slowlog: VecDeque<SlowlogEntry>,
    slowlog_next_id: u64,
    latency: Vec<(&'static str, LatencySeries)>,
    ops: Metric,
    input: Metric,
    output: Metric,
    settings: Settings,
    settings_epoch: u64,
    startup_memory: usize,
    peak_memory: usize,
    /// [`clock::ticks`] at which the next metrics sample is due.
    next_sample: u64,
}

impl Default for Introspection {
    fn default() -> Self {
        Introspection {
            commands: Vec::new(),
            errors: Vec::new(),
            total_calls: 0,
            total_errors: 0,
            error_counted: false,
            slowlog: VecDeque::new(),
            slowlog_next_id: 0,
            latency: Vec::new(),
            ops: Metric::new(),
            input: Metric::new(),
            output: Metric::new(),
            settings: Settings::default(),
            settings_epoch: u64::MAX,
            startup_memory: crate::store::memory::used_memory(),
            peak_memory: 0,
            next_sample: 0,
        }
    }
}

/// The first word of an error reply (up to 32 bytes in), or "ERR".
fn error_prefix(text: &[u8]) -> &str {
    let head = &text[..text.len().min(32)];
    head.iter()
        .position(|&b| b == b' ')
        .and_then(|space| std::str::from_utf8(&head[..space]).ok())
        .filter(|p| !p.is_empty())
        .unwrap_or("ERR")
}

/// What Redis replaces a sensitive argument with in the slow log.
const REDACTED: &[u8] = b"(redacted)";

impl Introspection {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Re-reads the settings when the config changed (one atomic load
    /// otherwise).
    #[inline]
    pub fn refresh(&mut self, server: &ServerState) {
        let epoch = server.config_epoch.load(Ordering::Acquire);
        if epoch != self.settings_epoch {
            self.reload(server, epoch);
        }
    }

    #[cold]
    fn reload(&mut self, server: &ServerState, epoch: u64) {
        self.settings = Settings::from_config(&server.config.read());
        self.settings_epoch = epoch;
    }

    fn stat(&mut self, id: usize) -> &mut CommandStat {
        if self.commands.len() <= id {
            self.commands
                .resize_with(command_table().entries.len().max(id + 1), Default::default);
        }
        &mut self.commands[id]
    }

    pub fn command(&self, id: usize) -> Option<&CommandStat> {
        self.commands.get(id)
    }

    /// Counts an error reply by its prefix.
    #[inline]
    pub fn count_error(&mut self, reply: &Reply) {
        if let Reply::Error(text) = reply {
            self.count_error_text(text);
        }
    }

    #[cold]
    fn count_error_text(&mut self, text: &[u8]) {
        self.total_errors += 1;
        let prefix = error_prefix(text);
        match self.errors.binary_search_by(|(p, _)| (**p).cmp(prefix)) {
            Ok(at) => self.errors[at].1 += 1,
            Err(at) if self.errors.len() < MAX_ERROR_KINDS => {
                self.errors.insert(at, (prefix.into(), 1))
            }
            Err(_) => {}
        }
    }

    /// A command refused before it ran (arity, AUTH…): its rejected count
    /// (when the row is known) and the error.
    pub fn rejected(&mut self, command: Option<usize>, reply: &Reply) {
        if let Some(id) = command {
            self.stat(id).rejected += 1;
        }
        self.count_error(reply);
    }

    /// The command running now answers an error already counted (see
    /// `error_counted`); [`Self::ran`] takes the mark.
    pub fn error_already_counted(&mut self) {
        self.error_counted = true;
    }

    /// A command that ran: `total` is its whole time (for a command that
    /// parked, since it first ran), `ran` the time its last run took.
    #[allow(clippy::too_many_arguments)]
    pub fn ran(
        &mut self,
        (id, command): (usize, &'static CommandSpec),
        nanos: u64,
        ran_nanos: u64,
        reply: &Reply,
        argv: &[Bytes],
        client: &super::ClientInfo,
        server: &ServerState,
        now: u64,
    ) {
        let tracking = self.settings.latency_tracking;
        let failed = matches!(reply, Reply::Error(_));
        let stat = self.stat(id);
        stat.calls += 1;
        stat.nanos += nanos;
        stat.failed += failed as u64;
        if tracking {
            stat.histogram
                .get_or_insert_with(Histogram::new)
                .record(nanos);
        }
        self.total_calls += 1;
        if !std::mem::take(&mut self.error_counted) {
            self.count_error(reply);
        }
        let threshold = self.settings.latency_monitor_threshold;
        let ran_ms = ran_nanos / 1_000_000;
        if threshold > 0 && ran_ms >= threshold {
            let event = if command.flags & super::flags::FAST != 0 {
                "fast-command"
            } else {
                "command"
            };
            self.add_latency_sample(event, ran_ms);
        }
        let usec = (nanos / 1000) as i64;
        let slower_than = self.settings.slowlog_log_slower_than;
        if slower_than >= 0 && usec >= slower_than && command.name != "exec" {
            self.push_slowlog(argv, usec as u64, client);
        }
        self.sample(server, now);
    }

    fn push_slowlog(&mut self, argv: &[Bytes], usec: u64, client: &super::ClientInfo) {
        let shown = argv.len().min(SLOWLOG_MAX_ARGC);
        let redacted = crate::pubsub::push::redacted_positions(argv);
        let logged = (0..shown)
            .map(|i| {
                if shown != argv.len() && i == shown - 1 {
                    Bytes::from(format!("... ({} more arguments)", argv.len() - shown + 1))
                } else if redacted.contains(&i) {
                    Bytes::from_static(REDACTED)
                } else if argv[i].len() > SLOWLOG_MAX_STRING {
                    let mut s = argv[i][..SLOWLOG_MAX_STRING].to_vec();
                    s.extend_from_slice(
                        format!("... ({} more bytes)", argv[i].len() - SLOWLOG_MAX_STRING)
                            .as_bytes(),
                    );
                    Bytes::from(s)
                } else {
                    argv[i].clone()
                }
            })
            .collect();
        let entry = SlowlogEntry {
            id: self.slowlog_next_id,
            unix_secs: crate::store::unix_ms() / 1000,
            usec,
            argv: logged,
            peer: client.addr.clone(),
            name: client.name.lock().clone(),
        };
        self.slowlog_next_id += 1;
        self.slowlog.push_front(entry);
        self.slowlog.truncate(self.settings.slowlog_max_len);
    }

    pub fn slowlog(&self) -> &VecDeque<SlowlogEntry> {
        &self.slowlog
    }

    pub fn slowlog_reset(&mut self) {
        self.slowlog.clear();
    }

    /// Records `ms` for the node's own `event` (e.g. `expire-cycle`) when
    /// LATENCY monitoring is on and it reached the threshold.
    pub fn note_latency(&mut self, server: &ServerState, event: &'static str, ms: u64) {
        self.refresh(server);
        let threshold = self.settings.latency_monitor_threshold;
        if threshold > 0 && ms >= threshold {
            self.add_latency_sample(event, ms);
        }
    }

    /// Adds a latency sample to `event` (the caller checked the threshold).
    pub fn add_latency_sample(&mut self, event: &'static str, ms: u64) {
        let now = crate::store::unix_ms() / 1000;
        match self.latency.iter_mut().find(|(e, _)| *e == event) {
            Some((_, series)) => series.add(now, ms),
            None => {
                let mut series = LatencySeries::new();
                series.add(now, ms);
                self.latency.push((event, series));
            }
        }
    }

    pub fn latency_events(&self) -> &[(&'static str, LatencySeries)] {
        &self.latency
    }

    /// Drops the series of `event` (every event for `None`); how many went.
    pub fn latency_reset(&mut self, event: Option<&[u8]>) -> usize {
        let before = self.latency.len();
        self.latency.retain(|(e, _)| {
            event.is_some_and(|wanted| !e.as_bytes().eq_ignore_ascii_case(wanted))
        });
        before - self.latency.len()
    }

    /// Samples the instantaneous metrics when 100 ms passed.
    #[inline]
    fn sample(&mut self, server: &ServerState, now: u64) {
        if now >= self.next_sample {
            self.sample_now(server, now);
        }
    }

    #[cold]
    fn sample_now(&mut self, server: &ServerState, now: u64) {
        self.next_sample = now + clock::ticks_in(METRIC_PERIOD);
        let input = server.stats.total_net_input_bytes.load(Ordering::Relaxed);
        let output = server.stats.total_net_output_bytes.load(Ordering::Relaxed);
        self.note_memory_peak(crate::store::memory::used_memory());
        self.ops.track(self.total_calls, now);
        self.input.track(input, now);
        self.output.track(output, now);
    }

    /// Samples now (INFO) and returns (ops/sec, input kbps, output kbps).
    pub fn instantaneous(&mut self, server: &ServerState) -> (u64, f64, f64) {
        self.sample(server, clock::ticks());
        (
            self.ops.value().round() as u64,
            self.input.value() / 1024.0,
            self.output.value() / 1024.0,
        )
    }

    /// Raises the recorded memory peak to `used` if higher; the peak.
    pub fn note_memory_peak(&mut self, used: usize) -> usize {
        self.peak_memory = self.peak_memory.max(used);
        self.peak_memory
    }

    /// Memory in use when this node started (at most `used`).
    pub fn startup_memory(&self, used: usize) -> usize {
        self.startup_memory.min(used)
    }

    pub fn total_calls(&self) -> u64 {
        self.total_calls
    }

    pub fn total_errors(&self) -> u64 {
        self.total_errors
    }

    pub fn errors(&self) -> &[(Box<str>, u64)] {
        &self.errors
    }

    /// CONFIG RESETSTAT: every counter, histogram and error count (not the
    /// slow log or latency events, which have their own RESET, as in Redis).
    pub fn reset(&mut self) {
        self.commands.clear();
        self.errors.clear();
        self.total_calls = 0;
        self.total_errors = 0;
        self.ops = Metric::new();
        self.input = Metric::new();
        self.output = Metric::new();
        self.next_sample = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bounded() {
        let mut previous_high = None;
        for i in 1..BUCKETS {
            let high = bucket_high(i);
            if let Some(p) = previous_high {
                assert_eq!(bucket_of(p + 1), i, "bucket {i}");
            }
            assert_eq!(bucket_of(high), i);
            previous_high = Some(high);
        }
        assert!(bucket_of(HIST_MAX_NS) < BUCKETS);
    }

    #[test]
    fn percentiles_are_within_an_eighth() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let p50 = h.value_at_percentile(50.0) as f64 / 1000.0;
        assert!((500.0..=500.0 * 1.13).contains(&p50), "{p50}");
        let p100 = h.value_at_percentile(100.0) as f64 / 1000.0;
        assert!((1000.0..=1130.0).contains(&p100), "{p100}");
        let cdf = h.cdf_usec();
        assert_eq!(cdf.first(), Some(&(1, 1)));
        assert_eq!(cdf.last().map(|c| c.1), Some(1000));
    }

    #[test]
    fn error_prefixes_are_the_first_word() {
        assert_eq!(error_prefix(b"WRONGTYPE Operation"), "WRONGTYPE");
        assert_eq!(error_prefix(b"ERR x"), "ERR");
        assert_eq!(
            error_prefix(b"NOSPACEINTHEFIRST32BYTESATALLXXXXXXXXXX"),
            "ERR"
        );
    }

    #[test]
    fn slowlog_trims_arguments_and_redacts_passwords() {
        let mut stats = Introspection::default();
        let client = crate::commands::ClientInfo::new(1, "1.2.3.4:5".into(), "l".into());
        let mut argv: Vec<Bytes> = vec!["sadd".into(), "set".into(), "A".repeat(129).into()];
        argv.extend((0..40).map(|i| Bytes::from(i.to_string())));
        stats.push_slowlog(&argv, 7, &client);
        let e = &stats.slowlog()[0];
        assert_eq!(e.argv.len(), SLOWLOG_MAX_ARGC);
        assert_eq!(e.argv[2], format!("{}... (1 more bytes)", "A".repeat(128)));
        assert_eq!(e.argv[31], "... (12 more arguments)");
        assert_eq!(e.peer, "1.2.3.4:5");
        let auth: Vec<Bytes> = vec!["auth".into(), "user".into(), "pw".into()];
        stats.push_slowlog(&auth, 7, &client);
        assert_eq!(
            stats.slowlog()[0].argv,
            ["auth", "(redacted)", "(redacted)"]
        );
        assert_eq!(stats.slowlog()[0].id, 1);
        stats.settings.slowlog_max_len = 1;
        stats.push_slowlog(&auth, 7, &client);
        assert_eq!(stats.slowlog().len(), 1);
    }

    #[test]
    fn latency_series_keeps_the_max_per_second() {
        let mut s = LatencySeries::new();
        s.add(10, 5);
        s.add(10, 9);
        s.add(11, 3);
        assert_eq!(s.in_order().collect::<Vec<_>>(), vec![(10, 9), (11, 3)]);
        assert_eq!(s.max, 9);
        assert_eq!(s.latest(), (11, 3));
    }
}
