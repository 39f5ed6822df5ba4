//! The stream CRDT: a grow-only log of immutable entries keyed by stream
//! IDs, with observed-remove deletes (XDEL, trimming), a small metadata
//! register and consumer groups.
//!
//! - **Entries** are never changed once added, so adds never conflict: the
//!   state is a dot store of `(id, dot) → fields`. XDEL and trimming remove
//!   the dots they observed; the node's causal context remembers them, so a
//!   removed entry that arrives late from a peer is not re-added, and no
//!   per-entry tombstone is kept.
//! - **IDs**: an auto ID (`*`) takes `ms` from the write's HLC (which has
//!   moved past every timestamp the node has seen) and a `seq` whose low 16
//!   bits are the origin's [`origin_tag`], so two regions adding in one
//!   millisecond make different IDs, and each node's IDs strictly increase.
//!   All nodes order entries by `(id, dot)`: one order everywhere. Explicit
//!   IDs are checked against the local last ID only; two regions that add
//!   the same explicit ID concurrently both keep their entry (one ID, two
//!   entries, ordered by dot): nothing acknowledged is lost.
//! - **Metadata** (last ID, entries added, max deleted ID) is a multi-value
//!   register: each write replaces the versions it observed, concurrent
//!   versions combine by maximum (and the last ID is never below the top
//!   entry).
//! - **Consumer groups** replicate as one register per group name: each
//!   group write (XREADGROUP, XACK, XCLAIM…) replaces the versions it
//!   observed with the whole new group state; of concurrent versions the
//!   largest `(hlc, dot)` is the group. So within a region delivery is
//!   exactly as in Redis, and across regions a concurrent write may undo
//!   another region's deliveries or acks: entries are then delivered again
//!   (at-least-once). A destroy removes only the versions it observed.
//!
//! - **Arrival order** is node-local: an entry that arrives from a peer with
//!   an ID below what this node has already shown (a "late" entry) is
//!   remembered with its place in this node's arrival order, so XREAD from
//!   a last-seen ID also returns late entries that arrived after it
//!   ([`Stream::read_after`]). That index is not replicated, not compared
//!   and not saved: with no late entries arrival order is ID order.
//!
//! See docs/semantics.md ("Streams").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::element::{ElementCrdt, Kind};

/// A stream entry ID, `ms-seq`, ordered as numbers.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID, `None` past the last possible one.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_add(1).map(|ms| StreamId::new(ms, 0)),
        }
    }

    /// The previous ID, `None` before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_sub(1).map(|ms| StreamId::new(ms, u64::MAX)),
        }
    }

    pub fn render(self) -> Bytes {
        Bytes::from(format!("{}-{}", self.ms, self.seq))
    }
}

/// Bits of an auto ID's `seq` that name the origin.
pub const ORIGIN_BITS: u32 = 16;

/// The 16-bit origin tag a replica puts in the low bits of its auto IDs'
/// `seq` (the replica id folded onto 16 bits).
pub fn origin_tag(replica: ReplicaId) -> u64 {
    let r = replica.0;
    (r ^ (r >> 16) ^ (r >> 32) ^ (r >> 48)) & ((1 << ORIGIN_BITS) - 1)
}

/// The auto ID (`*`) replica with tag `tag` gives at HLC milliseconds
/// `ms` after `last`: `ms-(n<<16|tag)` with the smallest `n` that is
/// past `last`. `None` when no ID is left.
pub fn auto_id(ms: u64, tag: u64, last: StreamId) -> Option<StreamId> {
    if ms > last.ms {
        return Some(StreamId::new(ms, tag));
    }
    let mut n = last.seq >> ORIGIN_BITS;
    if (n << ORIGIN_BITS | tag) <= last.seq {
        n += 1;
    }
    if n < (1 << (64 - ORIGIN_BITS)) {
        return Some(StreamId::new(last.ms, n << ORIGIN_BITS | tag));
    }
    last.ms.checked_add(1).map(|ms| StreamId::new(ms, tag))
}

/// An entry's field-value pairs, flat, packed into one allocation: each
/// item is its length as a LEB128 varint, then its bytes. A stream holds
/// many small immutable entries, so one allocation per entry (and none
/// kept alive in the network read buffer the arguments came in) is what
/// keeps its memory near Redis's. Serialized exactly as a sequence of
/// byte strings, so snapshots and peers see the same format as before.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Fields(Box<[u8]>);

