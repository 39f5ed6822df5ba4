//! Listpacks (Redis 7's compact sequence: hashes, sorted sets and list
//! nodes): a 6-byte header (total bytes u32 LE, element count u16 LE,
//! 65535 = "count them"), entries, and an end byte `0xFF`. Each entry is
//! an encoding byte (small ints, 13/16/24/32/64-bit ints, or a string of
//! 6/12/32-bit length), its data, then a "backlen" — the entry's own size
//! in 7-bit groups — so it can be walked backwards.
//!
//! The reader checks everything a hostile payload could lie about: the
//! header's total against the blob, each entry's length against the bytes
//! left, every backlen, the count, and the terminator.

use super::{canonical_i64, RdbError};

/// One listpack element: listpacks store integers natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Entry<'_> {
    /// The element as Redis returns it (integers as decimal text).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Entry::Int(n) => n.to_string().into_bytes(),
            Entry::Str(s) => s.to_vec(),
        }
    }
}

const HEADER: usize = 6;
const END: u8 = 0xFF;
/// The count field's "unknown, walk the entries" value.
const COUNT_UNKNOWN: u16 = u16::MAX;

/// Bytes the backlen of an entry of `len` bytes takes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn push_backlen(out: &mut Vec<u8>, len: usize) {
    let size = backlen_size(len);
    // Most significant group first; every byte but the first has the
    // high bit set, so a reader going backwards knows where to stop.
    for k in (0..size).rev() {
        let group = ((len >> (7 * k)) & 127) as u8;
        out.push(if k == size - 1 { group } else { group | 128 });
    }
}

/// Walks every entry of `blob`, which must be one whole listpack.
pub fn parse(blob: &[u8]) -> Result<Vec<Entry<'_>>, RdbError> {
    let bad = || RdbError::Corrupt("listpack");
    if blob.len() < HEADER + 1 {
        return Err(bad());
    }
    let total = u32::from_le_bytes(blob[0..4].try_into().expect("4 bytes")) as usize;
    let count = u16::from_le_bytes(blob[4..6].try_into().expect("2 bytes"));
    if total != blob.len() || blob[total - 1] != END {
        return Err(bad());
    }
    let body = &blob[..total - 1];
    // Every entry takes at least two bytes (encoding + backlen).
    let mut entries = Vec::with_capacity((count as usize).min(body.len() / 2));
    let mut at = HEADER;
    while at < body.len() {
        let start = at;
        let first = body[at];
        let take = |from: usize, n: usize| {
            from.checked_add(n)
                .and_then(|end| body.get(from..end))
                .ok_or_else(bad)
        };
        let entry = match first {
            0x00..=0x7F => {
                at += 1;
                Entry::Int(first as i64)
            }
            0x80..=0xBF => {
                let len = (first & 0x3F) as usize;
                let s = take(at + 1, len)?;
                at += 1 + len;
                Entry::Str(s)
            }
            0xC0..=0xDF => {
                let b = take(at + 1, 1)?[0];
                at += 2;
                let raw = (((first & 0x1F) as i64) << 8) | b as i64;
                Entry::Int(if raw >= 1 << 12 { raw - (1 << 13) } else { raw })
            }
            0xE0..=0xEF => {
                let b = take(at + 1, 1)?[0];
                let len = (((first & 0x0F) as usize) << 8) | b as usize;
                let s = take(at + 2, len)?;
                at += 2 + len;
                Entry::Str(s)
            }
            0xF0 => {
                let len = u32::from_le_bytes(take(at + 1, 4)?.try_into().expect("4")) as usize;
                let s = take(at + 5, len)?;
                at += 5 + len;
                Entry::Str(s)
            }
            0xF1 => {
                let v = i16::from_le_bytes(take(at + 1, 2)?.try_into().expect("2"));
                at += 3;
                Entry::Int(v as i64)
            }
            0xF2 => {
                let b = take(at + 1, 3)?;
                at += 4;
                // Sign-extend the 24 bits through the top of an i32.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                Entry::Int(v as i64)
            }
            0xF3 => {
                let v = i32::from_le_bytes(take(at + 1, 4)?.try_into().expect("4"));
                at += 5;
                Entry::Int(v as i64)
            }
            0xF4 => {
                let v = i64::from_le_bytes(take(at + 1, 8)?.try_into().expect("8"));
                at += 9;
                Entry::Int(v)
            }
            _ => return Err(bad()),
        };
        let len = at - start;
        let mut expected = Vec::with_capacity(5);
        push_backlen(&mut expected, len);
        if take(at, expected.len())? != expected.as_slice() {
            return Err(bad());
        }
        at += expected.len();
        entries.push(entry);
    }
    if count != COUNT_UNKNOWN && count as usize != entries.len() {
        return Err(bad());
    }
    Ok(entries)
}

