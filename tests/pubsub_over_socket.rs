//! covers: subscribe unsubscribe psubscribe punsubscribe ssubscribe sunsubscribe publish spublish pubsub
//! Pub/Sub and keyspace notifications on one node over a real socket, in
//! RESP2 and RESP3, with Redis 7.0's exact frames: confirmations and
//! messages, subscribed mode's rules, PUBSUB introspection, keyspace and
//! keyevent notifications per class, and a subscriber that never reads
//! being cut off while another is served; client-side caching's
//! invalidations (CLIENT TRACKING default and BCAST modes, REDIRECT to a
//! RESP2 subscriber, NOLOOP, OPTIN, flushes, a broken redirect). (Delivery
//! across regions is in `replication.rs`.) Every node binds 127.0.0.1:0 and every read has a
//! timeout.

use std::io::Read;
use std::time::{Duration, Instant};

mod support;

use support::Node;

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A RESP2 `*3` push of three bulks / a bulk and an integer.
fn frame3(kind: &str, name: &str, count: i64) -> String {
    format!(
        "*3\r\n${}\r\n{kind}\r\n${}\r\n{name}\r\n:{count}\r\n",
        kind.len(),
        name.len()
    )
}

fn message(channel: &str, body: &str) -> String {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{body}\r\n",
        channel.len(),
        body.len()
    )
}

fn pmessage(pattern: &str, channel: &str, body: &str) -> String {
    format!(
        "*4\r\n$8\r\npmessage\r\n${}\r\n{pattern}\r\n${}\r\n{channel}\r\n${}\r\n{body}\r\n",
        pattern.len(),
        channel.len(),
        body.len()
    )
}

