//! Convergence of whole nodes' stores for the bitmap family, driven through
//! the real dispatcher by the shared random-history driver
//! (`support::inproc::play`): random SETBIT, BITFIELD SET/INCRBY under
//! every overflow mode (with `#N` offsets), BITOP into a key, mixed with the
//! string writes that meet bitmaps (SET, INCRBY, APPEND, SETRANGE, DEL,
//! EXPIRE), on 2 or 3 stores with shuffled delivery (FIFO per origin). At
//! the end every node reports the same `DEBUG DIGEST`, the same bytes,
//! bit counts and fields. `CORDIS_SEEDS` runs more seeds. The merge cases
//! of docs/semantics.md for bitmaps are named tests at the end.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node};

const TYPES: [&str; 6] = ["u1", "u4", "i5", "u8", "i16", "i64"];
const MODES: [&str; 3] = ["WRAP", "SAT", "FAIL"];

/// A random bitmap write (or another string write on the same keys).
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("b{}", rng.gen_range(0..3));
    let other = format!("b{}", rng.gen_range(0..3));
    let bit = rng.gen_range(0..40).to_string();
    let t = TYPES[rng.gen_range(0..TYPES.len())];
    let offset = if rng.gen_bool(0.3) {
        format!("#{}", rng.gen_range(0..4))
    } else {
        rng.gen_range(0..24).to_string()
    };
    let mode = MODES[rng.gen_range(0..MODES.len())];
    let amount = rng.gen_range(-300..300).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..20) {
        0..=5 => s(&["SETBIT", &key, &bit, ["0", "1"][rng.gen_range(0..2)]]),
        6..=7 => s(&["BITFIELD", &key, "SET", t, &offset, &amount]),
        8..=10 => s(&[
            "BITFIELD", &key, "OVERFLOW", mode, "INCRBY", t, &offset, &amount, "GET", t, &offset,
        ]),
        11 => s(&[
            "BITOP",
            ["AND", "OR", "XOR"][rng.gen_range(0..3)],
            &key,
            &key,
            &other,
        ]),
        12 => s(&["BITOP", "NOT", &key, &other]),
        13 => s(&["SET", &key, ["ab", "10", ""][rng.gen_range(0..3)]]),
        14 => s(&["INCRBY", &key, "3"]),
        15 => s(&["APPEND", &key, "z"]),
        16 => s(&["SETRANGE", &key, "1", "Q"]),
        17 => s(&["DEL", &key]),
        _ => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
    }
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.04, random_command, view);
}

fn view(node: &mut Node) -> Vec<Vec<Reply>> {
    (0..3)
        .map(|k| {
            let key = format!("b{k}");
            vec![
                node.run(&["GET", &key]),
                node.run(&["BITCOUNT", &key]),
                node.run(&["BITPOS", &key, "1"]),
                node.run(&["BITFIELD_RO", &key, "GET", "i16", "4", "GET", "u8", "#1"]),
                node.run(&["TTL", &key]),
            ]
        })
        .collect()
}

#[test]
fn two_stores_with_shuffled_delivery_reach_equal_bitmaps() {
    for seed in 0..seeds(150) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_with_cross_origin_reordering_reach_equal_bitmaps() {
    for seed in 3000..(3000 + seeds(150)) {
        play(seed, 3, 150);
    }
}

// ----- docs/semantics.md merge cases, through the dispatcher -----

fn get(node: &mut Node, key: &str) -> Reply {
    node.run(&["GET", key])
}

#[test]
fn concurrent_setbits_on_different_bits_both_survive() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["SETBIT", "m", "0", "1"]);
    nodes[1].run(&["SETBIT", "m", "15", "1"]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(get(n, "m"), Reply::Bulk(vec![0x80, 0x01].into()));
    }
}

#[test]
fn concurrent_bitfield_increments_all_count() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&[
        "BITFIELD", "c", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "200",
    ]);
    nodes[1].run(&[
        "BITFIELD", "c", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "100",
    ]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        // The overflow mode applies to the merged value: 300 saturates.
        assert_eq!(
            n.run(&["BITFIELD_RO", "c", "GET", "u8", "0"]),
            Reply::Array(vec![Reply::Integer(255)])
        );
    }
}

#[test]
fn bitop_into_a_key_is_a_whole_value_write() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["SET", "src", "a"]);
    nodes[0].run(&["SETBIT", "dst", "0", "1"]);
    deliver_everything(&nodes);
    // BITOP on node 0 observed the bit; node 1's bit 6 is concurrent.
    nodes[0].run(&["BITOP", "OR", "dst", "src"]);
    nodes[1].run(&["SETBIT", "dst", "6", "1"]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(get(n, "dst"), Reply::Bulk(b"c".to_vec().into()));
    }
}
