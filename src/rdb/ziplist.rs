//! The pre-7.0 compact encodings cordis reads (and never writes): the
//! ziplist (`zlbytes` u32, `zltail` u32, count u16, entries each led by
//! the previous entry's length and an encoding, then `0xFF`) and the even
//! older zipmap of hashes. Both are walked with every length, offset and
//! count checked against the blob.

use super::listpack::Entry;
use super::RdbError;

const HEADER: usize = 10;
const END: u8 = 0xFF;

/// Walks every entry of `blob`, which must be one whole ziplist.
pub fn parse(blob: &[u8]) -> Result<Vec<Entry<'_>>, RdbError> {
    let bad = || RdbError::Corrupt("ziplist");
    if blob.len() < HEADER + 1 {
        return Err(bad());
    }
    let total = u32::from_le_bytes(blob[0..4].try_into().expect("4")) as usize;
    let tail = u32::from_le_bytes(blob[4..8].try_into().expect("4")) as usize;
    let count = u16::from_le_bytes(blob[8..10].try_into().expect("2"));
    if total != blob.len() || blob[total - 1] != END {
        return Err(bad());
    }
    let body = &blob[..total - 1];
    let take = |from: usize, n: usize| {
        from.checked_add(n)
            .and_then(|end| body.get(from..end))
            .ok_or_else(bad)
    };
    // Every entry takes at least two bytes (prevlen + encoding).
    let mut entries = Vec::with_capacity((count as usize).min(body.len() / 2));
    let mut at = HEADER;
    let mut previous_len = 0usize;
    let mut last_start = HEADER;
    while at < body.len() {
        let start = at;
        let prevlen = if body[at] < 254 {
            at += 1;
            body[start] as usize
        } else if body[at] == 254 {
            at += 5;
            u32::from_le_bytes(take(start + 1, 4)?.try_into().expect("4")) as usize
        } else {
            return Err(bad());
        };
        if prevlen != previous_len {
            return Err(bad());
        }
        let enc = *body.get(at).ok_or_else(bad)?;
        let entry = match enc >> 6 {
            0 => {
                let len = (enc & 0x3F) as usize;
                let s = take(at + 1, len)?;
                at += 1 + len;
                Entry::Str(s)
            }
            1 => {
                let b = take(at + 1, 1)?[0];
                let len = (((enc & 0x3F) as usize) << 8) | b as usize;
                let s = take(at + 2, len)?;
                at += 2 + len;
                Entry::Str(s)
            }
            2 => {
                if enc != 0x80 {
                    return Err(bad());
                }
                let len = u32::from_be_bytes(take(at + 1, 4)?.try_into().expect("4")) as usize;
                let s = take(at + 5, len)?;
                at += 5 + len;
                Entry::Str(s)
            }
            _ => match enc {
                0xC0 => {
                    let v = i16::from_le_bytes(take(at + 1, 2)?.try_into().expect("2"));
                    at += 3;
                    Entry::Int(v as i64)
                }
                0xD0 => {
                    let v = i32::from_le_bytes(take(at + 1, 4)?.try_into().expect("4"));
                    at += 5;
                    Entry::Int(v as i64)
                }
                0xE0 => {
                    let v = i64::from_le_bytes(take(at + 1, 8)?.try_into().expect("8"));
                    at += 9;
                    Entry::Int(v)
                }
                0xF0 => {
                    let b = take(at + 1, 3)?;
                    at += 4;
                    Entry::Int((i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as i64)
                }
                0xFE => {
                    let v = take(at + 1, 1)?[0] as i8;
                    at += 2;
                    Entry::Int(v as i64)
                }
                0xF1..=0xFD => {
                    at += 1;
                    Entry::Int((enc & 0x0F) as i64 - 1)
                }
                _ => return Err(bad()),
            },
        };
        previous_len = at - start;
        last_start = start;
        entries.push(entry);
    }
    let tail_ok = if entries.is_empty() {
        tail == HEADER
    } else {
        tail == last_start
    };
    if !tail_ok || (count != u16::MAX && count as usize != entries.len()) {
        return Err(bad());
    }
    Ok(entries)
}

