//! One job's view of the batch's transaction, and what a write gives
//! back: what every write module works with, kept apart from the list of
//! writes (`writes/mod.rs`) so that the writes import it and it imports
//! none of them.

use crate::audit::{AuditRecord, RecordDraft};
use crate::store::audit_rows::{Head, append};
use crate::store::error::StoreError;
use crate::store::merkle_rows::Tree;
use crate::store::new_messages::NewMessages;
use crate::store::pending_receipts::PendingReceipts;
use crate::store::rows::DeliveryRow;
use crate::store::write_conn::WriteConn;

/// What a write produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WriteOutput {
    /// Nothing beyond the audit record.
    Done,
    /// The delivery after the change.
    Delivery(DeliveryRow),
    /// Receipts this gateway signed (a relayed message it received).
    Receipts(Vec<crate::store::outbox::ReceiptRow>),
    /// A peer's notice was applied: the receipt signed for it, and the
    /// attachments its erasure released (their blobs can be deleted).
    Notice {
        /// The receipt, as kept.
        receipt: crate::store::outbox::ReceiptRow,
        /// Attachments that lost their last reference.
        attachments: Vec<String>,
        /// Whether content was erased (SQLite then empties its log).
        erased: bool,
    },
    /// Messages or an orphan upload were erased.
    Erased {
        /// The messages the erasure covered (as at commit; those erased
        /// before included).
        messages: Vec<String>,
        /// Attachments that lost their last reference; their blobs can be
        /// deleted.
        attachments: Vec<String>,
    },
}

/// What a write's `apply` gives back: its output and its audit record.
pub(in crate::store) type Applied = Result<(WriteOutput, AuditRecord), StoreError>;

/// One job's view of the batch's transaction: the connection, the audit
/// chain's head and tree, and the submits held for one INSERT per table.
pub(in crate::store) struct Tx<'t, 'a> {
    /// The writer's connection, inside the batch's transaction.
    pub conn: &'t mut WriteConn,
    /// The audit chain's head.
    pub head: &'t mut Head,
    /// The audit log's Merkle tree.
    pub tree: &'t mut Tree,
    /// The batch's submits not yet written.
    pub new_messages: &'t mut NewMessages<'a>,
    /// The batch's receipts not yet signed.
    pub receipts: &'t mut PendingReceipts,
    /// This job's index in the batch.
    pub job: usize,
}

impl Tx<'_, '_> {
    /// Appends the job's audit record: an op's first write.
    pub async fn append(&mut self, audit: RecordDraft) -> Result<AuditRecord, StoreError> {
        append(self.conn, self.head, self.tree, audit).await
    }

    /// Appends the audit record of an op whose output is nothing more.
    pub(super) async fn append_done(&mut self, audit: RecordDraft) -> Applied {
        Ok((WriteOutput::Done, self.append(audit).await?))
    }
}