impl Fields {
    /// Packs `items` (copied).
    pub fn pack<T: AsRef<[u8]>>(items: &[T]) -> Fields {
        let size: usize = items.iter().map(|i| i.as_ref().len() + 10).sum();
        let mut out = Vec::with_capacity(size);
        for item in items {
            let item = item.as_ref();
            let mut n = item.len();
            loop {
                let low = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    out.push(low);
                    break;
                }
                out.push(low | 0x80);
            }
            out.extend_from_slice(item);
        }
        Fields(out.into_boxed_slice())
    }

    /// The items in order.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter { rest: &self.0 }
    }

    /// The items, copied out.
    pub fn to_vec(&self) -> Vec<Bytes> {
        self.iter().map(Bytes::copy_from_slice).collect()
    }

    /// How many items (fields and values together).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of the packed form (its one allocation).
    pub fn packed_len(&self) -> usize {
        self.0.len()
    }
}

/// The items of a [`Fields`].
pub struct FieldsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let mut len = 0usize;
        let mut shift = 0;
        let mut at = 0;
        loop {
            let byte = *self.rest.get(at)?;
            at += 1;
            len |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        // `pack` is the only writer, so the length always fits.
        let item = self.rest.get(at..at + len)?;
        self.rest = &self.rest[at + len..];
        Some(item)
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        struct Item<'a>(&'a [u8]);
        impl Serialize for Item<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for item in self.iter() {
            seq.serialize_element(&Item(item))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<Bytes>::deserialize(deserializer)?;
        Ok(Fields::pack(&items))
    }
}

/// The metadata a stream write leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub last_id: StreamId,
    pub entries_added: u64,
    pub max_deleted: StreamId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaVersion {
    pub dot: Dot,
    pub meta: Meta,
}

/// One pending (delivered, not acknowledged) entry of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub consumer: Bytes,
    pub delivered_ms: u64,
    pub deliveries: u64,
}

/// A consumer group's whole state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub last_id: StreamId,
    /// `None`: unknown (Redis's -1, after a SETID to an arbitrary ID).
    pub entries_read: Option<u64>,
    pub pending: BTreeMap<StreamId, Pending>,
    /// Consumer name → last time it was seen (ms).
    pub consumers: BTreeMap<Bytes, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVersion {
    pub dot: Dot,
    pub ts: Hlc,
    pub group: Box<Group>,
}

/// One group's change: drop the observed versions, then add `add`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChange {
    pub name: Bytes,
    #[serde(deserialize_with = "super::bounded::smallvec")]
    pub removes: SmallVec<[Dot; 1]>,
    pub add: Option<GroupVersion>,
}

/// An entry added by a write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryAdd {
    pub id: StreamId,
    pub dot: Dot,
    pub fields: Fields,
}

/// A stream write's delta. Applied removes first, then adds, so a delta
/// made of consecutive writes (MULTI) applies as they did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDelta {
    pub adds: Vec<EntryAdd>,
    pub removes: Vec<(StreamId, Dot)>,
    pub meta_removes: Vec<Dot>,
    pub meta_adds: Vec<MetaVersion>,
    pub groups: Vec<GroupChange>,
}

/// Entries sharing one ID (normally one), sorted by dot.
type Claimants = SmallVec<[(Dot, Fields); 1]>;

/// The stream state; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "StreamRepr", from = "StreamRepr")]
pub struct Stream {
    entries: BTreeMap<StreamId, Claimants>,
    count: usize,
    metas: SmallVec<[MetaVersion; 1]>,
    groups: BTreeMap<Bytes, SmallVec<[GroupVersion; 1]>>,
    arrivals: Arrivals,
}

/// A place in this node's arrival order of a stream's entries. An entry
/// that arrived above everything shown before it (every local XADD, and
/// peers' entries in the common case) sits at `(its id, 0)`; a late entry
/// at `(the high-water ID when it arrived, n)` with `n` counting late
/// arrivals from 1, i.e. right after what had arrived before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadPos {
    after: StreamId,
    late: u64,
}

/// This node's arrival bookkeeping (see the module docs). Equal for every
/// pair of states, because it describes the node, not the replicated value.
#[derive(Clone, Debug, Default)]
struct Arrivals {
    /// The largest ID (entry or last ID) this node has had: an entry at
    /// or below it arrives late.
    high_water: StreamId,
    late: Option<Box<LateEntries>>,
    /// Entries owed to consumer groups (see [`OwedEntries`]); `None`
    /// while none are.
    owed: Option<Box<OwedEntries>>,
    /// The last few IDs whose entries left after arriving on time (see
    /// [`Arrivals::arrive`]); `None` until one does.
    // Boxed: one word per stream while nothing has departed (most never).
    #[allow(clippy::box_collection)]
    departed: Option<Box<VecDeque<StreamId>>>,
}

/// How many on-time departures [`Arrivals`] remembers.
const DEPARTED_KEPT: usize = 16;

