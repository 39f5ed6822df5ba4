//! Streams in Redis's RDB encoding: a radix tree of listpacks holding the
//! entries, the stream's metadata, then its consumer groups with their
//! pending entries and consumers.
//!
//! Layout (`rdb.c`, `t_stream.c`), written as Redis 7.0 writes type 19
//! (`STREAM_LISTPACKS_2`) and read in types 15 (Redis 5/6), 19 and 21
//! (7.2, with a consumer active-time):
//!
//! - the number of listpacks, then per listpack its master ID (16 bytes,
//!   ms then seq, big-endian) and the listpack as an RDB string. A
//!   listpack opens with its master entry — live count, deleted count,
//!   the master field count and names, a 0 — and then each entry as
//!   flags, ms and seq offsets from the master ID, then either the field
//!   count and each field followed by its value, or (flag `SAMEFIELDS`,
//!   the master's fields) the values only, and last the count of
//!   listpack items the entry took;
//! - the number of live entries, the last ID, and (type 19+) the first
//!   ID, the largest deleted ID and the count of entries ever added;
//! - the groups: name, last-delivered ID, (type 19+) entries read (−1 as
//!   2^64−1: unknown), the PEL (raw ID, delivery time as a little-endian
//!   i64, delivery count), then the consumers: name, seen time, (type 21)
//!   active time, and the IDs of the PEL entries they own.
//!
//! The writer packs the live entries into listpacks as a Redis that had
//! them XADDed in order would (a new listpack past `stream-node-max-bytes`
//! or `stream-node-max-entries`, the master fields those of the first
//! entry); it never writes deleted entries, which a Redis that XDELed
//! keeps as flagged items until their listpack empties.
//!
//! The reader checks every listpack whole as Redis's deep sanitization
//! does (`streamValidateListpackIntegrity`), and also what a Redis-written
//! payload always satisfies and the stream relies on: strictly increasing
//! IDs, the live count of each listpack and of the stream, a last ID not
//! below the top entry, unique group and consumer names, and every
//! pending entry owned by exactly one consumer.

use std::collections::HashSet;

use super::listpack::{self, Entry};
use super::value::{push_length, push_string, Reader};
use super::{canonical_i64, types, EncodeOptions, RdbError};
use crate::crdt::stream::StreamId;

/// One live entry: its ID and its field-value items, flat.
pub type StreamEntry = (StreamId, Vec<Vec<u8>>);

/// A stream in plain form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamValue {
    /// Live entries, IDs strictly ascending.
    pub entries: Vec<StreamEntry>,
    pub last_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    /// By name, ascending.
    pub groups: Vec<GroupValue>,
}

/// A consumer group in plain form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupValue {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    /// `None`: unknown (Redis's −1).
    pub entries_read: Option<u64>,
    /// By ID, ascending; each names a consumer of `consumers`.
    pub pending: Vec<PendingValue>,
    /// By name, ascending.
    pub consumers: Vec<ConsumerValue>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingValue {
    pub id: StreamId,
    pub consumer: Vec<u8>,
    pub delivered_ms: u64,
    pub deliveries: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerValue {
    pub name: Vec<u8>,
    pub seen_ms: u64,
}

/// Entry flags (`t_stream.c`).
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// A listpack's size cap whatever `stream-node-max-bytes` says.
const LISTPACK_MAX_SIZE: usize = 1 << 30;

fn corrupt() -> RdbError {
    RdbError::Corrupt("stream")
}

fn push_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

fn raw_id(bytes: &[u8]) -> StreamId {
    StreamId::new(
        u64::from_be_bytes(bytes[..8].try_into().expect("8")),
        u64::from_be_bytes(bytes[8..16].try_into().expect("8")),
    )
}

fn push_len64(out: &mut Vec<u8>, n: u64) {
    push_length(out, n as usize);
}

/// One listpack being laid out: its master ID and fields, its entries.
struct Node<'a> {
    master: StreamId,
    master_fields: Vec<&'a [u8]>,
    entries: Vec<&'a StreamEntry>,
    /// Bytes of the listpack but for the live-count item, which grows.
    bytes_but_count: usize,
}

