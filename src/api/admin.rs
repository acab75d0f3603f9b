//! The operators' API (SPEC §6): partners, suspension, certificates,
//! reload. Every call is an audit record (`inspect` for reads; the actions
//! of SPEC §5 for changes).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::body::{parse_json, read_limited, require_json};
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::operator;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::PartnerId;
use crate::domain::fields::{FieldErrors, Obj, text};
use crate::store::WriteOp;
use crate::store::writes::SetPartnerState;
use crate::tls::KnownCert;

fn cert_json(c: &KnownCert) -> Value {
    json!({
        "identity": c.identity,
        "serial": c.serial,
        "not_after": format_at(c.not_after),
        "days_left": c.days_left(OffsetDateTime::now_utc()),
        "status": c.status(OffsetDateTime::now_utc()),
        "source": c.source,
        "file": c.file,
    })
}

/// `GET /v1/admin/partners`.
#[utoipa::path(
    get,
    path = "/v1/admin/partners",
    tag = "operators",
    operation_id = "admin_partners",
    summary = "Partners with status and certificates (operator)",
    responses(
        (status = 200, description = "The partners", body = crate::api::schema::PartnerList)
    )
)]
pub async fn partners(State(app): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let policy = app.policy();
    let certs = operator::known_certificates(&app);
    let states = app.store.partner_states().await?;
    let list: Vec<Value> = policy
        .partners
        .values()
        .map(|p| {
            let uri = format!("urn:brdo:partner:{}", p.id);
            let theirs: Vec<Value> = certs
                .iter()
                .filter(|c| c.identity == uri)
                .map(cert_json)
                .collect();
            let state = states.iter().find(|s| s.partner == p.id.as_str());
            json!({
                "id": p.id,
                "name": p.name,
                "country": p.country,
                "clearance": p.clearance,
                "third_country": p.third_country,
                "status": if app.is_suspended(&p.id) { "suspended" } else { "active" },
                "status_since": state.map(|s| s.updated_at.clone()),
                "certificates": theirs,
            })
        })
        .collect();
    Ok(Json(json!({"partners": list})).into_response())
}

/// `GET /v1/admin/certificates`.
#[utoipa::path(
    get,
    path = "/v1/admin/certificates",
    tag = "operators",
    operation_id = "admin_certificates",
    summary = "Certificates the gateway knows (operator)",
    responses(
        (status = 200, description = "The certificates", body = crate::api::schema::CertificateList)
    )
)]
pub async fn certificates(State(app): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let certs: Vec<Value> = operator::known_certificates(&app)
        .iter()
        .map(cert_json)
        .collect();
    Ok(Json(json!({"certificates": certs})).into_response())
}

