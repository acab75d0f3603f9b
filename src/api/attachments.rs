//! Attachments (SPEC §7): streamed, encrypted uploads and holder-only
//! downloads.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;

use super::content::to_ms;
use super::context::RequestCtx;
use super::messages::{justification, visible_message};
use super::problem::ApiError;
use crate::app::AppState;
use crate::audit::record::{Action, Outcome};
use crate::blobs::BlobError;
use crate::crypto::DataKey;
use crate::crypto::Sealed;
use crate::domain::FieldError;
use crate::store::writes::Upload;
use crate::store::{AttachmentRow, WriteOp};

fn blob_error(e: BlobError) -> ApiError {
    match e {
        BlobError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
        BlobError::Incomplete => ApiError::UploadIncomplete,
        BlobError::Integrity { .. } | BlobError::Missing => {
            tracing::error!(error = %e, "attachment content unusable");
            ApiError::ContentIntegrity
        }
        BlobError::Io(_) | BlobError::Crypto(_) => {
            tracing::error!(error = %e, "attachment storage failed");
            ApiError::Internal
        }
    }
}

/// The media type an upload declares (default `application/octet-stream`).
fn upload_type(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return Ok("application/octet-stream".to_owned());
    };
    let s = v.to_str().unwrap_or_default();
    let ok = !s.is_empty()
        && s.len() <= 127
        && s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && s.split(';').next().is_some_and(|e| {
            e.trim()
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ApiError::InvalidRequest(vec![FieldError {
            field: "Content-Type".into(),
            message: "must be a MIME type such as application/pdf, at most 127 characters".into(),
        }]))
    }
}

/// `POST /v1/attachments`.
#[utoipa::path(
    post,
    path = "/v1/attachments",
    tag = "attachments",
    operation_id = "upload_attachment",
    summary = "Upload an attachment (raw body, streamed, encrypted at rest)",
    params(
        crate::api::schema::OfficerHeader
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The raw content; its Content-Type is kept"),
    responses(
        (status = 201, description = "Stored", body = crate::api::schema::AttachmentStored)
    )
)]
pub async fn upload(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let owner = ctx.partner()?.clone();
    ctx.officer()?;
    let content_type = upload_type(&headers)?;
    let limit = app.settings.max_attachment_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let id = uuid::Uuid::now_v7().to_string();
    ctx.note_detail("attachment_id", json!(id));
    let key = DataKey::generate().map_err(|_| ApiError::Internal)?;
    let wrapped = key
        .wrap(&app.master_key, &id)
        .map_err(|_| ApiError::Internal)?;
    let stored = app
        .blobs
        .write(&id, &key, body, limit)
        .await
        .map_err(blob_error)?;
    ctx.note_detail("size", json!(stored.size));
    let row = AttachmentRow {
        id: id.clone(),
        owner: owner.to_string(),
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
    match app
        .store
        .write(op, ctx.draft(Action::Upload, Outcome::Allowed, None))
        .await
    {
        Ok((_, rec)) => ctx.mark_audited(rec.seq),
        Err(e) => {
            // Nothing is stored for a request that failed.
            let _ = app.blobs.delete(&id).await;
            return Err(e.into());
        }
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "sha256": stored.sha256, "size": stored.size})),
    )
        .into_response())
}

/// `GET /v1/messages/{id}/attachments/{attachment_id}`.
#[utoipa::path(
    get,
    path = "/v1/messages/{id}/attachments/{attachment_id}",
    tag = "attachments",
    operation_id = "download_attachment",
    summary = "Download an attachment of a message",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        ("attachment_id" = String, Path, description = "The attachment id (UUID)"),
        crate::api::schema::OfficerHeader,
        ("Brdo-Justification" = String, Header, description = "Why the content is read, 1 to 1000 characters")
    ),
    responses(
        (status = 200, description = "The content, with the Content-Type it was uploaded with", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 410, description = "The content was erased at retention", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn download(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path((id, attachment_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    ctx.officer()?;
    justification(&ctx, &headers)?;
    let (row, _) = visible_message(&app, &ctx, &caller, &id).await?;
    // The path segment is the client's text: only an id that can exist
    // is noted for the audit record (anything else is 404 like a missing
    // one).
    let attachment_id = match uuid::Uuid::try_parse(&attachment_id) {
        Ok(u) if attachment_id.len() == 36 => u.to_string(),
        _ => return Err(ApiError::NotFound),
    };
    ctx.note_detail("attachment_id", json!(attachment_id));
    if !app
        .store
        .message_attachments(&row.id)
        .await?
        .contains(&attachment_id)
    {
        return Err(ApiError::NotFound);
    }
    if row.erased_at_ms.is_some() {
        return Err(ApiError::Erased);
    }
    let att = app
        .store
        .attachment(&attachment_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if att.erased_at_ms.is_some() {
        return Err(ApiError::Erased);
    }
    let Some(Sealed {
        master_key_id: key_id,
        wrapped_key: wrapped,
    }) = app.store.data_key(&att.id).await?
    else {
        return Err(ApiError::ContentIntegrity);
    };
    // Any key of the ring the row names (a retired key until rotation
    // re-wraps it); an unknown one is an integrity failure.
    let Some(master) = app.master_key.opener(&key_id) else {
        return Err(ApiError::ContentIntegrity);
    };
    let key =
        DataKey::unwrap_key(master, &att.id, &wrapped).map_err(|_| ApiError::ContentIntegrity)?;
    let mut reader = app.blobs.reader(&att.id, key).await.map_err(blob_error)?;
    // Authenticate the first chunk before answering, so a damaged file is a
    // clear error rather than a broken download.
    let first = reader.next_chunk().await.map_err(blob_error)?;
    // Audited before a single byte leaves (fail closed).
    let (_, rec) = app
        .store
        .write(
            WriteOp::AuditOnly,
            ctx.draft(Action::Consult, Outcome::Allowed, None),
        )
        .await?;
    ctx.mark_audited(rec.seq);
    let stream = futures_util::stream::iter(first.map(Ok)).chain(reader.into_stream());
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&att.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(att.size.max(0) as u64),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("sha-256=:{}:", base64_of_hex(&att.sha256))) {
        h.insert("repr-digest", v);
    }
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", att.id))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    Ok(resp)
}

fn base64_of_hex(h: &str) -> String {
    use base64::Engine;
    hex::decode(h)
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
        .unwrap_or_default()
}

use futures_util::StreamExt as _;
