//! Pub/Sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs,
//! PUBLISH, SPUBLISH and PUBSUB's introspection. The tables live in
//! `pubsub::channels`; this family keeps each client's own subscriptions
//! and its push queue.
//!
//! Subscription confirmations are pushes, not replies: like Redis, they
//! reach the client even under CLIENT REPLY OFF, and they go through the
//! client's push queue so they stay in order with the messages. A
//! confirming command itself sends no reply.
//!
//! Across regions: PUBLISH and SPUBLISH deliver to this node's subscribers
//! at once and put the message in the command's batch, so every peer
//! delivers it to its own subscribers when it applies the batch, once and
//! in this node's order (see `docs/semantics.md`). The reply counts this
//! node's receivers: that is all a client of one node can know.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::args::{err_owned, help_reply, Args, CmdResult};
use super::flags::{FAST, LOADING, NOSCRIPT, STALE};
use super::{container_handler, spec, CommandSpec, Context};
use crate::protocol::{Reply, RespVersion};
use crate::pubsub::channels::{encode_push, Kind, Subscriptions};
use crate::pubsub::push::PushQueue;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("subscribe", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "Listens for messages published to channels.", subscribe),
    spec("unsubscribe", -1, NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "Stops listening to messages posted to channels.", unsubscribe),
    spec("psubscribe", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", psubscribe),
    spec("punsubscribe", -1, NOSCRIPT | LOADING | STALE, (0, 0, 0), "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", punsubscribe),
    spec("ssubscribe", -2, NOSCRIPT | LOADING | STALE, (1, -1, 1), "pubsub", "7.0.0", "Listens for messages published to shard channels.", ssubscribe),
    spec("sunsubscribe", -1, NOSCRIPT | LOADING | STALE, (1, -1, 1), "pubsub", "7.0.0", "Stops listening to messages posted to shard channels.", sunsubscribe),
    spec("publish", 3, LOADING | STALE | FAST, (0, 0, 0), "pubsub", "2.0.0", "Posts a message to a channel.", publish),
    spec("spublish", 3, LOADING | STALE | FAST, (1, 1, 1), "pubsub", "7.0.0", "Post a message to a shard channel", spublish),
    CommandSpec {
        subcommands: PUBSUB_SUBCOMMANDS,
        ..spec("pubsub", -2, 0, (0, 0, 0), "pubsub", "2.8.0", "A container for Pub/Sub commands.", container_handler)
    },
];

#[rustfmt::skip]
static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    spec("channels", -2, LOADING | STALE, (0, 0, 0), "pubsub", "2.8.0", "Returns the active channels.", pubsub_channels),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "pubsub", "6.2.0", "Returns helpful text about the different subcommands.", pubsub_help),
    spec("numpat", 2, LOADING | STALE, (0, 0, 0), "pubsub", "2.8.0", "Returns a count of unique pattern subscriptions.", pubsub_numpat),
    spec("numsub", -2, LOADING | STALE, (0, 0, 0), "pubsub", "2.8.0", "Returns a count of subscribers to channels.", pubsub_numsub),
    spec("shardchannels", -2, LOADING | STALE, (0, 0, 0), "pubsub", "7.0.0", "Returns the active shard channels.", pubsub_shardchannels),
    spec("shardnumsub", -2, LOADING | STALE, (0, 0, 0), "pubsub", "7.0.0", "Returns the count of subscribers of shard channels.", pubsub_shardnumsub),
];