pub(crate) async fn optional_reason(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Option<String>, ApiError> {
    let bytes = read_limited(body, headers, limit).await?;
    if bytes.is_empty() {
        return Ok(None);
    }
    require_json(headers)?;
    let doc = parse_json(&bytes)?;
    let mut errs = FieldErrors::default();
    let mut reason = None;
    if let Some(mut o) = Obj::new(&doc, "", &mut errs) {
        reason = o
            .optional_str("reason", &mut errs)
            .and_then(|s| text(s, "reason", 1, 1000, true, &mut errs));
        o.finish(&mut errs);
    }
    if errs.is_empty() {
        Ok(reason)
    } else {
        Err(ApiError::InvalidMessage(errs.into_vec()))
    }
}

async fn set_suspended(
    app: &AppState,
    ctx: &RequestCtx,
    id: &str,
    suspended: bool,
    reason: Option<String>,
) -> Result<Response, ApiError> {
    let partner = PartnerId::parse(id)
        .filter(|p| app.policy().partner(p).is_some())
        .ok_or(ApiError::NotFound)?;
    ctx.note_counterparts([partner.to_string()]);
    if let Some(r) = &reason {
        ctx.note_justification(r);
    }
    let now = OffsetDateTime::now_utc();
    let at = format_at(now);
    let op = WriteOp::from(SetPartnerState {
        partner: partner.to_string(),
        suspended,
        at_ms: crate::domain::time::to_ms(now),
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
    app.mark_suspended(&partner, suspended);
    let closed = if suspended {
        let n = app
            .connections
            .close_where(|_, p| p == Some(partner.as_str()));
        app.metrics.connections_closed(n);
        n
    } else {
        0
    };
    Ok(Json(json!({
        "partner": partner,
        "status": if suspended { "suspended" } else { "active" },
        "updated_at": at,
        "connections_closed": closed,
    }))
    .into_response())
}

/// `POST /v1/admin/partners/{id}/suspend`: cut the partner off now, open
/// connections included.
#[utoipa::path(
    post,
    path = "/v1/admin/partners/{id}/suspend",
    tag = "operators",
    operation_id = "suspend_partner",
    summary = "Cut a partner off now, open connections too (operator)",
    params(
        ("id" = String, Path, description = "The partner id")
    ),
    responses(
        (status = 200, description = "Suspended", body = crate::api::schema::PartnerStateChange)
    )
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

/// `POST /v1/admin/partners/{id}/resume`.
#[utoipa::path(
    post,
    path = "/v1/admin/partners/{id}/resume",
    tag = "operators",
    operation_id = "resume_partner",
    summary = "Restore a suspended partner (operator)",
    params(
        ("id" = String, Path, description = "The partner id")
    ),
    responses(
        (status = 200, description = "Active", body = crate::api::schema::PartnerStateChange)
    )
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

/// `POST /v1/admin/reload`: policy, certificates and CRL as one step. A
/// broken file is refused with its place and the running configuration
/// keeps serving. The change is audited before it applies: if its record
/// cannot be written the answer is `503 audit_unavailable` and the old
/// configuration stays in force, so no change is ever unaudited.
#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    tag = "operators",
    operation_id = "reload",
    summary = "Re-read policy, certificates and CRL (operator)",
    responses(
        (status = 200, description = "What was reloaded", body = Object)
    )
)]
pub async fn reload(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
) -> Result<Response, ApiError> {
    // Checked, audited and put in force under one lock, so the CRL in
    // force cannot change between the check and the install.
    let _tls_change = app.tls_change.lock().await;
    let prepared = operator::prepare_reload(&app).map_err(ApiError::ReloadRefused)?;
    ctx.note_detail("reload", prepared.details());
    let (_, rec) = app
        .store
        .write(
            WriteOp::AuditOnly,
            ctx.draft(Action::ConfigReload, Outcome::Allowed, None),
        )
        .await?;
    ctx.mark_audited(rec.seq);
    let report = prepared.apply(&app);
    // The same record per revoked serial as when the watch finds a new
    // CRL, naming the operator whose reload brought it in. The revocation
    // is already in force (the safe direction) and the reload record
    // above names every serial, so a failure here is logged, not undone.
    for serial in &report.newly_revoked {
        let mut draft = ctx.draft(Action::CertRevoke, Outcome::Allowed, None);
        draft.details = json!({
            "serial": serial,
            "connections_closed": report.connections_closed,
        })
        .as_object()
        .cloned();
        if let Err(e) = app.store.write(WriteOp::AuditOnly, draft).await {
            tracing::error!(error = %e, "a cert_revoke record of the reload could not be written");
        }
    }
    // The CRL's own record (number, serials added and removed), as the
    // watch writes it; the reload record above already names the change.
    if let Some(details) = report.crl_record_details() {
        let mut draft = ctx.draft(Action::CrlUpdate, Outcome::Allowed, None);
        draft.details = Some(details);
        if let Err(e) = app.store.write(WriteOp::AuditOnly, draft).await {
            tracing::error!(error = %e, "the crl_update record of the reload could not be written");
        }
    }
    Ok(Json(report.details()).into_response())
}
