//! Exact decimal numbers for counters: `INCRBY` and `INCRBYFLOAT` amounts,
//! and the numeric reading of a string value.
//!
//! Redis computes `INCRBYFLOAT` in `long double` and prints 17 fractional
//! digits with trailing zeros trimmed, so `0.1 + 0.2` reads back as `0.3`.
//! We get the same answers exactly, and without float rounding differences
//! between replicas, by holding every amount as a fixed-point decimal: an
//! `i128` counting units of 10^-17. That covers integers far beyond `i64` and
//! magnitudes up to about 1.7 × 10^21; larger float results are refused like
//! an overflow (documented in docs/semantics.md).

use serde::{Deserialize, Serialize};

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.units().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        i128::deserialize(deserializer).map(Amount::new)
    }
}

impl std::fmt::Debug for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Amount({})", self.units())
    }
}

/// Fractional digits kept.
pub const FRACTION_DIGITS: u32 = 17;
const SCALE: i128 = 100_000_000_000_000_000; // 10^17

/// A fixed-point decimal amount (units of 10^-17).
///
/// Held as two words rather than an `i128`, whose 16-byte alignment would
/// pad every key version that holds a counter (and so every key slot) to a
/// multiple of 16. The order of `(high, low)` is the order of the number.
/// Serialized as the `i128` it stands for.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount {
    high: i64,
    low: u64,
}

impl Amount {
    pub const ZERO: Amount = Amount::new(0);

    /// The amount of `units` (10^-17 each).
    pub const fn new(units: i128) -> Amount {
        Amount {
            high: (units >> 64) as i64,
            low: units as u64,
        }
    }

    /// The number of 10^-17 units.
    pub const fn units(self) -> i128 {
        ((self.high as i128) << 64) | self.low as i128
    }

    pub fn from_int(value: i64) -> Amount {
        Amount::new(value as i128 * SCALE)
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.units().checked_add(other.units()).map(Amount::new)
    }

    /// Addition used when merging concurrent contributions: saturates instead
    /// of failing, so every replica computes the same (clamped) value.
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount::new(self.units().saturating_add(other.units()))
    }

    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount::new(self.units().saturating_sub(other.units()))
    }

    pub fn is_integral(self) -> bool {
        self.units() % SCALE == 0
    }

    /// The value as an `i64` when it is a whole number in range.
    pub fn to_i64(self) -> Option<i64> {
        if self.is_integral() {
            i64::try_from(self.units() / SCALE).ok()
        } else {
            None
        }
    }

    /// Renders like Redis's human-friendly number output: an integer when the
    /// value is whole, else the decimal with trailing zeros trimmed.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let negative = self.units() < 0;
        let magnitude = self.units().unsigned_abs();
        let scale = SCALE as u128;
        let whole = magnitude / scale;
        let mut fraction = magnitude % scale;
        if negative {
            out.push(b'-');
        }
        out.extend_from_slice(whole.to_string().as_bytes());
        if fraction != 0 {
            let mut digits = [b'0'; FRACTION_DIGITS as usize];
            for slot in digits.iter_mut().rev() {
                *slot = b'0' + (fraction % 10) as u8;
                fraction /= 10;
            }
            let used = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
            out.push(b'.');
            out.extend_from_slice(&digits[..used]);
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        self.write_to(&mut out);
        out
    }
}

/// Why a decimal did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a number at all (or NaN).
    Invalid,
    /// A number, but infinite or beyond the representable range.
    OutOfRange,
}

/// Parses a decimal number in the forms Redis accepts for floats
/// (`strtold`): optional sign, digits with an optional point, optional
/// exponent, or `inf`/`infinity`. Rounds to 17 fractional digits.
pub fn parse_decimal(bytes: &[u8]) -> Result<Amount, DecimalError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DecimalError::Invalid)?;
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        Some(_) => (false, text),
        None => return Err(DecimalError::Invalid),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Err(DecimalError::OutOfRange);
    }
    let bytes = body.as_bytes();
    let mut index = 0;
    // Significant digits collected into `mantissa`, with `exponent` the power
    // of ten to apply; digits past 38 only shift the exponent.
    let mut mantissa: i128 = 0;
    let mut exponent: i64 = 0;
    let mut digit_count = 0usize;
    let mut saw_digit = false;
    let mut significant = 0usize;
    // Digits before and after an optional decimal point.
    let mut fractional = false;
    while index < bytes.len() {
        let b = bytes[index];
        if b.is_ascii_digit() {
            saw_digit = true;
            push_digit(
                &mut mantissa,
                &mut exponent,
                &mut significant,
                b,
                fractional,
            );
            digit_count += 1;
        } else if b == b'.' && !fractional {
            fractional = true;
        } else {
            break;
        }
        index += 1;
    }
    if !saw_digit || digit_count == 0 {
        return Err(DecimalError::Invalid);
    }
    if index < bytes.len() && (bytes[index] == b'e' || bytes[index] == b'E') {
        index += 1;
        let mut exp_negative = false;
        if index < bytes.len() && (bytes[index] == b'+' || bytes[index] == b'-') {
            exp_negative = bytes[index] == b'-';
            index += 1;
        }
        let start = index;
        let mut value: i64 = 0;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            value = (value * 10 + (bytes[index] - b'0') as i64).min(1_000_000);
            index += 1;
        }
        if index == start {
            return Err(DecimalError::Invalid);
        }
        exponent += if exp_negative { -value } else { value };
    }
    if index != bytes.len() {
        return Err(DecimalError::Invalid);
    }
    let shift = exponent + FRACTION_DIGITS as i64;
    let scaled = if mantissa == 0 {
        0
    } else if shift >= 0 {
        let mut value = mantissa;
        for _ in 0..shift {
            value = value.checked_mul(10).ok_or(DecimalError::OutOfRange)?;
        }
        value
    } else {
        let mut value = mantissa;
        let mut remainder_digit = 0;
        for _ in 0..(-shift).min(40) {
            remainder_digit = value % 10;
            value /= 10;
        }
        // Round half away from zero on the last dropped digit.
        if remainder_digit >= 5 {
            value += 1;
        }
        value
    };
    Ok(Amount::new(if negative { -scaled } else { scaled }))
}

