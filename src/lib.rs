pub mod crdt;
