//! Receipts a holder sends later: when a local recipient first reads or
//! acknowledges a message a peer relayed, the signed receipt goes back to
//! that peer through the outbox, queued in the same transaction as the
//! status change (SPEC §11).

use time::OffsetDateTime;

use crate::app::AppState;
use crate::audit::record::format_at;
use crate::domain::PartnerId;
use crate::domain::time::to_ms;
use crate::federation::{Receipt, ReceiptKind};
use crate::store::outbox::ISSUED;
use crate::store::{MessageRow, OutboxEntry, OutboxKind};

/// The outbox row carrying a `kind` receipt for `recipient` back to the
/// peer the message came from; `None` for a message of this gateway's own
/// partners (or a gateway without a federation id). The peer is the one
/// this gateway accepted the message from (its issued `accepted`
/// receipt), not whichever peer the policy now names for the sender: the
/// receipt says who read what and when, and goes to the gateway that
/// relayed it, even after the policy moved the sender elsewhere. A receipt
/// that cannot be signed is logged and not sent: the status change itself
/// goes on.
pub async fn entry(
    app: &AppState,
    row: &MessageRow,
    recipient: &PartnerId,
    kind: ReceiptKind,
) -> Option<OutboxEntry> {
    let own = app.config.federation.id.clone()?;
    let issued = match app.store.receipts_of(&row.id, ISSUED).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the receipts of a relayed message; no receipt is sent");
            return None;
        }
    };
    let peer = issued
        .iter()
        .find(|r| r.kind == ReceiptKind::Accepted.as_str())
        .and_then(|r| PartnerId::parse(&r.peer))?;
    let now = OffsetDateTime::now_utc();
    let receipt = Receipt {
        v: 1,
        kind,
        gateway: own,
        to: peer.clone(),
        message_id: row.id.clone(),
        recipient: Some(recipient.clone()),
        at: format_at(now),
        audit_seq: None,
        tree_size: None,
        violations: Vec::new(),
        notice: None,
    };
    match receipt.sign(&app.envelope_key) {
        Ok(jws) => Some(OutboxEntry {
            id: uuid::Uuid::now_v7().to_string(),
            peer: peer.to_string(),
            kind: OutboxKind::Receipt,
            message_id: row.id.clone(),
            body: Some(jws),
            created_ms: to_ms(now),
        }),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign a receipt for a peer; it is not sent");
            None
        }
    }
}
