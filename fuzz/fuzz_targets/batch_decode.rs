//! Feeds arbitrary bytes to the peer batch decoder: it must never panic,
//! and whatever decodes must survive a second round trip unchanged. The
//! round trips are compared as bytes, not values: a decoded NaN score is
//! not equal to itself, which once made this target report a false crash.
#![no_main]

use cordis::store::Batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = Batch::decode(data) {
        let encoded = batch.encode();
        let again = Batch::decode(&encoded).expect("re-encoded batch decodes");
        assert_eq!(again.encode(), encoded);
    }
});