/// A zipmap's field and value.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Walks a zipmap (`count` byte, then `len key len free value [free
/// bytes]` pairs, then `0xFF`) into its field/value pairs.
pub fn parse_zipmap(blob: &[u8]) -> Result<Vec<Pair<'_>>, RdbError> {
    let bad = || RdbError::Corrupt("zipmap");
    let take = |from: usize, n: usize| {
        from.checked_add(n)
            .and_then(|end| blob.get(from..end))
            .ok_or_else(bad)
    };
    let read_len = |at: usize| -> Result<(usize, usize), RdbError> {
        match *blob.get(at).ok_or_else(bad)? {
            b if b < 254 => Ok((b as usize, 1)),
            254 => Ok((
                u32::from_le_bytes(take(at + 1, 4)?.try_into().expect("4")) as usize,
                5,
            )),
            _ => Err(bad()),
        }
    };
    let count = *blob.first().ok_or_else(bad)?;
    let mut pairs = Vec::with_capacity((count as usize).min(blob.len() / 3));
    let mut at = 1;
    loop {
        if *blob.get(at).ok_or_else(bad)? == END {
            at += 1;
            break;
        }
        let (key_len, size) = read_len(at)?;
        let key = take(at + size, key_len)?;
        at += size + key_len;
        let (value_len, size) = read_len(at)?;
        let free = *blob.get(at + size).ok_or_else(bad)? as usize;
        let value = take(at + size + 1, value_len)?;
        at += size + 1 + value_len;
        take(at, free)?;
        at += free;
        pairs.push((key, value));
    }
    if at != blob.len() || (count < 254 && count as usize != pairs.len()) {
        return Err(bad());
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ziplist of "hello", 12, 300, -5 as Redis 6 builds it.
    fn sample() -> Vec<u8> {
        let entries: Vec<Vec<u8>> = vec![
            [&[0x05u8][..], b"hello"].concat(),
            vec![0xFD],             // 12: immediate
            vec![0xC0, 0x2C, 0x01], // 300: int16
            vec![0xFE, 0xFB],       // -5: int8
        ];
        let mut body = Vec::new();
        let mut prev = 0;
        let mut tail = 0;
        for e in &entries {
            tail = HEADER + body.len();
            body.push(prev as u8);
            body.extend_from_slice(e);
            prev = e.len() + 1;
        }
        let total = HEADER + body.len() + 1;
        let mut blob = Vec::new();
        blob.extend_from_slice(&(total as u32).to_le_bytes());
        blob.extend_from_slice(&(tail as u32).to_le_bytes());
        blob.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        blob.extend_from_slice(&body);
        blob.push(END);
        blob
    }

    #[test]
    fn ziplist_entries_decode() {
        let blob = sample();
        let got: Vec<Vec<u8>> = parse(&blob)
            .unwrap()
            .into_iter()
            .map(Entry::to_vec)
            .collect();
        assert_eq!(
            got,
            vec![
                b"hello".to_vec(),
                b"12".to_vec(),
                b"300".to_vec(),
                b"-5".to_vec()
            ]
        );
    }

    #[test]
    fn forged_ziplists_are_refused() {
        let good = sample();
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let mut bad_tail = good.clone();
        bad_tail[4] = 11;
        assert!(parse(&bad_tail).is_err());
        let mut bad_prevlen = good.clone();
        bad_prevlen[HEADER + 7] = 9;
        assert!(parse(&bad_prevlen).is_err());
    }

    #[test]
    fn zipmap_pairs_decode_and_forgeries_fail() {
        let blob = [
            2, 1, b'a', 1, 0, b'x', 2, b'b', b'c', 3, 1, b'y', b'z', b'w', 0xEE, 0xFF,
        ];
        let pairs = parse_zipmap(&blob).unwrap();
        assert_eq!(
            pairs,
            vec![(&b"a"[..], &b"x"[..]), (&b"bc"[..], &b"yzw"[..])]
        );
        for cut in 0..blob.len() {
            assert!(parse_zipmap(&blob[..cut]).is_err(), "truncated at {cut}");
        }
    }
}
