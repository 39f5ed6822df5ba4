//! Node identity across restarts: a stable *name* (the region, any text,
//! from `node-name` / `--replica-id`) and an *incarnation* drawn at each
//! start that has no data to resume. The replica id the dots carry is
//! derived from both, so two lives of one node never share dots: a node
//! restarted empty under the same flags is a new origin to its peers (its
//! seqs start at 1 under a new id) instead of reusing seqs its peers
//! already hold — the silent loss issue 17 found. A node restarted with
//! data it knows to be complete resumes the incarnation (and its seqs).

use crate::crdt::ReplicaId;

/// Longest node name accepted (bytes).
pub const MAX_NAME_LEN: usize = 64;

/// Who this node is: its name and which life of it this is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    pub name: String,
    pub incarnation: u32,
}

impl NodeIdentity {
    /// A new incarnation of `name` (a random name when none is configured).
    pub fn fresh(name: Option<&str>) -> Self {
        let name = match name {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{:08x}", rand::random::<u32>()),
        };
        NodeIdentity {
            name,
            incarnation: fresh_incarnation(),
        }
    }

    /// The id this incarnation's dots carry: the name's hash in the high
    /// half (so one node's incarnations sort together), the incarnation in
    /// the low half.
    pub fn replica_id(&self) -> ReplicaId {
        replica_id_of(&self.name, self.incarnation)
    }
}

/// The replica id of incarnation `incarnation` of the node called `name`.
pub fn replica_id_of(name: &str, incarnation: u32) -> ReplicaId {
    ReplicaId(((name_hash(name) as u64) << 32) | incarnation as u64)
}

/// The incarnation part of a replica id.
pub fn incarnation_of(id: ReplicaId) -> u32 {
    id.0 as u32
}

/// A random non-zero incarnation. 32 random bits: two lives of one node
/// collide with odds of one in four billion, and even then the link-level
/// id-reuse check (`replication::link`) catches the reuse.
fn fresh_incarnation() -> u32 {
    rand::random::<u32>().max(1)
}

/// FNV-1a (32 bits) of the name: stable across builds and machines.
fn name_hash(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in name.as_bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Checks a configured node name: 1 to [`MAX_NAME_LEN`] printable ASCII
/// characters without spaces (it appears in INFO lines and logs).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "node name '{name}' must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "node name '{name}' may only hold printable characters without spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_fresh_lives_of_one_name_have_different_ids_that_sort_together() {
        let a = NodeIdentity::fresh(Some("eu-west"));
        let b = NodeIdentity::fresh(Some("eu-west"));
        assert_eq!(a.name, b.name);
        assert_ne!(a.replica_id(), b.replica_id());
        assert_eq!(a.replica_id().0 >> 32, b.replica_id().0 >> 32);
        assert_eq!(incarnation_of(a.replica_id()), a.incarnation);
    }

    #[test]
    fn a_resumed_identity_keeps_its_id() {
        let a = NodeIdentity::fresh(Some("us"));
        let resumed = NodeIdentity {
            name: "us".into(),
            incarnation: a.incarnation,
        };
        assert_eq!(a.replica_id(), resumed.replica_id());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("a1").is_ok());
        assert!(check_name("eu-west-1.prod").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
