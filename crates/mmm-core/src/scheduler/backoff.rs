//! Relaunch delays: exponential in the number of attempts, capped, jittered.

use super::rng::SplitMix64;

/// The delay before relaunch number `attempts + 1`: `base * 2^(attempts-1)`
/// capped at `max`, then jittered into its upper half so that servers that
/// failed together do not come back together.
pub(crate) fn relaunch_delay_ms(base: u64, max: u64, attempts: u32, rng: &mut SplitMix64) -> u64 {
    let exponent = attempts.saturating_sub(1).min(32);
    let full = base.saturating_mul(1u64 << exponent).min(max.max(base));
    let half = full / 2;
    half + rng.below(full - half + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_caps() {
        let mut rng = SplitMix64::new(3);
        for attempts in 0..40u32 {
            let full = (1000u64 << attempts.saturating_sub(1).min(32)).min(60_000);
            for _ in 0..20 {
                let d = relaunch_delay_ms(1000, 60_000, attempts, &mut rng);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempts}: {d} vs {full}"
                );
            }
        }
        assert!(relaunch_delay_ms(u64::MAX, u64::MAX, 64, &mut rng) >= u64::MAX / 2);
    }
}
