//! The open connections, so a revocation or a suspension reaches the
//! connections already open, not only the next handshake, and so no one
//! certificate identity holds more than its share of the slots.
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
    key: String,
    serial: String,
    partner: Option<String>,
    close: Arc<Notify>,
}

/// The registry of open connections.
#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    live: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<u64, Live>,
    /// Open connections per limit key.
    per_key: HashMap<String, usize>,
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
        self.registry.with(|r| {
            if let Some(live) = r.by_id.remove(&self.id)
                && let Some(n) = r.per_key.get_mut(&live.key)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    r.per_key.remove(&live.key);
                }
            }
        });
    }
}

impl Connections {
    fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        match self.live.lock() {
            Ok(mut m) => f(&mut m),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Registers a connection under limit `key` (see
    /// `PeerCert::limit_key`) unless `max` connections of that key are
    /// open already; then returns `None` and the caller closes it.
    pub(crate) fn register_within(
        self: &Arc<Self>,
        key: &str,
        serial: &str,
        partner: Option<&str>,
        max: usize,
    ) -> Option<Registration> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        let admitted = self.with(|r| {
            let open = r.per_key.entry(key.to_owned()).or_insert(0);
            if *open >= max {
                return false;
            }
            *open += 1;
            r.by_id.insert(
                id,
                Live {
                    key: key.to_owned(),
                    serial: serial.to_owned(),
                    partner: partner.map(str::to_owned),
                    close: close.clone(),
                },
            );
            true
        });
        admitted.then(|| Registration {
            id,
            registry: self.clone(),
            close,
        })
    }

    /// Closes every connection whose serial or partner matches; returns how
    /// many were told to close.
    pub(crate) fn close_where(&self, matches: impl Fn(&str, Option<&str>) -> bool) -> usize {
        self.with(|r| {
            let mut n = 0;
            for live in r.by_id.values() {
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
        self.with(|r| r.by_id.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closes_only_matching_connections() {
        let reg = Arc::new(Connections::default());
        let a = reg
            .register_within("a", "0a", Some("AL-CTD"), 1)
            .expect("a");
        let b = reg
            .register_within("b", "0b", Some("RS-MOI"), 1)
            .expect("b");
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

    #[test]
    fn each_key_gets_at_most_its_share_and_gets_it_back() {
        let reg = Arc::new(Connections::default());
        let a1 = reg.register_within("urn:brdo:partner:AL-CTD", "01", Some("AL-CTD"), 2);
        let a2 = reg.register_within("urn:brdo:partner:AL-CTD", "02", Some("AL-CTD"), 2);
        assert!(a1.is_some() && a2.is_some());
        assert!(
            reg.register_within("urn:brdo:partner:AL-CTD", "01", Some("AL-CTD"), 2)
                .is_none(),
            "a third connection of the same identity, whatever its serial"
        );
        let other = reg.register_within("serial:0f", "0f", None, 2);
        assert!(other.is_some(), "another key has its own share");
        drop(a1);
        let a3 = reg.register_within("urn:brdo:partner:AL-CTD", "01", Some("AL-CTD"), 2);
        assert!(a3.is_some(), "a closed connection frees its slot");
        assert_eq!(reg.count(), 3);
    }
}
