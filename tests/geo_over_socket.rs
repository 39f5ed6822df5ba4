//! The geo family over a real socket, with the `redis` client crate (and a
//! raw RESP client for RESP3 shapes), against an in-process node on
//! `127.0.0.1:0`. Every expected reply below (scores, coordinates,
//! distances, geohashes, orders and error texts) was taken from a real
//! `redis-server` 7.0 given the same commands (the tests need no Redis).
//!
//! covers: geoadd geodist geohash geopos georadius georadiusbymember georadius_ro georadiusbymember_ro geosearch geosearchstore

use redis::Value;

mod support;

use support::client::Conn;
use support::Node;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn sicily(c: &mut Conn) {
    assert_eq!(
        c.int(&[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ]),
        2
    );
}

/// A nested array of bulk strings and integers, as text.
fn texts(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .flat_map(|item| match item {
                Value::BulkString(b) => vec![String::from_utf8(b).unwrap()],
                Value::Int(n) => vec![n.to_string()],
                Value::Nil => vec!["(nil)".into()],
                nested @ Value::Array(_) => texts(nested),
                other => panic!("unexpected element {other:?}"),
            })
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

#[test]
fn geoadd_stores_redis_geohash_scores_with_zadd_options() {
    let node = Node::start();
    let mut c = node.client();
    sicily(&mut c);
    assert_eq!(
        c.int(&[
            "GEOADD",
            "Sicily",
            "NX",
            "CH",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
            "12",
            "37",
            "Marsala",
        ]),
        1
    );
    // XX updates Palermo (CH counts it) and does not add Nowhere.
    assert_eq!(
        c.int(&["GEOADD", "Sicily", "XX", "CH", "13.5", "38.1", "Palermo", "1", "2", "Nowhere",]),
        1
    );
    assert_eq!(
        c.int(&["GEOADD", "Sicily", "13.5", "38.1", "Palermo"]),
        0,
        "an update without CH counts nothing"
    );
    assert_eq!(
        c.int(&[
            "GEOADD",
            "Sicily",
            "180",
            "85.05112878",
            "corner",
            "-180",
            "-85.05112878",
            "corner2",
        ]),
        2
    );
    assert_eq!(
        c.strings(&["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"]),
        [
            "corner2",
            "0",
            "Marsala",
            "3475952690022668",
            "Palermo",
            "3479100566894653",
            "Catania",
            "3479447370796909",
            "corner",
            "13510798882111488",
        ]
    );
    assert_eq!(c.status(&["TYPE", "Sicily"]), "zset");
    assert_eq!(c.int(&["ZREM", "Sicily", "corner", "corner2"]), 2);
}

#[test]
fn geoadd_refuses_bad_coordinates_and_options_with_redis_errors() {
    let node = Node::start();
    let mut c = node.client();
    for (args, text) in [
        (
            &["GEOADD", "k", "XX", "NX", "1", "2", "x"][..],
            "ERR syntax error",
        ),
        (
            &["GEOADD", "k", "CH", "XX", "foo", "1", "2", "x"],
            "ERR syntax error",
        ),
        (&["GEOADD", "k", "GT", "1", "2", "x"], "ERR syntax error"),
        (
            &["GEOADD", "k", "200", "100", "x"],
            "ERR invalid longitude,latitude pair 200.000000,100.000000",
        ),
        (
            &["GEOADD", "k", "1", "85.06", "x"],
            "ERR invalid longitude,latitude pair 1.000000,85.060000",
        ),
        (
            &["GEOADD", "k", "1", "2", "ok", "inf", "0", "x"],
            "ERR invalid longitude,latitude pair inf,0.000000",
        ),
        (
            &["GEOADD", "k", "foo", "1", "x"],
            "ERR value is not a valid float",
        ),
        (
            &["GEOADD", "k", "nan", "1", "x"],
            "ERR value is not a valid float",
        ),
        (
            &["GEOADD", "k", "1", "2"],
            "ERR wrong number of arguments for 'geoadd' command",
        ),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
    // A refused GEOADD adds none of its points.
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    c.ok(&["SET", "s", "x"]);
    assert_eq!(c.err(&["GEOADD", "s", "1", "2", "m"]), WRONGTYPE);
    // Coordinates are checked before the key's type.
    assert_eq!(
        c.err(&["GEOADD", "s", "1", "99", "m"]),
        "ERR invalid longitude,latitude pair 1.000000,99.000000"
    );
}

#[test]
fn geopos_geohash_and_geodist_decode_members_as_redis_does() {
    let node = Node::start();
    let mut c = node.client();
    sicily(&mut c);
    assert_eq!(
        texts(c.v(&["GEOPOS", "Sicily", "Palermo", "nope", "Catania"])),
        [
            "13.36138933897018433",
            "38.11555639549629859",
            "(nil)",
            "15.08726745843887329",
            "37.50266842333162032",
        ]
    );
    assert_eq!(texts(c.v(&["GEOPOS", "nokey", "a"])), ["(nil)"]);
    assert_eq!(
        c.strings(&["GEOHASH", "Sicily", "Palermo", "nope", "Catania"]),
        ["sqc8b49rny0", "(nil)", "sqdtr74hyu0"]
    );
    c.int(&["GEOADD", "points", "-5.6", "42.6", "wikipedia"]);
    assert_eq!(
        c.strings(&["GEOHASH", "points", "wikipedia"]),
        ["ezs42e44yx0"]
    );
    for (unit, text) in [
        (None, "166274.1516"),
        (Some("km"), "166.2742"),
        (Some("KM"), "166.2742"),
        (Some("mi"), "103.3182"),
        (Some("ft"), "545518.8700"),
        (Some("m"), "166274.1516"),
    ] {
        let mut args = vec!["GEODIST", "Sicily", "Palermo", "Catania"];
        args.extend(unit);
        assert_eq!(c.bulk(&args).as_deref(), Some(text), "{unit:?}");
    }
    assert_eq!(
        c.bulk(&["GEODIST", "Sicily", "Palermo", "Palermo"])
            .as_deref(),
        Some("0.0000")
    );
    assert_eq!(c.bulk(&["GEODIST", "Sicily", "Palermo", "nope"]), None);
    assert_eq!(c.bulk(&["GEODIST", "nokey", "a", "b"]), None);
    assert_eq!(
        c.err(&["GEODIST", "Sicily", "Palermo", "Catania", "yards"]),
        "ERR unsupported unit provided. please use M, KM, FT, MI"
    );
    assert_eq!(
        c.err(&["GEODIST", "Sicily", "Palermo", "Catania", "km", "extra"]),
        "ERR syntax error"
    );
    c.ok(&["SET", "s", "x"]);
    assert_eq!(c.err(&["GEOPOS", "s", "m"]), WRONGTYPE);
    assert_eq!(c.err(&["GEOHASH", "s", "m"]), WRONGTYPE);
    assert_eq!(c.err(&["GEODIST", "s", "a", "b"]), WRONGTYPE);
}

#[test]
fn scores_that_are_not_geohashes_decode_where_redis_puts_them() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["ZADD", "weird", "-5", "a", "1e20", "b", "inf", "c"]);
    assert_eq!(
        texts(c.v(&["GEOPOS", "weird", "a", "b", "c"])),
        [
            "180",
            "85.0511287799999991",
            "-179.99999731779098511",
            "-85.05112751263942528",
            "-179.99999731779098511",
            "-85.05112751263942528",
        ]
    );
    assert_eq!(
        c.strings(&["GEOHASH", "weird", "a", "b"]),
        ["bp05b5048p0", "00bh0hbj200"]
    );
}

