//! SLOWLOG and LATENCY: the slow log and the latency monitor the
//! dispatcher fills ([`super::stats`]), read and reset with Redis 7.0's
//! replies.

use std::fmt::Write as _;

use bytes::Bytes;

use super::args::{self, err_owned, Args, CmdResult};
use super::flags::{ADMIN, LOADING, NOSCRIPT, STALE};
use super::stats::{command_table, Histogram};
use super::{container_handler, lookup, lookup_subcommand, spec, CommandSpec, Context};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: SLOWLOG_SUBCOMMANDS,
        ..spec("slowlog", -2, 0, (0, 0, 0), "server", "2.2.12", "A container for slow log commands.", container_handler)
    },
    CommandSpec {
        subcommands: LATENCY_SUBCOMMANDS,
        ..spec("latency", -2, 0, (0, 0, 0), "server", "2.8.13", "A container for latency diagnostics commands.", container_handler)
    },
];

#[rustfmt::skip]
static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    spec("get", -2, ADMIN | LOADING | STALE, (0, 0, 0), "server", "2.2.12", "Returns the slow log's entries.", slowlog_get),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "server", "6.2.0", "Show helpful text about the different subcommands.", slowlog_help),
    spec("len", 2, ADMIN | LOADING | STALE, (0, 0, 0), "server", "2.2.12", "Returns the number of entries in the slow log.", slowlog_len),
    spec("reset", 2, ADMIN | LOADING | STALE, (0, 0, 0), "server", "2.2.12", "Clears all entries from the slow log.", slowlog_reset),
];

#[rustfmt::skip]
static LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    spec("doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns a human-readable latency analysis report.", latency_doctor),
    spec("graph", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns a latency graph for an event.", latency_graph),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns helpful text about the different subcommands.", latency_help),
    spec("histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "7.0.0", "Returns the cumulative distribution of latencies of a subset or all commands.", latency_histogram),
    spec("history", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns timestamp-latency samples for an event.", latency_history),
    spec("latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Returns the latest latency samples for all events.", latency_latest),
    spec("reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.13", "Resets the latency data for one or more events.", latency_reset),
];

/// Redis's answer for a subcommand called with arguments it does not take.
pub(crate) fn subcommand_syntax_error(args: &Args, container: &str) -> Reply {
    let sub = args
        .argv()
        .get(1)
        .map(|s| args::text(s))
        .unwrap_or_default();
    err_owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        &sub[..sub.len().min(128)],
        container
    ))
}

// ----- SLOWLOG -----

const SLOWLOG_COUNT: &str = "ERR count should be greater than or equal to -1";

fn slowlog_get(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.remaining() > 1 {
        return Err(subcommand_syntax_error(args, "SLOWLOG"));
    }
    let log = ctx.store.introspection.slowlog();
    let count = match args.next_if_any() {
        None => 10,
        Some(word) => match args::int(word) {
            Ok(-1) => log.len(),
            Ok(n) if n >= 0 => n as usize,
            _ => return Err(args::err(SLOWLOG_COUNT)),
        },
    };
    let bulk = |b: &[u8]| Reply::Bulk(Bytes::copy_from_slice(b));
    Ok(Reply::Array(
        log.iter()
            .take(count)
            .map(|e| {
                Reply::Array(vec![
                    Reply::Integer(e.id as i64),
                    Reply::Integer(e.unix_secs as i64),
                    Reply::Integer(e.usec as i64),
                    Reply::Array(e.argv.iter().map(|a| Reply::Bulk(a.clone())).collect()),
                    bulk(e.peer.as_bytes()),
                    Reply::Bulk(e.name.clone()),
                ])
            })
            .collect(),
    ))
}

fn slowlog_len(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Integer(
        ctx.store.introspection.slowlog().len() as i64
    ))
}

fn slowlog_reset(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    ctx.store.introspection.slowlog_reset();
    Ok(Reply::ok())
}

fn slowlog_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(args::help_reply(&[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Print this help.",
    ]))
}

// ----- LATENCY -----

fn latency_latest(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Array(
        ctx.store
            .introspection
            .latency_events()
            .iter()
            .map(|(event, series)| {
                let (time, latency) = series.latest();
                Reply::Array(vec![
                    Reply::Bulk(Bytes::from_static(event.as_bytes())),
                    Reply::Integer(time as i64),
                    Reply::Integer(latency as i64),
                    Reply::Integer(series.max as i64),
                ])
            })
            .collect(),
    ))
}

fn find_event<'a>(
    ctx: &'a Context,
    name: &[u8],
) -> Option<&'a (&'static str, super::stats::LatencySeries)> {
    ctx.store
        .introspection
        .latency_events()
        .iter()
        .find(|(e, _)| e.as_bytes() == name)
}

fn latency_history(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let name = args.next()?;
    let samples = find_event(ctx, name).map_or_else(Vec::new, |(_, series)| {
        series
            .in_order()
            .map(|(time, latency)| {
                Reply::Array(vec![
                    Reply::Integer(time as i64),
                    Reply::Integer(latency as i64),
                ])
            })
            .collect()
    });
    Ok(Reply::Array(samples))
}

fn latency_reset(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let stats = &mut ctx.store.introspection;
    let resets = if args.is_done() {
        stats.latency_reset(None)
    } else {
        args.rest()
            .iter()
            .map(|event| stats.latency_reset(Some(event)))
            .sum()
    };
    Ok(Reply::Integer(resets as i64))
}

