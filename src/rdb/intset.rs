//! Intsets (sets of integers only): encoding width u32 LE (2, 4 or 8
//! bytes), count u32 LE, then the members in strictly ascending order,
//! little-endian. Redis binary-searches them, so the writer sorts and the
//! reader refuses anything unsorted, duplicated or mis-sized.

use super::RdbError;

pub fn parse(blob: &[u8]) -> Result<Vec<i64>, RdbError> {
    let bad = || RdbError::Corrupt("intset");
    if blob.len() < 8 {
        return Err(bad());
    }
    let width = u32::from_le_bytes(blob[0..4].try_into().expect("4")) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().expect("4")) as usize;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width) != Some(blob.len() - 8) {
        return Err(bad());
    }
    let members: Vec<i64> = blob[8..]
        .chunks_exact(width)
        .map(|c| match width {
            2 => i16::from_le_bytes(c.try_into().expect("2")) as i64,
            4 => i32::from_le_bytes(c.try_into().expect("4")) as i64,
            _ => i64::from_le_bytes(c.try_into().expect("8")),
        })
        .collect();
    if members.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad());
    }
    Ok(members)
}

/// The intset of `members` (any order, no duplicates expected) in the
/// narrowest width that holds them all.
pub fn build(members: &mut [i64]) -> Vec<u8> {
    members.sort_unstable();
    let width: usize = if members.iter().all(|&m| i16::try_from(m).is_ok()) {
        2
    } else if members.iter().all(|&m| i32::try_from(m).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + members.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for &m in members.iter() {
        out.extend_from_slice(&m.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_trip() {
        for set in [
            vec![3, -7, 1],
            vec![70_000, -1],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            let mut members = set.clone();
            let blob = build(&mut members);
            let mut sorted = set.clone();
            sorted.sort();
            assert_eq!(parse(&blob).unwrap(), sorted);
        }
        assert_eq!(build(&mut [5, 1])[0], 2);
        assert_eq!(build(&mut [70_000])[0], 4);
    }

    #[test]
    fn forged_intsets_are_refused() {
        let good = build(&mut [1, 2, 3]);
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err());
        }
        let mut unsorted = good.clone();
        unsorted[8] = 9;
        assert!(parse(&unsorted).is_err());
        let mut width = good.clone();
        width[0] = 3;
        assert!(parse(&width).is_err());
        let mut count = good.clone();
        count[7] = 0x80;
        assert!(parse(&count).is_err());
    }
}