#[test]
fn subscribe_publish_and_unsubscribe_in_resp2() {
    let node = Node::start();
    let mut sub = node.connect();
    let mut publisher = node.connect();
    sub.send(b"SUBSCRIBE chan1 chan2\r\n");
    assert_eq!(text(sub.reply()), frame3("subscribe", "chan1", 1));
    assert_eq!(text(sub.reply()), frame3("subscribe", "chan2", 2));
    // Subscribing again changes nothing but still confirms.
    sub.send(b"SUBSCRIBE chan1\r\n");
    assert_eq!(text(sub.reply()), frame3("subscribe", "chan1", 2));

    assert_eq!(
        publisher.call_str(&["PUBLISH", "chan1", "hello"]),
        b":1\r\n"
    );
    assert_eq!(text(sub.reply()), message("chan1", "hello"));
    assert_eq!(publisher.call_str(&["PUBLISH", "nobody", "x"]), b":0\r\n");
    assert_eq!(
        text(publisher.call_str(&["PUBSUB", "NUMSUB", "chan1", "chan2", "other"])),
        "*6\r\n$5\r\nchan1\r\n:1\r\n$5\r\nchan2\r\n:1\r\n$5\r\nother\r\n:0\r\n"
    );
    let mut channels = text(publisher.call_str(&["PUBSUB", "CHANNELS", "chan*"]));
    channels = channels
        .replace("$5\r\nchan1\r\n", "A")
        .replace("$5\r\nchan2\r\n", "B");
    assert!(
        channels == "*2\r\nAB" || channels == "*2\r\nBA",
        "{channels}"
    );
    assert!(text(publisher.call_str(&["INFO", "stats"])).contains("pubsub_channels:2\r\n"));
    assert_eq!(
        text(publisher.call_str(&["PUBSUB", "CHANNELS", "a", "b"])),
        "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
    );

    // RESP2 subscribed mode: only the Pub/Sub commands, PING, QUIT, RESET.
    assert_eq!(
        text(sub.call_str(&["GET", "k"])),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(
        text(sub.call_str(&["PING"])),
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
    assert_eq!(
        text(sub.call_str(&["PING", "hi"])),
        "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
    );
    let client_line = text(publisher.call_str(&["CLIENT", "LIST"]));
    assert!(client_line.contains(" flags=P "), "{client_line}");
    assert!(
        client_line.contains(" sub=2 psub=0 ssub=0 "),
        "{client_line}"
    );

    sub.send(b"UNSUBSCRIBE chan1\r\n");
    assert_eq!(text(sub.reply()), frame3("unsubscribe", "chan1", 1));
    sub.send(b"UNSUBSCRIBE\r\n");
    assert_eq!(text(sub.reply()), frame3("unsubscribe", "chan2", 0));
    // Out of subscribed mode: commands and PING are normal again, and a
    // mass unsubscribe with nothing left still answers once, with nil.
    assert_eq!(sub.call_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        text(sub.call_str(&["PUNSUBSCRIBE"])),
        "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
    );
    assert_eq!(sub.call_str(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(publisher.call_str(&["PUBLISH", "chan1", "x"]), b":0\r\n");
}

#[test]
fn patterns_count_with_channels_and_each_subscription_receives() {
    let node = Node::start();
    let mut sub = node.connect();
    let mut publisher = node.connect();
    sub.send(b"SUBSCRIBE foo.bar\r\n");
    assert_eq!(text(sub.reply()), frame3("subscribe", "foo.bar", 1));
    sub.send(b"PSUBSCRIBE foo.*\r\n");
    assert_eq!(text(sub.reply()), frame3("psubscribe", "foo.*", 2));
    assert_eq!(publisher.call_str(&["PUBSUB", "NUMPAT"]), b":1\r\n");
    assert_eq!(publisher.call_str(&["PUBLISH", "foo.bar", "hi"]), b":2\r\n");
    assert_eq!(text(sub.reply()), message("foo.bar", "hi"));
    assert_eq!(text(sub.reply()), pmessage("foo.*", "foo.bar", "hi"));
    assert_eq!(publisher.call_str(&["PUBLISH", "foo.baz", "x"]), b":1\r\n");
    assert_eq!(text(sub.reply()), pmessage("foo.*", "foo.baz", "x"));
    sub.send(b"PUNSUBSCRIBE foo.* nothing.*\r\n");
    assert_eq!(text(sub.reply()), frame3("punsubscribe", "foo.*", 1));
    assert_eq!(text(sub.reply()), frame3("punsubscribe", "nothing.*", 1));
    // A client that leaves takes its subscriptions with it.
    drop(sub);
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.call_str(&["PUBLISH", "foo.bar", "x"]) != b":0\r\n" {
        assert!(
            Instant::now() < deadline,
            "subscription outlived its client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn resp3_subscribers_get_push_frames_and_may_run_any_command() {
    let node = Node::start();
    let mut sub = node.connect();
    let mut publisher = node.connect();
    sub.call_str(&["HELLO", "3"]);
    sub.send(b"SUBSCRIBE news\r\n");
    assert_eq!(
        text(sub.reply()),
        ">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    );
    assert_eq!(sub.call_str(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(sub.call_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(publisher.call_str(&["PUBLISH", "news", "x"]), b":1\r\n");
    assert_eq!(
        text(sub.reply()),
        ">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$1\r\nx\r\n"
    );
    // A message to itself comes before the PUBLISH reply, as in Redis.
    sub.send(b"PUBLISH news self\r\n");
    assert_eq!(
        text(sub.reply()),
        ">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$4\r\nself\r\n"
    );
    assert_eq!(sub.reply(), b":1\r\n");
    // SPUBLISH reaches shard subscribers only.
    sub.send(b"SSUBSCRIBE orders\r\n");
    assert_eq!(
        text(sub.reply()),
        ">3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n"
    );
    assert_eq!(publisher.call_str(&["PUBLISH", "orders", "x"]), b":0\r\n");
    assert_eq!(publisher.call_str(&["SPUBLISH", "orders", "y"]), b":1\r\n");
    assert_eq!(
        text(sub.reply()),
        ">3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$1\r\ny\r\n"
    );
    assert_eq!(
        text(publisher.call_str(&["PUBSUB", "SHARDNUMSUB", "orders"])),
        "*2\r\n$6\r\norders\r\n:1\r\n"
    );
    // RESET leaves every subscription (and RESP3).
    assert_eq!(sub.call_str(&["RESET"]), b"+RESET\r\n");
    assert_eq!(publisher.call_str(&["PUBLISH", "news", "x"]), b":0\r\n");
    assert_eq!(publisher.call_str(&["SPUBLISH", "orders", "x"]), b":0\r\n");
}

#[test]
fn confirmations_and_messages_arrive_under_client_reply_off() {
    let node = Node::start();
    let mut sub = node.connect();
    let mut publisher = node.connect();
    sub.send(b"CLIENT REPLY OFF\r\nSUBSCRIBE c\r\n");
    assert_eq!(text(sub.reply()), frame3("subscribe", "c", 1));
    assert_eq!(publisher.call_str(&["PUBLISH", "c", "m"]), b":1\r\n");
    assert_eq!(text(sub.reply()), message("c", "m"));
}

#[test]
fn keyspace_and_keyevent_notifications_follow_the_configured_classes() {
    let node = Node::start();
    let mut admin = node.connect();
    let mut sub = node.connect();
    assert_eq!(
        admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]),
        b"+OK\r\n"
    );
    assert_eq!(
        text(admin.call_str(&["CONFIG", "GET", "notify-keyspace-events"])),
        "*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n"
    );
    sub.send(b"PSUBSCRIBE *\r\n");
    assert_eq!(text(sub.reply()), frame3("psubscribe", "*", 1));
    admin.call_str(&["SET", "foo", "bar"]);
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyspace@0__:foo", "set")
    );
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyevent@0__:set", "foo")
    );

    // Only lists and keyevents; a list emptied by a pop also raises del.
    admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "El"]);
    admin.call_str(&["SET", "other", "x"]);
    admin.call_str(&["RPUSH", "list", "a"]);
    admin.call_str(&["LPOP", "list"]);
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyevent@0__:rpush", "list")
    );
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyevent@0__:lpop", "list")
    );
    admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    admin.call_str(&["RPUSH", "list", "a"]);
    admin.call_str(&["LPOP", "list"]);
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyevent@0__:del", "list")
    );
    // A write that changes nothing raises nothing: DEL of a missing key.
    admin.call_str(&["DEL", "missing"]);
    admin.call_str(&["DEL", "other"]);
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyevent@0__:del", "other")
    );

    // New keys (n) and expirations (x) on this node.
    admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "Enx"]);
    admin.call_str(&["SET", "fresh", "1"]);
    admin.call_str(&["SET", "fresh", "2"]);
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyevent@0__:new", "fresh")
    );
    admin.call_str(&["PSETEX", "fresh", "50", "3"]);
    assert_eq!(
        text(sub.reply()),
        pmessage("*", "__keyevent@0__:expired", "fresh")
    );
    sub.expect_silence(Duration::from_millis(200));

    // Classes cordis cannot raise are refused, not accepted silently.
    assert_eq!(
        text(admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "Km"])),
        "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - key-miss events (class 'm') are not raised by cordis yet\r\n"
    );
    assert_eq!(
        text(admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "Kq"])),
        "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n"
    );
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_and_others_are_served() {
    let node = Node::start();
    let mut stuck = node.connect();
    let mut reader = node.connect();
    let mut publisher = node.connect();
    stuck.send(b"SUBSCRIBE firehose\r\n");
    reader.send(b"SUBSCRIBE firehose\r\n");
    assert_eq!(text(reader.reply()), frame3("subscribe", "firehose", 1));
    let payload = "x".repeat(1 << 20);
    let mut drained = 0usize;
    let mut chunk = vec![0u8; 1 << 20];
    // 64 MB through a pubsub-class queue (32 MB hard limit): the stuck
    // subscriber is cut off, the reader keeps up and sees everything.
    for _ in 0..64 {
        publisher.call_str(&["PUBLISH", "firehose", &payload]);
        let target = drained + payload.len();
        while drained < target {
            drained += reader.stream.read(&mut chunk).expect("reader is served");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = text(publisher.call_str(&["PUBSUB", "NUMSUB", "firehose"]));
        if count.ends_with(":1\r\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stuck subscriber still listed: {count}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its connection is closed: what the kernel buffered, then the end.
    stuck
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    loop {
        match stuck.stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("stuck subscriber not closed: {e}"),
        }
    }
    assert_eq!(publisher.call_str(&["PUBLISH", "firehose", "x"]), b":1\r\n");
    node.assert_serving();
}

/// A RESP3 `invalidate` push for `keys`.
fn invalidate(keys: &[&str]) -> String {
    let mut out = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        out.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    out
}

#[test]
fn a_tracked_read_is_invalidated_once_after_the_reply_of_the_command_that_changed_it() {
    let node = Node::start();
    let mut cache = node.connect();
    let mut writer = node.connect();
    cache.call_str(&["HELLO", "3"]);
    assert_eq!(cache.call_str(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
    writer.call_str(&["SET", "a", "1"]);
    writer.call_str(&["SET", "b", "1"]);
    assert_eq!(cache.call_str(&["GET", "a"]), b"$1\r\n1\r\n");
    writer.call_str(&["INCR", "b"]); // never read: no message
    writer.call_str(&["INCR", "a"]);
    writer.call_str(&["INCR", "a"]); // already invalidated: no second one
    assert_eq!(text(cache.reply()), invalidate(&["a"]));
    cache.expect_silence(Duration::from_millis(100));
    // Its own write: the invalidation follows the reply.
    cache.call_str(&["HSET", "h", "f", "1"]);
    cache.call_str(&["HGET", "h", "f"]);
    assert_eq!(cache.call_str(&["HDEL", "h", "f"]), b":1\r\n");
    assert_eq!(text(cache.reply()), invalidate(&["h"]));
    // A flush invalidates everything with a null.
    cache.call_str(&["GET", "a"]);
    writer.call_str(&["FLUSHALL"]);
    assert_eq!(text(cache.reply()), ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    let info = text(writer.call_str(&["INFO", "clients"]));
    assert!(info.contains("tracking_clients:1\r\n"), "{info}");
    assert_eq!(
        text(cache.call_str(&["CLIENT", "TRACKINGINFO"])),
        "%3\r\n$5\r\nflags\r\n~1\r\n$2\r\non\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n"
    );
    assert_eq!(cache.call_str(&["CLIENT", "TRACKING", "off"]), b"+OK\r\n");
    assert_eq!(cache.call_str(&["CLIENT", "GETREDIR"]), b":-1\r\n");
}

#[test]
fn resp2_clients_are_told_through_a_subscribed_redirect_target() {
    let node = Node::start();
    let mut target = node.connect();
    let mut cache = node.connect();
    let mut writer = node.connect();
    let id = text(target.call_str(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim().to_string();
    target.send(b"SUBSCRIBE __redis__:invalidate\r\n");
    target.reply();
    assert_eq!(
        cache.call_str(&["CLIENT", "TRACKING", "on", "REDIRECT", &id, "NOLOOP"]),
        b"+OK\r\n"
    );
    assert_eq!(
        cache.call_str(&["CLIENT", "GETREDIR"]),
        format!(":{id}\r\n").as_bytes()
    );
    cache.call_str(&["MGET", "mine", "theirs"]);
    cache.call_str(&["SET", "mine", "1"]); // NOLOOP: not told
    writer.call_str(&["SET", "theirs", "1"]);
    assert_eq!(
        text(target.reply()),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$6\r\ntheirs\r\n"
    );
    target.expect_silence(Duration::from_millis(100));
    // Redis's checks on the options.
    assert_eq!(
        text(writer.call_str(&["CLIENT", "TRACKING", "on", "REDIRECT", "999999"])),
        "-ERR The client ID you want redirect to does not exist\r\n"
    );
    assert_eq!(
        text(writer.call_str(&["CLIENT", "TRACKING", "on", "PREFIX", "a"])),
        "-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    );
    assert_eq!(
        text(writer.call_str(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a"])),
        "-ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap.\r\n"
    );
    assert_eq!(
        text(writer.call_str(&["CLIENT", "CACHING", "yes"])),
        "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n"
    );
    // The redirect target leaves: a RESP3 client is told its redirect broke.
    drop(target);
    let mut resp3 = node.connect();
    resp3.call_str(&["HELLO", "3"]);
    let gone = text(writer.call_str(&["CLIENT", "ID"]));
    let gone = gone.trim_start_matches(':').trim().to_string();
    resp3.call_str(&["CLIENT", "TRACKING", "on", "REDIRECT", &gone]);
    resp3.call_str(&["GET", "k"]);
    drop(writer);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut other = node.connect();
    loop {
        let clients = text(other.call_str(&["CLIENT", "LIST"]));
        if !clients.contains(&format!("id={gone} ")) {
            break;
        }
        assert!(Instant::now() < deadline, "writer never left");
        std::thread::sleep(Duration::from_millis(10));
    }
    other.call_str(&["SET", "k", "1"]);
    assert_eq!(
        text(resp3.reply()),
        format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{gone}\r\n")
    );
}

#[test]
fn bcast_sends_one_message_per_prefix_per_command_and_optin_needs_caching_yes() {
    let node = Node::start();
    let mut cache = node.connect();
    let mut writer = node.connect();
    cache.call_str(&["HELLO", "3"]);
    cache.call_str(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:"]);
    writer.call_str(&["MSET", "user:1", "a", "user:2", "b", "order:1", "c"]);
    let got = text(cache.reply());
    assert!(
        got == invalidate(&["user:1", "user:2"]) || got == invalidate(&["user:2", "user:1"]),
        "{got}"
    );
    cache.expect_silence(Duration::from_millis(100));
    cache.call_str(&["CLIENT", "TRACKING", "off"]);

    cache.call_str(&["CLIENT", "TRACKING", "on", "OPTIN"]);
    cache.call_str(&["GET", "untracked"]);
    assert_eq!(cache.call_str(&["CLIENT", "CACHING", "yes"]), b"+OK\r\n");
    cache.call_str(&["GET", "tracked"]);
    writer.call_str(&["SET", "untracked", "1"]);
    writer.call_str(&["SET", "tracked", "1"]);
    assert_eq!(text(cache.reply()), invalidate(&["tracked"]));
    cache.expect_silence(Duration::from_millis(100));
}

#[test]
fn the_pubsub_class_of_client_output_buffer_limit_applies_to_existing_subscribers() {
    let node = Node::start();
    let mut stuck = node.connect();
    let mut publisher = node.connect();
    stuck.send(b"SUBSCRIBE c\r\n");
    assert_eq!(text(stuck.reply()), frame3("subscribe", "c", 1));
    assert_eq!(
        publisher.call_str(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 64kb 0 0"
        ]),
        b"+OK\r\n"
    );
    let payload = "y".repeat(64 * 1024);
    // 16 MB: more than the kernel's socket buffers can hide.
    for _ in 0..256 {
        publisher.call_str(&["PUBLISH", "c", &payload]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.call_str(&["PUBSUB", "NUMSUB", "c"]) != b"*2\r\n$1\r\nc\r\n:0\r\n" {
        assert!(
            Instant::now() < deadline,
            "subscriber over 64kb was not cut off"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    node.assert_serving();
}

/// A script tracks the keys it declared once it calls a read command (as
/// Redis does), and nothing when it only writes; the keys its commands
/// touch are not tracked on their own.
#[test]
fn a_script_that_reads_tracks_its_declared_keys() {
    let node = Node::start();
    let mut cache = node.connect();
    let mut writer = node.connect();
    cache.call_str(&["HELLO", "3"]);
    assert_eq!(cache.call_str(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
    // Only writes: nothing tracked.
    cache.call_str(&["EVAL", "redis.call('set', 'k3', 'bar')", "2", "k1", "k2"]);
    writer.call_str(&["MSET", "k1", "1", "k2", "1", "k3", "1"]);
    cache.expect_silence(Duration::from_millis(100));
    // A read: the declared keys are tracked, not the key read.
    cache.call_str(&["EVAL", "redis.call('get', 'k3')", "2", "k1", "k2"]);
    writer.call_str(&["SET", "k3", "2"]);
    writer.call_str(&["SET", "k2", "2"]);
    assert_eq!(text(cache.reply()), invalidate(&["k2"]));
    writer.call_str(&["SET", "k1", "2"]);
    assert_eq!(text(cache.reply()), invalidate(&["k1"]));
    cache.expect_silence(Duration::from_millis(100));
}

/// XGROUP's subcommands raise Redis's `xgroup-*` events (they are named
/// by the top-level command, not by the subcommand's row).
#[test]
fn xgroup_subcommands_raise_their_stream_events() {
    let node = Node::start();
    let mut admin = node.connect();
    let mut sub = node.connect();
    admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "Kt"]);
    sub.send(b"PSUBSCRIBE *\r\n");
    assert_eq!(text(sub.reply()), frame3("psubscribe", "*", 1));
    admin.call_str(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    admin.call_str(&["XGROUP", "CREATECONSUMER", "s", "g", "Bob"]);
    // An existing consumer: nothing changes, nothing is raised.
    admin.call_str(&["XGROUP", "CREATECONSUMER", "s", "g", "Bob"]);
    admin.call_str(&["XGROUP", "DELCONSUMER", "s", "g", "Bob"]);
    admin.call_str(&["XADD", "s", "1", "f", "v"]);
    for event in [
        "xgroup-create",
        "xgroup-createconsumer",
        "xgroup-delconsumer",
        "xadd",
    ] {
        assert_eq!(text(sub.reply()), pmessage("*", "__keyspace@0__:s", event));
    }
}

/// XREADGROUP, XCLAIM and XAUTOCLAIM that create a consumer implicitly
/// raise `xgroup-createconsumer` (and nothing else); with an existing
/// consumer they raise nothing, as in Redis 7.0.
#[test]
fn implicit_consumer_creation_raises_createconsumer() {
    let node = Node::start();
    let mut admin = node.connect();
    let mut sub = node.connect();
    admin.call_str(&["CONFIG", "SET", "notify-keyspace-events", "Kt"]);
    sub.send(b"PSUBSCRIBE *\r\n");
    assert_eq!(text(sub.reply()), frame3("psubscribe", "*", 1));
    admin.call_str(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    admin.call_str(&["XADD", "s", "1-1", "f", "v"]);
    admin.call_str(&["XREADGROUP", "GROUP", "g", "Alice", "STREAMS", "s", ">"]);
    // Alice exists now: reading again raises nothing.
    admin.call_str(&["XREADGROUP", "GROUP", "g", "Alice", "STREAMS", "s", "0"]);
    admin.call_str(&["XCLAIM", "s", "g", "Mike", "0", "1-1", "FORCE"]);
    admin.call_str(&["XAUTOCLAIM", "s", "g", "Mike", "0", "0"]);
    admin.call_str(&["XAUTOCLAIM", "s", "g", "Lee", "0", "0"]);
    admin.call_str(&["XGROUP", "DELCONSUMER", "s", "g", "Alice"]);
    for event in [
        "xgroup-create",
        "xadd",
        "xgroup-createconsumer",
        "xgroup-createconsumer",
        "xgroup-createconsumer",
        "xgroup-delconsumer",
    ] {
        assert_eq!(text(sub.reply()), pmessage("*", "__keyspace@0__:s", event));
    }
    sub.expect_silence(Duration::from_millis(100));
}
