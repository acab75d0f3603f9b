//! Per-identity request rate limit: one token bucket per caller.
//!
//! A compromised partner system holds a valid certificate, so the TLS layer
//! lets it in; without a limit it could keep the gateway's single writer
//! and its audit log busy and starve every other partner. Each identity
//! (the certificate's `urn:brdo:` URI, so all of a partner's certificates
//! share one bucket) gets `burst` tokens, refilled at `per_second`; a
//! request takes one. An empty bucket answers `429 rate_limited` with
//! `Retry-After`, decided before any handler work is done.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many buckets, full (idle) ones are dropped: a full bucket
/// carries no state a fresh one would not have, so memory stays bounded by
/// the callers active in the last `burst / per_second` seconds.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of every caller seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` requests per identity on average,
    /// and up to `burst` at once (at least 1). `per_second == 0` turns the
    /// limit off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the limit is on.
    pub(crate) fn enabled(&self) -> bool {
        self.per_second > 0.0
    }

    /// Takes a token for `key` at `now`; when none is left, returns how
    /// long until one will be.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() > PRUNE_ABOVE && !map.contains_key(key) {
            let (rate, burst) = (self.per_second, self.burst);
            map.retain(|_, b| refilled(*b, now, rate, burst) < burst);
        }
        let bucket = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        bucket.tokens = refilled(*bucket, now, self.per_second, self.burst);
        bucket.last = now.max(bucket.last);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(missing / self.per_second))
        }
    }
}

/// The bucket's tokens at `now`, never above `burst`.
fn refilled(b: Bucket, now: Instant, per_second: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
    (b.tokens + elapsed * per_second).min(burst)
}

/// `Retry-After` in whole seconds (RFC 9110 §10.2.3 has no fractions),
/// rounded up so a client that waits that long finds a token.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    if wait.subsec_nanos() > 0 || whole == 0 {
        whole + 1
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_identity() {
        let l = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("urn:brdo:partner:AL-CTD", t0).is_ok());
        }
        let wait = l
            .check("urn:brdo:partner:AL-CTD", t0)
            .expect_err("bucket empty");
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another identity has its own bucket.
        assert!(l.check("urn:brdo:partner:RS-MOI", t0).is_ok());
        // Half a second refills one token at 2/s.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check("urn:brdo:partner:AL-CTD", t1).is_ok());
        assert!(l.check("urn:brdo:partner:AL-CTD", t1).is_err());
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.check("urn:brdo:partner:AL-CTD", t2).is_ok());
        }
        assert!(l.check("urn:brdo:partner:AL-CTD", t2).is_err());
    }

    #[test]
    fn zero_rate_is_off_and_zero_burst_means_one() {
        let off = RateLimiter::new(0, 0);
        let t = Instant::now();
        for _ in 0..10_000 {
            assert!(off.check("x", t).is_ok());
        }
        let one = RateLimiter::new(1, 0);
        assert!(one.check("x", t).is_ok());
        assert!(one.check("x", t).is_err());
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let l = RateLimiter::new(1000, 1);
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            assert!(l.check(&format!("id-{i}"), t0).is_ok());
        }
        // A second later every bucket is full again and goes.
        assert!(l.check("new", t0 + Duration::from_secs(1)).is_ok());
        let n = l.buckets.lock().expect("lock").len();
        assert_eq!(n, 1, "only the new caller's bucket is left");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
