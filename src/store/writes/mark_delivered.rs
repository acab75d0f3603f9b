//! A recipient's first read: `queued` → `delivered`.

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::domain::time::ms_to_text;
use crate::store::outbox::{OutboxEntry, insert_entries};
use crate::store::vocab::DeliveryStatus;

/// First read by a recipient: a queued delivery becomes delivered (any
/// other status stays).
#[derive(Debug, Clone)]
pub struct MarkDelivered {
    /// The message.
    pub message_id: String,
    /// The reading recipient.
    pub recipient: String,
    /// Now, unix ms.
    pub at_ms: i64,
    /// For a message a peer relayed: the `delivered` receipt to send back
    /// to it, queued only if this read is the first (SPEC §11).
    pub receipt: Option<OutboxEntry>,
}

impl MarkDelivered {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        let changed = tx
            .conn
            .execute(
                "UPDATE deliveries SET status = $4, updated_at = $3 \
                 WHERE message_id = $1 AND recipient = $2 AND status = $5",
                &[
                    self.message_id.as_str().into(),
                    self.recipient.as_str().into(),
                    ms_to_text(self.at_ms).as_str().into(),
                    DeliveryStatus::Delivered.as_str().into(),
                    DeliveryStatus::Queued.as_str().into(),
                ],
            )
            .await?;
        if changed == 1
            && let Some(r) = &self.receipt
        {
            insert_entries(tx.conn, std::slice::from_ref(r)).await?;
        }
        Ok(done)
    }
}
