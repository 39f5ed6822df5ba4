//! Who listens to what: the node's channel, pattern and shard-channel
//! subscriptions, and delivery of one message to every matching
//! subscriber's [`PushQueue`]. Publishing never waits: a message is encoded
//! once per protocol version and appended to each queue; a subscriber whose
//! queue passes its limit is cut off (its connection closes and its
//! subscriptions go with it), and nobody else notices.
//!
//! The tables hold, per name, the subscribers in the order they
//! subscribed, so a message reaches them in that order (as Redis's lists
//! do). Each client also keeps its own [`Subscriptions`] (what it must
//! unsubscribe from when it leaves, and its counts for the replies).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use tracing::warn;

use super::push::{PushQueue, Pushed, Receiver};
use crate::protocol::{Reply, RespVersion};
use crate::store::pattern::glob_match;

/// The three kinds of subscription Redis has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

/// One subscription of one client.
#[derive(Clone)]
struct Subscriber {
    client: Arc<dyn Receiver>,
    queue: Arc<PushQueue>,
    resp: RespVersion,
}

#[derive(Default)]
struct Tables {
    channels: HashMap<Bytes, Vec<Subscriber>>,
    patterns: HashMap<Bytes, Vec<Subscriber>>,
    shard: HashMap<Bytes, Vec<Subscriber>>,
}

impl Tables {
    fn of(&mut self, kind: Kind) -> &mut HashMap<Bytes, Vec<Subscriber>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    fn get(&self, kind: Kind) -> &HashMap<Bytes, Vec<Subscriber>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }
}

/// The node's subscription tables.
#[derive(Default)]
pub struct PubSub {
    tables: RwLock<Tables>,
    /// Subscriptions of every kind, so a publish with no listener (and a
    /// keyspace event nobody hears) costs one atomic load.
    total: AtomicUsize,
    /// Subscribers cut off because their queue passed its limit.
    pub cut_off: AtomicU64,
}

/// The subscriptions of one client, kept by its session.
#[derive(Default)]
pub struct Subscriptions {
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    pub shard: HashSet<Bytes>,
}

impl Subscriptions {
    fn of(&mut self, kind: Kind) -> &mut HashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// What a (P)SUBSCRIBE reply counts: channels and patterns.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Every subscription (RESP2 subscribed mode holds while any is left).
    pub fn total(&self) -> usize {
        self.count() + self.shard.len()
    }

    /// The count a reply about a `kind` subscription shows.
    pub fn count_for(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.count(),
        }
    }
}

impl PubSub {
    /// Whether anyone subscribes to anything.
    pub fn is_idle(&self) -> bool {
        self.total.load(Ordering::Relaxed) == 0
    }

    /// Adds `client`'s subscription to `name`; false if it already had it.
    pub fn subscribe(
        &self,
        subs: &mut Subscriptions,
        kind: Kind,
        name: &Bytes,
        client: Arc<dyn Receiver>,
        queue: Arc<PushQueue>,
        resp: RespVersion,
    ) -> bool {
        if !subs.of(kind).insert(name.clone()) {
            return false;
        }
        let mut tables = self.tables.write();
        tables
            .of(kind)
            .entry(name.clone())
            .or_default()
            .push(Subscriber {
                client,
                queue,
                resp,
            });
        self.total.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Removes `client`'s subscription to `name`; false if it had none.
    pub fn unsubscribe(&self, subs: &mut Subscriptions, kind: Kind, name: &[u8], id: u64) -> bool {
        if !subs.of(kind).remove(name) {
            return false;
        }
        self.remove_from_table(kind, name, id);
        true
    }

    /// Removes every subscription of `kind`; returns the names, in no
    /// particular order (as Redis's mass unsubscribe).
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions, kind: Kind, id: u64) -> Vec<Bytes> {
        let names: Vec<Bytes> = subs.of(kind).drain().collect();
        for name in &names {
            self.remove_from_table(kind, name, id);
        }
        names
    }