#[test]
fn radius_searches_sort_count_and_annotate_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    sicily(&mut c);
    assert_eq!(
        texts(c.v(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "WITHDIST",
            "WITHCOORD",
            "WITHHASH",
            "ASC",
        ])),
        [
            "Catania",
            "56.4413",
            "3479447370796909",
            "15.08726745843887329",
            "37.50266842333162032",
            "Palermo",
            "190.4424",
            "3479099956230698",
            "13.36138933897018433",
            "38.11555639549629859",
        ]
    );
    assert_eq!(
        texts(c.v(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "WITHDIST",
            "DESC",
            "COUNT",
            "1",
        ])),
        ["Palermo", "190.4424"]
    );
    // COUNT alone sorts nearest first.
    assert_eq!(
        c.strings(&[
            "GEORADIUS_RO",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "COUNT",
            "1"
        ]),
        ["Catania"]
    );
    assert_eq!(
        texts(c.v(&[
            "GEORADIUSBYMEMBER",
            "Sicily",
            "Palermo",
            "200",
            "km",
            "WITHDIST",
            "ASC",
        ])),
        ["Palermo", "0.0000", "Catania", "166.2742"]
    );
    assert_eq!(
        c.strings(&["GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "100", "km"]),
        ["Palermo"]
    );
    assert_eq!(
        c.strings(&["GEORADIUS", "Sicily", "15", "37", "1", "km"]),
        Vec::<String>::new()
    );
}

/// The unsorted order is the order Redis scans its geohash cells in; this
/// data set is from Redis's own geo unit.
#[test]
fn unsorted_and_any_results_come_in_redis_scan_order() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&[
        "GEOADD",
        "nyc",
        "-73.9454966",
        "40.747533",
        "lic market",
        "-73.9733487",
        "40.7648057",
        "central park n/q/r",
        "-73.9903085",
        "40.7362513",
        "union square",
        "-74.0131604",
        "40.7126674",
        "wtc one",
        "-73.7858139",
        "40.6428986",
        "jfk",
        "-73.9375699",
        "40.7498929",
        "q4",
        "-73.9564142",
        "40.7480973",
        "4545",
    ]);
    assert_eq!(
        c.strings(&[
            "GEORADIUS",
            "nyc",
            "-73.9798091",
            "40.7598464",
            "10",
            "km",
            "COUNT",
            "3",
            "ANY",
        ]),
        ["wtc one", "union square", "central park n/q/r"]
    );
    assert_eq!(
        c.strings(&["GEORADIUSBYMEMBER", "nyc", "wtc one", "7", "km"]),
        [
            "wtc one",
            "union square",
            "central park n/q/r",
            "4545",
            "lic market"
        ]
    );
    assert_eq!(
        c.strings(&[
            "GEOSEARCH",
            "nyc",
            "FROMLONLAT",
            "-73.9798091",
            "40.7598464",
            "BYBOX",
            "6",
            "6",
            "km",
            "ASC",
        ]),
        ["central park n/q/r", "4545", "union square", "lic market"]
    );
    assert_eq!(
        c.strings(&[
            "GEOSEARCH",
            "nyc",
            "FROMMEMBER",
            "wtc one",
            "BYBOX",
            "14",
            "14",
            "km"
        ]),
        [
            "wtc one",
            "union square",
            "central park n/q/r",
            "4545",
            "lic market",
            "q4"
        ]
    );
}

