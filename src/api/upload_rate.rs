//! A minimum upload rate for request bodies.
//!
//! The header deadline stops a client that trickles its request head, but
//! a body may then trickle for ever: one byte a minute keeps a connection,
//! a request task and (for attachments) a temporary file alive. Every
//! request body is read through [`MinRate`]: after a grace period it must
//! keep arriving at `min_rate` bytes per second on average (each byte
//! received buys `1/min_rate` s more), or the read fails and the gate
//! answers `408 upload_too_slow`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a too-slow body read ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than the minimum upload rate")]
pub struct TooSlow;

/// A request body that fails once it falls behind the minimum rate.
pub struct MinRate {
    inner: Body,
    min_rate: u64,
    grace: Duration,
    started: Instant,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
    cut: Arc<AtomicBool>,
}

impl MinRate {
    /// Wraps `inner`; `cut` is set when the body is cut off, so the gate
    /// can answer 408 whatever the handler made of the failed read.
    /// `min_rate == 0` turns the check off.
    pub fn new(inner: Body, min_rate: u64, grace: Duration, cut: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            min_rate,
            grace,
            started: Instant::now(),
            received: 0,
            timer: None,
            cut,
        }
    }

    /// When the body must have sent its next byte.
    fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        self.started + self.grace + earned
    }
}

impl http_body::Body for MinRate {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.cut.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(axum::Error::new(TooSlow))));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if this.min_rate == 0 {
            return polled;
        }
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                let deadline = this.deadline();
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.cut.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(axum::Error::new(TooSlow))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body sending `chunks` of `size` bytes `every` apart.
    fn trickle(chunks: usize, size: usize, every: Duration) -> Body {
        let stream = futures_util::stream::unfold(0usize, move |i| async move {
            if i == chunks {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size])),
                i + 1,
            ))
        });
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_body_at_the_rate_passes_and_a_slower_one_is_cut() {
        let cut = Arc::new(AtomicBool::new(false));
        // 100 bytes every 50 ms = 2000 B/s against a 1000 B/s minimum.
        let fast = MinRate::new(
            trickle(20, 100, Duration::from_millis(50)),
            1000,
            Duration::from_secs(1),
            cut.clone(),
        );
        let bytes = fast.collect().await.expect("read").to_bytes();
        assert_eq!(bytes.len(), 2000);
        assert!(!cut.load(Ordering::Relaxed));

        // 10 bytes a second against 1000 B/s: cut once the grace and the
        // bytes received are used up.
        let slow = MinRate::new(
            trickle(100, 10, Duration::from_secs(1)),
            1000,
            Duration::from_millis(300),
            cut.clone(),
        );
        let e = slow.collect().await.expect_err("cut off");
        assert!(std::error::Error::source(&e).is_some_and(|s| s.is::<TooSlow>()));
        assert!(cut.load(Ordering::Relaxed));

        // Rate 0: no limit at all.
        let off = Arc::new(AtomicBool::new(false));
        let slow = MinRate::new(
            trickle(3, 1, Duration::from_millis(400)),
            0,
            Duration::ZERO,
            off.clone(),
        );
        assert_eq!(slow.collect().await.expect("read").to_bytes().len(), 3);
        assert!(!off.load(Ordering::Relaxed));
    }
}