    /// Everything a leaving client held (its connection ended).
    pub fn forget(&self, subs: &mut Subscriptions, id: u64) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            self.unsubscribe_all(subs, kind, id);
        }
    }

    fn remove_from_table(&self, kind: Kind, name: &[u8], id: u64) {
        let mut tables = self.tables.write();
        let table = tables.of(kind);
        if let Some(list) = table.get_mut(name) {
            let before = list.len();
            list.retain(|s| s.client.id() != id);
            if list.len() < before {
                self.total.fetch_sub(1, Ordering::Relaxed);
            }
            if list.is_empty() {
                table.remove(name);
            }
        }
    }

    /// Delivers `message` on `channel` to its subscribers and to every
    /// matching pattern's; returns how many subscriptions received it (a
    /// client subscribed both ways counts twice, as in Redis).
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        self.deliver(Kind::Channel, channel, message)
    }

    /// SPUBLISH: delivers to the shard channel's subscribers.
    pub fn publish_shard(&self, channel: &[u8], message: &[u8]) -> usize {
        self.deliver(Kind::Shard, channel, message)
    }

    fn deliver(&self, kind: Kind, channel: &[u8], message: &[u8]) -> usize {
        if self.is_idle() {
            return 0;
        }
        let now = Instant::now();
        let mut receivers = 0;
        let mut cut = Vec::new();
        let mut send = |list: &[Subscriber], head: Vec<Reply>| {
            // One frame per protocol version for the whole list.
            let mut frames = Frames::default();
            for s in list {
                let frame = frames.get(s.resp, || {
                    let mut items = head.clone();
                    items.push(Reply::Bulk(Bytes::copy_from_slice(channel)));
                    items.push(Reply::Bulk(Bytes::copy_from_slice(message)));
                    items
                });
                receivers += 1;
                push_frame(s, frame, now, &mut cut);
            }
        };
        {
            let tables = self.tables.read();
            let verb = if kind == Kind::Shard {
                &b"smessage"[..]
            } else {
                &b"message"[..]
            };
            if let Some(list) = tables.get(kind).get(channel) {
                send(list, vec![Reply::Bulk(Bytes::from_static(verb))]);
            }
            if kind == Kind::Channel {
                for (pattern, list) in &tables.patterns {
                    if glob_match(pattern, channel, false) {
                        let head = vec![
                            Reply::Bulk(Bytes::from_static(b"pmessage")),
                            Reply::Bulk(pattern.clone()),
                        ];
                        send(list, head);
                    }
                }
            }
        }
        self.cut(cut);
        receivers
    }

    fn cut(&self, clients: Vec<Arc<dyn Receiver>>) {
        for client in clients {
            warn!(
                client = client.id(),
                addr = %client.addr(),
                "closing Pub/Sub client: output queue over its limit"
            );
            self.cut_off.fetch_add(1, Ordering::Relaxed);
            client.cut_off();
        }
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: active names matching `pattern`.
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.tables
            .read()
            .get(kind)
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob_match(p, name, false)))
            .cloned()
            .collect()
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB: subscribers of one name.
    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> usize {
        self.tables.read().get(kind).get(name).map_or(0, Vec::len)
    }

    /// Distinct names of `kind` with a subscriber (PUBSUB NUMPAT, INFO's
    /// `pubsub_channels` / `pubsub_patterns`).
    pub fn distinct(&self, kind: Kind) -> usize {
        self.tables.read().get(kind).len()
    }
}

