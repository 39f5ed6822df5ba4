pub mod crdt;
pub mod store;