#[test]
fn box_searches_cross_the_antimeridian() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["GEOADD", "points", "179.5", "36", "point1"]);
    c.int(&["GEOADD", "points", "-179.5", "36", "point2"]);
    let search = |c: &mut Conn, lon: &str| {
        c.strings(&[
            "GEOSEARCH",
            "points",
            "FROMLONLAT",
            lon,
            "37",
            "BYBOX",
            "400",
            "400",
            "km",
            "ASC",
        ])
    };
    assert_eq!(search(&mut c, "179"), ["point1", "point2"]);
    assert_eq!(search(&mut c, "-179"), ["point2", "point1"]);
}

#[test]
fn search_arguments_are_checked_in_redis_order_with_redis_errors() {
    let node = Node::start();
    let mut c = node.client();
    sicily(&mut c);
    let radius = |extra: &[&'static str]| {
        let mut args = vec!["GEORADIUS", "Sicily", "15", "37", "200", "km"];
        args.extend_from_slice(extra);
        args
    };
    for (args, text) in [
        (radius(&["COUNT", "0"]), "ERR COUNT must be > 0"),
        (radius(&["COUNT", "-3"]), "ERR COUNT must be > 0"),
        (
            radius(&["COUNT", "abc"]),
            "ERR value is not an integer or out of range",
        ),
        (radius(&["COUNT"]), "ERR syntax error"),
        (radius(&["STORE"]), "ERR syntax error"),
        (radius(&["FROMLONLAT", "1", "2"]), "ERR syntax error"),
        (
            radius(&["ANY"]),
            "ERR the ANY argument requires COUNT argument",
        ),
        (
            radius(&["STORE", "dst", "WITHDIST"]),
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
            "ERR radius cannot be negative",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "37", "abc", "km"],
            "ERR need numeric radius",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "37", "1", "parsec"],
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "97", "1", "km"],
            "ERR invalid longitude,latitude pair 15.000000,97.000000",
        ),
        (
            vec!["GEORADIUS_RO", "Sicily", "15", "37", "1", "km", "STORE", "d"],
            "ERR syntax error",
        ),
        (
            vec!["GEORADIUSBYMEMBER", "Sicily", "nope", "1", "km"],
            "ERR could not decode requested zset member",
        ),
        (
            vec![
                "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "FROMMEMBER", "Palermo", "BYBOX",
                "1", "1", "km",
            ],
            "ERR syntax error",
        ),
        (
            vec!["GEOSEARCH", "Sicily", "BYBOX", "1", "1", "km", "ASC"],
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH",
        ),
        (
            vec!["geosearch", "Sicily", "FROMLONLAT", "15", "37", "COUNT", "1"],
            "ERR exactly one of BYRADIUS and BYBOX can be specified for geosearch",
        ),
        (
            vec![
                "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "3", "km", "BYBOX",
                "3", "3", "km",
            ],
            "ERR syntax error",
        ),
        (
            vec![
                "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km",
                "STOREDIST",
            ],
            "ERR syntax error",
        ),
        (
            vec![
                "GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "-1", "2", "km",
            ],
            "ERR height or width cannot be negative",
        ),
        (
            vec![
                "GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "a", "2", "km",
            ],
            "ERR need numeric width",
        ),
        (
            vec![
                "GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "1", "b", "km",
            ],
            "ERR need numeric height",
        ),
        (
            vec![
                "GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYBOX", "1", "1", "km",
            ],
            "ERR could not decode requested zset member",
        ),
        (
            vec![
                "GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km",
                "WITHDIST",
            ],
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
        (
            vec![
                "GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km",
                "STORE", "d",
            ],
            "ERR syntax error",
        ),
    ] {
        assert_eq!(c.err(&args), text, "{args:?}");
    }
    c.ok(&["SET", "s", "x"]);
    assert_eq!(c.err(&["GEORADIUS", "s", "1", "1", "1", "km"]), WRONGTYPE);
    assert_eq!(
        c.err(&["GEORADIUSBYMEMBER", "s", "m", "1", "km", "STORE", "d"]),
        WRONGTYPE
    );
    assert_eq!(
        c.err(&[
            "GEOSEARCHSTORE",
            "d",
            "s",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "1",
            "km"
        ]),
        WRONGTYPE
    );
}

