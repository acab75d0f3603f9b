//! A holder applying a peer's lifecycle notice (SPEC §11): the change
//! under this gateway's rules, its audit record, and the receipt that
//! names that record, signed and kept as issued, in one transaction.

use super::erase::Erase;
use super::grant::Grant;
use super::hold::SetHold;
use super::raise_label::RaiseLabel;
use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::federation::Receipt;
use crate::store::error::StoreError;
use crate::store::notices::{ReceiptSigner, upsert_receipt};
use crate::store::outbox::{ISSUED, ReceiptRow};

/// What the notice changes here.
#[derive(Debug, Clone)]
pub enum NoticeChange {
    /// Erase the family's copies (refused `Held` under this gateway's own
    /// hold; already erased counts as done).
    Erase(Erase),
    /// Set or lift the hold.
    Hold(SetHold),
    /// Replace the label with the raised one.
    Label(RaiseLabel),
    /// Record the permission.
    Grant(Grant),
    /// Nothing held here: only the record and the receipt.
    Nothing,
}

/// Apply a notice and answer its receipt.
#[derive(Debug, Clone)]
pub struct ApplyNotice {
    /// The change.
    pub change: NoticeChange,
    /// The receipt to sign once the record has its sequence number
    /// (`audit_seq` and `tree_size` are filled in here).
    pub receipt: Receipt,
    /// Signs it.
    pub signer: ReceiptSigner,
    /// The calling peer (the receipt's `to`).
    pub peer: String,
    /// Now, unix ms.
    pub at_ms: i64,
}

impl ApplyNotice {
    /// Performs the write inside the batch's transaction: the change's
    /// checks and record, its rows, then the receipt.
    pub(super) async fn apply<'a>(&'a self, tx: &mut Tx<'_, 'a>, audit: RecordDraft) -> Applied {
        let done = match &self.change {
            NoticeChange::Erase(w) => match w.apply(tx, audit.clone()).await {
                Err(StoreError::AlreadyErased) => tx.append_done(audit).await,
                other => other,
            },
            NoticeChange::Hold(w) => w.apply(tx, audit).await,
            NoticeChange::Label(w) => w.apply(tx, audit).await,
            NoticeChange::Grant(w) => w.apply(tx, audit).await,
            NoticeChange::Nothing => tx.append_done(audit).await,
        };
        let (out, rec) = done?;
        let mut receipt = self.receipt.clone();
        receipt.audit_seq = Some(rec.seq);
        // The tree holds every record up to and including this one.
        receipt.tree_size = Some(rec.seq);
        let row = ReceiptRow {
            message_id: receipt.message_id.clone(),
            recipient: String::new(),
            peer: self.peer.clone(),
            direction: ISSUED,
            kind: receipt.kind.as_str().to_owned(),
            jws: self.signer.sign(&receipt)?,
            at_ms: self.at_ms,
        };
        upsert_receipt(tx.conn, &row).await?;
        let (attachments, erased) = match out {
            WriteOutput::Erased { attachments, .. } => (attachments, true),
            _ => (Vec::new(), false),
        };
        Ok((
            WriteOutput::Notice {
                receipt: row,
                attachments,
                erased,
            },
            rec,
        ))
    }
}
