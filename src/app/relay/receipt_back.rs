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
use crate::store::{MessageRow, OutboxEntry, OutboxKind};

/// The outbox row carrying a `kind` receipt for `recipient` back to the
/// peer the message came from; `None` for a message of this gateway's own
/// partners (or a gateway without a federation id). A receipt that cannot
/// be signed is logged and not sent: the status change itself goes on.
pub fn entry(
    app: &AppState,
    row: &MessageRow,
    recipient: &PartnerId,
    kind: ReceiptKind,
) -> Option<OutboxEntry> {
    let own = app.config.federation.id.clone()?;
    let sender = PartnerId::parse(&row.sender)?;
    let peer = app.policy().via(&sender)?.id.clone();
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