fn push_digit(
    mantissa: &mut i128,
    exponent: &mut i64,
    significant: &mut usize,
    digit: u8,
    fractional: bool,
) {
    let d = (digit - b'0') as i128;
    if *significant < 37 {
        *mantissa = *mantissa * 10 + d;
        if *mantissa != 0 {
            *significant += 1;
        }
        if fractional {
            *exponent -= 1;
        }
    } else if !fractional {
        *exponent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_word_amounts_keep_the_value_order_and_wire_form_of_i128() {
        let samples = [
            i128::MIN,
            -(1i128 << 64) - 1,
            -(1i128 << 64),
            -1,
            0,
            1,
            u64::MAX as i128,
            1i128 << 64,
            i128::MAX,
        ];
        for &a in &samples {
            assert_eq!(Amount::new(a).units(), a);
            for &b in &samples {
                assert_eq!(Amount::new(a).cmp(&Amount::new(b)), a.cmp(&b), "{a} vs {b}");
            }
            let config = bincode::config::standard();
            let wire = bincode::serde::encode_to_vec(Amount::new(a), config).unwrap();
            assert_eq!(wire, bincode::serde::encode_to_vec(a, config).unwrap());
            let (back, _): (Amount, usize) =
                bincode::serde::decode_from_slice(&wire, config).unwrap();
            assert_eq!(back, Amount::new(a));
        }
        assert_eq!(std::mem::align_of::<Amount>(), 8);
    }

    fn render(a: Amount) -> String {
        String::from_utf8(a.to_bytes()).unwrap()
    }

    #[test]
    fn decimals_add_exactly_like_redis_long_double_output() {
        let a = parse_decimal(b"0.1").unwrap();
        let b = parse_decimal(b"0.2").unwrap();
        assert_eq!(render(a.checked_add(b).unwrap()), "0.3");
        assert_eq!(render(parse_decimal(b"10.50").unwrap()), "10.5");
        assert_eq!(render(parse_decimal(b"3.0e3").unwrap()), "3000");
        assert_eq!(render(parse_decimal(b"-5.0E-1").unwrap()), "-0.5");
        assert_eq!(
            render(parse_decimal(b"1e20").unwrap()),
            "100000000000000000000"
        );
        assert_eq!(render(parse_decimal(b".5").unwrap()), "0.5");
        assert_eq!(render(parse_decimal(b"5.").unwrap()), "5");
        assert_eq!(render(Amount::from_int(-42)), "-42");
    }

    #[test]
    fn invalid_and_infinite_decimals_are_told_apart() {
        assert_eq!(parse_decimal(b"abc"), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal(b"nan"), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal(b"1e"), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal(b" 1"), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal(b""), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal(b"inf"), Err(DecimalError::OutOfRange));
        assert_eq!(parse_decimal(b"-Infinity"), Err(DecimalError::OutOfRange));
        assert_eq!(parse_decimal(b"1e300"), Err(DecimalError::OutOfRange));
    }

    #[test]
    fn tiny_fractions_round_to_seventeen_digits() {
        assert_eq!(render(parse_decimal(b"1e-20").unwrap()), "0");
        assert_eq!(
            render(parse_decimal(b"0.000000000000000015").unwrap()),
            "0.00000000000000002"
        );
    }

    #[test]
    fn integral_amounts_convert_back_to_i64() {
        assert_eq!(Amount::from_int(7).to_i64(), Some(7));
        assert_eq!(parse_decimal(b"7.5").unwrap().to_i64(), None);
    }
}
