//! When a failed outbox row is tried again: `initial_backoff_ms` doubling
//! with each attempt up to `max_backoff_secs`, spread by ±25 % so rows
//! (and nodes) that failed together do not all retry at the same instant.

use ring::rand::{SecureRandom, SystemRandom};

/// The wait in ms before attempt `attempts + 1`, after `attempts` failures
/// (at least one).
pub fn delay_ms(attempts: i64, initial_ms: u64, max_secs: u64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = initial_ms.max(1).saturating_mul(1u64 << exp);
    let capped = base.min(max_secs.saturating_mul(1000).max(1));
    let mut b = [0u8; 2];
    let r = if SystemRandom::new().fill(&mut b).is_ok() {
        f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
    } else {
        0.5
    };
    // A factor in [0.75, 1.25].
    let jittered = (capped as f64) * (0.75 + r * 0.5);
    jittered.round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_a_quarter_of_jitter() {
        for (attempts, base) in [(1, 200.0), (2, 400.0), (3, 800.0), (20, 300_000.0)] {
            for _ in 0..50 {
                let d = delay_ms(attempts, 200, 300) as f64;
                assert!(
                    d >= base * 0.75 - 1.0 && d <= base * 1.25 + 1.0,
                    "{attempts}: {d}"
                );
            }
        }
    }
}
