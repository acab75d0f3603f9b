//! Partner endpoints on messages: submit, read, acknowledge, status.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::body::read_json;
use super::content::{self, Content, message_json, ms_to_text, to_ms};
use super::context::{JUSTIFICATION_HEADER, RequestCtx, text_header};
use super::problem::ApiError;
use crate::app::AppState;
use crate::audit::jcs;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::label::format_date;
use crate::domain::{FieldError, NewMessage, PartnerId};
use crate::policy::{Decision, Transfer, compute_retention, decide};
use crate::store::json_columns::{evaluation_text, label_text, personal_data_text};
use crate::store::writes::{Acknowledge, MarkDelivered, Submit};
use crate::store::{
    DeliveryRow, DeliveryStatus, IdempotencyKey, IdempotencyRow, MessageRow, NewDelivery,
    SignatureRole, StoreError, WriteOp, WriteOutput,
};

/// Header carrying a client's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// `POST /v1/messages`.
#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "messages",
    operation_id = "submit_message",
    summary = "Submit a labelled message",
    params(
        crate::api::schema::OfficerHeader,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; the same key with the same body returns the first answer"),
        ("Brdo-Signature" = Option<String>, Header, description = "Optional sender signature: a detached compact JWS (header..signature), typ brdo-origin+jws, ES256 or EdDSA, the signer's certificate chain in x5c, over the RFC 8785 form of the submission statement (SPEC §3); a bad one is 400 invalid_signature")
    ),
    request_body(content = crate::api::schema::MessageSubmission, content_type = "application/json"),
    responses(
        (status = 201, description = "Accepted for every recipient", body = crate::api::schema::MessageAccepted),
        (status = 409, description = "The Idempotency-Key was used with another body", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn submit(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sender = ctx.partner()?.clone();
    let officer = ctx.officer()?.to_owned();
    let key = idempotency_key(&headers)?;
    let value = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let request_hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        jcs::canonicalize(&value).as_bytes(),
    ));

    if let Some(k) = &key
        && let Some(row) = app.store.idempotency(sender.as_str(), k).await?
    {
        return replay(&ctx, &row, &request_hash);
    }

    let now = OffsetDateTime::now_utc();
    let msg = NewMessage::parse(&value, now.date())
        .map_err(|e| ApiError::InvalidMessage(e.into_vec()))?;
    ctx.note_counterparts(&msg.recipients);

    let policy = app.policy();
    let suspended = app.suspended();
    let decision = decide(
        &policy,
        app.settings.accreditation,
        &suspended,
        &Transfer {
            sender: &sender,
            recipients: &msg.recipients,
            label: &msg.label,
            purpose: msg.purpose,
            personal_data: &msg.personal_data,
            onward: None,
        },
    );
    if let Decision::Deny(violations) = decision {
        app.metrics
            .message_denied(violations.iter().map(|v| v.code.as_str()));
        return Err(ApiError::PolicyDenied(violations));
    }
    check_references(&app, &sender, &msg).await?;
    let attachment_ids: Vec<String> = msg.attachments.iter().map(ToString::to_string).collect();
    let signature = super::signed::check(
        &app,
        &ctx,
        &headers,
        &sender,
        SignatureRole::Originator,
        &attachment_ids,
        |digest_of| crate::signature::submission_statement(sender.as_str(), &value, digest_of),
    )
    .await?;

    let id = uuid::Uuid::now_v7().to_string();
    ctx.note_message(&id);
    let retention = compute_retention(
        &policy.retention,
        now,
        msg.retention_days,
        &msg.personal_data.subjects,
        msg.label.review_on,
    );
    let (sealed, wrapped) = content::seal(&app.master_key, &id, &Content::of(&msg))?;
    let accepted_at = format_at(now);
    let response = json!({
        "id": id,
        "accepted_at": accepted_at,
        "retain_until": format_at(retention.retain_until),
        "review_on": format_date(retention.review_on),
        "recipients": msg.recipients.iter().map(|r| json!({"partner": r, "status": DeliveryStatus::Queued})).collect::<Vec<_>>(),
    });
    let row = MessageRow {
        id: id.clone(),
        sender: sender.to_string(),
        originator: sender.to_string(),
        forwarded_from: None,
        officer,
        classification: msg.label.classification.rank(),
        label: label_text(&msg.label),
        evaluation: evaluation_text(&msg.evaluation),
        purpose: msg.purpose.as_str().to_owned(),
        personal_data: personal_data_text(&msg.personal_data),
        case_ref: msg.case_ref.clone(),
        in_reply_to: msg.in_reply_to.map(|u| u.to_string()),
        content_type: msg.content_type.clone(),
        retention_days: msg.retention_days.map(i64::from),
        attachments: json_text(&msg.attachments),
        accepted_at,
        accepted_ms: to_ms(now),
        retain_until_ms: to_ms(retention.retain_until),
        review_on: format_date(retention.review_on),
        retention_basis: json_text(&retention.basis),
        held: false,
        erased_at_ms: None,
        content: Some(sealed),
        collect_seq: 0,
        root_id: id.clone(),
        hold_reason: None,
    };
    let op = WriteOp::from(Submit {
        message: Box::new(row),
        deliveries: msg
            .recipients
            .iter()
            .map(|r| NewDelivery {
                recipient: r.to_string(),
            })
            .collect(),
        data_key: wrapped,
        attachments: attachment_ids,
        signatures: signature.into_iter().collect(),
        idempotency: key.clone().map(|k| IdempotencyKey {
            partner: sender.to_string(),
            key: k,
            request_hash: request_hash.clone(),
            response: response.to_string(),
        }),
    });
    match app
        .store
        .write(op, ctx.draft(Action::Collect, Outcome::Allowed, None))
        .await
    {
        Ok((_, rec)) => ctx.mark_audited(rec.seq),
        Err(StoreError::IdempotencyRace) => {
            let k = key.unwrap_or_default();
            let row = app
                .store
                .idempotency(sender.as_str(), &k)
                .await?
                .ok_or(ApiError::Internal)?;
            return replay(&ctx, &row, &request_hash);
        }
        Err(e) => return Err(e.into()),
    }
    app.metrics.message_accepted();
    for r in &msg.recipients {
        app.inbox.notify(r);
    }
    Ok(created(&id, response.to_string()))
}

