//! LZF, the compression RDB strings use (`RDB_ENC_LZF`): a stream of
//! literal runs (control byte `0..32` = run length − 1) and back
//! references (top three bits = length − 2, seven meaning "one more length
//! byte follows"; the low five bits and the next byte = distance − 1).
//!
//! Decompression is written for hostile input: every read and copy is
//! bounds-checked, and output memory grows only with bytes actually
//! produced, never up front from the length the payload claims.

/// Longest back reference: 7 + 255 extra + 2.
const MAX_REF_LEN: usize = 264;
/// Farthest back reference (13 bits of distance − 1).
const MAX_OFFSET: usize = 1 << 13;
/// Longest literal run.
const MAX_LITERAL: usize = 32;
/// Bytes one input byte can expand to at most (a 3-byte reference to 264
/// bytes): a claimed length beyond this ratio cannot be honest.
pub const MAX_EXPANSION: usize = 88;

/// Decompresses `input` that claims to expand to exactly `expected` bytes;
/// `None` when it is malformed or its length differs.
pub fn decompress(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    if expected > input.len().saturating_mul(MAX_EXPANSION) {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(expected.min(1 << 20));
    let mut at = 0;
    while at < input.len() {
        let ctrl = input[at] as usize;
        at += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let literal = input.get(at..at + run)?;
            if out.len() + run > expected {
                return None;
            }
            out.extend_from_slice(literal);
            at += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(at)? as usize;
                at += 1;
            }
            let low = *input.get(at)? as usize;
            at += 1;
            let distance = ((ctrl & 0x1f) << 8) + low + 1;
            let len = len + 2;
            if distance > out.len() || out.len() + len > expected {
                return None;
            }
            let start = out.len() - distance;
            // Overlapping copies repeat the run, so byte by byte.
            for k in 0..len {
                let byte = out[start + k];
                out.push(byte);
            }
        }
    }
    (out.len() == expected).then_some(out)
}

/// Compresses `input`; `None` when the result would not be shorter than
/// `limit` bytes (Redis stores such strings uncompressed).
pub fn compress(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    const HASH_BITS: u32 = 14;
    let mut table = vec![usize::MAX; 1 << HASH_BITS];
    let hash = |at: usize| {
        let v =
            u32::from(input[at]) << 16 | u32::from(input[at + 1]) << 8 | u32::from(input[at + 2]);
        (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
    };
    let mut out = Vec::with_capacity(limit.min(input.len()));
    let mut literal_start = 0;
    let mut at = 0;
    let flush_literals = |out: &mut Vec<u8>, from: usize, to: usize| {
        for run in input[from..to].chunks(MAX_LITERAL) {
            out.push((run.len() - 1) as u8);
            out.extend_from_slice(run);
        }
    };
    while at + 2 < input.len() {
        let h = hash(at);
        let candidate = table[h];
        table[h] = at;
        if candidate != usize::MAX
            && at - candidate <= MAX_OFFSET
            && input[candidate..candidate + 3] == input[at..at + 3]
        {
            let max_len = MAX_REF_LEN.min(input.len() - at);
            let mut len = 3;
            while len < max_len && input[candidate + len] == input[at + len] {
                len += 1;
            }
            flush_literals(&mut out, literal_start, at);
            let distance = at - candidate - 1;
            let code = len - 2;
            if code < 7 {
                out.push(((code << 5) | (distance >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (distance >> 8)) as u8);
                out.push((code - 7) as u8);
            }
            out.push((distance & 0xff) as u8);
            at += len;
            literal_start = at;
        } else {
            at += 1;
        }
        if out.len() >= limit {
            return None;
        }
    }
    flush_literals(&mut out, literal_start, input.len());
    (out.len() < limit).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_text_round_trips() {
        let text =
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcabcabcabcabcabc hello hello hello"
                .repeat(20);
        let packed = compress(&text, text.len()).expect("repetitive text compresses");
        assert!(packed.len() < text.len() / 4);
        assert_eq!(decompress(&packed, text.len()).unwrap(), text);
    }

    #[test]
    fn incompressible_input_is_refused() {
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(compress(&noise, noise.len() - 4).is_none());
    }

    #[test]
    fn known_redis_encoding_decodes() {
        // 30 'a's: one literal, then a 29-byte overlapping back reference.
        let packed = [0x00, b'a', 0xe0, 0x14, 0x00];
        assert_eq!(decompress(&packed, 30).unwrap(), vec![b'a'; 30]);
    }

    #[test]
    fn malformed_input_is_refused() {
        assert!(
            decompress(&[0x05, b'a'], 6).is_none(),
            "literal past the end"
        );
        assert!(
            decompress(&[0x20, 0x05], 3).is_none(),
            "reference before the start"
        );
        assert!(
            decompress(&[0x00, b'a'], 2).is_none(),
            "shorter than claimed"
        );
        assert!(
            decompress(&[0x00, b'a'], usize::MAX).is_none(),
            "absurd claim"
        );
        assert!(
            decompress(&[0x00, b'a', 0xe0], 30).is_none(),
            "truncated reference"
        );
    }
}