/// Per consumer group, the entries that arrived on this node after the
/// group's last-delivered ID had already passed their IDs (a peer's entry
/// made during a partition): `>` would never reach them by ID, so
/// XREADGROUP hands them out first. Node-local like the rest of
/// [`Arrivals`]. XREADGROUP settles what it hands out while it computes
/// its write (through `&Stream`), hence the lock; it is only ever taken
/// under the key's write access, so it is never contended.
#[derive(Debug, Default)]
struct OwedEntries(parking_lot::Mutex<BTreeMap<Bytes, BTreeSet<StreamId>>>);

impl Clone for OwedEntries {
    fn clone(&self) -> Self {
        OwedEntries(parking_lot::Mutex::new(self.0.lock().clone()))
    }
}

#[derive(Clone, Debug, Default)]
struct LateEntries {
    counter: u64,
    by_pos: BTreeMap<ReadPos, StreamId>,
    by_id: HashMap<StreamId, ReadPos>,
}

impl PartialEq for Arrivals {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Arrivals {
    /// Records the arrival of an entry under a new `id`.
    fn arrive(&mut self, id: StreamId) {
        if id > self.high_water {
            self.high_water = id;
            return;
        }
        // The same ID was here on time and was deleted (two regions added
        // one explicit ID; one deleted its claim before the other's
        // arrived): a reader may hold that ID as its cursor from the first
        // claim, so the new claim takes the ID's on-time place. Placed
        // late, the cursor would map to the late place and skip every
        // on-time entry that came between.
        if let Some(departed) = &mut self.departed {
            if let Some(at) = departed.iter().position(|d| *d == id) {
                departed.remove(at);
                return;
            }
        }
        let late = self.late.get_or_insert_with(Box::default);
        late.counter += 1;
        let pos = ReadPos {
            after: self.high_water,
            late: late.counter,
        };
        late.by_pos.insert(pos, id);
        late.by_id.insert(id, pos);
    }

    /// Forgets the arrival of `id`, whose last entry is gone.
    fn depart(&mut self, id: StreamId) {
        let mut was_late = false;
        if let Some(late) = &mut self.late {
            if let Some(pos) = late.by_id.remove(&id) {
                late.by_pos.remove(&pos);
                was_late = true;
            }
            if late.by_id.is_empty() {
                self.late = None;
            }
        }
        if !was_late {
            let departed = self.departed.get_or_insert_with(Box::default);
            if departed.len() == DEPARTED_KEPT {
                departed.pop_front();
            }
            departed.push_back(id);
        }
        if let Some(owed) = &mut self.owed {
            let map = owed.0.get_mut();
            map.retain(|_, ids| {
                ids.remove(&id);
                !ids.is_empty()
            });
            if map.is_empty() {
                self.owed = None;
            }
        }
    }

    /// Records that `id` is owed to `group`.
    fn owe(&mut self, group: &Bytes, id: StreamId) {
        let owed = self.owed.get_or_insert_with(Box::default);
        owed.0
            .get_mut()
            .entry(group.clone())
            .or_default()
            .insert(id);
    }

    /// Forgets what is owed to `group` (destroyed).
    fn forget_group(&mut self, group: &[u8]) {
        if let Some(owed) = &mut self.owed {
            let map = owed.0.get_mut();
            map.remove(group);
            if map.is_empty() {
                self.owed = None;
            }
        }
    }

    fn raise(&mut self, id: StreamId) {
        self.high_water = self.high_water.max(id);
    }
}

/// Why entries are removed. As in Redis, only XDEL raises the
/// max-deleted-entry-id: a trim removes a prefix, which leaves no gap
/// behind the first entry, so a group's read counter stays estimable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    Delete,
    Trim,
}

impl Stream {
    /// XLEN.
    pub fn entry_count(&self) -> usize {
        self.count
    }

    /// The combined metadata of the live versions (see the module docs).
    pub fn meta(&self) -> Meta {
        let mut out = Meta::default();
        for m in &self.metas {
            out.last_id = out.last_id.max(m.meta.last_id);
            out.entries_added = out.entries_added.max(m.meta.entries_added);
            out.max_deleted = out.max_deleted.max(m.meta.max_deleted);
        }
        if let Some((top, _)) = self.entries.last_key_value() {
            out.last_id = out.last_id.max(*top);
        }
        out.entries_added = out.entries_added.max(self.count as u64);
        out
    }

    pub fn last_id(&self) -> StreamId {
        self.meta().last_id
    }

    pub fn first_id(&self) -> Option<StreamId> {
        self.entries.first_key_value().map(|(id, _)| *id)
    }

    pub fn top_id(&self) -> Option<StreamId> {
        self.entries.last_key_value().map(|(id, _)| *id)
    }