/// A value as the text of a JSON column.
pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn created(id: &str, body: String) -> Response {
    let mut resp = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/messages/{id}")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// Answers a repeated idempotency key: the first answer for the same body,
/// `409` for another.
fn replay(
    ctx: &RequestCtx,
    row: &IdempotencyRow,
    request_hash: &str,
) -> Result<Response, ApiError> {
    ctx.note_message(&row.message_id);
    if row.request_hash != request_hash {
        return Err(ApiError::IdempotencyConflict);
    }
    ctx.note_detail("idempotent_replay", Value::Bool(true));
    let mut resp = created(&row.message_id, row.response.clone());
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(resp)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(s) if (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(s.to_owned()))
        }
        _ => Err(ApiError::InvalidRequest(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "must be 1 to 255 visible ASCII characters".into(),
        }])),
    }
}

/// `in_reply_to` must name a message the sender holds; attachments must
/// have been uploaded by the sender. Both answer like a missing id when
/// they are not visible, so nothing leaks.
async fn check_references(
    app: &AppState,
    sender: &PartnerId,
    msg: &NewMessage,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Some(reply) = msg.in_reply_to {
        let visible = match app.store.message(&reply.to_string()).await? {
            Some(row) => holder_of(app, &row, sender).await?,
            None => false,
        };
        if !visible {
            errors.push(FieldError {
                field: "in_reply_to".into(),
                message: "names no message the sender holds".into(),
            });
        }
    }
    for (i, a) in msg.attachments.iter().enumerate() {
        let usable = app
            .store
            .attachment(&a.to_string())
            .await?
            .is_some_and(|row| row.owner == sender.as_str() && row.erased_at_ms.is_none());
        if !usable {
            errors.push(FieldError {
                field: format!("attachments[{i}]"),
                message: format!("{a} is not an attachment uploaded by the sender"),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidMessage(errors))
    }
}

async fn holder_of(
    app: &AppState,
    row: &MessageRow,
    partner: &PartnerId,
) -> Result<bool, ApiError> {
    if row.sender == partner.as_str() {
        return Ok(true);
    }
    Ok(app
        .store
        .deliveries(&row.id)
        .await?
        .iter()
        .any(|d| d.recipient == partner.as_str()))
}

/// A message the caller holds (as sender or recipient), with its
/// deliveries; anything else is `404`, exactly like a missing id. Notes the
/// message and counterparts for the audit record.
pub(crate) async fn visible_message(
    app: &AppState,
    ctx: &RequestCtx,
    caller: &PartnerId,
    id: &str,
) -> Result<(MessageRow, Vec<DeliveryRow>), ApiError> {
    let id = match uuid::Uuid::try_parse(id) {
        Ok(u) if id.len() == 36 => u.to_string(),
        _ => return Err(ApiError::NotFound),
    };
    ctx.note_message(&id);
    let row = app.store.message(&id).await?.ok_or(ApiError::NotFound)?;
    let deliveries = app.store.deliveries(&id).await?;
    let is_sender = row.sender == caller.as_str();
    if !is_sender && !deliveries.iter().any(|d| d.recipient == caller.as_str()) {
        return Err(ApiError::NotFound);
    }
    if is_sender {
        ctx.note_counterparts(deliveries.iter().map(|d| d.recipient.clone()));
    } else {
        ctx.note_counterparts([row.sender.clone()]);
    }
    Ok((row, deliveries))
}

pub(crate) fn justification(ctx: &RequestCtx, headers: &HeaderMap) -> Result<String, ApiError> {
    match text_header(headers, JUSTIFICATION_HEADER, 1000) {
        Ok(Some(j)) => {
            ctx.note_justification(&j);
            Ok(j)
        }
        Ok(None) => Err(ApiError::JustificationRequired(
            "Give the reason for reading in the Brdo-Justification header (1 to 1000 characters)."
                .into(),
        )),
        Err(p) => Err(ApiError::JustificationRequired(p)),
    }
}

/// `GET /v1/messages/{id}`.
#[utoipa::path(
    get,
    path = "/v1/messages/{id}",
    tag = "messages",
    operation_id = "read_message",
    summary = "Read a whole message (consultation)",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader,
        ("Brdo-Justification" = String, Header, description = "Why the content is read, 1 to 1000 characters")
    ),
    responses(
        (status = 200, description = "The message", body = crate::api::schema::Message),
        (status = 410, description = "The content was erased at retention", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn read(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    ctx.officer()?;
    justification(&ctx, &headers)?;
    let (row, deliveries) = visible_message(&app, &ctx, &caller, &id).await?;
    let Some(sealed) = row
        .content
        .as_deref()
        .filter(|_| row.erased_at_ms.is_none())
    else {
        return Err(ApiError::Erased);
    };
    let content = content::open(&app.store, &app.master_key, &row.id, sealed).await?;
    let recipients: Vec<String> = deliveries.iter().map(|d| d.recipient.clone()).collect();
    let mut doc = message_json(&row, &content, &recipients);
    let binding = bind(&app, &doc).await?;
    let signatures = app.store.signatures(&row.id).await?;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("binding".into(), Value::String(binding));
        obj.insert("signatures".into(), super::signed::delivered(&signatures));
    }
    let first_read = deliveries
        .iter()
        .any(|d| d.recipient == caller.as_str() && d.status == DeliveryStatus::Queued);
    let op = if first_read {
        WriteOp::from(MarkDelivered {
            message_id: row.id.clone(),
            recipient: caller.to_string(),
            at_ms: to_ms(OffsetDateTime::now_utc()),
        })
    } else {
        WriteOp::AuditOnly
    };
    // Content read before an erasure committed is handed out only if the
    // consultation's record commits before it too.
    let op = op.checked(crate::store::Expected::live(&row.id, &row.root_id));
    let (_, rec) = app
        .store
        .write(op, ctx.draft(Action::Consult, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    Ok(Json(doc).into_response())
}

/// The label binding of a delivered message document (see
/// [`crate::binding`]); attachment digests come from their uploads. A
/// message that cannot be bound is not delivered.
async fn bind(app: &AppState, doc: &Value) -> Result<String, ApiError> {
    let ids = doc["attachments"].as_array().into_iter().flatten();
    let digests = content::attachment_digests(&app.store, ids.filter_map(Value::as_str)).await?;
    crate::binding::sign(&app.envelope_key, doc, |id| {
        digests.get(id).cloned().unwrap_or_default()
    })
    .map_err(|e| {
        tracing::error!(error = %e, "cannot sign a label binding; the message is not delivered");
        ApiError::Internal
    })
}

/// `POST /v1/messages/{id}/ack`.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/ack",
    tag = "messages",
    operation_id = "acknowledge_message",
    summary = "Acknowledge a delivered message",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader
    ),
    responses(
        (status = 200, description = "Acknowledged", body = crate::api::schema::Acknowledged),
        (status = 410, description = "The content was erased at retention", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn ack(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    ctx.officer()?;
    let (row, deliveries) = visible_message(&app, &ctx, &caller, &id).await?;
    if !deliveries.iter().any(|d| d.recipient == caller.as_str()) {
        // The sender holds the message but has no delivery to acknowledge.
        return Err(ApiError::NotFound);
    }
    if row.erased_at_ms.is_some() {
        return Err(ApiError::Erased);
    }
    let op = WriteOp::from(Acknowledge {
        message_id: row.id.clone(),
        recipient: caller.to_string(),
        at_ms: to_ms(OffsetDateTime::now_utc()),
    });
    let (out, rec) = app
        .store
        .write(op, ctx.draft(Action::Acknowledge, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    let WriteOutput::Delivery(d) = out else {
        return Err(ApiError::Internal);
    };
    Ok(Json(json!({
        "id": row.id,
        "partner": d.recipient,
        "status": d.status,
        "updated_at": d.updated_at,
    }))
    .into_response())
}

/// `GET /v1/messages/{id}/status`.
#[utoipa::path(
    get,
    path = "/v1/messages/{id}/status",
    tag = "messages",
    operation_id = "message_status",
    summary = "Delivery status per recipient (originator only)",
    params(
        ("id" = String, Path, description = "The message id (UUID)")
    ),
    responses(
        (status = 200, description = "Every recipient's status", body = crate::api::schema::MessageStatus)
    )
)]
pub async fn status(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    let (row, deliveries) = visible_message(&app, &ctx, &caller, &id).await?;
    if row.sender != caller.as_str() {
        // Recipients hold the message but may not see who else got it.
        return Err(ApiError::NotFound);
    }
    let erased_at = row.erased_at_ms.map(ms_to_text);
    let recipients: Vec<Value> = deliveries
        .iter()
        .map(|d| match &erased_at {
            Some(at) => json!({"partner": d.recipient, "status": "erased", "updated_at": at}),
            None => json!({"partner": d.recipient, "status": d.status, "updated_at": d.updated_at}),
        })
        .collect();
    Ok(Json(json!({"id": row.id, "recipients": recipients})).into_response())
}
