//! Where a new message's copies go: a delivery per recipient, and for the
//! recipients behind peer gateways one outbox row per peer, written in the
//! message's own transaction so nothing accepted is ever lost on the way.

use crate::domain::PartnerId;
use crate::policy::Policy;
use crate::store::{NewDelivery, OutboxEntry, OutboxKind};

/// The deliveries of a message to `recipients` (each remote one naming
/// the peer it lives behind) and the outbox rows, one per such peer.
pub fn route<'a>(
    policy: &Policy,
    message_id: &str,
    recipients: impl IntoIterator<Item = &'a PartnerId>,
    now_ms: i64,
) -> (Vec<NewDelivery>, Vec<OutboxEntry>) {
    let mut outbox: Vec<OutboxEntry> = Vec::new();
    let deliveries = recipients
        .into_iter()
        .map(|r| {
            let via = policy.via(r).map(|p| p.id.to_string());
            if let Some(peer) = &via
                && !outbox.iter().any(|o| &o.peer == peer)
            {
                outbox.push(OutboxEntry {
                    id: uuid::Uuid::now_v7().to_string(),
                    peer: peer.clone(),
                    kind: OutboxKind::Message,
                    message_id: message_id.to_owned(),
                    body: None,
                    created_ms: now_ms,
                });
            }
            NewDelivery {
                recipient: r.to_string(),
                via,
            }
        })
        .collect();
    (deliveries, outbox)
}