    /// Entries with IDs in `[lo, hi]`, ascending (reverse for descending).
    pub fn range(
        &self,
        lo: StreamId,
        hi: StreamId,
    ) -> impl DoubleEndedIterator<Item = (StreamId, &Fields)> {
        let range = (lo <= hi).then(|| {
            self.entries
                .range((Bound::Included(lo), Bound::Included(hi)))
        });
        range
            .into_iter()
            .flatten()
            .flat_map(|(id, claims)| claims.iter().map(move |(_, f)| (*id, f)))
    }

    /// The entry with `id`, if any (the first claimant).
    pub fn get(&self, id: StreamId) -> Option<&Fields> {
        self.entries
            .get(&id)
            .and_then(|c| c.first())
            .map(|(_, f)| f)
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.entries.contains_key(&id)
    }

    /// The group named `name`: the largest `(ts, dot)` live version.
    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name).and_then(|versions| {
            versions
                .iter()
                .max_by_key(|v| (v.ts, v.dot))
                .map(|v| &*v.group)
        })
    }

    /// The entries owed to `group` on this node, ascending: they arrived
    /// after the group's last-delivered ID had passed them (see
    /// [`OwedEntries`]). Each stays owed until [`Stream::settle_owed`].
    pub fn owed_to(&self, group: &[u8]) -> Vec<StreamId> {
        (self.arrivals.owed.as_ref())
            .and_then(|o| {
                o.0.lock()
                    .get(group)
                    .map(|ids| ids.iter().copied().collect())
            })
            .unwrap_or_default()
    }

    /// Marks owed entries of `group` as handed out (node-local).
    pub fn settle_owed(&self, group: &[u8], ids: &[StreamId]) {
        if ids.is_empty() {
            return;
        }
        if let Some(owed) = &self.arrivals.owed {
            let mut map = owed.0.lock();
            if let Some(set) = map.get_mut(group) {
                for id in ids {
                    set.remove(id);
                }
                if set.is_empty() {
                    map.remove(group);
                }
            }
        }
    }

    /// Each group's last-delivered ID as this node has it now, before a
    /// delta or join brings entries in (nothing when there are no groups).
    /// Only groups that passed `lowest` (the smallest arrived ID) count,
    /// so the usual XADD, above every group, allocates nothing here.
    fn passed_by_groups(&self, lowest: Option<StreamId>) -> Vec<(Bytes, StreamId)> {
        let Some(lowest) = lowest else {
            return Vec::new();
        };
        self.groups()
            .filter(|(_, group)| group.last_id >= lowest)
            .map(|(name, group)| (name.clone(), group.last_id))
            .collect()
    }

    /// After entries `arrived` on this node (new IDs): each one that a
    /// group's `>` had already passed here (`passed`, taken before the
    /// entries came) is owed to that group, unless the group now has it
    /// pending (its region delivered it). Only groups that existed here
    /// before count: a stream that arrives whole (a full sync, RENAME,
    /// RESTORE) owes nothing, its group state already says what was read.
    fn owe_to_groups(&mut self, arrived: &[StreamId], passed: &[(Bytes, StreamId)]) {
        let mut owed = Vec::new();
        for (name, last_id) in passed {
            let pending = self.group(name).map(|g| &g.pending);
            for &id in arrived {
                if id <= *last_id && !pending.is_some_and(|p| p.contains_key(&id)) {
                    owed.push((name.clone(), id));
                }
            }
        }
        for (name, id) in owed {
            self.arrivals.owe(&name, id);
        }
    }

    /// Every group, by name.
    pub fn groups(&self) -> impl Iterator<Item = (&Bytes, &Group)> {
        self.groups.iter().filter_map(|(name, versions)| {
            versions
                .iter()
                .max_by_key(|v| (v.ts, v.dot))
                .map(|v| (name, &*v.group))
        })
    }

    /// The read position just after the entry `id`: its own place in the
    /// arrival order, or where an on-time entry `id` would be.
    pub fn position_after(&self, id: StreamId) -> ReadPos {
        let late = self.arrivals.late.as_ref();
        late.and_then(|l| l.by_id.get(&id).copied())
            .unwrap_or(ReadPos { after: id, late: 0 })
    }

    /// The ID that stands for "after everything that has arrived" (what
    /// XREAD's `$` means): the most recent late entry when it came after
    /// the last on-time one, else the high-water ID.
    pub fn end_cursor(&self) -> StreamId {
        let high = self.arrivals.high_water;
        let last_late = (self.arrivals.late.as_ref()).and_then(|l| l.by_pos.last_key_value());
        match last_late {
            Some((pos, id)) if pos.after == high => *id,
            _ => high,
        }
    }

    /// Up to `limit` entries that arrived on this node after `pos`, in
    /// arrival order (which is ID order unless late entries arrived).
    pub fn read_after(&self, pos: ReadPos, limit: usize) -> Vec<(StreamId, &Fields)> {
        let late = self.arrivals.late.as_deref();
        let is_late = |id: &StreamId| late.is_some_and(|l| l.by_id.contains_key(id));
        let mut on_time = (self
            .entries
            .range((Bound::Excluded(pos.after), Bound::Unbounded)))
        .map(|(id, _)| *id)
        .filter(|id| !is_late(id))
        .peekable();
        let mut late_ones = (late.into_iter())
            .flat_map(|l| l.by_pos.range((Bound::Excluded(pos), Bound::Unbounded)))
            .peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let take_late = match (on_time.peek(), late_ones.peek()) {
                (None, None) => break,
                (Some(&id), Some((lpos, _))) => **lpos < ReadPos { after: id, late: 0 },
                (on, _) => on.is_none(),
            };
            let id = if take_late {
                *late_ones.next().expect("peeked").1
            } else {
                on_time.next().expect("peeked")
            };
            let claims = self.entries.get(&id).into_iter().flatten();
            out.extend(claims.take(limit - out.len()).map(|(_, f)| (id, f)));
        }
        out
    }

    // ----- deltas -----

    fn meta_delta(&self, meta: Meta, dot: Dot, delta: &mut StreamDelta) {
        delta.meta_removes.extend(self.metas.iter().map(|m| m.dot));
        delta.meta_adds.clear();
        delta.meta_adds.push(MetaVersion { dot, meta });
    }

    /// XADD of `fields` under `id` (already checked against the last ID).
    pub fn delta_add(
        &self,
        id: StreamId,
        fields: Fields,
        next_dot: &mut dyn FnMut() -> Dot,
    ) -> StreamDelta {
        self.delta_add_trimming(id, fields, &[], next_dot)
    }

    /// XADD with a trim: adds `fields` under `id` and removes the
    /// entries `victims` (which may name `id` itself, e.g. MAXLEN 0), in
    /// one delta with one metadata version, so no copy of the stream is
    /// needed to see the state after the add.
    pub fn delta_add_trimming(
        &self,
        id: StreamId,
        fields: Fields,
        victims: &[StreamId],
        next_dot: &mut dyn FnMut() -> Dot,
    ) -> StreamDelta {
        let mut delta = StreamDelta::default();
        let mut meta = self.meta();
        meta.last_id = meta.last_id.max(id);
        meta.entries_added += 1;
        let add_dot = next_dot();
        self.collect_removes(victims, Removal::Trim, &mut meta, &mut delta);
        if victims.contains(&id) {
            // Added and trimmed by the same write: the removal observes
            // the add's own dot, so the entry never shows.
            delta.removes.push((id, add_dot));
        }
        delta.adds.push(EntryAdd {
            id,
            dot: add_dot,
            fields,
        });
        self.meta_delta(meta, next_dot(), &mut delta);
        delta
    }

    /// Puts the removal of every existing entry among `ids` into `delta`
    /// (every claimant observed); an XDEL also raises `meta`'s max
    /// deleted ID. Returns how many distinct IDs existed.
    fn collect_removes(
        &self,
        ids: &[StreamId],
        removal: Removal,
        meta: &mut Meta,
        delta: &mut StreamDelta,
    ) -> usize {
        let mut found = 0;
        let mut seen: HashSet<StreamId> = HashSet::new();
        for id in ids {
            let Some(claims) = self.entries.get(id) else {
                continue;
            };
            if !seen.insert(*id) {
                continue;
            }
            found += 1;
            if removal == Removal::Delete {
                meta.max_deleted = meta.max_deleted.max(*id);
            }
            delta.removes.extend(claims.iter().map(|(d, _)| (*id, *d)));
        }
        found
    }

    /// An empty stream's creation (XGROUP CREATE MKSTREAM, XADD with a
    /// trim to nothing).
    pub fn delta_touch(&self, next_dot: &mut dyn FnMut() -> Dot) -> StreamDelta {
        let mut delta = StreamDelta::default();
        self.meta_delta(self.meta(), next_dot(), &mut delta);
        delta
    }

    /// Removes the entries with `ids` (XDEL, trimming): every claimant
    /// observed. Returns how many IDs existed.
    pub fn delta_remove(
        &self,
        ids: &[StreamId],
        removal: Removal,
        next_dot: &mut dyn FnMut() -> Dot,
    ) -> (StreamDelta, usize) {
        let mut delta = StreamDelta::default();
        let mut meta = self.meta();
        let found = self.collect_removes(ids, removal, &mut meta, &mut delta);
        if found > 0 {
            self.meta_delta(meta, next_dot(), &mut delta);
        }
        (delta, found)
    }

    /// XSETID: replaces the metadata.
    pub fn delta_set_meta(&self, meta: Meta, next_dot: &mut dyn FnMut() -> Dot) -> StreamDelta {
        let mut delta = StreamDelta::default();
        self.meta_delta(meta, next_dot(), &mut delta);
        delta
    }

    /// A group write: `group: None` destroys it.
    pub fn delta_group(
        &self,
        name: &[u8],
        group: Option<Group>,
        ts: Hlc,
        next_dot: &mut dyn FnMut() -> Dot,
    ) -> StreamDelta {
        let removes = self
            .groups
            .get(name)
            .map(|v| v.iter().map(|g| g.dot).collect())
            .unwrap_or_default();
        StreamDelta {
            groups: vec![GroupChange {
                name: Bytes::copy_from_slice(name),
                removes,
                add: group.map(|g| GroupVersion {
                    dot: next_dot(),
                    ts,
                    group: Box::new(g),
                }),
            }],
            ..StreamDelta::default()
        }
    }

    /// Adds a claimant of `id`; true when `id` was not there before.
    fn insert_entry(&mut self, id: StreamId, dot: Dot, fields: Fields) -> bool {
        let claims = self.entries.entry(id).or_default();
        let new_id = claims.is_empty();
        if let Err(at) = claims.binary_search_by_key(&dot, |c| c.0) {
            claims.insert(at, (dot, fields));
            self.count += 1;
        }
        new_id
    }

    fn remove_entry(&mut self, id: StreamId, dot: Dot) {
        if let Some(claims) = self.entries.get_mut(&id) {
            if let Ok(at) = claims.binary_search_by_key(&dot, |c| c.0) {
                claims.remove(at);
                self.count -= 1;
            }
            if claims.is_empty() {
                self.entries.remove(&id);
                self.arrivals.depart(id);
            }
        }
    }

    fn insert_meta(&mut self, version: MetaVersion) {
        if let Err(at) = self.metas.binary_search_by_key(&version.dot, |m| m.dot) {
            self.metas.insert(at, version);
        }
    }

    fn insert_group(&mut self, name: &Bytes, version: GroupVersion) {
        let versions = self.groups.entry(name.clone()).or_default();
        if let Err(at) = versions.binary_search_by_key(&version.dot, |g| g.dot) {
            versions.insert(at, version);
        }
    }
}

