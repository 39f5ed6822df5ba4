//! Convergence of whole nodes' stores for the stream family, on the
//! random-history driver of `support::inproc`: random XADD (auto and
//! explicit IDs, with trims), XDEL, XTRIM, XSETID and consumer-group
//! writes (XGROUP, XREADGROUP, XACK, XCLAIM), mixed with DEL, SET and
//! RENAME on the same keys, on 2 or 3 nodes with shuffled delivery; every
//! node must end with the same DEBUG DIGEST, entries, groups and TYPE.
//! `CORDIS_SEEDS` runs more seeds.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node};

fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("x{}", rng.gen_range(0..3));
    let other = format!("x{}", rng.gen_range(0..3));
    let value = rng.gen_range(0..100).to_string();
    let explicit = format!("{}-{}", rng.gen_range(1..40), rng.gen_range(0..3));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..20) {
        0..=5 => s(&["XADD", &key, "*", "f", &value]),
        6 => s(&["XADD", &key, &explicit, "f", &value]),
        7 => s(&["XADD", &key, "MAXLEN", "3", "*", "f", &value]),
        8 => s(&["XDEL", &key, &explicit]),
        9 => s(&["XTRIM", &key, "MAXLEN", &rng.gen_range(0..4).to_string()]),
        10 => s(&["XSETID", &key, "1800000000000-0"]),
        11 => s(&["XGROUP", "CREATE", &key, "g", "0", "MKSTREAM"]),
        12..=13 => s(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "2",
            "STREAMS",
            &key,
            ">",
        ]),
        14 => s(&["XACK", &key, "g", &explicit]),
        15 => s(&["XAUTOCLAIM", &key, "g", "d", "0", "0"]),
        16 => s(&["XGROUP", "DESTROY", &key, "g"]),
        17 => s(&["DEL", &key]),
        18 => s(&["SET", &key, "v"]),
        _ => s(&["RENAME", &key, &other]),
    }
}

fn view(node: &mut Node) -> Vec<(Reply, Reply, Reply)> {
    (0..3)
        .map(|k| {
            let key = format!("x{k}");
            (
                node.run(&["TYPE", &key]),
                node.run(&["XRANGE", &key, "-", "+"]),
                node.run(&["XPENDING", &key, "g", "-", "+", "100"]),
            )
        })
        .collect()
}

#[test]
fn two_stores_with_shuffled_delivery_reach_equal_streams() {
    for seed in 0..seeds(150) {
        inproc::play(seed, 2, 120, 0.04, random_command, view);
    }
}

#[test]
fn three_stores_with_shuffled_delivery_reach_equal_streams() {
    for seed in 0..seeds(80) {
        inproc::play(seed, 3, 150, 0.04, random_command, view);
    }
}

#[test]
fn concurrent_auto_id_adds_in_three_regions_keep_every_entry_in_one_order() {
    let mut nodes: Vec<Node> = (0..3).map(|i| Node::new(0x200 + i)).collect();
    for round in 0..4 {
        for (i, n) in nodes.iter_mut().enumerate() {
            n.run(&["XADD", "s", "*", "from", &format!("{i}-{round}")]);
        }
    }
    deliver_everything(&nodes);
    let ranges: Vec<Reply> = nodes
        .iter_mut()
        .map(|n| n.run(&["XRANGE", "s", "-", "+"]))
        .collect();
    assert!(ranges.iter().all(|r| *r == ranges[0]));
    let Reply::Array(entries) = &ranges[0] else {
        panic!("{:?}", ranges[0])
    };
    assert_eq!(entries.len(), 12, "no entry lost, no ID collision");
    // Each region's entries appear in the order it added them.
    let texts: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
    for i in 0..3 {
        let at: Vec<usize> = (0..4)
            .map(|round| {
                let needle = format!("{i}-{round}");
                texts.iter().position(|t| t.contains(&needle)).unwrap()
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "region {i}: {at:?}");
    }
}