#[test]
fn huge_and_infinite_searches_stay_bounded() {
    let node = Node::start();
    let mut c = node.client();
    sicily(&mut c);
    c.int(&["GEOADD", "Sicily", "12", "37", "Marsala"]);
    c.int(&["GEOADD", "Sicily", "-180", "-85.05112878", "corner2"]);
    // Redis's cells for an infinite radius miss nothing but its far corner.
    assert_eq!(
        c.strings(&["GEORADIUS", "Sicily", "15", "37", "inf", "km", "ASC"]),
        ["Catania", "Palermo", "Marsala", "corner2"]
    );
    assert_eq!(
        c.strings(&[
            "GEOSEARCH",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYBOX",
            "1e300",
            "0",
            "m",
            "COUNT",
            "9223372036854775807",
        ]),
        Vec::<String>::new()
    );
    assert_eq!(c.int(&["ZCARD", "Sicily"]), 4, "searching changed nothing");
}

/// `key` holds just `member`, scored with the distance Redis stores (its
/// text is Redis 7.0's `%.17g`; compared as a double, since how scores
/// print is the sorted-set family's business).
fn assert_stored_distance(c: &mut Conn, key: &str, member: &str, redis_score: &str) {
    let stored = c.strings(&["ZRANGE", key, "0", "-1", "WITHSCORES"]);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0], member);
    let score: f64 = stored[1].parse().unwrap();
    assert_eq!(score, redis_score.parse::<f64>().unwrap(), "{stored:?}");
}

