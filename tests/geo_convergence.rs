//! Convergence of whole nodes' stores for the geo family, driven through
//! the real dispatcher by the shared random-history driver
//! (`support::inproc::play`): random GEOADD (with NX/XX/CH), GEOSEARCHSTORE
//! and GEORADIUS … STORE/STOREDIST, mixed with the sorted-set writes that
//! touch geo keys (ZREM, ZADD, ZINCRBY) and with DEL, SET and EXPIRE on the
//! same keys, run on 2 or 3 stores with shuffled delivery (FIFO per
//! origin). At the end every node reports the same `DEBUG DIGEST`, the
//! same scores, positions and search results. `CORDIS_SEEDS` runs more
//! seeds. The docs/semantics.md merge cases for geo (a GEOADD is a ZADD:
//! concurrent GEOADDs of one member are LWW, a GEOADD beats a concurrent
//! ZREM of a member it did not observe) are named tests at the end.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node, NOW_MS};

const PLACES: [(&str, &str); 6] = [
    ("13.361389", "38.115556"),
    ("15.087269", "37.502669"),
    ("12.758489", "38.788135"),
    ("-73.9454966", "40.747533"),
    ("179.5", "36"),
    ("-179.5", "36"),
];

/// A random geo write (or another write on the same keys).
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("g{}", rng.gen_range(0..3));
    let other = format!("g{}", rng.gen_range(0..3));
    let member = ["a", "b", "c", "d"][rng.gen_range(0..4)];
    let (lon, lat) = PLACES[rng.gen_range(0..PLACES.len())];
    let radius = ["50", "200", "5000"][rng.gen_range(0..3)];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..20) {
        0..=5 => s(&["GEOADD", &key, lon, lat, member]),
        6 => s(&[
            "GEOADD", &key, "NX", "CH", lon, lat, member, "15", "37", "e",
        ]),
        7 => s(&["GEOADD", &key, "XX", lon, lat, member]),
        8..=9 => s(&[
            "GEOSEARCHSTORE",
            &key,
            &other,
            "FROMLONLAT",
            lon,
            lat,
            "BYRADIUS",
            radius,
            "km",
        ]),
        10 => s(&[
            "GEOSEARCHSTORE",
            &key,
            &other,
            "FROMMEMBER",
            member,
            "BYBOX",
            radius,
            radius,
            "km",
            "STOREDIST",
            "COUNT",
            "2",
        ]),
        11 => s(&["GEORADIUS", &other, lon, lat, radius, "km", "STORE", &key]),
        12 => s(&[
            "GEORADIUSBYMEMBER",
            &other,
            member,
            radius,
            "km",
            "STOREDIST",
            &key,
        ]),
        13..=14 => s(&["ZREM", &key, member]),
        15 => s(&["ZADD", &key, "3479447370796909", member]),
        16 => s(&["ZINCRBY", &key, "1", member]),
        17 => s(&["DEL", &key]),
        18 => s(&["SET", &key, "v"]),
        _ => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
    }
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.04, random_command, view);
}

fn view(node: &mut Node) -> Vec<Vec<Reply>> {
    (0..3)
        .map(|k| {
            let key = format!("g{k}");
            vec![
                node.run(&["TYPE", &key]),
                node.run(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
                node.run(&["GEOPOS", &key, "a", "b", "c", "d", "e"]),
                node.run(&[
                    "GEOSEARCH",
                    &key,
                    "FROMLONLAT",
                    "15",
                    "37",
                    "BYRADIUS",
                    "20000",
                    "km",
                    "WITHDIST",
                    "ASC",
                ]),
            ]
        })
        .collect()
}

#[test]
fn two_stores_with_shuffled_delivery_reach_equal_geo_sets() {
    for seed in 0..seeds(150) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_with_cross_origin_reordering_reach_equal_geo_sets() {
    for seed in 2000..(2000 + seeds(150)) {
        play(seed, 3, 150);
    }
}

// ----- docs/semantics.md merge cases, through the dispatcher -----

fn position(node: &mut Node, member: &str) -> Reply {
    node.run(&["GEOPOS", "g", member])
}

#[test]
fn concurrent_geoadd_of_one_member_is_last_writer_wins() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["GEOADD", "g", "13.361389", "38.115556", "m"]);
    nodes[0]
        .state
        .store
        .lock()
        .set_time_override(Some(NOW_MS + 10));
    nodes[1]
        .state
        .store
        .lock()
        .set_time_override(Some(NOW_MS + 20));
    // Node 1's write is later in HLC order, so its position wins.
    nodes[1].run(&["GEOADD", "g", "15.087269", "37.502669", "m"]);
    let later = position(&mut nodes[1], "m");
    assert_ne!(later, position(&mut nodes[0], "m"), "the writes differ");
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(position(n, "m"), later);
    }
}

#[test]
fn geoadd_survives_a_concurrent_zrem_that_did_not_see_it() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&[
        "GEOADD",
        "g",
        "13.361389",
        "38.115556",
        "m",
        "15",
        "37",
        "n",
    ]);
    deliver_everything(&nodes);
    nodes[1].run(&["ZREM", "g", "m"]);
    nodes[0].run(&["GEOADD", "g", "12", "37", "m"]);
    let readded = position(&mut nodes[0], "m");
    assert_eq!(
        position(&mut nodes[1], "m"),
        Reply::Array(vec![Reply::NilArray])
    );
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(
            position(n, "m"),
            readded,
            "add wins over a concurrent remove"
        );
        assert_eq!(n.run(&["ZCARD", "g"]), Reply::Integer(2));
    }
}

#[test]
fn a_geosearchstore_result_replicates_as_the_stored_set() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&[
        "GEOADD",
        "src",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ]);
    nodes[0].run(&[
        "GEOSEARCHSTORE",
        "dst",
        "src",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "100",
        "km",
    ]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(
            n.run(&["ZRANGE", "dst", "0", "-1"]),
            Reply::Array(vec![Reply::Bulk("Catania".into())])
        );
    }
}
