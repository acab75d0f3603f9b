//! Attachments (SPEC §7): streamed, encrypted uploads and holder-only
//! downloads. The rules live in `app::ops::attachments`; here are the
//! media type, the declared length and the download's headers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::caller::{caller, justification};
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::ops;
use crate::app::ops::attachments::Download;
use crate::domain::FieldError;

/// The media type an upload declares (default `application/octet-stream`).
pub(super) fn upload_type(headers: &HeaderMap) -> Result<String, ApiError> {
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
    let caller = caller(&ctx)?;
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
    let done = ops::attachments::upload(&app, &caller, content_type, body).await?;
    let answer = serde_json::to_value(&done).map_err(|_| ApiError::Internal)?;
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
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
        (status = 410, description = "The content was erased at retention", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn download(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path((id, attachment_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let justification = justification(&headers)?;
    let Download {
        attachment: att,
        first,
        rest,
    } = ops::attachments::download(&app, &caller, &id, &attachment_id, &justification).await?;
    let stream = futures_util::stream::iter(first.map(Ok)).chain(rest.into_stream());
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