/// The replicated form: flat lists, rebuilt (sorted, counted, duplicate
/// dots dropped) on arrival, since a peer's bytes are untrusted.
#[derive(Serialize, Deserialize)]
struct StreamRepr {
    entries: Vec<(StreamId, Dot, Fields)>,
    metas: Vec<MetaVersion>,
    groups: Vec<(Bytes, Vec<GroupVersion>)>,
}

impl From<Stream> for StreamRepr {
    fn from(s: Stream) -> Self {
        StreamRepr {
            entries: (s.entries.into_iter())
                .flat_map(|(id, c)| c.into_iter().map(move |(d, f)| (id, d, f)))
                .collect(),
            metas: s.metas.into_vec(),
            groups: (s.groups.into_iter())
                .map(|(n, v)| (n, v.into_vec()))
                .collect(),
        }
    }
}

impl From<StreamRepr> for Stream {
    fn from(repr: StreamRepr) -> Self {
        let mut out = Stream::default();
        for (id, dot, fields) in repr.entries {
            out.insert_entry(id, dot, fields);
        }
        for m in repr.metas {
            out.insert_meta(m);
        }
        for (name, versions) in repr.groups {
            for v in versions {
                out.insert_group(&name, v);
            }
        }
        // Arrival order is not carried: a loaded stream starts in ID order.
        out.arrivals.raise(out.last_id());
        out
    }
}

