//! Round trips of every type and encoding, payload framing, and payloads
//! captured from redis-server 7.0.

use super::*;

fn opts() -> EncodeOptions {
    EncodeOptions::default()
}

fn round_trip(value: &RdbValue, options: &EncodeOptions) -> (u8, RdbValue) {
    let (type_byte, body) = encode_value(value, options);
    let back = decode_value(type_byte, &body).expect("own encoding decodes");
    (type_byte, back)
}

fn strings(items: impl IntoIterator<Item = String>) -> Vec<Vec<u8>> {
    items.into_iter().map(String::into_bytes).collect()
}

#[test]
fn strings_round_trip_in_every_form() {
    for s in [
        "",
        "bar",
        "12",
        "-128",
        "32767",
        "-2147483648",
        "2147483648",
        "007",
        "x".repeat(100).as_str(),
    ] {
        let value = RdbValue::String(s.as_bytes().to_vec());
        assert_eq!(
            round_trip(&value, &opts()),
            (types::STRING, value.clone()),
            "{s:?}"
        );
    }
}

#[test]
fn long_repetitive_strings_are_lzf_compressed() {
    let value = RdbValue::String(b"abcd".repeat(1000));
    let (_, body) = encode_value(&value, &opts());
    assert_eq!(body[0], 0xC3);
    assert!(body.len() < 200);
    let plain = EncodeOptions {
        compress: false,
        ..opts()
    };
    assert!(encode_value(&value, &plain).1.len() > 4000);
}

#[test]
fn lists_split_into_listpack_nodes() {
    let items = strings((0..5000).map(|i| format!("item {i}")));
    let value = RdbValue::List(items.clone());
    let (type_byte, body) = encode_value(&value, &opts());
    assert_eq!(type_byte, types::LIST_QUICKLIST_2);
    let mut r = Reader::new(&body);
    assert!(r.length().unwrap() > 1, "several nodes");
    assert_eq!(decode_value(type_byte, &body).unwrap(), value);
    for fill in [-1, -5, 1, 7, 128] {
        let options = EncodeOptions {
            list_max_listpack_size: fill,
            ..opts()
        };
        assert_eq!(round_trip(&value, &options).1, value, "fill {fill}");
    }
}

#[test]
fn sets_pick_intset_or_plain() {
    let ints = RdbValue::Set(strings(["5", "-3", "100000"].map(String::from)));
    let (t, back) = round_trip(&ints, &opts());
    assert_eq!(t, types::SET_INTSET);
    assert_eq!(
        back,
        RdbValue::Set(strings(["-3", "5", "100000"].map(String::from)))
    );
    let mixed = RdbValue::Set(strings(["5", "a"].map(String::from)));
    assert_eq!(round_trip(&mixed, &opts()), (types::SET, mixed.clone()));
    let many = RdbValue::Set(strings((0..600).map(|i| i.to_string())));
    assert_eq!(round_trip(&many, &opts()), (types::SET, many.clone()));
}

#[test]
fn hashes_pick_listpack_or_plain() {
    let small = RdbValue::Hash(vec![
        (b"f".to_vec(), b"1".to_vec()),
        (b"g".to_vec(), b"v".to_vec()),
    ]);
    assert_eq!(
        round_trip(&small, &opts()),
        (types::HASH_LISTPACK, small.clone())
    );
    let wide = RdbValue::Hash(vec![(b"f".to_vec(), vec![b'x'; 65])]);
    assert_eq!(round_trip(&wide, &opts()), (types::HASH, wide.clone()));
    let big = RdbValue::Hash(
        (0..1000)
            .map(|i| (format!("f{i}").into_bytes(), format!("{i}").into_bytes()))
            .collect(),
    );
    assert_eq!(round_trip(&big, &opts()), (types::HASH, big.clone()));
}

#[test]
fn sorted_sets_pick_listpack_or_skiplist() {
    let pairs = vec![
        (b"a".to_vec(), 1.0),
        (b"b".to_vec(), -2.5),
        (b"c".to_vec(), f64::INFINITY),
        (b"d".to_vec(), f64::NEG_INFINITY),
        (b"e".to_vec(), 1e300),
        (b"f".to_vec(), 0.1),
        (b"g".to_vec(), -0.0),
        (b"h".to_vec(), 123456789012.0),
        (b"i".to_vec(), 5e-324),
    ];
    let mut sorted = pairs.clone();
    sorted.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then(a.0.cmp(&b.0)));
    let (t, back) = round_trip(&RdbValue::ZSet(pairs.clone()), &opts());
    assert_eq!(t, types::ZSET_LISTPACK);
    let RdbValue::ZSet(back) = back else {
        panic!("zset")
    };
    assert_eq!(back.len(), sorted.len());
    for ((m1, s1), (m2, s2)) in back.iter().zip(&sorted) {
        assert_eq!((m1, s1.to_bits()), (m2, s2.to_bits()));
    }
    let big: Vec<_> = (0..200)
        .map(|i| (format!("m{i}").into_bytes(), i as f64 / 3.0))
        .collect();
    let (t, back) = round_trip(&RdbValue::ZSet(big.clone()), &opts());
    assert_eq!(t, types::ZSET_2);
    let RdbValue::ZSet(mut back) = back else {
        panic!("zset")
    };
    back.reverse();
    assert_eq!(back, big);
}

