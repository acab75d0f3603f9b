//! Partner endpoints on messages: submit, read, acknowledge, status. Each
//! parses the request, calls its operation in `app::ops` and writes the
//! answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::body::read_json;
use super::caller::{caller, justification, signature};
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::ops;
use crate::app::ops::submit::Submission;
use crate::domain::FieldError;

/// Header carrying a client's idempotency key.
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";

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
        (status = 409, description = "The Idempotency-Key was used with another body", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn submit(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let idempotency_key = idempotency_key(&headers)?;
    let document = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let submission = Submission {
        document,
        idempotency_key,
        signature: signature(&headers),
    };
    let done = ops::submit::submit(&app, &caller, submission).await?;
    let mut resp = created(&done.id, done.answer);
    if done.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
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
        (status = 410, description = "The content was erased at retention", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn read(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let justification = justification(&headers)?;
    let doc = ops::read::read(&app, &caller, &id, &justification).await?;
    Ok(Json(doc).into_response())
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
        (status = 410, description = "The content was erased at retention", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn ack(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let done = ops::acknowledge::acknowledge(&app, &caller, &id).await?;
    let answer = serde_json::to_value(&done).map_err(|_| ApiError::Internal)?;
    Ok(Json(answer).into_response())
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
    let sender = ctx.partner()?.clone();
    let (id, states) = ops::status::status(&app, &sender, ctx.as_ref(), &id).await?;
    let recipients: Vec<Value> = states
        .iter()
        .map(|s| {
            let mut v =
                json!({"partner": s.partner, "status": s.status, "updated_at": s.updated_at});
            // Remote recipients only: a local one's answer is as before.
            if let (Some(obj), Some(via)) = (v.as_object_mut(), &s.via) {
                obj.insert("via".into(), json!(via));
                obj.insert("receipt".into(), json!(s.receipt));
                if let Some(e) = s.erasure {
                    obj.insert("erasure".into(), json!(e));
                }
            }
            v
        })
        .collect();
    Ok(Json(json!({"id": id, "recipients": recipients})).into_response())
}