/// "12s" / "3m" / "2h" / "1d": how long ago, as LATENCY GRAPH labels.
fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn latency_graph(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let name = args.next()?;
    let Some((event, series)) = find_event(ctx, name) else {
        return Err(err_owned(format!(
            "ERR No samples available for event '{}'",
            args::text(name)
        )));
    };
    let samples: Vec<(u64, u64)> = series.in_order().collect();
    let min = samples.iter().map(|s| s.1).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let now = crate::store::unix_ms() / 1000;
    let mut graph = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n{}\n",
        series.max,
        "-".repeat(80)
    );
    // One column per sample (the newest 80), four rows of bars, then the
    // age of each sample written vertically.
    let shown = &samples[samples.len().saturating_sub(80)..];
    const ROWS: u64 = 4;
    for row in (0..ROWS).rev() {
        let line: String = shown
            .iter()
            .map(|&(_, latency)| {
                let level = if max == min {
                    ROWS
                } else {
                    1 + (latency - min) * (ROWS - 1) / (max - min)
                };
                if level > row {
                    '#'
                } else {
                    ' '
                }
            })
            .collect();
        graph.push_str(line.trim_end());
        graph.push('\n');
    }
    let labels: Vec<Vec<char>> = shown
        .iter()
        .map(|&(time, _)| ago(now.saturating_sub(time)).chars().collect())
        .collect();
    let depth = labels.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..depth {
        let line: String = labels
            .iter()
            .map(|l| l.get(i).copied().unwrap_or(' '))
            .collect();
        graph.push_str(line.trim_end());
        graph.push('\n');
    }
    Ok(Reply::Verbatim(Bytes::from(graph)))
}

fn latency_doctor(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let stats = &mut ctx.store.introspection;
    stats.refresh(ctx.server);
    let settings = stats.settings().clone();
    let events = stats.latency_events();
    let mut report = String::new();
    if events.is_empty() && settings.latency_monitor_threshold == 0 {
        report.push_str("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n");
        return Ok(Reply::Verbatim(Bytes::from(report)));
    }
    let now = crate::store::unix_ms() / 1000;
    let (mut slowlog_enable, mut slowlog_tune, mut slowlog_inspect, mut scheduler) =
        (false, false, false, false);
    for (n, (event, series)) in events.iter().enumerate() {
        if n == 0 {
            report.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let samples: Vec<(u64, u64)> = series.in_order().collect();
        let count = samples.len().max(1) as u64;
        let avg = samples.iter().map(|s| s.1).sum::<u64>() / count;
        let mad = samples.iter().map(|s| s.1.abs_diff(avg)).sum::<u64>() / count;
        let oldest = samples.iter().map(|s| s.0).min().unwrap_or(now);
        let period = now.saturating_sub(oldest).max(1);
        let _ = write!(
            report,
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            n + 1,
            event,
            samples.len(),
            avg,
            mad,
            period as f64 / count as f64,
            series.max
        );
        match *event {
            "command" => {
                if settings.slowlog_log_slower_than < 0 {
                    slowlog_enable = true;
                } else if settings.slowlog_log_slower_than / 1000
                    > settings.latency_monitor_threshold as i64
                {
                    slowlog_tune = true;
                }
                slowlog_inspect = true;
            }
            "fast-command" => scheduler = true,
            _ => {}
        }
        report.push('\n');
    }
    let threshold_us = settings.latency_monitor_threshold * 1000;
    if events.is_empty() {
        report.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
    } else if !(slowlog_enable || slowlog_tune || slowlog_inspect || scheduler) {
        report.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    } else {
        report.push_str("\nI have a few advices for you:\n\n");
        if slowlog_enable {
            let _ = writeln!(report, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {threshold_us}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.");
        }
        if slowlog_tune {
            let _ = writeln!(report, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {threshold_us}'.");
        }
        if slowlog_inspect {
            report.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if scheduler {
            report.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n");
        }
    }
    Ok(Reply::Verbatim(Bytes::from(report)))
}

/// One command's LATENCY HISTOGRAM entry: `calls` and `histogram_usec`.
fn histogram_entry(name: &str, histogram: &Histogram) -> (Reply, Reply) {
    let text = |s: &str| Reply::Bulk(Bytes::from(s.to_string()));
    let cdf = histogram
        .cdf_usec()
        .into_iter()
        .map(|(usec, count)| (Reply::Integer(usec as i64), Reply::Integer(count as i64)))
        .collect();
    (
        text(name),
        Reply::Map(vec![
            (text("calls"), Reply::Integer(histogram.total() as i64)),
            (text("histogram_usec"), Reply::Map(cdf)),
        ]),
    )
}

fn latency_histogram(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let table = command_table();
    let stats = &ctx.store.introspection;
    let entry_for = |id: usize| {
        stats
            .command(id)
            .and_then(|s| s.histogram.as_deref())
            .map(|h| histogram_entry(&table.entries[id].full_name, h))
    };
    if args.is_done() {
        return Ok(Reply::Map(
            (0..table.entries.len()).filter_map(entry_for).collect(),
        ));
    }
    let mut out = Vec::new();
    for name in args.rest() {
        // `client|id` names one subcommand; `client` the container and
        // every subcommand of it.
        let spec = match name.iter().position(|&b| b == b'|') {
            Some(bar) => lookup(&name[..bar]).and_then(|c| lookup_subcommand(c, &name[bar + 1..])),
            None => lookup(name),
        };
        let Some(spec) = spec else {
            continue;
        };
        let Some(id) = table.id_of(spec) else {
            continue;
        };
        out.extend(entry_for(id));
        for sub in spec.subcommands {
            if let Some(sub_id) = table.id_of(sub) {
                out.extend(entry_for(sub_id));
            }
        }
    }
    Ok(Reply::Map(out))
}

fn latency_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(args::help_reply(&[
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Print this help.",
    ]))
}
