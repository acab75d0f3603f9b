//! The provider's control over its information after sending it (Europol
//! Regulation Art. 19, LED Art. 5): forwarding under H2, permissions,
//! judicial use under H1, label raises, legal holds and review decisions.
//!
//! A forward is a new message in the original's *family* (same `root_id`).
//! Permissions, holds, label raises and erase decisions are the originator's
//! and apply to the whole family, so no copy escapes what the provider
//! decided. The rules live in the operations (`app::ops`); each handler
//! here parses its body (`bodies`), calls the operation and answers.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::bodies;
use super::body::read_json;
use super::caller::{caller, signature};
use super::messages::created;
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::ops;
use crate::app::ops::forward::Forward;
use crate::app::ops::hold::HoldBy;
use crate::app::ops::review::Reviewed;

/// An outcome as the JSON answer (keys in the order every answer has).
fn answer<T: serde::Serialize>(outcome: &T) -> Result<Json<serde_json::Value>, ApiError> {
    serde_json::to_value(outcome)
        .map(Json)
        .map_err(|_| ApiError::Internal)
}

/// `POST /v1/messages/{id}/forward`.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/forward",
    tag = "lifecycle",
    operation_id = "forward_message",
    summary = "Forward a received message onward, as a new message",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader,
        ("Brdo-Signature" = Option<String>, Header, description = "Optional forwarder signature over the forward statement (SPEC §3); the originator's signatures travel with the copy")
    ),
    request_body(content = crate::api::schema::ForwardRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Accepted", body = crate::api::schema::ForwardAccepted),
        (status = 409, description = "The family changed while the request was decided (label, hold, permissions); retry", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The content was erased at retention", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn forward(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let (recipients, justification) = bodies::forward(&doc)?;
    let fwd = Forward {
        recipients,
        justification,
        signature: signature(&headers),
    };
    let done = ops::forward::forward(&app, &caller, &id, fwd).await?;
    let answer = serde_json::to_value(&done).map_err(|_| ApiError::Internal)?;
    Ok(created(&done.id, answer.to_string()))
}

/// `POST /v1/messages/{id}/permissions`.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/permissions",
    tag = "lifecycle",
    operation_id = "grant_permission",
    summary = "Originator grants a forward or judicial-use permission",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader
    ),
    request_body(content = crate::api::schema::PermissionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Granted", body = crate::api::schema::PermissionGranted),
        (status = 410, description = "The family was erased", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn grant(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let (partner, scope) = bodies::grant(&doc, &app.policy())?;
    let done = ops::grant::grant(&app, &caller, &id, partner, scope).await?;
    Ok((StatusCode::CREATED, answer(&done)?).into_response())
}

/// `POST /v1/messages/{id}/judicial-use`.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/judicial-use",
    tag = "lifecycle",
    operation_id = "record_judicial_use",
    summary = "Recipient records use in judicial proceedings (H1 check)",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader
    ),
    request_body(content = crate::api::schema::JudicialUseRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = crate::api::schema::JudicialUseRecorded),
        (status = 409, description = "The family changed while the request was decided (label, hold, permissions); retry", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The content was erased at retention", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn judicial_use(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let bytes = super::body::read_limited(body, &headers, app.settings.max_body_bytes).await?;
    let mut reference = None;
    if !bytes.is_empty() {
        super::body::require_json(&headers)?;
        reference = bodies::judicial_use(&super::body::parse_json(&bytes)?)?;
    }
    let done = ops::judicial_use::judicial_use(&app, &caller, &id, reference).await?;
    Ok((StatusCode::CREATED, answer(&done)?).into_response())
}

/// `POST /v1/messages/{id}/hold`.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/hold",
    tag = "lifecycle",
    operation_id = "set_hold",
    summary = "Set a legal hold (originator or gateway DPO)",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader
    ),
    request_body(content = crate::api::schema::HoldRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Held", body = crate::api::schema::HoldState)
    )
)]
pub async fn set_hold(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let reason = bodies::hold(&doc)?;
    hold(&app, &ctx, &id, Some(reason)).await
}

/// `DELETE /v1/messages/{id}/hold`.
#[utoipa::path(
    delete,
    path = "/v1/messages/{id}/hold",
    tag = "lifecycle",
    operation_id = "lift_hold",
    summary = "Lift a legal hold (originator or gateway DPO)",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader
    ),
    responses(
        (status = 200, description = "Not held", body = crate::api::schema::HoldState)
    )
)]
pub(crate) async fn lift_hold(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    hold(&app, &ctx, &id, None).await
}

/// The originator (partner, with an officer) or the gateway DPO acts.
async fn hold(
    app: &AppState,
    ctx: &RequestCtx,
    id: &str,
    reason: Option<String>,
) -> Result<Response, ApiError> {
    let by = match &ctx.identity {
        crate::tls::Identity::Partner(_) => HoldBy::Originator(caller(ctx)?),
        _ => HoldBy::Dpo(ctx),
    };
    let done = ops::hold::hold(app, &by, id, reason).await?;
    Ok(answer(&done)?.into_response())
}

/// `POST /v1/messages/{id}/review`.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/review",
    tag = "lifecycle",
    operation_id = "review_message",
    summary = "Originator records a review decision",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader
    ),
    request_body(content = crate::api::schema::ReviewRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The decision's outcome", body = crate::api::schema::ReviewOutcome),
        (status = 409, description = "Under a legal hold", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn review(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let (decision, reason) = bodies::review(&doc)?;
    let answer = match ops::review::review(&app, &caller, &id, decision, &reason).await? {
        Reviewed::Erased { id, erased } => {
            json!({"id": id, "decision": "erase", "erased": erased})
        }
        Reviewed::Kept {
            id,
            retain_until,
            review_on,
        } => json!({
            "id": id,
            "decision": "keep",
            "retain_until": retain_until,
            "review_on": review_on,
        }),
    };
    Ok(Json(answer).into_response())
}

/// `POST /v1/messages/{id}/label`: the originator raises the label of the
/// information and every copy of it.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/label",
    tag = "lifecycle",
    operation_id = "raise_label",
    summary = "Originator raises the label (never lowers it)",
    params(
        ("id" = String, Path, description = "The message id (UUID)"),
        crate::api::schema::OfficerHeader
    ),
    request_body(content = crate::api::schema::LabelRaise, content_type = "application/json"),
    responses(
        (status = 200, description = "The label now in force", body = crate::api::schema::LabelRaised),
        (status = 409, description = "The family changed while the raise was decided (a new holder, another raise); retry", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The family was erased", body = crate::api::problem::Problem, content_type = "application/problem+json")
    )
)]
pub async fn raise_label(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx)?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let new = bodies::label(&doc)?;
    let done = ops::raise_label::raise_label(&app, &caller, &id, new).await?;
    Ok(answer(&done)?.into_response())
}
