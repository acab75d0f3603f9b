//! Erasing messages: the one write both a review decision and the
//! retention sweeper make, followed by deleting the attachment files the
//! erasure released.

use crate::audit::record::RecordDraft;
use crate::blobs::BlobStore;
use crate::domain::time::to_ms;
use crate::federation::Notice;
use crate::store::writes::Erase;
use crate::store::{NoticeFanout, ReceiptSigner, Store, StoreError, WriteOp, WriteOutput};

/// What to erase.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The messages named (the writer replaces them with the family as it
    /// is at commit when `family_of` is set).
    pub message_ids: Vec<String>,
    /// Erase the whole family of this root.
    pub family_of: Option<String>,
    /// The erase notice for the peers holding copies (its reason), when
    /// this gateway's originator or retention decided the erasure.
    pub notice: Option<String>,
    /// Signs the `erased` receipts owed to the peers the erased messages
    /// came from; `None` when a peer's notice is being applied.
    pub receipts: Option<ReceiptSigner>,
}

/// What an erasure did.
#[derive(Debug, Clone)]
pub struct Erased {
    /// The messages erased.
    pub messages: Vec<String>,
    /// The seq of its audit record.
    pub seq: u64,
}

/// Erases now, with `draft` as the audit record, and deletes the files of
/// attachments no longer carried by any message.
pub async fn erase(
    store: &Store,
    blobs: &BlobStore,
    what: Erasure,
    draft: RecordDraft,
) -> Result<Erased, StoreError> {
    let at_ms = to_ms(time::OffsetDateTime::now_utc());
    let named = what
        .family_of
        .clone()
        .or_else(|| what.message_ids.first().cloned())
        .unwrap_or_default();
    let op = WriteOp::from(Erase {
        message_ids: what.message_ids,
        family_of: what.family_of,
        at_ms,
        notice: what.notice.map(|reason| NoticeFanout {
            notice: Notice::Erase {
                message_id: named,
                reason,
            },
            at_ms,
        }),
        receipts: what.receipts,
    });
    let (out, rec) = store.write(op, draft).await?;
    delete_blobs(blobs, &out).await;
    let messages = match out {
        WriteOutput::Erased { messages, .. } => messages,
        _ => Vec::new(),
    };
    Ok(Erased {
        messages,
        seq: rec.seq,
    })
}

/// Deletes the blob files of attachments an erasure released.
pub(crate) async fn delete_blobs(blobs: &BlobStore, out: &WriteOutput) {
    if let WriteOutput::Erased { attachments, .. } | WriteOutput::Notice { attachments, .. } = out {
        for id in attachments {
            if let Err(e) = blobs.delete(id).await {
                // The data key is gone already; the file is unreadable.
                // The next sweep removes it (`sweep_blob_strays`).
                tracing::warn!(attachment = %id, error = %e, "could not delete an erased attachment's file");
            }
        }
    }
}