impl<'a> Node<'a> {
    fn new(first: &'a StreamEntry) -> Self {
        let master_fields: Vec<&[u8]> = first.1.iter().step_by(2).map(Vec::as_slice).collect();
        let int = listpack::Writer::int_entry_size;
        let bytes_but_count = 7 // header and end byte
            + int(0) // deleted
            + int(master_fields.len() as i64)
            + master_fields.iter().map(|f| listpack::Writer::entry_size(f)).sum::<usize>()
            + int(0); // master terminator
        Node {
            master: first.0,
            master_fields,
            entries: Vec::new(),
            bytes_but_count,
        }
    }

    /// `lpBytes` of the listpack as it stands.
    fn bytes(&self) -> usize {
        self.bytes_but_count + listpack::Writer::int_entry_size(self.entries.len() as i64)
    }

    fn same_fields(&self, items: &[Vec<u8>]) -> bool {
        let fields = items.iter().step_by(2);
        fields.len() == self.master_fields.len()
            && fields.zip(&self.master_fields).all(|(f, m)| f == m)
    }

    fn push(&mut self, entry: &'a StreamEntry) {
        let (id, items) = entry;
        let int = listpack::Writer::int_entry_size;
        let pairs = items.len().div_ceil(2);
        let same = self.same_fields(items);
        let mut size = int(if same { FLAG_SAMEFIELDS } else { 0 })
            + int(id.ms.wrapping_sub(self.master.ms) as i64)
            + int(id.seq.wrapping_sub(self.master.seq) as i64);
        for pair in items.chunks(2) {
            if !same {
                size += listpack::Writer::entry_size(&pair[0]);
            }
            size += listpack::Writer::entry_size(value_of_pair(pair));
        }
        if !same {
            size += int(pairs as i64);
        }
        size += int(lp_count(pairs, same));
        self.bytes_but_count += size;
        self.entries.push(entry);
    }

    fn finish(&self) -> Vec<u8> {
        let mut lp = listpack::Writer::new();
        lp.push_i64(self.entries.len() as i64);
        lp.push_i64(0);
        lp.push_i64(self.master_fields.len() as i64);
        for field in &self.master_fields {
            lp.push(field);
        }
        lp.push_i64(0);
        for (id, items) in &self.entries {
            let same = self.same_fields(items);
            let pairs = items.len().div_ceil(2);
            lp.push_i64(if same { FLAG_SAMEFIELDS } else { 0 });
            lp.push_i64(id.ms.wrapping_sub(self.master.ms) as i64);
            lp.push_i64(id.seq.wrapping_sub(self.master.seq) as i64);
            if !same {
                lp.push_i64(pairs as i64);
            }
            for pair in items.chunks(2) {
                if !same {
                    lp.push(&pair[0]);
                }
                lp.push(value_of_pair(pair));
            }
            lp.push_i64(lp_count(pairs, same));
        }
        lp.finish()
    }
}

/// A pair's value; an odd item list (never made by XADD) is written
/// with an empty last value, so the writer never emits what its reader
/// refuses.
fn value_of_pair(pair: &[Vec<u8>]) -> &[u8] {
    pair.get(1).map_or(&[][..], Vec::as_slice)
}

/// Listpack items an entry takes: flags and the two ID offsets, the
/// values, and the field count and names unless it has the master's.
fn lp_count(pairs: usize, same: bool) -> i64 {
    let pairs = pairs as i64;
    if same {
        3 + pairs
    } else {
        3 + 2 * pairs + 1
    }
}

/// Splits the entries into listpacks as Redis's XADD fills them.
fn layout<'a>(entries: &'a [StreamEntry], options: &EncodeOptions) -> Vec<Node<'a>> {
    let max_bytes = match options.stream_node_max_bytes {
        0 => LISTPACK_MAX_SIZE,
        n => n.min(LISTPACK_MAX_SIZE),
    };
    let max_entries = options.stream_node_max_entries;
    let mut nodes: Vec<Node<'a>> = Vec::new();
    for entry in entries {
        let element_bytes: usize = entry.1.iter().map(Vec::len).sum();
        let full = nodes.last().is_none_or(|node| {
            node.bytes() + element_bytes >= max_bytes
                || (max_entries > 0 && node.entries.len() >= max_entries)
        });
        if full {
            nodes.push(Node::new(entry));
        }
        nodes.last_mut().expect("a node").push(entry);
    }
    nodes
}