#[test]
fn store_forms_replace_the_destination_or_delete_it() {
    let node = Node::start();
    let mut c = node.client();
    sicily(&mut c);
    c.ok(&["SET", "dst", "old"]);
    c.int(&["EXPIRE", "dst", "1000"]);
    assert_eq!(
        c.int(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "dst"
        ]),
        2
    );
    assert_eq!(
        c.strings(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]),
        ["Palermo", "3479099956230698", "Catania", "3479447370796909"]
    );
    assert_eq!(c.int(&["TTL", "dst"]), -1, "a store drops the old TTL");
    assert_eq!(
        c.int(&[
            "GEORADIUSBYMEMBER",
            "Sicily",
            "Catania",
            "500",
            "km",
            "STOREDIST",
            "dst",
            "DESC",
            "COUNT",
            "1",
        ]),
        1
    );
    assert_stored_distance(&mut c, "dst", "Palermo", "166.27415156960032");
    assert_eq!(
        c.int(&[
            "GEOSEARCHSTORE",
            "dst2",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
            "STOREDIST",
            "COUNT",
            "1",
        ]),
        1
    );
    assert_stored_distance(&mut c, "dst2", "Catania", "56.441257870158204");
    // Nothing found, or no source: the destination is deleted.
    assert_eq!(
        c.int(&[
            "GEOSEARCHSTORE",
            "dst2",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "1",
            "m",
        ]),
        0
    );
    assert_eq!(c.int(&["EXISTS", "dst2"]), 0);
    assert_eq!(
        c.int(&["GEORADIUSBYMEMBER", "nokey", "m", "1", "km", "STORE", "dst"]),
        0
    );
    assert_eq!(c.int(&["EXISTS", "dst"]), 0);
}

#[test]
fn a_missing_source_gives_an_empty_reply_after_checking_arguments() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.strings(&["GEORADIUS", "nokey", "1", "1", "1", "km"]),
        Vec::<String>::new()
    );
    assert_eq!(
        c.strings(&["GEORADIUSBYMEMBER", "nokey", "m", "1", "km"]),
        Vec::<String>::new()
    );
    assert_eq!(
        c.strings(&[
            "GEOSEARCH",
            "nokey",
            "FROMMEMBER",
            "m",
            "BYBOX",
            "1",
            "1",
            "km"
        ]),
        Vec::<String>::new()
    );
    assert_eq!(
        c.err(&["GEORADIUS", "nokey", "1", "1", "-1", "km"]),
        "ERR radius cannot be negative"
    );
    assert_eq!(
        c.err(&["GEOSEARCH", "nokey", "FROMMEMBER", "m", "COUNT", "1", "ASC"]),
        "ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH"
    );
}

#[test]
fn resp3_coordinates_are_doubles_and_distances_stay_bulk_strings() {
    let node = Node::start();
    let mut raw = node.connect();
    raw.call_str(&["HELLO", "3"]);
    raw.call_str(&[
        "GEOADD",
        "g",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ]);
    assert_eq!(
        raw.call_text(&["GEOPOS", "g", "Palermo", "x"]),
        "*2\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n_\r\n"
    );
    assert_eq!(
        raw.call_text(&["GEODIST", "g", "Palermo", "Catania"]),
        "$11\r\n166274.1516\r\n"
    );
    assert_eq!(raw.call_text(&["GEODIST", "g", "Palermo", "x"]), "_\r\n");
    assert_eq!(
        raw.call_text(&["GEOHASH", "g", "Palermo", "x"]),
        "*2\r\n$11\r\nsqc8b49rny0\r\n_\r\n"
    );
    assert_eq!(
        raw.call_text(&[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
            "WITHCOORD",
            "WITHDIST",
            "WITHHASH",
            "ASC",
        ]),
        "*2\r\n*4\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n:3479447370796909\r\n*2\r\n,15.08726745843887329\r\n,37.50266842333162032\r\n*4\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n"
    );
    assert_eq!(
        raw.call_text(&[
            "GEOSEARCH",
            "nokey",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "1",
            "km"
        ]),
        "*0\r\n"
    );
}

