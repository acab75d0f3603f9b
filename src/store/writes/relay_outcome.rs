//! The end of one outbox row: what the peer answered (its receipts, each
//! recipient's new status) or that the relay gave up, recorded with the
//! audit records in the transaction that removes the row (SPEC §11:
//! nothing lost, nothing recorded twice).

use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::domain::time::ms_to_text;
use crate::store::error::StoreError;
use crate::store::outbox::{ReceiptRow, delete_entry, entry_exists, insert_receipts};
use crate::store::vocab::DeliveryStatus;

/// Records the outcome of relaying one outbox row and removes the row.
#[derive(Debug, Clone)]
pub struct RelayOutcome {
    /// The outbox row (gone already: another node recorded it; refused
    /// with `NotFound` and nothing written).
    pub outbox_id: String,
    /// The message.
    pub message_id: String,
    /// Each recipient's new status; a status never moves backward.
    pub statuses: Vec<(String, DeliveryStatus)>,
    /// The peer's receipts to keep.
    pub receipts: Vec<ReceiptRow>,
    /// Further audit records (a `deny` beside a `disclose`).
    pub more_audit: Vec<RecordDraft>,
    /// Now, unix ms.
    pub at_ms: i64,
}

impl RelayOutcome {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit records, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        if !entry_exists(tx.conn, &self.outbox_id).await? {
            return Err(StoreError::NotFound);
        }
        let rec = tx.append(audit).await?;
        for more in &self.more_audit {
            tx.append(more.clone()).await?;
        }
        set_statuses(tx, &self.message_id, &self.statuses, self.at_ms).await?;
        insert_receipts(tx.conn, &self.receipts).await?;
        delete_entry(tx.conn, &self.outbox_id).await?;
        Ok((WriteOutput::Done, rec))
    }
}

/// Moves each recipient's delivery forward to its new status (a status of
/// the same or a higher rank stays).
pub(super) async fn set_statuses(
    tx: &mut Tx<'_, '_>,
    message_id: &str,
    statuses: &[(String, DeliveryStatus)],
    at_ms: i64,
) -> Result<(), StoreError> {
    let at = ms_to_text(at_ms);
    for (recipient, status) in statuses {
        let lower: Vec<&str> = DeliveryStatus::ALL
            .iter()
            .filter(|s| s.rank() < status.rank())
            .map(|s| s.as_str())
            .collect();
        for from in lower {
            tx.conn
                .execute(
                    "UPDATE deliveries SET status = $3, updated_at = $4 \
                     WHERE message_id = $1 AND recipient = $2 AND status = $5",
                    &[
                        message_id.into(),
                        recipient.as_str().into(),
                        status.as_str().into(),
                        at.as_str().into(),
                        from.into(),
                    ],
                )
                .await?;
        }
    }
    Ok(())
}