/// Keeps `mine`'s items whose dot `theirs` holds or `their_ctx` never saw,
/// plus `theirs`' items unknown to `mine` and unseen by `my_ctx`.
fn join_dotted<T: Clone>(
    mine: &[T],
    theirs: &[T],
    my_ctx: &CausalContext,
    their_ctx: &CausalContext,
    dot: impl Fn(&T) -> Dot,
) -> Vec<T> {
    let has = |items: &[T], d: Dot| items.iter().any(|i| dot(i) == d);
    let mut out: Vec<T> = mine
        .iter()
        .filter(|i| has(theirs, dot(i)) || !their_ctx.contains(dot(i)))
        .cloned()
        .collect();
    out.extend(
        theirs
            .iter()
            .filter(|i| !has(mine, dot(i)) && !my_ctx.contains(dot(i)))
            .cloned(),
    );
    out.sort_by_key(|i| dot(i));
    out
}

impl ElementCrdt for Stream {
    type Delta = StreamDelta;
    const KIND: Kind = Kind::Stream;

    fn apply(&mut self, delta: &StreamDelta, ctx: &mut CausalContext) {
        for &(id, dot) in &delta.removes {
            ctx.insert(dot);
            self.remove_entry(id, dot);
        }
        let mut arrived: SmallVec<[StreamId; 2]> = SmallVec::new();
        for add in &delta.adds {
            if !ctx.contains(add.dot) {
                ctx.insert(add.dot);
                if self.insert_entry(add.id, add.dot, add.fields.clone()) {
                    self.arrivals.arrive(add.id);
                    arrived.push(add.id);
                }
            }
        }
        // Entry adds leave the groups as they were: what they had passed.
        let passed = self.passed_by_groups(arrived.iter().min().copied());
        for &dot in &delta.meta_removes {
            ctx.insert(dot);
            self.metas.retain(|m| m.dot != dot);
        }
        for m in &delta.meta_adds {
            if !ctx.contains(m.dot) {
                ctx.insert(m.dot);
                self.insert_meta(m.clone());
            }
        }
        for change in &delta.groups {
            for &dot in &change.removes {
                ctx.insert(dot);
                if let Some(versions) = self.groups.get_mut(&change.name) {
                    versions.retain(|g| g.dot != dot);
                }
            }
            if let Some(add) = &change.add {
                if !ctx.contains(add.dot) {
                    ctx.insert(add.dot);
                    self.insert_group(&change.name, add.clone());
                }
            }
            if self.groups.get(&change.name).is_some_and(|v| v.is_empty()) {
                self.groups.remove(&change.name);
                self.arrivals.forget_group(&change.name);
            }
        }
        // After the groups: a delta that delivers the entry it adds (a
        // peer's batch) leaves it pending, not owed.
        self.owe_to_groups(&arrived, &passed);
        let last = self.last_id();
        self.arrivals.raise(last);
    }