/// The commands a RESP2 client may run while it subscribes to anything.
pub const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// Redis's refusal of another command in RESP2 subscribed mode.
pub fn not_allowed_while_subscribed(name: &str) -> Reply {
    err_owned(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Whether the client is in Pub/Sub mode (any subscription left).
pub fn subscribed(ctx: &Context) -> bool {
    ctx.client
        .subscriptions
        .as_ref()
        .is_some_and(|s| s.total() > 0)
}

fn kind_words(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Channel => ("subscribe", "unsubscribe"),
        Kind::Pattern => ("psubscribe", "punsubscribe"),
        Kind::Shard => ("ssubscribe", "sunsubscribe"),
    }
}

/// The client's push queue, made on first use with the pubsub class's
/// output limit (a MONITOR client keeps the queue it has).
fn push_queue(ctx: &mut Context) -> Arc<PushQueue> {
    let limit = *ctx.server.pubsub_output_limit.lock();
    ctx.client.info.push_queue_or_new(limit)
}

/// Sends the client a confirmation frame through its push queue.
fn confirm(
    ctx: &mut Context,
    queue: &PushQueue,
    verb: &'static str,
    name: Option<Bytes>,
    count: usize,
) {
    let frame = encode_push(
        ctx.client.resp,
        vec![
            Reply::Bulk(Bytes::from_static(verb.as_bytes())),
            name.map_or(Reply::Nil, Reply::Bulk),
            Reply::Integer(count as i64),
        ],
    );
    queue.push(frame, std::time::Instant::now());
}

fn subscribe_kind(ctx: &mut Context, args: &mut Args, kind: Kind) -> CmdResult {
    // Redis refuses SSUBSCRIBE wherever blocking is denied (inside EXEC);
    // SUBSCRIBE and PSUBSCRIBE stay allowed inside EXEC for backward
    // compatibility, and scripts (the other deny context) cannot call any
    // of them (NOSCRIPT).
    if ctx.client.deny_blocking && kind == Kind::Shard {
        return Err(err_owned(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client".to_string(),
        ));
    }
    let queue = push_queue(ctx);
    let info: Arc<dyn crate::pubsub::push::Receiver> = ctx.client.info.clone();
    let resp = ctx.client.resp;
    let (verb, _) = kind_words(kind);
    let mut subs = ctx.client.subscriptions.take().unwrap_or_default();
    for name in args.rest() {
        ctx.server
            .pubsub
            .subscribe(&mut subs, kind, name, info.clone(), queue.clone(), resp);
        let count = subs.count_for(kind);
        confirm(ctx, &queue, verb, Some(name.clone()), count);
    }
    publish_counts(ctx, &subs);
    ctx.client.subscriptions = Some(subs);
    ctx.client.silent = true;
    Ok(Reply::Nil)
}

fn unsubscribe_kind(ctx: &mut Context, args: &mut Args, kind: Kind) -> CmdResult {
    let queue = push_queue(ctx);
    let (_, verb) = kind_words(kind);
    let id = ctx.client.info.id;
    let mut subs = ctx.client.subscriptions.take().unwrap_or_default();
    let pubsub = ctx.server.pubsub.clone();
    if args.is_done() {
        let names = pubsub.unsubscribe_all(&mut subs, kind, id);
        if names.is_empty() {
            let count = subs.count_for(kind);
            confirm(ctx, &queue, verb, None, count);
        }
        // Counts go down one by one, as each confirmation is sent.
        let mut left = subs.count_for(kind) + names.len();
        for name in names {
            left -= 1;
            confirm(ctx, &queue, verb, Some(name), left);
        }
    } else {
        for name in args.rest() {
            pubsub.unsubscribe(&mut subs, kind, name, id);
            let count = subs.count_for(kind);
            confirm(ctx, &queue, verb, Some(name.clone()), count);
        }
    }
    publish_counts(ctx, &subs);
    ctx.client.subscriptions = Some(subs);
    ctx.client.silent = true;
    Ok(Reply::Nil)
}

/// Mirrors the client's counts for CLIENT LIST (`sub=`, `psub=`, `ssub=`).
fn publish_counts(ctx: &Context, subs: &Subscriptions) {
    let info = &ctx.client.info;
    info.sub.store(subs.channels.len(), Ordering::Relaxed);
    info.psub.store(subs.patterns.len(), Ordering::Relaxed);
    info.ssub.store(subs.shard.len(), Ordering::Relaxed);
}

fn subscribe(ctx: &mut Context, args: &mut Args) -> CmdResult {
    subscribe_kind(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Context, args: &mut Args) -> CmdResult {
    subscribe_kind(ctx, args, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Context, args: &mut Args) -> CmdResult {
    subscribe_kind(ctx, args, Kind::Shard)
}

fn unsubscribe(ctx: &mut Context, args: &mut Args) -> CmdResult {
    unsubscribe_kind(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Context, args: &mut Args) -> CmdResult {
    unsubscribe_kind(ctx, args, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Context, args: &mut Args) -> CmdResult {
    unsubscribe_kind(ctx, args, Kind::Shard)
}

/// Delivers here, and ships the message to the peers in this command's
/// batch when there are any.
fn publish_kind(ctx: &mut Context, args: &mut Args, shard: bool) -> CmdResult {
    let channel = args.next()?.clone();
    let message = args.next()?.clone();
    let pubsub = &ctx.server.pubsub;
    let receivers = if shard {
        pubsub.publish_shard(&channel, &message)
    } else {
        pubsub.publish(&channel, &message)
    };
    if ctx.server.repl.has_peers() {
        ctx.store.ship_message(channel, message, shard);
    }
    Ok(Reply::Integer(receivers as i64))
}

fn publish(ctx: &mut Context, args: &mut Args) -> CmdResult {
    publish_kind(ctx, args, false)
}

fn spublish(ctx: &mut Context, args: &mut Args) -> CmdResult {
    publish_kind(ctx, args, true)
}

fn channel_list(ctx: &mut Context, args: &mut Args, kind: Kind) -> CmdResult {
    if args.remaining() > 1 {
        return Err(super::introspection::subcommand_syntax_error(
            args, "PUBSUB",
        ));
    }
    let pattern = args.next_if_any().map(|p| p.to_vec());
    Ok(Reply::Array(
        ctx.server
            .pubsub
            .names(kind, pattern.as_deref())
            .into_iter()
            .map(Reply::Bulk)
            .collect(),
    ))
}

fn counts(ctx: &mut Context, args: &mut Args, kind: Kind) -> CmdResult {
    let mut out = Vec::new();
    for name in args.rest() {
        out.push(Reply::Bulk(name.clone()));
        out.push(Reply::Integer(
            ctx.server.pubsub.subscribers(kind, name) as i64
        ));
    }
    Ok(Reply::Array(out))
}

fn pubsub_channels(ctx: &mut Context, args: &mut Args) -> CmdResult {
    channel_list(ctx, args, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Context, args: &mut Args) -> CmdResult {
    channel_list(ctx, args, Kind::Shard)
}

fn pubsub_numsub(ctx: &mut Context, args: &mut Args) -> CmdResult {
    counts(ctx, args, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Context, args: &mut Args) -> CmdResult {
    counts(ctx, args, Kind::Shard)
}

fn pubsub_numpat(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Integer(
        ctx.server.pubsub.distinct(Kind::Pattern) as i64
    ))
}

fn pubsub_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help_reply(&[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ]))
}

/// Drops every subscription of a client (RESET, and when it leaves).
pub fn forget_subscriptions(ctx: &mut Context) {
    if let Some(mut subs) = ctx.client.subscriptions.take() {
        ctx.server.pubsub.forget(&mut subs, ctx.client.info.id);
        publish_counts(ctx, &subs);
    }
}

/// RESP2 PING while subscribed: `["pong", message]`.
pub fn subscribed_ping(ctx: &Context, message: Option<&Bytes>) -> Option<Reply> {
    (ctx.client.resp == RespVersion::Resp2 && subscribed(ctx)).then(|| {
        Reply::Array(vec![
            Reply::Bulk(Bytes::from_static(b"pong")),
            Reply::Bulk(message.cloned().unwrap_or_default()),
        ])
    })
}
