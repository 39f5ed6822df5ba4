//! Convergence of whole nodes' stores for the HyperLogLog family, on the
//! shared random-history driver (`support::inproc`): random PFADD, PFMERGE,
//! single-key PFCOUNT (which stores its cache as a write), PFDEBUG TODENSE,
//! mixed with SET, APPEND, DEL, EXPIRE and SADD on the same keys, on 2 and
//! 3 stores with shuffled delivery (FIFO per origin). Every node must end
//! with the same DEBUG DIGEST, the same GET bytes and the same counts.
//! `CORDIS_SEEDS` runs more seeds. The DESIGN §3 rule (concurrent PFADDs
//! all count, register-wise max) and a SET that observed the value winning
//! are named tests at the end.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node};

fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("h{}", rng.gen_range(0..3));
    let other = format!("h{}", rng.gen_range(0..3));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..20) {
        0..=8 => {
            let mut cmd = s(&["PFADD", &key]);
            for _ in 0..rng.gen_range(0..6) {
                cmd.push(format!("e{}", rng.gen_range(0..400)));
            }
            cmd
        }
        9 => {
            // Enough elements to make the value dense.
            let mut cmd = s(&["PFADD", &key]);
            let base = rng.gen_range(0..10_000);
            cmd.extend((base..base + 1500).map(|i| format!("d{i}")));
            cmd
        }
        10..=11 => s(&["PFMERGE", &key, &other]),
        12..=13 => s(&["PFCOUNT", &key]),
        14 => s(&["PFDEBUG", "TODENSE", &key]),
        15 => s(&["DEL", &key]),
        16 => s(&["SET", &key, "plain"]),
        17 => s(&["APPEND", &key, "x"]),
        18 => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
        _ => s(&["SADD", &key, "m"]),
    }
}

fn view(node: &mut Node) -> Vec<(Reply, Reply, Reply)> {
    (0..3)
        .map(|k| {
            let key = format!("h{k}");
            (
                node.run(&["TYPE", &key]),
                node.run(&["GET", &key]),
                // Two keys: a pure read (no cache write).
                node.run(&["PFCOUNT", &key, "absent"]),
            )
        })
        .collect()
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.05, random_command, view);
}

#[test]
fn two_stores_with_shuffled_delivery_reach_equal_hyperloglogs() {
    for seed in 0..seeds(60) {
        play(seed, 2, 80);
    }
}

#[test]
fn three_stores_with_shuffled_delivery_reach_equal_hyperloglogs() {
    for seed in 0..seeds(30) {
        play(1000 + seed, 3, 100);
    }
}

fn pfadd(node: &mut Node, key: &str, elements: &[String]) {
    let mut args = vec!["PFADD", key];
    args.extend(elements.iter().map(|s| s.as_str()));
    node.run(&args);
}

fn count(node: &mut Node, key: &str) -> Reply {
    node.run(&["PFCOUNT", key, "absent"])
}

#[test]
fn concurrent_pfadds_in_two_regions_all_count() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    let eu: Vec<String> = (0..2000).map(|i| format!("eu{i}")).collect();
    let us: Vec<String> = (0..2000).map(|i| format!("us{i}")).collect();
    pfadd(&mut nodes[0], "v", &eu);
    pfadd(&mut nodes[1], "v", &us);
    deliver_everything(&nodes);
    // The reference: one HyperLogLog fed every element.
    let mut reference = Node::new(3);
    pfadd(&mut reference, "v", &eu);
    pfadd(&mut reference, "v", &us);
    let expected = count(&mut reference, "v");
    assert_eq!(count(&mut nodes[0], "v"), expected);
    assert_eq!(count(&mut nodes[1], "v"), expected);
    let (a, b) = (nodes[0].run(&["GET", "v"]), nodes[1].run(&["GET", "v"]));
    assert_eq!(a, b, "both regions render the same bytes");
    // A later PFADD on one node folds the merge into one write.
    pfadd(&mut nodes[0], "v", &["late".to_string()]);
    deliver_everything(&nodes);
    pfadd(&mut reference, "v", &["late".to_string()]);
    assert_eq!(count(&mut nodes[1], "v"), count(&mut reference, "v"));
    assert_eq!(nodes[0].digest(), nodes[1].digest());
}

#[test]
fn a_set_that_observed_the_hyperloglog_replaces_it() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    pfadd(&mut nodes[0], "v", &["a".to_string(), "b".to_string()]);
    deliver_everything(&nodes);
    nodes[1].run(&["SET", "v", "plain"]);
    deliver_everything(&nodes);
    for node in nodes.iter_mut() {
        assert_eq!(node.run(&["GET", "v"]), Reply::Bulk("plain".into()));
        assert_eq!(
            node.run(&["PFCOUNT", "v"]),
            Reply::Error("WRONGTYPE Key is not a valid HyperLogLog string value.".into())
        );
    }
}
