//! Feeds arbitrary bytes to the RDB value decoder (as a type byte plus a
//! body, and as a whole DUMP payload with its checksum skipped): it must
//! never panic or over-allocate, and whatever decodes must re-encode to
//! bytes that decode to the same value.
#![no_main]

use cordis::rdb::{decode_value, dump_payload, encode_value, parse_dump_payload, EncodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&type_byte, body)) = data.split_first() else {
        return;
    };
    let options = EncodeOptions::default();
    if let Ok(value) = decode_value(type_byte, body) {
        let (again_type, again_body) = encode_value(&value, &options);
        let again = decode_value(again_type, &again_body).expect("re-encoded value decodes");
        // Compared through the encoder: NaN never decodes, but -0 and 0
        // scores must keep their bits.
        assert_eq!(encode_value(&again, &options), (again_type, again_body));
    }
    if let Ok(value) = parse_dump_payload(data, true) {
        let payload = dump_payload(&value, &options);
        parse_dump_payload(&payload, false).expect("own payload verifies");
    }
});
