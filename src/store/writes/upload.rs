//! Storing an uploaded attachment's row and data key (its sealed blob is
//! already on disk).

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::crypto::Sealed;
use crate::store::rows::AttachmentRow;

/// Store an uploaded attachment (its blob is already on disk).
#[derive(Debug, Clone)]
pub struct Upload {
    /// The row.
    pub attachment: AttachmentRow,
    /// The wrapped data key sealing its blob.
    pub data_key: Sealed,
}

impl Upload {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        let a = &self.attachment;
        tx.conn
            .execute(
                "INSERT INTO attachments (id, owner, content_type, size, sha256, created_ms, erased_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL)",
                &[
                    a.id.as_str().into(),
                    a.owner.as_str().into(),
                    a.content_type.as_str().into(),
                    a.size.into(),
                    a.sha256.as_str().into(),
                    a.created_ms.into(),
                ],
            )
            .await?;
        tx.conn
            .execute(
                "INSERT INTO data_keys (owner, master_key_id, wrapped_key) VALUES ($1, $2, $3)",
                &[
                    a.id.as_str().into(),
                    self.data_key.master_key_id.as_str().into(),
                    self.data_key.wrapped_key.as_slice().into(),
                ],
            )
            .await?;
        Ok(done)
    }
}
