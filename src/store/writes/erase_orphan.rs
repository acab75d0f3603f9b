//! Removing an uploaded attachment no message references, and the
//! attachment tombstone an erasure leaves.

use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::store::error::StoreError;
use crate::store::write_conn::WriteConn;

/// Remove an attachment no message references.
#[derive(Debug, Clone)]
pub struct EraseOrphan {
    /// The attachment.
    pub attachment_id: String,
    /// Now, unix ms.
    pub at_ms: i64,
}

impl EraseOrphan {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let still = tx
            .conn
            .fetch_optional(
                "SELECT 1 FROM attachments a WHERE a.id = $1 AND a.erased_at_ms IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM message_attachments ma WHERE ma.attachment_id = a.id)",
                &[self.attachment_id.as_str().into()],
            )
            .await?;
        if still.is_none() {
            return Err(StoreError::NotFound);
        }
        let rec = tx.append(audit).await?;
        erase_attachment(tx.conn, &self.attachment_id, self.at_ms).await?;
        let out = WriteOutput::Erased {
            messages: Vec::new(),
            attachments: vec![self.attachment_id.clone()],
        };
        Ok((out, rec))
    }
}

/// Erases an attachment's key, the digest of its content (which would
/// confirm a guessed file) and its Content-Type (whose parameters often
/// carry the file's name), keeping the row as its tombstone.
pub(super) async fn erase_attachment(
    conn: &mut WriteConn,
    id: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE attachments SET erased_at_ms = $2, sha256 = '', content_type = '' WHERE id = $1 AND erased_at_ms IS NULL",
        &[id.into(), at_ms.into()],
    )
    .await?;
    conn.execute("DELETE FROM data_keys WHERE owner = $1", &[id.into()])
        .await?;
    Ok(())
}
