//! Hybrid logical clock (HLC): timestamps that follow wall-clock milliseconds
//! but never go backwards and always move past every timestamp they have seen.
//!
//! Pure logic: the caller passes the physical time in. A timestamp packs the
//! physical milliseconds in the high 48 bits and a logical counter in the low
//! 16 bits, so timestamps compare as plain integers and cost eight bytes.

use serde::{Deserialize, Serialize};

/// Bits of a timestamp given to the logical counter.
const LOGICAL_BITS: u32 = 16;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

/// One HLC timestamp. Ordered first by physical milliseconds, then by the
/// logical counter.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc(pub u64);

impl Hlc {
    pub fn new(physical_ms: u64, logical: u16) -> Self {
        Hlc((physical_ms << LOGICAL_BITS) | logical as u64)
    }

    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    pub fn logical(self) -> u16 {
        (self.0 & LOGICAL_MASK) as u16
    }
}

/// The clock state of one replica: the largest timestamp issued or observed.
#[derive(Clone, Debug, Default)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest timestamp issued or observed so far.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A fresh timestamp for a local event, strictly larger than every
    /// timestamp issued or observed before.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        let last = self.last;
        self.last = if now_ms > last.physical_ms() {
            Hlc::new(now_ms, 0)
        } else {
            // Wall clock stalled or went backwards: count logically. When the
            // logical counter is exhausted the physical part moves one
            // millisecond ahead rather than wrapping.
            Hlc(last.0 + 1)
        };
        self.last
    }

    /// Folds in a timestamp received from another replica so that every
    /// later local event is ordered after it.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > self.last {
            self.last = remote;
        }
    }

    /// How far `remote` is ahead of the local wall clock, in milliseconds
    /// (zero when it is not ahead). Used to flag skewed peers.
    pub fn skew_ahead_ms(remote: Hlc, now_ms: u64) -> u64 {
        remote.physical_ms().saturating_sub(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_wall_clock_goes_back() {
        let mut clock = HlcClock::new();
        let a = clock.tick(1000);
        let b = clock.tick(1000);
        let c = clock.tick(900);
        let d = clock.tick(1001);
        assert!(a < b && b < c && c < d);
        assert_eq!(d, Hlc::new(1001, 0));
    }

    #[test]
    fn observed_remote_time_orders_later_local_events_after_it() {
        let mut clock = HlcClock::new();
        clock.tick(1000);
        let remote = Hlc::new(5000, 7);
        clock.observe(remote);
        let next = clock.tick(1001);
        assert!(next > remote);
        assert_eq!(next.physical_ms(), 5000);
    }

    #[test]
    fn logical_overflow_carries_into_physical_part() {
        let mut clock = HlcClock::new();
        clock.observe(Hlc::new(10, u16::MAX));
        let next = clock.tick(5);
        assert_eq!(next, Hlc::new(11, 0));
    }

    #[test]
    fn skew_is_measured_against_wall_clock() {
        assert_eq!(HlcClock::skew_ahead_ms(Hlc::new(1500, 3), 1000), 500);
        assert_eq!(HlcClock::skew_ahead_ms(Hlc::new(900, 3), 1000), 0);
    }
}
