//! Wakes long-polling inbox readers when something is delivered to them.
//!
//! Lives with the running gateway, not the HTTP layer, because deliveries
//! come from every operation (submit, forward, another node's commit seen by
//! the cluster follower), while only the inbox endpoint waits on it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::domain::PartnerId;

/// Wakes a partner's long-polling readers when a message is delivered to
/// it. A counter per partner in a `watch` channel: readers subscribe before
/// querying, so a delivery between query and wait is never missed.
#[derive(Debug, Default)]
pub struct InboxNotifier {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl InboxNotifier {
    fn with<R>(&self, partner: &str, f: impl FnOnce(&watch::Sender<u64>) -> R) -> R {
        let mut map = match self.senders.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let tx = map
            .entry(partner.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        f(tx)
    }

    /// Subscribes to a partner's deliveries.
    pub(crate) fn subscribe(&self, partner: &PartnerId) -> watch::Receiver<u64> {
        self.with(partner.as_str(), watch::Sender::subscribe)
    }

    /// Signals that something was delivered to `partner`.
    pub(crate) fn notify(&self, partner: &PartnerId) {
        self.notify_id(partner.as_str());
    }

    /// [`Self::notify`] by the identifier another node sent.
    pub(crate) fn notify_id(&self, partner: &str) {
        self.with(partner, |tx| tx.send_modify(|n| *n = n.wrapping_add(1)));
    }

    /// Wakes every waiting reader (deliveries may have been missed); each
    /// re-queries its inbox, so a spurious wake costs one query.
    pub(crate) fn notify_all(&self) {
        let map = match self.senders.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        for tx in map.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn notifier_wakes_subscribers() {
        let n = InboxNotifier::default();
        let p = PartnerId::parse("RS-MOI").expect("id");
        let mut rx = n.subscribe(&p);
        rx.borrow_and_update();
        n.notify(&p);
        tokio::time::timeout(Duration::from_secs(1), rx.changed())
            .await
            .expect("woken")
            .expect("open");
        rx.borrow_and_update();
        n.notify_all();
        tokio::time::timeout(Duration::from_secs(1), rx.changed())
            .await
            .expect("woken by notify_all")
            .expect("open");
    }
}
