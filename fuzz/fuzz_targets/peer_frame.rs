//! Feeds arbitrary bytes to the peer frame decoder (as an authenticated
//! link reads them) and the decoded messages to an acceptor link mid
//! handshake: nothing may panic or allocate beyond the frame limit.
#![no_main]

use bytes::BytesMut;
use cordis::crdt::ReplicaId;
use cordis::replication::auth::Side;
use cordis::replication::codec::{decode, MAX_HANDSHAKE_FRAME};
use cordis::replication::link::{LinkSettings, PeerLink};
use cordis::store::Store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut store = Store::new(ReplicaId(2));
    let mut link = PeerLink::new(Side::Acceptor, ReplicaId(2), LinkSettings::default(), [0; 32], 0);
    while let Ok(Some(msg)) = decode(&mut buf, MAX_HANDSHAKE_FRAME) {
        let _ = link.on_message(msg, &mut store, 0);
    }
});