/// Builds a listpack, encoding each element as Redis's `lpAppend` does
/// (canonical integers as integers, the smallest form that fits).
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&[0; HEADER]);
        Writer { out, count: 0 }
    }

    /// Bytes the listpack would take if finished now.
    pub fn len(&self) -> usize {
        self.out.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes `element` would add.
    pub fn entry_size(element: &[u8]) -> usize {
        let body = match canonical_i64(element) {
            Some(n) => int_body_len(n),
            None => str_header_len(element.len()) + element.len(),
        };
        body + backlen_size(body)
    }

    /// Bytes the integer `n` would add (`lpAppendInteger`).
    pub fn int_entry_size(n: i64) -> usize {
        let body = int_body_len(n);
        body + backlen_size(body)
    }

    /// Appends the integer `n` in its smallest form (`lpAppendInteger`).
    pub fn push_i64(&mut self, n: i64) {
        let start = self.out.len();
        self.push_int(n);
        let len = self.out.len() - start;
        push_backlen(&mut self.out, len);
        self.count += 1;
    }

    pub fn push(&mut self, element: &[u8]) {
        let start = self.out.len();
        match canonical_i64(element) {
            Some(n) => self.push_int(n),
            None => {
                let len = element.len();
                if len < 64 {
                    self.out.push(0x80 | len as u8);
                } else if len < 4096 {
                    self.out.push(0xE0 | (len >> 8) as u8);
                    self.out.push((len & 0xff) as u8);
                } else {
                    self.out.push(0xF0);
                    self.out.extend_from_slice(&(len as u32).to_le_bytes());
                }
                self.out.extend_from_slice(element);
            }
        }
        let len = self.out.len() - start;
        push_backlen(&mut self.out, len);
        self.count += 1;
    }

    fn push_int(&mut self, n: i64) {
        if (0..=127).contains(&n) {
            self.out.push(n as u8);
        } else if (-4096..=4095).contains(&n) {
            let v = if n < 0 { (1 << 13) + n } else { n } as u16;
            self.out.push(0xC0 | (v >> 8) as u8);
            self.out.push((v & 0xff) as u8);
        } else if let Ok(v) = i16::try_from(n) {
            self.out.push(0xF1);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&n) {
            self.out.push(0xF2);
            self.out.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
        } else if let Ok(v) = i32::try_from(n) {
            self.out.push(0xF3);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            self.out.push(0xF4);
            self.out.extend_from_slice(&n.to_le_bytes());
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(END);
        let total = self.out.len() as u32;
        self.out[0..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(COUNT_UNKNOWN);
        self.out[4..6].copy_from_slice(&count.to_le_bytes());
        self.out
    }
}

fn int_body_len(n: i64) -> usize {
    if (0..=127).contains(&n) {
        1
    } else if (-4096..=4095).contains(&n) {
        2
    } else if i16::try_from(n).is_ok() {
        3
    } else if (-(1 << 23)..(1 << 23)).contains(&n) {
        4
    } else if i32::try_from(n).is_ok() {
        5
    } else {
        9
    }
}

fn str_header_len(len: usize) -> usize {
    if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(elements: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut w = Writer::new();
        let mut predicted = 7;
        for e in elements {
            predicted += Writer::entry_size(e);
            w.push(e);
        }
        assert_eq!(w.len(), predicted);
        let blob = w.finish();
        assert_eq!(blob.len(), predicted);
        parse(&blob)
            .unwrap()
            .into_iter()
            .map(Entry::to_vec)
            .collect()
    }

    #[test]
    fn every_encoding_round_trips() {
        let long_a = vec![b'a'; 100];
        let long_b = vec![b'b'; 5000];
        let elements: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"4096",
            b"-32768",
            b"32767",
            b"8388607",
            b"-8388608",
            b"8388608",
            b"2147483647",
            b"-2147483649",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"",
            b"hello",
            b"007",
            b"-0",
            b"+1",
            &long_a,
            &long_b,
        ];
        assert_eq!(
            round_trip(&elements),
            elements.iter().map(|e| e.to_vec()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn many_entries_use_the_unknown_count() {
        let items: Vec<Vec<u8>> = (0..70_000).map(|i| format!("x{i}").into_bytes()).collect();
        let mut w = Writer::new();
        for i in &items {
            w.push(i);
        }
        let blob = w.finish();
        assert_eq!(&blob[4..6], &[0xff, 0xff]);
        assert_eq!(parse(&blob).unwrap().len(), 70_000);
    }

    #[test]
    fn integers_use_the_smallest_encoding() {
        let mut w = Writer::new();
        w.push(b"100");
        assert_eq!(w.finish(), vec![9, 0, 0, 0, 1, 0, 100, 1, 0xff]);
    }

    #[test]
    fn forged_listpacks_are_refused() {
        let mut w = Writer::new();
        w.push(b"hello");
        w.push(b"12345");
        let good = w.finish();
        assert!(parse(&good).is_ok());
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let mut wrong_count = good.clone();
        wrong_count[4] = 3;
        assert!(parse(&wrong_count).is_err());
        let mut wrong_backlen = good.clone();
        wrong_backlen[12] ^= 1;
        assert!(parse(&wrong_backlen).is_err());
        let mut long_claim = good.clone();
        long_claim[6] = 0xF0;
        assert!(parse(&long_claim).is_err());
    }
}
