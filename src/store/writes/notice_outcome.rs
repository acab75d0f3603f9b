//! The origin's end of one lifecycle notice (SPEC §11): the holder's
//! signed receipt kept, and for an erasure the remote recipients marked
//! `erased`, with the audit record in the transaction that removes the
//! outbox row (nothing recorded twice, nothing lost).

use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::store::error::StoreError;
use crate::store::notices::{mark_erased_via, upsert_receipt};
use crate::store::outbox::{ReceiptRow, delete_entry, entry_exists};

/// Records a peer's receipt for a notice and removes the notice's row.
#[derive(Debug, Clone)]
pub struct NoticeOutcome {
    /// The outbox row (gone already: another node recorded it; refused
    /// with `NotFound` and nothing written).
    pub outbox_id: String,
    /// The peer's receipt (verified by the caller).
    pub receipt: ReceiptRow,
    /// An `erased` receipt: the recipients behind the peer show `erased`.
    pub erased: bool,
}

impl NoticeOutcome {
    /// Performs the write inside the batch's transaction: its check, then
    /// its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        if !entry_exists(tx.conn, &self.outbox_id).await? {
            return Err(StoreError::NotFound);
        }
        let rec = tx.append(audit).await?;
        upsert_receipt(tx.conn, &self.receipt).await?;
        if self.erased {
            let r = &self.receipt;
            mark_erased_via(tx.conn, &r.message_id, &r.peer, r.at_ms).await?;
        }
        delete_entry(tx.conn, &self.outbox_id).await?;
        Ok((WriteOutput::Done, rec))
    }
}
