//! Feeds arbitrary bytes to the peer batch decoder: it must never panic,
//! and whatever decodes must re-encode to the same bytes.
#![no_main]

use cordis::store::Batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = Batch::decode(data) {
        let again = Batch::decode(&batch.encode()).expect("re-encoded batch decodes");
        assert_eq!(again, batch);
    }
});