/// Appends the body of a type-19 stream (what follows the type byte).
pub(crate) fn encode(stream: &StreamValue, options: &EncodeOptions, out: &mut Vec<u8>) {
    let nodes = layout(&stream.entries, options);
    push_length(out, nodes.len());
    for node in &nodes {
        let mut key = Vec::with_capacity(16);
        push_id(&mut key, node.master);
        push_string(out, &key, options.compress);
        push_string(out, &node.finish(), options.compress);
    }
    push_length(out, stream.entries.len());
    let first = stream.entries.first().map_or(StreamId::MIN, |e| e.0);
    for id in [stream.last_id, first, stream.max_deleted] {
        push_len64(out, id.ms);
        push_len64(out, id.seq);
    }
    push_len64(out, stream.entries_added);
    push_length(out, stream.groups.len());
    for group in &stream.groups {
        push_string(out, &group.name, options.compress);
        push_len64(out, group.last_id.ms);
        push_len64(out, group.last_id.seq);
        push_len64(out, group.entries_read.unwrap_or(u64::MAX));
        push_length(out, group.pending.len());
        for p in &group.pending {
            push_id(out, p.id);
            out.extend_from_slice(&(p.delivered_ms as i64).to_le_bytes());
            push_len64(out, p.deliveries);
        }
        push_length(out, group.consumers.len());
        for consumer in &group.consumers {
            push_string(out, &consumer.name, options.compress);
            out.extend_from_slice(&(consumer.seen_ms as i64).to_le_bytes());
            let owned: Vec<&PendingValue> = (group.pending.iter())
                .filter(|p| p.consumer == consumer.name)
                .collect();
            push_length(out, owned.len());
            for p in owned {
                push_id(out, p.id);
            }
        }
    }
}

/// A listpack item read as an integer, as `lpGetIntegerIfValid` reads it.
fn int_item(item: Option<&Entry<'_>>) -> Result<i64, RdbError> {
    match item.ok_or_else(corrupt)? {
        Entry::Int(n) => Ok(*n),
        Entry::Str(s) => canonical_i64(s).ok_or_else(corrupt),
    }
}

/// A count item: an integer that is not negative.
fn count_item(item: Option<&Entry<'_>>) -> Result<usize, RdbError> {
    usize::try_from(int_item(item)?).map_err(|_| corrupt())
}

/// Reads one listpack's entries (checked whole), appending the live ones
/// to `out`; `last` is the largest ID read so far, deleted ones included.
fn read_listpack(
    master: StreamId,
    blob: &[u8],
    last: &mut Option<StreamId>,
    out: &mut Vec<StreamEntry>,
) -> Result<(), RdbError> {
    let items = listpack::parse(blob)?;
    if items.is_empty() {
        return Err(corrupt());
    }
    let mut at = 0;
    let mut next = || {
        let item = items.get(at);
        at += 1;
        item
    };
    let live = count_item(next())?;
    let deleted = count_item(next())?;
    let master_count = count_item(next())?;
    let mut master_fields = Vec::new();
    for _ in 0..master_count {
        master_fields.push(next().ok_or_else(corrupt)?.to_vec());
    }
    if int_item(next())? != 0 {
        return Err(corrupt());
    }
    let total = live.checked_add(deleted).ok_or_else(corrupt)?;
    let mut live_seen = 0;
    for _ in 0..total {
        let flags = int_item(next())?;
        let ms = master.ms.wrapping_add(int_item(next())? as u64);
        let seq = master.seq.wrapping_add(int_item(next())? as u64);
        let id = StreamId::new(ms, seq);
        if last.is_some_and(|l| id <= l) || id < master {
            return Err(corrupt());
        }
        *last = Some(id);
        let same = flags & FLAG_SAMEFIELDS != 0;
        let mut items_out = Vec::new();
        let pairs = if same {
            for field in &master_fields {
                let value = next().ok_or_else(corrupt)?.to_vec();
                items_out.push(field.clone());
                items_out.push(value);
            }
            master_count
        } else {
            // Each field followed by its value.
            let pairs = count_item(next())?;
            for _ in 0..pairs {
                items_out.push(next().ok_or_else(corrupt)?.to_vec());
                items_out.push(next().ok_or_else(corrupt)?.to_vec());
            }
            pairs
        };
        let expected = lp_count(pairs, same);
        if int_item(next())? != expected {
            return Err(corrupt());
        }
        if flags & FLAG_DELETED == 0 {
            live_seen += 1;
            out.push((id, items_out));
        }
    }
    if at != items.len() || live_seen != live {
        return Err(corrupt());
    }
    Ok(())
}

