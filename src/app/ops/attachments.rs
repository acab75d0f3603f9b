//! Attachments (SPEC §7): an upload is streamed into a sealed file under a
//! fresh data key; a download is for holders of a message that carries
//! the attachment, audited before a byte leaves.

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::held::visible_to;
use super::{Caller, OpError};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome};
use crate::blobs::{BlobError, BlobReader};
use crate::crypto::DataKey;
use crate::crypto::Sealed;
use crate::domain::time::to_ms;
use crate::store::writes::Upload;
use crate::store::{AttachmentRow, WriteOp};

impl From<BlobError> for OpError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { limit } => OpError::TooLarge { limit },
            BlobError::Incomplete => OpError::UploadIncomplete,
            BlobError::Integrity { .. } | BlobError::Missing => {
                tracing::error!(error = %e, "attachment content unusable");
                OpError::ContentIntegrity
            }
            BlobError::Io(_) | BlobError::Crypto(_) => {
                tracing::error!(error = %e, "attachment storage failed");
                OpError::Internal
            }
        }
    }
}

/// An attachment stored.
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    /// Its id, for a submission's `attachments`.
    pub id: String,
    /// The SHA-256 of its content (hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Stores `body` (of media type `content_type`) as an attachment of the
/// caller's. Nothing is kept for an upload that fails.
pub async fn upload<B>(
    app: &AppState,
    caller: &Caller<'_>,
    content_type: String,
    body: B,
) -> Result<Uploaded, OpError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    store_upload(
        app,
        caller.trail,
        caller.partner.to_string(),
        content_type,
        body,
    )
    .await
}

/// Streams `body` into a sealed file under a fresh data key, with its row
/// owned by `owner` (a partner id, or a peer gateway's URI for the bytes of
/// a relayed attachment, SPEC §11) and its `upload` audit record; the
/// same limit (`max_attachment_bytes`) and sealing whoever uploads.
pub(crate) async fn store_upload<B>(
    app: &AppState,
    trail: &dyn super::Trail,
    owner: String,
    content_type: String,
    body: B,
) -> Result<Uploaded, OpError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let limit = app.settings.max_attachment_bytes;
    let id = uuid::Uuid::now_v7().to_string();
    trail.detail("attachment_id", json!(id));
    let key = DataKey::generate().map_err(|_| OpError::Internal)?;
    let wrapped = key
        .wrap(&app.master_key, &id)
        .map_err(|_| OpError::Internal)?;
    let stored = app.blobs.write(&id, &key, body, limit).await?;
    trail.detail("size", json!(stored.size));
    let row = AttachmentRow {
        id: id.clone(),
        owner,
        content_type,
        size: i64::try_from(stored.size).unwrap_or(i64::MAX),
        sha256: stored.sha256.clone(),
        created_ms: to_ms(OffsetDateTime::now_utc()),
        erased_at_ms: None,
    };
    let op = WriteOp::from(Upload {
        attachment: row,
        data_key: wrapped,
    });
    let draft = trail.draft(Action::Upload, Outcome::Allowed);
    match app.store.write(op, draft).await {
        Ok((_, rec)) => trail.audited(rec.seq),
        Err(e) => {
            // Nothing is stored for a request that failed.
            let _ = app.blobs.delete(&id).await;
            return Err(e.into());
        }
    }
    Ok(Uploaded {
        id,
        sha256: stored.sha256,
        size: stored.size,
    })
}

/// An attachment being downloaded: its row, its first chunk (already
/// authenticated) and the reader of the rest.
pub struct Download {
    /// The attachment.
    pub attachment: AttachmentRow,
    /// The first chunk, if the content is not empty.
    pub first: Option<Bytes>,
    /// The rest of the content.
    pub rest: BlobReader,
}

/// Opens attachment `attachment_id` of message `id` for a holder who gave
/// `justification`.
pub async fn download(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
    attachment_id: &str,
    justification: &str,
) -> Result<Download, OpError> {
    caller.trail.justification(justification);
    let (row, _) = visible_to(app, caller, id).await?;
    // The path segment is the client's text: only an id that can exist
    // is noted for the audit record (anything else is not found like a
    // missing one).
    let attachment_id = match uuid::Uuid::try_parse(attachment_id) {
        Ok(u) if attachment_id.len() == 36 => u.to_string(),
        _ => return Err(OpError::NotFound),
    };
    caller.trail.detail("attachment_id", json!(attachment_id));
    if !app
        .store
        .message_attachments(&row.id)
        .await?
        .contains(&attachment_id)
    {
        return Err(OpError::NotFound);
    }
    if row.erased_at_ms.is_some() {
        return Err(OpError::Erased);
    }
    let att = app
        .store
        .attachment(&attachment_id)
        .await?
        .ok_or(OpError::NotFound)?;
    if att.erased_at_ms.is_some() {
        return Err(OpError::Erased);
    }
    let mut reader = open(app, &att).await?;
    // Authenticate the first chunk before answering, so a damaged file is a
    // clear error rather than a broken download.
    let first = reader.next_chunk().await?;
    // Audited before a single byte leaves (fail closed).
    let draft = caller.trail.draft(Action::Consult, Outcome::Allowed);
    let (_, rec) = app.store.write(WriteOp::AuditOnly, draft).await?;
    caller.trail.audited(rec.seq);
    Ok(Download {
        attachment: att,
        first,
        rest: reader,
    })
}

/// The reader of an attachment's sealed file, its data key unwrapped under
/// any key of the ring the row names (a retired key until rotation
/// re-wraps it); an unknown one is an integrity failure.
async fn open(app: &AppState, att: &AttachmentRow) -> Result<BlobReader, OpError> {
    let Some(Sealed {
        master_key_id: key_id,
        wrapped_key: wrapped,
    }) = app.store.data_key(&att.id).await?
    else {
        return Err(OpError::ContentIntegrity);
    };
    let Some(master) = app.master_key.opener(&key_id) else {
        return Err(OpError::ContentIntegrity);
    };
    let key =
        DataKey::unwrap_key(master, &att.id, &wrapped).map_err(|_| OpError::ContentIntegrity)?;
    Ok(app.blobs.reader(&att.id, key).await?)
}