/// The haversine distance the way Redis's own fuzz test computes it (an
/// independent formula: degrees to radians via `atan(1) * 8 / 360`).
fn reference_distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let rad = |deg: f64| deg * (1f64.atan() * 8.0 / 360.0);
    let v = ((rad(lon2) - rad(lon1)) / 2.0).sin();
    let u = ((rad(lat2) - rad(lat1)) / 2.0).sin();
    let a = u * u + rad(lat1).cos() * rad(lat2).cos() * v * v;
    2.0 * 6372797.560856 * a.sqrt().asin()
}

/// Redis's fuzz test, with fixed seeds: random points and searches, each
/// search's members compared with a brute-force scan; a disagreement only
/// counts when it is not a rounding matter at the edge of the shape.
#[test]
fn searches_find_exactly_the_points_a_brute_force_scan_finds() {
    use rand::{Rng, SeedableRng};
    let node = Node::start();
    let mut c = node.client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e0);
    let mut total_found = 0;
    for round in 0..12 {
        let by_box = round % 2 == 1;
        let point = |rng: &mut rand::rngs::StdRng| {
            (
                -180.0 + rng.gen::<f64>() * 360.0,
                -70.0 + rng.gen::<f64>() * 140.0,
            )
        };
        let points: Vec<(f64, f64)> = (0..2000).map(|_| point(&mut rng)).collect();
        let (lon, lat) = point(&mut rng);
        let (width_km, height_km) = if rng.gen_ratio(1, 5) {
            (
                rng.gen_range(10..5000) as f64,
                rng.gen_range(10..5000) as f64,
            )
        } else {
            (rng.gen_range(10..200) as f64, rng.gen_range(10..200) as f64)
        };
        c.int(&["DEL", "fuzz"]);
        let mut add = vec!["GEOADD".to_string(), "fuzz".to_string()];
        for (i, (x, y)) in points.iter().enumerate() {
            add.extend([x.to_string(), y.to_string(), format!("p{i}")]);
        }
        let add: Vec<&str> = add.iter().map(String::as_str).collect();
        assert_eq!(c.int(&add), 2000);
        let (lon_text, lat_text) = (lon.to_string(), lat.to_string());
        let (w_text, h_text) = (width_km.to_string(), height_km.to_string());
        let mut search = vec!["GEOSEARCH", "fuzz", "FROMLONLAT", &lon_text, &lat_text];
        if by_box {
            search.extend(["BYBOX", &w_text, &h_text, "km"]);
        } else {
            search.extend(["BYRADIUS", &w_text, "km"]);
        }
        let found: std::collections::BTreeSet<String> = c.strings(&search).into_iter().collect();
        total_found += found.len();
        // Judge every point by its stored (cell-centre) position.
        let positions = {
            let mut args = vec!["GEOPOS".to_string(), "fuzz".to_string()];
            args.extend((0..2000).map(|i| format!("p{i}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            texts(c.v(&args))
        };
        for (i, pair) in positions.chunks(2).enumerate() {
            let (x, y): (f64, f64) = (pair[0].parse().unwrap(), pair[1].parse().unwrap());
            let (inside, at_edge) = if by_box {
                let lon_d = reference_distance(x, y, lon, y);
                let lat_d = reference_distance(x, y, x, lat);
                let (hw, hh) = (width_km * 500.0, height_km * 500.0);
                let inside = lon_d <= hw && lat_d <= hh;
                let loose = lon_d <= hw * 1.001 && lat_d <= hh * 1.001;
                let tight = lon_d <= hw * 0.999 && lat_d <= hh * 0.999;
                (inside, loose != tight)
            } else {
                let d = reference_distance(x, y, lon, lat);
                let r = width_km * 1000.0;
                (d < r, (d / r - 1.0).abs() < 0.001)
            };
            let name = format!("p{i}");
            if !at_edge {
                assert_eq!(
                    found.contains(&name),
                    inside,
                    "round {round}: {name} at {x},{y}; search {search:?}"
                );
            }
        }
    }
    assert!(total_found > 100, "the searches found {total_found} points");
}
