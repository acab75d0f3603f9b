//! The operators' view of peer gateways (SPEC §11): each peer's queue and
//! last contact, and suspending or resuming one (no relay to it, nothing
//! accepted from it), audited.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::admin::optional_reason;
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::audit::record::{Action, Outcome};
use crate::domain::PartnerId;
use crate::domain::time::ms_to_text;
use crate::store::WriteOp;
use crate::store::writes::SetPeerState;

/// `GET /v1/admin/peers`.
#[utoipa::path(
    get,
    path = "/v1/admin/peers",
    tag = "operators",
    operation_id = "admin_peers",
    summary = "Peer gateways with their queues and last contact (operator)",
    responses(
        (status = 200, description = "{\"peers\": [{\"id\", \"url\", \"suspended\", \"reachable\", \"queue_depth\", \"oldest_queued_age_secs\", \"last_success_at\", \"last_error_at\", \"last_error\"}]}", body = Object)
    )
)]
pub async fn peers(State(app): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let states = app.store.peer_states().await?;
    let queues = crate::app::health::relay_queues(&app, OffsetDateTime::now_utc()).await;
    let list: Vec<Value> = app
        .policy()
        .peers
        .values()
        .map(|p| {
            let s = states.iter().find(|s| s.peer == p.id.as_str());
            let q = queues.iter().find(|q| q.0 == p.id.as_str());
            let success = s.and_then(|s| s.last_success_ms);
            let error = s.and_then(|s| s.last_error_ms);
            let reachable = match (success, error) {
                (None, None) => None,
                (Some(_), None) => Some(true),
                (None, Some(_)) => Some(false),
                (Some(ok), Some(bad)) => Some(ok >= bad),
            };
            json!({
                "id": p.id,
                "url": p.url,
                "suspended": s.is_some_and(|s| s.suspended),
                "reachable": reachable,
                "queue_depth": q.map_or(0, |q| q.1),
                "oldest_queued_age_secs": q.map_or(0.0, |q| q.2),
                "last_success_at": success.map(ms_to_text),
                "last_error_at": error.map(ms_to_text),
                "last_error": s.and_then(|s| s.last_error.clone()),
            })
        })
        .collect();
    Ok(Json(json!({ "peers": list })).into_response())
}

async fn set_suspended(
    app: &AppState,
    ctx: &RequestCtx,
    id: &str,
    suspended: bool,
    reason: Option<String>,
) -> Result<Response, ApiError> {
    let peer = PartnerId::parse(id)
        .filter(|p| app.policy().peer(p).is_some())
        .ok_or(ApiError::NotFound)?;
    ctx.note_detail("peer", json!(peer.as_str()));
    if let Some(r) = &reason {
        ctx.note_justification(r);
    }
    let op = WriteOp::from(SetPeerState {
        peer: peer.to_string(),
        suspended,
    });
    let action = if suspended {
        Action::PartnerSuspend
    } else {
        Action::PartnerResume
    };
    let (_, rec) = app
        .store
        .write(op, ctx.draft(action, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    app.wake_relay();
    Ok(Json(json!({"peer": peer, "suspended": suspended})).into_response())
}

/// `POST /v1/admin/peers/{id}/suspend`.
#[utoipa::path(
    post,
    path = "/v1/admin/peers/{id}/suspend",
    tag = "operators",
    operation_id = "suspend_peer",
    summary = "Stop relaying to a peer gateway and accepting from it (operator)",
    params(("id" = String, Path, description = "The peer gateway id")),
    responses((status = 200, description = "{\"peer\", \"suspended\": true}", body = Object))
)]
pub async fn suspend(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let reason = optional_reason(&headers, body, app.settings.max_body_bytes).await?;
    set_suspended(&app, &ctx, &id, true, reason).await
}

/// `POST /v1/admin/peers/{id}/resume`.
#[utoipa::path(
    post,
    path = "/v1/admin/peers/{id}/resume",
    tag = "operators",
    operation_id = "resume_peer",
    summary = "Relay to a peer gateway and accept from it again (operator)",
    params(("id" = String, Path, description = "The peer gateway id")),
    responses((status = 200, description = "{\"peer\", \"suspended\": false}", body = Object))
)]
pub async fn resume(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let reason = optional_reason(&headers, body, app.settings.max_body_bytes).await?;
    set_suspended(&app, &ctx, &id, false, reason).await
}
