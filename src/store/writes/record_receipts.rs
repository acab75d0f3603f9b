//! Receipts a peer sends later (`delivered`, `acknowledged`, SPEC §11):
//! kept, and each recipient's status moved forward (never backward), with
//! the request's audit record. A receipt seen before changes nothing.

use super::relay_outcome::set_statuses;
use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::store::outbox::{ReceiptRow, insert_receipts};
use crate::store::vocab::DeliveryStatus;

/// Keep verified receipts and move the statuses they prove.
#[derive(Debug, Clone)]
pub struct RecordReceipts {
    /// The receipts (already verified by the caller).
    pub receipts: Vec<ReceiptRow>,
    /// For each: message, recipient, the status it proves.
    pub statuses: Vec<(String, String, DeliveryStatus)>,
    /// Now, unix ms.
    pub at_ms: i64,
}

impl RecordReceipts {
    /// Performs the write inside the batch's transaction: its audit
    /// record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let rec = tx.append(audit).await?;
        insert_receipts(tx.conn, &self.receipts).await?;
        for (message_id, recipient, status) in &self.statuses {
            set_statuses(tx, message_id, &[(recipient.clone(), *status)], self.at_ms).await?;
        }
        Ok((WriteOutput::Done, rec))
    }
}