/// A message's frame, encoded at most once per protocol version.
#[derive(Default)]
struct Frames {
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl Frames {
    fn get(&mut self, resp: RespVersion, items: impl FnOnce() -> Vec<Reply>) -> Bytes {
        let slot = match resp {
            RespVersion::Resp2 => &mut self.resp2,
            RespVersion::Resp3 => &mut self.resp3,
        };
        slot.get_or_insert_with(|| encode_push(resp, items()))
            .clone()
    }
}

/// A push frame's bytes.
pub fn encode_push(resp: RespVersion, items: Vec<Reply>) -> Bytes {
    let mut out = BytesMut::new();
    Reply::Push(items).encode(resp, &mut out);
    out.freeze()
}

fn push_frame(s: &Subscriber, frame: Bytes, now: Instant, cut: &mut Vec<Arc<dyn Receiver>>) {
    match s.queue.push(frame, now) {
        Pushed::Queued => s.client.set_queued_bytes(s.queue.queued_bytes()),
        Pushed::Overflowed => {
            s.client.set_queued_bytes(0);
            cut.push(s.client.clone());
        }
        Pushed::Dropped => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::push::PUBSUB_LIMIT;
    use tokio::sync::Notify;

    struct FakeClient {
        id: u64,
        attention: Arc<Notify>,
        cut: std::sync::atomic::AtomicBool,
    }

    impl Receiver for FakeClient {
        fn id(&self) -> u64 {
            self.id
        }
        fn addr(&self) -> &str {
            "fake"
        }
        fn attention(&self) -> Arc<Notify> {
            self.attention.clone()
        }
        fn set_queued_bytes(&self, _bytes: usize) {}
        fn cut_off(&self) {
            self.cut.store(true, Ordering::Relaxed);
        }
        fn push_queue(&self) -> Arc<PushQueue> {
            unreachable!("the tables are given each subscriber's queue")
        }
        fn resp(&self) -> RespVersion {
            RespVersion::Resp2
        }
        fn subscribed(&self) -> bool {
            true
        }
    }

    fn client(id: u64) -> (Arc<FakeClient>, Arc<PushQueue>) {
        let c = Arc::new(FakeClient {
            id,
            attention: Arc::new(Notify::new()),
            cut: Default::default(),
        });
        let q = PushQueue::new(PUBSUB_LIMIT, c.attention.clone());
        (c, q)
    }

    fn drained(q: &PushQueue) -> Vec<u8> {
        let mut out = BytesMut::new();
        q.drain_into(&mut out, usize::MAX);
        out.to_vec()
    }

    #[test]
    fn channel_and_pattern_subscribers_each_receive_and_count() {
        let ps = PubSub::default();
        let (c, q) = client(1);
        let mut subs = Subscriptions::default();
        let name = Bytes::from_static(b"news.tech");
        assert!(ps.subscribe(
            &mut subs,
            Kind::Channel,
            &name,
            c.clone(),
            q.clone(),
            RespVersion::Resp2
        ));
        assert!(!ps.subscribe(
            &mut subs,
            Kind::Channel,
            &name,
            c.clone(),
            q.clone(),
            RespVersion::Resp2
        ));
        let pat = Bytes::from_static(b"news.*");
        ps.subscribe(
            &mut subs,
            Kind::Pattern,
            &pat,
            c.clone(),
            q.clone(),
            RespVersion::Resp3,
        );
        assert_eq!(ps.publish(b"news.tech", b"hi"), 2);
        assert_eq!(
            drained(&q),
            b"*3\r\n$7\r\nmessage\r\n$9\r\nnews.tech\r\n$2\r\nhi\r\n>4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$9\r\nnews.tech\r\n$2\r\nhi\r\n"
        );
        assert_eq!(ps.publish(b"other", b"x"), 0);
        ps.forget(&mut subs, 1);
        assert!(ps.is_idle());
        assert_eq!(ps.distinct(Kind::Channel), 0);
        assert_eq!(ps.publish(b"news.tech", b"hi"), 0);
    }

    #[test]
    fn a_subscriber_over_its_limit_is_cut_off_and_others_still_receive() {
        let ps = PubSub::default();
        let (slow, slow_q) = client(1);
        let (fast, fast_q) = client(2);
        let (mut a, mut b) = (Subscriptions::default(), Subscriptions::default());
        let name = Bytes::from_static(b"c");
        ps.subscribe(
            &mut a,
            Kind::Channel,
            &name,
            slow.clone(),
            slow_q.clone(),
            RespVersion::Resp2,
        );
        ps.subscribe(
            &mut b,
            Kind::Channel,
            &name,
            fast.clone(),
            fast_q.clone(),
            RespVersion::Resp2,
        );
        let big = vec![b'x'; 1 << 20];
        for _ in 0..40 {
            assert_eq!(ps.publish(b"c", &big), 2);
            drained(&fast_q);
        }
        assert!(slow.cut.load(Ordering::Relaxed));
        assert!(!fast.cut.load(Ordering::Relaxed));
        assert_eq!(slow_q.queued_bytes(), 0);
        assert_eq!(ps.cut_off.load(Ordering::Relaxed), 1);
    }
}