    fn join(&self, self_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self {
        let mut out = Stream::default();
        let mut ids: Vec<StreamId> = self.entries.keys().copied().collect();
        ids.extend(other.entries.keys().copied());
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let none = Claimants::new();
            let mine = self.entries.get(&id).unwrap_or(&none);
            let theirs = other.entries.get(&id).unwrap_or(&none);
            for (dot, fields) in join_dotted(mine, theirs, self_ctx, other_ctx, |c| c.0) {
                out.insert_entry(id, dot, fields);
            }
        }
        out.metas = join_dotted(&self.metas, &other.metas, self_ctx, other_ctx, |m| m.dot).into();
        let mut names: Vec<&Bytes> = self.groups.keys().chain(other.groups.keys()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let none = SmallVec::<[GroupVersion; 1]>::new();
            let mine = self.groups.get(name).unwrap_or(&none);
            let theirs = other.groups.get(name).unwrap_or(&none);
            let kept = join_dotted(mine, theirs, self_ctx, other_ctx, |g| g.dot);
            if !kept.is_empty() {
                out.groups.insert(name.clone(), kept.into());
            }
        }
        // This node's arrival order continues: what the join brought in
        // arrives now, in ID order.
        out.arrivals = self.arrivals.clone();
        let gone: Vec<StreamId> = (out.arrivals.late.as_ref())
            .map(|l| {
                l.by_id
                    .keys()
                    .copied()
                    .filter(|id| !out.entries.contains_key(id))
                    .collect()
            })
            .unwrap_or_default();
        for id in gone {
            out.arrivals.depart(id);
        }
        let arrived: Vec<StreamId> = (out.entries.keys())
            .filter(|id| !self.entries.contains_key(id))
            .copied()
            .collect();
        for &id in &arrived {
            out.arrivals.arrive(id);
        }
        let destroyed: Vec<Bytes> = (out.arrivals.owed.as_ref())
            .map(|o| {
                o.0.lock()
                    .keys()
                    .filter(|g| !out.groups.contains_key(*g))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for group in destroyed {
            out.arrivals.forget_group(&group);
        }
        out.owe_to_groups(
            &arrived,
            &self.passed_by_groups(arrived.iter().min().copied()),
        );
        let last = out.last_id();
        out.arrivals.raise(last);
        out
    }

    fn len(&self) -> usize {
        self.count
    }

    /// A stream exists with no entries (trimmed to nothing, or made by
    /// XGROUP CREATE MKSTREAM) as long as a metadata version or a group
    /// is live.
    fn is_empty(&self) -> bool {
        self.count == 0 && self.metas.is_empty() && self.groups.is_empty()
    }

    fn is_blank(&self) -> bool {
        self.is_empty()
    }

    fn delta_clear(&self) -> StreamDelta {
        StreamDelta {
            adds: Vec::new(),
            removes: self
                .entries
                .iter()
                .flat_map(|(id, c)| c.iter().map(move |(d, _)| (*id, *d)))
                .collect(),
            meta_removes: self.metas.iter().map(|m| m.dot).collect(),
            meta_adds: Vec::new(),
            groups: self
                .groups
                .iter()
                .map(|(name, v)| GroupChange {
                    name: name.clone(),
                    removes: v.iter().map(|g| g.dot).collect(),
                    add: None,
                })
                .collect(),
        }
    }

    fn for_each_dot(&self, visit: &mut dyn FnMut(Dot)) {
        for claims in self.entries.values() {
            claims.iter().for_each(|c| visit(c.0));
        }
        self.metas.iter().for_each(|m| visit(m.dot));
        for versions in self.groups.values() {
            versions.iter().for_each(|g| visit(g.dot));
        }
    }

    fn delta_remove_covered(&self, seen: &VersionVector) -> StreamDelta {
        let mut delta = self.delta_clear();
        delta.removes.retain(|(_, d)| seen.covers(*d));
        delta.meta_removes.retain(|d| seen.covers(*d));
        for g in &mut delta.groups {
            g.removes.retain(|d| seen.covers(*d));
        }
        delta.groups.retain(|g| !g.removes.is_empty());
        delta
    }

    fn delta_copy(&self, ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> StreamDelta {
        let mut delta = StreamDelta::default();
        for (id, claims) in &self.entries {
            for (_, fields) in claims {
                delta.adds.push(EntryAdd {
                    id: *id,
                    dot: next_dot(),
                    fields: fields.clone(),
                });
            }
        }
        delta.meta_adds.push(MetaVersion {
            dot: next_dot(),
            meta: self.meta(),
        });
        for (name, group) in self.groups() {
            delta.groups.push(GroupChange {
                name: name.clone(),
                removes: SmallVec::new(),
                add: Some(GroupVersion {
                    dot: next_dot(),
                    ts,
                    group: Box::new(group.clone()),
                }),
            });
        }
        delta
    }

    fn delta_then(delta: &mut StreamDelta, next: StreamDelta) {
        delta.adds.extend(next.adds);
        delta.removes.extend(next.removes);
        delta.meta_removes.extend(next.meta_removes);
        delta.meta_adds.extend(next.meta_adds);
        delta.groups.extend(next.groups);
    }

    fn delta_is_empty(delta: &StreamDelta) -> bool {
        delta.adds.is_empty()
            && delta.removes.is_empty()
            && delta.meta_removes.is_empty()
            && delta.meta_adds.is_empty()
            && delta.groups.is_empty()
    }

    fn delta_bytes(delta: &StreamDelta) -> usize {
        let fields: usize = (delta.adds.iter())
            .map(|a| a.fields.packed_len() + 16)
            .sum();
        let groups: usize = (delta.groups.iter())
            .filter_map(|g| g.add.as_ref())
            .map(|g| 64 + g.group.pending.len() * 64 + g.group.consumers.len() * 48)
            .sum();
        std::mem::size_of::<StreamDelta>()
            + delta.adds.len() * std::mem::size_of::<EntryAdd>()
            + delta.removes.len() * 32
            + delta.meta_adds.len() * std::mem::size_of::<MetaVersion>()
            + fields
            + groups
    }

    fn digest(&self, feed: &mut dyn FnMut(&[u8])) {
        for (id, fields) in self.range(StreamId::MIN, StreamId::MAX) {
            feed(&id.ms.to_be_bytes());
            feed(&id.seq.to_be_bytes());
            for f in fields.iter() {
                feed(&(f.len() as u64).to_be_bytes());
                feed(f);
            }
        }
        let meta = self.meta();
        feed(&meta.last_id.ms.to_be_bytes());
        feed(&meta.last_id.seq.to_be_bytes());
        for (name, group) in self.groups() {
            feed(name);
            feed(&group.last_id.ms.to_be_bytes());
            feed(&group.last_id.seq.to_be_bytes());
            for (id, p) in &group.pending {
                feed(&id.ms.to_be_bytes());
                feed(&id.seq.to_be_bytes());
                feed(&p.consumer);
            }
            for name in group.consumers.keys() {
                feed(name);
            }
        }
    }

    fn encoding(&self) -> &'static str {
        "stream"
    }

    super::element::collection_glue!(Stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_fields_round_trip_and_keep_the_wire_format_of_a_byte_string_list() {
        let items = vec![
            Bytes::from_static(b"field"),
            Bytes::new(),
            Bytes::from(vec![7u8; 300]),
        ];
        let packed = Fields::pack(&items);
        assert_eq!(packed.to_vec(), items);
        assert_eq!(packed.len(), 3);
        let config = bincode::config::standard();
        let as_list = bincode::serde::encode_to_vec(&items, config).unwrap();
        let as_fields = bincode::serde::encode_to_vec(&packed, config).unwrap();
        assert_eq!(as_fields, as_list);
        let (back, _): (Fields, usize) =
            bincode::serde::decode_from_slice(&as_list, config).unwrap();
        assert_eq!(back, packed);
    }
}
