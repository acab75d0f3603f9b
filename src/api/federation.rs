//! The endpoints peer gateways call (role gateway, SPEC §11): the bytes
//! of a relayed attachment, a relayed message, and receipts sent later. Each parses the body and calls its
//! operation in `app::ops`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::body::read_json;
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::ops;
use crate::domain::{FieldError, PartnerId};
use crate::tls::Identity;

/// The calling peer gateway.
fn peer(ctx: &RequestCtx) -> Result<PartnerId, ApiError> {
    match &ctx.identity {
        Identity::Gateway(g) => Ok(g.clone()),
        other => Err(ApiError::ForbiddenRole { role: other.role() }),
    }
}

/// `POST /v1/federation/messages`.
#[utoipa::path(
    post,
    path = "/v1/federation/messages",
    tag = "federation",
    operation_id = "relay_message",
    summary = "A peer gateway relays a message to this gateway's partners (SPEC §11)",
    request_body(content = Object, content_type = "application/json", description = "The relayed message document, or a batch {\"v\": 1, \"messages\": [1 to 64 documents]} (SPEC §11)"),
    responses(
        (status = 200, description = "A batch: {\"results\": [...]}, per document in order {\"id\", \"status\": 201, \"receipts\"} or {\"id\", \"status\", \"problem\"}", body = Object),
        (status = 201, description = "One signed receipt per recipient (accepted or refused); the same id again answers the first receipts", body = Object),
        (status = 403, description = "origin_not_behind_peer, recipient_not_local, binding_invalid or peer_suspended", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn messages(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let peer = peer(&ctx)?;
    // Attachments travel before it (`attachments`): the document is JSON
    // of the ordinary size.
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    if super::federation_batch::is_batch(&doc) {
        let answer = super::federation_batch::receive(&app, &peer, ctx.as_ref(), &doc).await?;
        return Ok(Json(answer).into_response());
    }
    let answer = ops::relayed::receive(&app, &peer, ctx.as_ref(), &doc).await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `POST /v1/federation/notices`.
#[utoipa::path(
    post,
    path = "/v1/federation/notices",
    tag = "federation",
    operation_id = "relay_notice",
    summary = "The originator's gateway announces a lifecycle decision (erase, hold, lift_hold, label, grant) about a family this gateway may hold (SPEC §11)",
    request_body(content = Object, content_type = "application/json", description = "{\"v\": 1, \"kind\", \"message_id\", \"reason\" | \"label\" | \"partner\" and \"scope\"}"),
    responses(
        (status = 200, description = "{\"receipt\": JWS}: erased for an erasure, applied (naming the notice) otherwise; the same for a family this gateway does not hold", body = Object),
        (status = 400, description = "invalid_message naming the field, or label_not_raised", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "origin_not_behind_peer or peer_suspended", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "legal_hold: this gateway's own hold stands; the origin tries again", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn notices(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let peer = peer(&ctx)?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let answer = ops::notice_in::apply(&app, &peer, ctx.as_ref(), &doc).await?;
    Ok(Json(answer).into_response())
}

/// `POST /v1/federation/attachments`.
#[utoipa::path(
    post,
    path = "/v1/federation/attachments",
    tag = "federation",
    operation_id = "relay_attachment",
    summary = "A peer gateway uploads the bytes of an attachment it is about to relay (SPEC §11)",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The raw content, streamed; its Content-Type is kept"),
    responses(
        (status = 201, description = "Stored; the relayed document names it by `id`", body = crate::api::schema::AttachmentStored),
        (status = 403, description = "peer_suspended", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn attachments(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let peer = peer(&ctx)?;
    let content_type = super::attachments::upload_type(&headers)?;
    let limit = app.settings.max_attachment_bytes;
    if let Some(len) = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let done = ops::relayed::upload(&app, &peer, ctx.as_ref(), content_type, body).await?;
    let answer = serde_json::to_value(&done).map_err(|_| ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `POST /v1/federation/receipts`.
#[utoipa::path(
    post,
    path = "/v1/federation/receipts",
    tag = "federation",
    operation_id = "relay_receipts",
    summary = "A peer gateway sends receipts for messages this gateway relayed to it (SPEC §11)",
    request_body(content = Object, content_type = "application/json", description = "{\"receipts\": [JWS…]}"),
    responses(
        (status = 200, description = "{\"recorded\": N}", body = Object),
        (status = 400, description = "receipt_invalid", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn receipts(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let peer = peer(&ctx)?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let list = receipt_list(&doc)?;
    let n = ops::peer_receipts::record(&app, &peer, ctx.as_ref(), &list).await?;
    Ok(Json(json!({ "recorded": n })).into_response())
}

/// `{"receipts": [JWS…]}`, strictly.
fn receipt_list(doc: &Value) -> Result<Vec<String>, ApiError> {
    let invalid = |field: &str, message: &str| {
        ApiError::InvalidMessage(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    };
    let obj = doc
        .as_object()
        .ok_or_else(|| invalid("(body)", "must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| k.as_str() != "receipts") {
        return Err(invalid(k, "is not a member of a receipts document"));
    }
    obj.get("receipts")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("receipts", "must be an array of compact JWS"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid("receipts", "must be an array of compact JWS"))
        })
        .collect()
}
