//! The open connections, so a revocation or a suspension reaches the
//! connections already open, not only the next handshake.
//!
//! Every served connection registers its certificate serial and partner;
//! [`Connections::close_where`] wakes the matching ones, which then drop
//! their socket at once (no graceful drain: a revoked certificate must not
//! receive even the answer to a request already in progress).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

struct Live {
    serial: String,
    partner: Option<String>,
    close: Arc<Notify>,
}

/// The registry of open connections.
#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Live>>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.count())
            .finish()
    }
}

/// Removes its connection from the registry when dropped.
pub struct Registration {
    id: u64,
    registry: Arc<Connections>,
    /// Woken when the connection must close now.
    pub close: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.with(|m| {
            m.remove(&self.id);
        });
    }
}

impl Connections {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<u64, Live>) -> R) -> R {
        match self.live.lock() {
            Ok(mut m) => f(&mut m),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Registers a connection presenting `serial` for `partner`.
    pub fn register(self: &Arc<Self>, serial: &str, partner: Option<&str>) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.with(|m| {
            m.insert(
                id,
                Live {
                    serial: serial.to_owned(),
                    partner: partner.map(str::to_owned),
                    close: close.clone(),
                },
            )
        });
        Registration {
            id,
            registry: self.clone(),
            close,
        }
    }

    /// Closes every connection whose serial or partner matches; returns how
    /// many were told to close.
    pub fn close_where(&self, matches: impl Fn(&str, Option<&str>) -> bool) -> usize {
        self.with(|m| {
            let mut n = 0;
            for live in m.values() {
                if matches(&live.serial, live.partner.as_deref()) {
                    // notify_one keeps a permit if the task is not waiting yet.
                    live.close.notify_one();
                    n += 1;
                }
            }
            n
        })
    }

    /// Number of open connections.
    pub fn count(&self) -> usize {
        self.with(|m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closes_only_matching_connections() {
        let reg = Arc::new(Connections::default());
        let a = reg.register("0a", Some("AL-CTD"));
        let b = reg.register("0b", Some("RS-MOI"));
        assert_eq!(reg.count(), 2);
        assert_eq!(reg.close_where(|s, _| s == "0b"), 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), b.close.notified())
            .await
            .expect("b told to close");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), a.close.notified())
                .await
                .is_err(),
            "a left alone"
        );
        assert_eq!(reg.close_where(|_, p| p == Some("AL-CTD")), 1);
        drop(a);
        drop(b);
        assert_eq!(reg.count(), 0);
    }
}
