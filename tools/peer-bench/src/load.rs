//! The closed loop: each publisher publishes, waits for the broker's
//! acknowledgement, and publishes again, as `brdo bench`'s workers wait for
//! the gateway's 202. A warm-up is not measured; only publishes that start
//! in the measured interval count, and the interval's length (not the time
//! the last answer took to arrive) divides them.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::report::Tally;

/// Longest wait for one acknowledgement before it counts as failed: far
/// beyond any figure of a healthy run, short enough that a stuck broker
/// ends the run.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed publish, so a refusing broker is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// When the phases end.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Publishes before this are warm-up.
    pub measure_from: Instant,
    /// No publish starts at or after this.
    pub end: Instant,
}

impl Clock {
    /// The phases of a run that starts now.
    pub fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now();
        Self {
            measure_from: start + warmup,
            end: start + warmup + duration,
        }
    }
}

/// One publisher's operation: publish one body and wait until the broker
/// has acknowledged it; `Err` names the kind of failure for the report.
pub trait Publish {
    /// Publishes `body` and waits for its acknowledgement.
    fn publish(&mut self, body: &[u8]) -> impl Future<Output = Result<(), String>> + Send;
}

/// Runs one publisher until the end of `clock`; returns it (so its
/// connection closes in order) with what it measured.
pub async fn drive<P: Publish>(mut publisher: P, body: Vec<u8>, clock: Clock) -> (P, Tally) {
    let mut tally = Tally::default();
    loop {
        let started = Instant::now();
        if started >= clock.end {
            break;
        }
        let outcome = match tokio::time::timeout(ACK_TIMEOUT, publisher.publish(&body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err("timeout".to_owned()),
        };
        let latency = started.elapsed();
        let failed = outcome.is_err();
        if started >= clock.measure_from {
            match outcome {
                Ok(()) => {
                    tally.ok += 1;
                    tally.latencies.record(latency);
                }
                Err(kind) => *tally.errors.entry(kind).or_default() += 1,
            }
        }
        if failed {
            tokio::time::sleep(ERROR_BACKOFF).await;
        }
    }
    (publisher, tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Acknowledges after a fixed pause; fails every `fail_every`-th.
    struct Fake {
        pause: Duration,
        fail_every: u64,
        n: u64,
        bytes: usize,
    }

    impl Publish for Fake {
        fn publish(&mut self, body: &[u8]) -> impl Future<Output = Result<(), String>> + Send {
            self.n += 1;
            self.bytes += body.len();
            let fail = self.fail_every > 0 && self.n.is_multiple_of(self.fail_every);
            let pause = self.pause;
            async move {
                tokio::time::sleep(pause).await;
                if fail { Err("nack".into()) } else { Ok(()) }
            }
        }
    }

    fn fake(fail_every: u64) -> Fake {
        Fake {
            pause: Duration::from_millis(10),
            fail_every,
            n: 0,
            bytes: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_publishes_started_in_the_measured_interval_count() {
        // 100 ms warm-up, 200 ms measured, 10 ms per acknowledgement: 30
        // publishes in all, the last 20 measured.
        let clock = Clock::starting_now(Duration::from_millis(100), Duration::from_millis(200));
        let (p, tally) = drive(fake(0), vec![0; 8], clock).await;
        assert_eq!(p.n, 30);
        assert_eq!(p.bytes, 30 * 8);
        assert_eq!(tally.ok, 20);
        assert!(tally.errors.is_empty());
        let s = tally.latencies.summary();
        assert_eq!(s.count, 20);
        assert!((s.p50_ms - 10.0).abs() < 0.1, "{s:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_by_kind_and_not_as_latency() {
        let clock = Clock::starting_now(Duration::ZERO, Duration::from_millis(300));
        let (_, tally) = drive(fake(3), vec![0; 8], clock).await;
        let nacks = tally.errors.get("nack").copied().unwrap_or(0);
        assert!(nacks > 0, "{tally:?}");
        assert_eq!(tally.latencies.summary().count, tally.ok);
        // Every third fails and is followed by the 10 ms back-off.
        assert!(
            tally.ok >= 2 * nacks && tally.ok <= 2 * nacks + 2,
            "{tally:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_broker_that_never_answers_times_out() {
        let clock = Clock::starting_now(Duration::ZERO, Duration::from_millis(1));
        let stuck = Fake {
            pause: ACK_TIMEOUT * 2,
            fail_every: 0,
            n: 0,
            bytes: 0,
        };
        let (_, tally) = drive(stuck, vec![0; 8], clock).await;
        assert_eq!(tally.ok, 0);
        assert_eq!(tally.errors.get("timeout"), Some(&1));
    }
}