/// Redis's `streamEstimateDistanceFromFirstEverEntry`: a group's entries
/// read when the payload (type 15) does not say.
fn estimate_entries_read(s: &StreamValue, id: StreamId) -> Option<u64> {
    if s.entries_added == 0 {
        return Some(0);
    }
    let length = s.entries.len() as u64;
    if length == 0 && id <= s.last_id {
        return Some(s.entries_added);
    }
    if id == s.last_id {
        return Some(s.entries_added);
    } else if id > s.last_id {
        return None;
    }
    let first = s.entries.first().map_or(StreamId::MIN, |e| e.0);
    if s.max_deleted == StreamId::MIN || s.max_deleted < first {
        if id < first {
            return Some(s.entries_added - length);
        } else if id == first {
            return Some(s.entries_added - length + 1);
        }
    }
    None
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId, RdbError> {
    Ok(StreamId::new(r.length()?, r.length()?))
}

fn read_time(r: &mut Reader<'_>) -> Result<u64, RdbError> {
    Ok(r.i64_le()?.max(0) as u64)
}

/// Reads a stream body of type `type_byte` (15, 19 or 21).
pub(crate) fn decode(type_byte: u8, r: &mut Reader<'_>) -> Result<StreamValue, RdbError> {
    let v2 = type_byte >= types::STREAM_LISTPACKS_2;
    let v3 = type_byte >= types::STREAM_LISTPACKS_3;
    let mut s = StreamValue::default();
    let nodes = r.count()?;
    let mut last = None;
    let mut previous_key = None;
    for _ in 0..nodes {
        let key = r.string()?;
        if key.len() != 16 {
            return Err(corrupt());
        }
        let master = raw_id(&key);
        if previous_key.is_some_and(|p| master <= p) {
            return Err(corrupt());
        }
        previous_key = Some(master);
        let blob = r.string()?;
        read_listpack(master, &blob, &mut last, &mut s.entries)?;
    }
    let length = r.length()?;
    if length != s.entries.len() as u64 {
        return Err(corrupt());
    }
    s.last_id = read_id(r)?;
    if v2 {
        let _first_id = read_id(r)?; // derived from the entries
        s.max_deleted = read_id(r)?;
        s.entries_added = r.length()?;
    } else {
        s.entries_added = length;
    }
    let top = s.entries.last().map(|e| e.0);
    if top.is_some_and(|t| s.last_id < t) || s.entries_added < length || s.max_deleted > s.last_id {
        return Err(corrupt());
    }
    let group_count = r.count()?;
    let mut names = HashSet::new();
    for _ in 0..group_count {
        let name = r.string()?.into_owned();
        if !names.insert(name.clone()) {
            return Err(RdbError::Duplicate);
        }
        let last_id = read_id(r)?;
        let entries_read = if v2 {
            let n = r.length()?;
            (n as i64 >= 0).then_some(n)
        } else {
            estimate_entries_read(&s, last_id)
        };
        let mut group = GroupValue {
            name,
            last_id,
            entries_read,
            ..GroupValue::default()
        };
        let pel = r.count()?;
        for _ in 0..pel {
            let id = raw_id(r.bytes(16)?);
            let delivered_ms = read_time(r)?;
            let deliveries = r.length()?;
            group.pending.push(PendingValue {
                id,
                consumer: Vec::new(),
                delivered_ms,
                deliveries,
            });
        }
        group.pending.sort_by_key(|p| p.id);
        if group.pending.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(RdbError::Duplicate);
        }
        // Each PEL entry's owner, by index into the consumers read.
        let mut owners: Vec<Option<usize>> = vec![None; group.pending.len()];
        let consumers = r.count()?;
        let mut consumer_names = HashSet::new();
        for index in 0..consumers {
            let name = r.string()?.into_owned();
            if !consumer_names.insert(name.clone()) {
                return Err(RdbError::Duplicate);
            }
            let seen_ms = read_time(r)?;
            if v3 {
                read_time(r)?; // active time: not kept
            }
            let owned = r.count()?;
            for _ in 0..owned {
                let id = raw_id(r.bytes(16)?);
                let at = (group.pending.binary_search_by_key(&id, |p| p.id))
                    .map_err(|_| RdbError::Corrupt("consumer PEL entry not in the group PEL"))?;
                if owners[at].replace(index).is_some() {
                    return Err(RdbError::Corrupt("PEL entry owned twice"));
                }
                group.pending[at].consumer = name.clone();
            }
            group.consumers.push(ConsumerValue { name, seen_ms });
        }
        if owners.iter().any(Option::is_none) {
            return Err(RdbError::Corrupt("PEL entry without a consumer"));
        }
        group.consumers.sort_by(|a, b| a.name.cmp(&b.name));
        s.groups.push(group);
    }
    s.groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{decode_value, dump_payload, encode_value, parse_dump_payload, RdbValue};

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    fn items(pairs: &[(&str, &str)]) -> Vec<Vec<u8>> {
        (pairs.iter())
            .flat_map(|(f, v)| [f.as_bytes().to_vec(), v.as_bytes().to_vec()])
            .collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A stream with several listpacks, changing field sets, groups with
    /// pending entries, a consumer with none, and an unknown entries-read.
    fn sample() -> StreamValue {
        let mut entries = Vec::new();
        for i in 0..250u64 {
            let fields = if i % 7 == 3 {
                items(&[("other", &i.to_string()), ("n", "-12")])
            } else {
                items(&[("field", &format!("value {i}"))])
            };
            entries.push((id(1000 + i / 3, i % 3), fields));
        }
        let pending = |ms, seq, consumer: &str| PendingValue {
            id: id(ms, seq),
            consumer: consumer.as_bytes().to_vec(),
            delivered_ms: 1_700_000_000_000 + ms,
            deliveries: seq + 1,
        };
        StreamValue {
            entries,
            last_id: id(5000, 0),
            max_deleted: id(900, 0),
            entries_added: 260,
            groups: vec![
                GroupValue {
                    name: b"g1".to_vec(),
                    last_id: id(1010, 0),
                    entries_read: Some(31),
                    pending: vec![pending(1000, 0, "alice"), pending(1005, 2, "bob")],
                    consumers: vec![
                        ConsumerValue {
                            name: b"alice".to_vec(),
                            seen_ms: 1_700_000_000_123,
                        },
                        ConsumerValue {
                            name: b"bob".to_vec(),
                            seen_ms: 5,
                        },
                        ConsumerValue {
                            name: b"idle".to_vec(),
                            seen_ms: 0,
                        },
                    ],
                },
                GroupValue {
                    name: b"g2".to_vec(),
                    last_id: id(2, 0),
                    entries_read: None,
                    ..GroupValue::default()
                },
            ],
        }
    }

    fn options(compress: bool) -> EncodeOptions {
        EncodeOptions {
            compress,
            ..EncodeOptions::default()
        }
    }

    #[test]
    fn streams_round_trip_through_type_19() {
        let value = RdbValue::Stream(Box::new(sample()));
        for compress in [false, true] {
            let (type_byte, body) = encode_value(&value, &options(compress));
            assert_eq!(type_byte, types::STREAM_LISTPACKS_2);
            assert_eq!(decode_value(type_byte, &body).unwrap(), value);
        }
        let empty = RdbValue::Stream(Box::default());
        let (type_byte, body) = encode_value(&empty, &options(true));
        assert_eq!(decode_value(type_byte, &body).unwrap(), empty);
    }

    #[test]
    fn listpacks_split_at_the_node_limits() {
        let s = sample();
        let count = |opts: &EncodeOptions| layout(&s.entries, opts).len();
        let defaults = EncodeOptions::default();
        // 250 short entries: the 100-entry limit splits them.
        assert_eq!(count(&defaults), 3);
        let small = EncodeOptions {
            stream_node_max_bytes: 200,
            ..defaults
        };
        assert!(count(&small) > 10);
        let unlimited = EncodeOptions {
            stream_node_max_bytes: 0,
            stream_node_max_entries: 0,
            ..defaults
        };
        assert_eq!(count(&unlimited), 1);
        for opts in [small, unlimited] {
            let value = RdbValue::Stream(Box::new(s.clone()));
            let (t, body) = encode_value(&value, &opts);
            assert_eq!(decode_value(t, &body).unwrap(), value);
        }
    }

    /// DUMP of a stream in redis-server 7.0.15 (rdbcompression no) after
    /// XADD 1-1..5-1 `f v<i>`, XADD 6-0 `g 100 h -7`, XDEL 2-1, groups
    /// `grp` (from 0, with a consumer `idle`) and `empty` (from $), and
    /// XREADGROUP by alice (2 entries) and bob (1).
    const REDIS_7_PAYLOAD: &str = "130110000000000000000100000000000000014064640000002700050101010101816602000102010001000182763103040103010101000182763203040102010201000182763303040102010301000182763403040102010401000182763503040100010501dfff0202018167026401816802dff9020801ff05060001010201060205656d707479060081ffffffffffffffff000003677270040181ffffffffffffffff03000000000000000100000000000000012918c03aa201000001000000000000000300000000000000012918c03aa201000001000000000000000400000000000000014c18c03aa2010000010305616c6963652918c03aa201000002000000000000000100000000000000010000000000000003000000000000000103626f624c18c03aa201000001000000000000000400000000000000010469646c65e017c03aa2010000000a0073f35ed61a3eb952";

    #[test]
    fn a_redis_7_payload_with_a_deleted_entry_and_groups_decodes() {
        let payload = unhex(REDIS_7_PAYLOAD);
        let Ok(RdbValue::Stream(s)) = parse_dump_payload(&payload, false) else {
            panic!("does not decode");
        };
        let ids: Vec<StreamId> = s.entries.iter().map(|e| e.0).collect();
        assert_eq!(ids, [id(1, 1), id(3, 1), id(4, 1), id(5, 1), id(6, 0)]);
        assert_eq!(s.entries[4].1, items(&[("g", "100"), ("h", "-7")]));
        assert_eq!(s.entries[0].1, items(&[("f", "v1")]));
        assert_eq!(
            (s.last_id, s.max_deleted, s.entries_added),
            (id(6, 0), id(2, 1), 6)
        );
        let names: Vec<&[u8]> = s.groups.iter().map(|g| &g.name[..]).collect();
        assert_eq!(names, [&b"empty"[..], b"grp"]);
        let grp = &s.groups[1];
        assert_eq!((grp.last_id, grp.entries_read), (id(4, 1), None));
        let owners: Vec<(StreamId, &[u8], u64)> = (grp.pending.iter())
            .map(|p| (p.id, &p.consumer[..], p.delivered_ms))
            .collect();
        assert_eq!(
            owners,
            [
                (id(1, 1), &b"alice"[..], 1796281997353),
                (id(3, 1), b"alice", 1796281997353),
                (id(4, 1), b"bob", 1796281997388),
            ]
        );
        let consumers: Vec<(&[u8], u64)> = (grp.consumers.iter())
            .map(|c| (&c.name[..], c.seen_ms))
            .collect();
        assert_eq!(
            consumers,
            [
                (&b"alice"[..], 1796281997353),
                (b"bob", 1796281997388),
                (b"idle", 1796281997280)
            ]
        );
        // Written back without the deleted entry, it reads the same.
        let again = dump_payload(&RdbValue::Stream(s.clone()), &options(false));
        assert_eq!(
            parse_dump_payload(&again, false).unwrap(),
            RdbValue::Stream(s)
        );
    }

    /// The payload of Redis's own test "Loading from legacy (Redis <=
    /// v6.2.x, rdb_ver < 10) persistence" (type 15, LZF-compressed).
    const REDIS_5_PAYLOAD: &[u8] = b"\x0F\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\xC3\x40\x4A\x40\x57\x16\x57\x00\x00\x00\x23\x00\x02\x01\x04\x01\x01\x01\x84\x64\x61\x74\x61\x05\x00\x01\x03\x01\x00\x20\x01\x03\x81\x61\x02\x04\x20\x0A\x00\x01\x40\x0A\x00\x62\x60\x0A\x00\x02\x40\x0A\x00\x63\x60\x0A\x40\x22\x01\x81\x64\x20\x0A\x40\x39\x20\x0A\x00\x65\x60\x0A\x00\x05\x40\x0A\x00\x66\x20\x0A\x00\xFF\x02\x06\x00\x02\x02\x67\x31\x05\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x01\x03\x63\x31\x31\x3E\xF7\x83\x43\x7A\x01\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x02\x67\x32\x00\x00\x00\x00\x09\x00\x3D\x52\xEF\x68\x67\x52\x1D\xFA";

    #[test]
    fn a_redis_5_payload_gets_estimated_counters() {
        let Ok(RdbValue::Stream(s)) = parse_dump_payload(REDIS_5_PAYLOAD, false) else {
            panic!("does not decode");
        };
        let ids: Vec<StreamId> = s.entries.iter().map(|e| e.0).collect();
        assert_eq!(ids, [id(5, 0), id(6, 0)]);
        assert_eq!(
            (s.last_id, s.max_deleted, s.entries_added),
            (id(6, 0), StreamId::MIN, 2)
        );
        let read: Vec<(StreamId, Option<u64>)> = s
            .groups
            .iter()
            .map(|g| (g.last_id, g.entries_read))
            .collect();
        assert_eq!(read, [(id(5, 0), Some(1)), (id(0, 0), Some(0))]);
        assert_eq!(s.groups[0].pending.len(), 4);
    }

    #[test]
    fn hostile_stream_bodies_fail_cleanly() {
        let (t, body) = encode_value(&RdbValue::Stream(Box::new(sample())), &options(false));
        for cut in 0..body.len() {
            assert!(decode_value(t, &body[..cut]).is_err(), "truncated at {cut}");
        }
        // Claimed counts far past the bytes present: refused before any
        // allocation trusts them.
        for claim in [
            vec![0x80, 0xff, 0xff, 0xff, 0xff],
            vec![0x81, 0xff, 0, 0, 0, 0, 0, 0, 0],
        ] {
            let mut hostile = claim.clone();
            hostile.extend_from_slice(&[0; 8]);
            assert!(decode_value(t, &hostile).is_err());
        }
        // An empty stream claiming 2^32 groups, and a group claiming a
        // huge PEL.
        let empty = encode_value(&RdbValue::Stream(Box::default()), &options(false)).1;
        let mut groups = empty[..empty.len() - 1].to_vec();
        groups.extend_from_slice(&[0x80, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode_value(t, &groups).is_err());
        let mut pel = empty[..empty.len() - 1].to_vec();
        pel.extend_from_slice(&[1, 1, b'g', 0, 0, 0, 0x80, 0x10, 0, 0, 0]);
        assert!(decode_value(t, &pel).is_err());
        // The same stream with its length one off, or its last ID below
        // the top entry.
        let value = StreamValue {
            entries: vec![(id(5, 0), items(&[("a", "b")]))],
            last_id: id(5, 0),
            entries_added: 1,
            ..StreamValue::default()
        };
        let (_, good) = encode_value(&RdbValue::Stream(Box::new(value)), &options(false));
        assert!(decode_value(t, &good).is_ok());
        let tail = good.len() - 10; // length, last ID, first, max deleted, added, groups
        let mut wrong_length = good.clone();
        wrong_length[tail] = 2;
        assert!(decode_value(t, &wrong_length).is_err());
        let mut low_last = good.clone();
        low_last[tail + 1] = 4;
        assert!(decode_value(t, &low_last).is_err());
    }

    /// Random truncations, bit flips and byte overwrites of real bodies:
    /// never a panic, and whatever still decodes re-encodes to itself.
    #[test]
    fn mutated_stream_bodies_never_panic() {
        let mut seeds = vec![
            encode_value(&RdbValue::Stream(Box::new(sample())), &options(false)),
            encode_value(&RdbValue::Stream(Box::new(sample())), &options(true)),
        ];
        let redis = unhex(REDIS_7_PAYLOAD);
        seeds.push((redis[0], redis[1..redis.len() - 10].to_vec()));
        seeds.push((
            REDIS_5_PAYLOAD[0],
            REDIS_5_PAYLOAD[1..REDIS_5_PAYLOAD.len() - 10].to_vec(),
        ));
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for round in 0..40_000 {
            let (t, seed) = &seeds[round % seeds.len()];
            let mut body = seed.clone();
            for _ in 0..=(rand() % 3) {
                let at = (rand() as usize) % body.len().max(1);
                match rand() % 3 {
                    0 => body.truncate(at),
                    1 if !body.is_empty() => body[at] ^= 1 << (rand() % 8),
                    _ if !body.is_empty() => body[at] = rand() as u8,
                    _ => {}
                }
            }
            let t = if round % 11 == 0 {
                types::STREAM_LISTPACKS_3
            } else {
                *t
            };
            if let Ok(value) = decode_value(t, &body) {
                decoded += 1;
                let (again_t, again) = encode_value(&value, &options(false));
                assert_eq!(decode_value(again_t, &again).unwrap(), value);
            }
        }
        assert!(decoded > 0, "some mutations (in values) still decode");
    }
}