#[test]
fn payload_footer_is_checked() {
    let payload = dump_payload(&RdbValue::String(b"bar".to_vec()), &opts());
    assert_eq!(&payload[payload.len() - 10..payload.len() - 8], &[10, 0]);
    assert_eq!(
        parse_dump_payload(&payload, false),
        Ok(RdbValue::String(b"bar".to_vec()))
    );
    let mut flipped = payload.clone();
    flipped[2] ^= 1;
    assert_eq!(
        parse_dump_payload(&flipped, false),
        Err(PayloadError::VersionOrChecksum)
    );
    assert!(parse_dump_payload(&flipped, true).is_ok());
    let mut newer = payload.clone();
    newer[payload.len() - 10] = 11;
    assert_eq!(
        parse_dump_payload(&newer, true),
        Err(PayloadError::VersionOrChecksum)
    );
    assert_eq!(
        parse_dump_payload(b"...", false),
        Err(PayloadError::VersionOrChecksum)
    );
}

#[test]
fn every_truncation_of_every_encoding_fails_cleanly() {
    let values = [
        RdbValue::String(b"hello world hello world hello world".to_vec()),
        RdbValue::List(strings((0..50).map(|i| format!("{i}-{i}")))),
        RdbValue::Set(strings(["1", "2", "3"].map(String::from))),
        RdbValue::Set(strings(["a", "b"].map(String::from))),
        RdbValue::Hash(vec![(b"f".to_vec(), b"v".to_vec())]),
        RdbValue::ZSet(vec![(b"m".to_vec(), 1.5)]),
        RdbValue::ZSet(
            (0..200)
                .map(|i| (format!("m{i}").into_bytes(), i as f64))
                .collect(),
        ),
    ];
    for value in &values {
        let (t, body) = encode_value(value, &opts());
        for cut in 0..body.len() {
            assert!(
                decode_value(t, &body[..cut]).is_err(),
                "type {t} cut at {cut}"
            );
        }
        // Flipping any byte must never panic (it may still decode).
        for at in 0..body.len() {
            let mut forged = body.clone();
            forged[at] ^= 0xA5;
            let _ = decode_value(t, &forged);
        }
    }
}

#[test]
fn hostile_lengths_allocate_nothing_and_fail() {
    // A set claiming 2^63 members, a string claiming 4 GB.
    let set = [0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(decode_value(types::SET, &set), Err(RdbError::Truncated));
    let string = [0x80, 0xFF, 0xFF, 0xFF, 0xFF, b'x'];
    assert_eq!(
        decode_value(types::STRING, &string),
        Err(RdbError::Truncated)
    );
    // LZF claiming a 1 TB expansion of 3 bytes.
    let lzf = [0xC3, 3, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, b'a', 0];
    assert!(decode_value(types::STRING, &lzf).is_err());
}

#[test]
fn duplicates_empties_and_nan_are_refused() {
    let mut dup_set = vec![2];
    for m in ["a", "a"] {
        dup_set.push(1);
        dup_set.extend_from_slice(m.as_bytes());
    }
    assert_eq!(decode_value(types::SET, &dup_set), Err(RdbError::Duplicate));
    assert_eq!(decode_value(types::LIST, &[0]), Err(RdbError::Empty));
    let mut nan = vec![1, 1, b'm'];
    nan.extend_from_slice(&f64::NAN.to_le_bytes());
    assert_eq!(decode_value(types::ZSET_2, &nan), Err(RdbError::NanScore));
    assert_eq!(
        decode_value(types::MODULE_2, &[0]),
        Err(RdbError::UnsupportedType(types::MODULE_2))
    );
}

#[test]
fn canonical_integers_follow_string2ll() {
    for ok in [
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "12",
    ] {
        assert!(canonical_i64(ok.as_bytes()).is_some(), "{ok}");
    }
    for bad in [
        "",
        "-",
        "-0",
        "01",
        "+1",
        " 1",
        "1 ",
        "9223372036854775808",
        "1.0",
    ] {
        assert!(canonical_i64(bad.as_bytes()).is_none(), "{bad}");
    }
}
