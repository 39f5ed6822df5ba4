//! The bridge between a key's CRDT state and a plain [`RdbValue`]: what a
//! key reads as (for DUMP, or an RDB writer), and the delta that gives an
//! empty key a decoded value under fresh dots (RESTORE, or an RDB import).

use bytes::Bytes;

use super::RdbValue;
use crate::crdt::list::{End, List, ListEdit};
use crate::crdt::ormap::{HashDelta, OrMap};
use crate::crdt::orset::{MemberChange, OrSet, SetDelta};
use crate::crdt::zset::ZSet;
use crate::crdt::{Dot, Hlc, KeyDelta, KeyState, Kind};

/// The value `state` reads as; `None` when it holds no value, or holds a
/// stream (whose RDB encoding is not built yet; callers refuse those
/// first, see [`is_stream`]).
pub fn value_of(state: &KeyState) -> Option<RdbValue> {
    Some(match state.kind()? {
        Kind::String => RdbValue::String(state.string_value()?.to_bytes().to_vec()),
        Kind::List => {
            let list = state.typed::<List>().ok()??;
            RdbValue::List(list.values().map(<[u8]>::to_vec).collect())
        }
        Kind::Set => {
            let set = state.typed::<OrSet>().ok()??;
            RdbValue::Set(set.members().map(<[u8]>::to_vec).collect())
        }
        Kind::Hash => {
            let map = state.typed::<OrMap>().ok()??;
            RdbValue::Hash(
                map.entries()
                    .map(|(f, v)| (f.to_vec(), v.to_bytes().to_vec()))
                    .collect(),
            )
        }
        Kind::ZSet => {
            let zset = state.typed::<ZSet>().ok()??;
            RdbValue::ZSet(zset.ascending().map(|(m, s)| (m.to_vec(), s)).collect())
        }
        Kind::Stream => return None,
    })
}

/// Whether `state` reads as a stream.
pub fn is_stream(state: &KeyState) -> bool {
    state.kind() == Some(Kind::Stream)
}

/// The delta that gives an empty key `value`, each element under a fresh
/// dot and the whole at `ts` (no TTL: the caller adds one).
pub fn delta_for(value: RdbValue, ts: Hlc, next_dot: &mut impl FnMut() -> Dot) -> KeyDelta {
    let empty = KeyState::new();
    match value {
        RdbValue::String(bytes) => empty.delta_set(
            Bytes::from(bytes),
            ts,
            crate::crdt::TtlChange::Keep,
            next_dot,
        ),
        RdbValue::List(items) => {
            let base = List::default();
            let mut edit = ListEdit::new(&base);
            for item in &items {
                edit.push(End::Right, item, next_dot());
            }
            empty.delta_collection::<List>(edit.finish(), ts, next_dot)
        }
        RdbValue::Set(members) => {
            let changes = members
                .into_iter()
                .map(|member| MemberChange {
                    member: member.into_boxed_slice(),
                    removes: Default::default(),
                    add: Some(next_dot()),
                })
                .collect();
            empty.delta_collection::<OrSet>(SetDelta { changes }, ts, next_dot)
        }
        RdbValue::Hash(pairs) => {
            let base = OrMap::default();
            let changes = pairs
                .into_iter()
                .map(|(field, value)| base.delta_set(&field, Bytes::from(value), ts, next_dot))
                .collect();
            empty.delta_collection::<OrMap>(HashDelta { changes }, ts, next_dot)
        }
        RdbValue::ZSet(pairs) => {
            let scored = pairs.into_iter().map(|(m, s)| (m.into_boxed_slice(), s));
            let delta = ZSet::delta_build(scored, ts, next_dot);
            empty.delta_collection::<ZSet>(delta, ts, next_dot)
        }
    }
}
