//! Streams between real nodes in one process, on loopback (the cluster
//! set-up of `tests/replication.rs`, without proxies): three nodes adding
//! with `XADD *` concurrently end with every acknowledged entry, the same
//! IDs in the same order, and each node's entries in the order it added
//! them; a blocking XREAD on one node is woken by an XADD on another; a
//! consumer group's reader that fails over to another node resumes from
//! the replicated group state (entries already delivered are not handed
//! out again once the group state has arrived).
//!
//! Every wait has a deadline; nodes stop when dropped.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use cordis::config::Config;
use support::{Node, Raw};

const SECRET: &str = "test-peer-secret";

fn start_cluster(n: usize) -> Vec<Node> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let config = Config {
                peers: (0..n)
                    .filter(|&j| j != i)
                    .map(|j| addrs[j].to_string())
                    .collect(),
                peer_secret: SECRET.into(),
                peer_heartbeat_ms: 100,
                peer_timeout_ms: 1500,
                reconnect_max_ms: 200,
                anti_entropy_interval_ms: 500,
                ..Config::default()
            };
            Node::member(config, Some(listener))
        })
        .collect()
}

/// Waits until a probe written on every node is visible on every node.
fn await_links(nodes: &[Node]) {
    for (i, n) in nodes.iter().enumerate() {
        n.connect().call_str(&["SET", &format!("probe-{i}"), "1"]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in nodes {
        let mut c = n.connect();
        for i in 0..nodes.len() {
            while c.call_str(&["EXISTS", &format!("probe-{i}")]) != b":1\r\n" {
                assert!(Instant::now() < deadline, "links never came up");
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Polls `read` on every node until all answer the same, twice in a row.
fn await_equal(nodes: &[Node], read: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Vec::new();
    loop {
        let now: Vec<String> = nodes.iter().map(|n| n.connect().call_text(read)).collect();
        if now.windows(2).all(|w| w[0] == w[1]) && now == last {
            return now[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no agreement on {read:?}: {now:?}"
        );
        last = now;
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_adding_concurrently_agree_on_every_entry_and_order() {
    let nodes = start_cluster(3);
    await_links(&nodes);
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let addr = n.addr;
            thread::spawn(move || {
                let mut c = Raw::connect(addr);
                (0..200)
                    .map(|k| {
                        let reply = c.call_text(&["XADD", "events", "*", "v", &format!("{i}:{k}")]);
                        assert!(!reply.starts_with('-'), "XADD failed: {reply}");
                        reply
                    })
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    let acked: Vec<Vec<String>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let range = await_equal(&nodes, &["XRANGE", "events", "-", "+"]);
    assert_eq!(
        nodes[0].connect().call_text(&["XLEN", "events"]),
        ":600\r\n",
        "every acknowledged entry on every node"
    );
    // Same IDs everywhere (the ranges are equal), no ID twice, and each
    // node's entries in the order it added them.
    for i in 0..acked.len() {
        let positions: Vec<usize> = (0..200)
            .map(|k| {
                range
                    .find(&format!("{i}:{k}\r\n"))
                    .unwrap_or_else(|| panic!("entry {i}:{k} missing"))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "node {i} out of order"
        );
    }
    let mut all: Vec<&String> = acked.iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 600, "no two acknowledged IDs are equal");
}

#[test]
fn a_blocking_xread_wakes_for_an_entry_added_on_a_peer() {
    let nodes = start_cluster(2);
    await_links(&nodes);
    let addr = nodes[0].addr;
    let reader = thread::spawn(move || {
        let mut c = Raw::connect(addr);
        let started = Instant::now();
        let reply = c.call_text(&["XREAD", "BLOCK", "10000", "STREAMS", "s", "$"]);
        (reply, started.elapsed())
    });
    thread::sleep(Duration::from_millis(300));
    nodes[1]
        .connect()
        .call_str(&["XADD", "s", "7-7", "from", "peer"]);
    let (reply, waited) = reader.join().unwrap();
    assert!(reply.contains("7-7") && reply.contains("peer"), "{reply}");
    assert!(waited < Duration::from_secs(9), "woken by the peer's entry");
}

#[test]
fn a_group_reader_failing_over_resumes_from_the_replicated_group_state() {
    let nodes = start_cluster(2);
    await_links(&nodes);
    let mut a = nodes[0].connect();
    a.call_str(&["XGROUP", "CREATE", "jobs", "g", "0", "MKSTREAM"]);
    for k in 1..=4 {
        a.call_str(&["XADD", "jobs", &format!("{k}-0"), "job", &k.to_string()]);
    }
    let first = a.call_text(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "w",
        "COUNT",
        "2",
        "STREAMS",
        "jobs",
        ">",
    ]);
    assert!(first.contains("1-0") && first.contains("2-0"));
    a.call_str(&["XACK", "jobs", "g", "1-0"]);
    await_equal(&nodes, &["XPENDING", "jobs", "g"]);
    // Node 0 is gone for this reader; it continues on node 1.
    let mut b = nodes[1].connect();
    let next = b.call_text(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "w",
        "COUNT",
        "10",
        "STREAMS",
        "jobs",
        ">",
    ]);
    assert!(next.contains("3-0") && next.contains("4-0"), "{next}");
    assert!(
        !next.contains("1-0") && !next.contains("2-0"),
        "no redelivery: {next}"
    );
    // Its own unacknowledged entry is still pending for it there.
    let history = b.call_text(&["XREADGROUP", "GROUP", "g", "w", "STREAMS", "jobs", "0"]);
    assert!(
        history.contains("2-0") && !history.contains("1-0"),
        "{history}"
    );
}
