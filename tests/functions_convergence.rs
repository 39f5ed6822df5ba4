//! Convergence of whole nodes for the replicated function libraries, on
//! the random-history driver of `support::inproc`: random FUNCTION LOAD
//! (with and without REPLACE, two codes per name), DELETE, FLUSH and
//! RESTORE, and FCALLs of the loaded functions that write keys, on 2 or 3
//! nodes with shuffled delivery; every node must end with the same DEBUG
//! DIGEST, the same FUNCTION LIST WITHCODE and the same FCALL replies.
//! `CORDIS_SEEDS` runs more seeds.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node};

const NAMES: [&str; 3] = ["la", "lb", "lc"];

/// Library `name`, version `v`: one function `<name>_f` that writes the
/// key `k<name>` and returns what it wrote.
fn library(name: &str, v: u32) -> String {
    format!(
        "#!lua name={name}\nredis.register_function('{name}_f', function(keys, args) \
         redis.call('SET', 'k{name}', '{name}{v}') return '{name}{v}' end)"
    )
}

fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let name = NAMES[rng.gen_range(0..NAMES.len())];
    let v = rng.gen_range(0..2);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..12) {
        0..=2 => s(&["FUNCTION", "LOAD", &library(name, v)]),
        3..=4 => s(&["FUNCTION", "LOAD", "REPLACE", &library(name, v)]),
        5 => s(&["FUNCTION", "DELETE", name]),
        6 => s(&["FUNCTION", "FLUSH"]),
        7..=9 => s(&["FCALL", &format!("{name}_f"), "0"]),
        10 => s(&["DEL", &format!("k{name}")]),
        _ => s(&["GET", &format!("k{name}")]),
    }
}

fn view(node: &mut Node) -> (Reply, Vec<Reply>) {
    let list = node.run(&["FUNCTION", "LIST", "WITHCODE"]);
    let calls = NAMES
        .iter()
        .map(|n| node.run(&["FCALL", &format!("{n}_f"), "0"]))
        .collect();
    (list, calls)
}

#[test]
fn two_nodes_with_shuffled_delivery_reach_equal_libraries() {
    for seed in 0..seeds(120) {
        inproc::play(seed, 2, 100, 0.04, random_command, view);
    }
}

#[test]
fn three_nodes_with_shuffled_delivery_reach_equal_libraries() {
    for seed in 0..seeds(60) {
        inproc::play(seed, 3, 120, 0.04, random_command, view);
    }
}

#[test]
fn function_restore_replicates_what_it_loaded() {
    let mut nodes: Vec<Node> = (0..2).map(|i| Node::new(0x300 + i)).collect();
    nodes[0].run(&["FUNCTION", "LOAD", &library("la", 1)]);
    nodes[0].run(&["FUNCTION", "LOAD", &library("lb", 1)]);
    let Reply::Bulk(dump) = nodes[0].run(&["FUNCTION", "DUMP"]) else {
        panic!("FUNCTION DUMP is a bulk string");
    };
    nodes[0].run(&["FUNCTION", "FLUSH"]);
    deliver_everything(&nodes);
    assert_eq!(nodes[1].run(&["FUNCTION", "LIST"]), Reply::Array(vec![]));
    // RESTORE on node 1 from node 0's dump: both nodes get both libraries.
    let restore = [
        bytes::Bytes::from_static(b"FUNCTION"),
        bytes::Bytes::from_static(b"RESTORE"),
        dump,
    ];
    let node = &mut nodes[1];
    assert_eq!(node.state.execute(&mut node.client, &restore), Reply::ok());
    deliver_everything(&nodes);
    for node in nodes.iter_mut() {
        assert_eq!(
            node.run(&["FCALL", "lb_f", "0"]),
            Reply::bulk(bytes::Bytes::from_static(b"lb1"))
        );
    }
    assert_eq!(view(&mut nodes[0]), view(&mut nodes[1]));
}
