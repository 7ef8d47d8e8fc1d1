//! A small deterministic generator (SplitMix64), so that the same seed and
//! events always give the same task ids and jitter.

/// SplitMix64: tiny, fast and good enough for ids and jitter.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (0 when `bound` is 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// A random UUID (version 4 layout) as text.
    pub(crate) fn uuid(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_uuid_shape() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let ua = a.uuid();
        assert_eq!(ua, b.uuid());
        assert_ne!(ua, a.uuid());
        assert_eq!(ua.len(), 36);
        assert_eq!(ua.as_bytes()[14], b'4');
        assert!(matches!(ua.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_eq!(SplitMix64::new(1).below(0), 0);
        assert!((0..100).all(|_| a.below(10) < 10));
    }
}
