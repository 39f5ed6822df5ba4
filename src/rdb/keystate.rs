//! The bridge between a key's CRDT state and a plain [`RdbValue`]: what a
//! key reads as (for DUMP, or an RDB writer), and the delta that gives an
//! empty key a decoded value under fresh dots (RESTORE, or an RDB import).

use bytes::Bytes;

use std::collections::BTreeMap;

use super::stream::{ConsumerValue, GroupValue, PendingValue, StreamEntry, StreamValue};
use super::RdbValue;
use crate::crdt::list::{End, List, ListEdit};
use crate::crdt::ormap::{HashDelta, OrMap};
use crate::crdt::orset::{MemberChange, OrSet, SetDelta};
use crate::crdt::stream::{
    EntryAdd, Fields, Group, GroupChange, GroupVersion, Meta, MetaVersion, Pending, Stream,
    StreamDelta, StreamId,
};
use crate::crdt::zset::ZSet;
use crate::crdt::{Dot, Hlc, KeyDelta, KeyState, Kind};

/// The value `state` reads as; `None` when it holds no value.
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
        Kind::Stream => RdbValue::Stream(Box::new(stream_value(state.typed::<Stream>().ok()??))),
    })
}

/// A stream in plain form. Redis has one entry per ID: of the entries
/// two regions added under one explicit ID concurrently, the first (by
/// dot, as XRANGE lists them) is kept. A consumer that owns pending
/// entries but is missing from its group's consumers (a merge of
/// concurrent group writes can leave one) is written with the latest
/// delivery time of its entries as its seen time, since Redis needs
/// every pending entry owned.
fn stream_value(s: &Stream) -> StreamValue {
    let mut entries: Vec<StreamEntry> = Vec::with_capacity(s.entry_count());
    for (id, fields) in s.range(StreamId::MIN, StreamId::MAX) {
        if entries.last().is_none_or(|(last, _)| *last != id) {
            entries.push((id, fields.iter().map(<[u8]>::to_vec).collect()));
        }
    }
    let meta = s.meta();
    let groups = s
        .groups()
        .map(|(name, g)| {
            let mut consumers: BTreeMap<&[u8], u64> = g
                .consumers
                .iter()
                .map(|(c, seen)| (&c[..], *seen))
                .collect();
            for p in g.pending.values() {
                if !g.consumers.contains_key(&p.consumer) {
                    let seen = consumers.entry(&p.consumer[..]).or_default();
                    *seen = (*seen).max(p.delivered_ms);
                }
            }
            GroupValue {
                name: name.to_vec(),
                last_id: g.last_id,
                entries_read: g.entries_read,
                pending: (g.pending.iter())
                    .map(|(id, p)| PendingValue {
                        id: *id,
                        consumer: p.consumer.to_vec(),
                        delivered_ms: p.delivered_ms,
                        deliveries: p.deliveries,
                    })
                    .collect(),
                consumers: (consumers.into_iter())
                    .map(|(name, seen_ms)| ConsumerValue {
                        name: name.to_vec(),
                        seen_ms,
                    })
                    .collect(),
            }
        })
        .collect();
    StreamValue {
        entries_added: meta.entries_added.max(entries.len() as u64),
        entries,
        last_id: meta.last_id,
        max_deleted: meta.max_deleted,
        groups,
    }
}

/// The stream delta that builds `value` in an empty key: every entry, the
/// metadata and every group under fresh dots, the groups at `ts`.
fn stream_delta(value: StreamValue, ts: Hlc, next_dot: &mut impl FnMut() -> Dot) -> StreamDelta {
    let mut delta = StreamDelta::default();
    for (id, items) in value.entries {
        delta.adds.push(EntryAdd {
            id,
            dot: next_dot(),
            fields: Fields::pack(&items),
        });
    }
    delta.meta_adds.push(MetaVersion {
        dot: next_dot(),
        meta: Meta {
            last_id: value.last_id,
            entries_added: value.entries_added,
            max_deleted: value.max_deleted,
        },
    });
    for g in value.groups {
        let group = Group {
            last_id: g.last_id,
            entries_read: g.entries_read,
            pending: (g.pending.into_iter())
                .map(|p| {
                    let pending = Pending {
                        consumer: Bytes::from(p.consumer),
                        delivered_ms: p.delivered_ms,
                        deliveries: p.deliveries,
                    };
                    (p.id, pending)
                })
                .collect(),
            consumers: (g.consumers.into_iter())
                .map(|c| (Bytes::from(c.name), c.seen_ms))
                .collect(),
        };
        delta.groups.push(GroupChange {
            name: Bytes::from(g.name),
            removes: Default::default(),
            add: Some(GroupVersion {
                dot: next_dot(),
                ts,
                group: Box::new(group),
            }),
        });
    }
    delta
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
        RdbValue::Stream(value) => {
            let delta = stream_delta(*value, ts, next_dot);
            empty.delta_collection::<Stream>(delta, ts, next_dot)
        }
    }
}
