//! The provider's control over its information after sending it (Europol
//! Regulation Art. 19, LED Art. 5): forwarding under H2, permissions,
//! judicial use under H1, label raises, legal holds and review decisions.
//!
//! A forward is a new message in the original's *family* (same `root_id`).
//! Permissions, holds, label raises and erase decisions are the originator's
//! and apply to the whole family, so no copy escapes what the provider
//! decided.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::body::read_json;
use super::content::{self, ms_to_text, to_ms};
use super::context::RequestCtx;
use super::messages::{created, json_text, visible_message};
use super::problem::ApiError;
use crate::app::AppState;
use crate::app::sweeper::delete_blobs;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::fields::{FieldErrors, Obj, as_int_in, text};
use crate::domain::label::{HandlingCode, Label, format_date, parse_partner_set};
use crate::domain::{Classification, FieldError, PartnerId, PersonalData, Purpose};
use crate::policy::decide::Onward;
use crate::policy::{Decision, Transfer, Violation, ViolationCode, compute_retention, decide};
use crate::store::writes::{Erase, Grant, JudicialUse, RaiseLabel, ReviewKeep, SetHold, Submit};
use crate::store::{
    DeliveryStatus, Expected, MessageRow, NewDelivery, Permission, PermissionScope, SignatureRole,
    WriteOp, WriteOutput,
};

fn invalid(errs: FieldErrors) -> ApiError {
    ApiError::InvalidMessage(errs.into_vec())
}

fn stored_label(row: &MessageRow) -> Result<Label, ApiError> {
    serde_json::from_str::<Value>(&row.label)
        .ok()
        .as_ref()
        .and_then(Label::from_stored)
        .ok_or_else(|| {
            tracing::error!(message = %row.id, "stored label does not parse");
            ApiError::Internal
        })
}

fn stored_personal_data(row: &MessageRow) -> Result<PersonalData, ApiError> {
    serde_json::from_str::<Value>(&row.personal_data)
        .ok()
        .as_ref()
        .and_then(PersonalData::from_stored)
        .ok_or(ApiError::Internal)
}

fn partner_of(s: &str) -> Result<PartnerId, ApiError> {
    PartnerId::parse(s).ok_or(ApiError::Internal)
}

/// The originator of `row`, or `403 not_originator` for other holders.
fn require_originator(row: &MessageRow, caller: &PartnerId) -> Result<(), ApiError> {
    if row.originator == caller.as_str() {
        Ok(())
    } else {
        Err(ApiError::NotOriginator)
    }
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
        (status = 409, description = "The family changed while the request was decided (label, hold, permissions); retry", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The content was erased at retention", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn forward(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let forwarder = ctx.partner()?.clone();
    let officer = ctx.officer()?.to_owned();
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let mut errs = FieldErrors::default();
    let mut recipients = None;
    let mut justification = None;
    if let Some(mut o) = Obj::new(&doc, "", &mut errs) {
        recipients = o
            .required("recipients", &mut errs)
            .and_then(|v| parse_partner_set(v, "recipients", 1, 64, &mut errs));
        justification = o
            .required_str("justification", &mut errs)
            .and_then(|s| text(s, "justification", 1, 1000, true, &mut errs));
        o.finish(&mut errs);
    }
    let (Some(recipients), Some(justification)) = (recipients, justification) else {
        return Err(invalid(errs));
    };
    ctx.note_justification(&justification);

    let (row, _) = visible_message(&app, &ctx, &forwarder, &id).await?;
    ctx.note_counterparts(&recipients);
    let Some(sealed) = row
        .content
        .as_deref()
        .filter(|_| row.erased_at_ms.is_none())
    else {
        return Err(ApiError::Erased);
    };
    let label = stored_label(&row)?;
    let personal_data = stored_personal_data(&row)?;
    let purpose = Purpose::parse(&row.purpose).ok_or(ApiError::Internal)?;
    let originator = partner_of(&row.originator)?;
    let forward_permitted: BTreeSet<PartnerId> = app
        .store
        .permissions(&row.root_id)
        .await?
        .into_iter()
        .filter(|p| p.scope == PermissionScope::Forward)
        .filter_map(|p| PartnerId::parse(&p.partner))
        .collect();
    // The copy takes the label and hold read here, and the decision rests
    // on them and the permissions: all must still hold at commit.
    let expected = Expected::live(&row.id, &row.root_id)
        .with_label(&row.label)
        .with_held(row.held)
        .with_permissions(
            forward_permitted
                .iter()
                .map(|p| Permission {
                    partner: p.to_string(),
                    scope: PermissionScope::Forward,
                })
                .collect(),
        );
    let policy = app.policy();
    let decision = decide(
        &policy,
        app.settings.accreditation,
        &app.suspended(),
        &Transfer {
            sender: &forwarder,
            recipients: &recipients,
            label: &label,
            purpose,
            personal_data: &personal_data,
            onward: (forwarder != originator).then_some(Onward {
                originator: &originator,
                forward_permitted: &forward_permitted,
            }),
        },
    );
    if let Decision::Deny(v) = decision {
        app.metrics
            .message_denied(v.iter().map(|v| v.code.as_str()));
        return Err(ApiError::PolicyDenied(v));
    }

    let content = content::open(&app.store, &app.master_key, &row.id, sealed).await?;
    let attachments = app.store.message_attachments(&row.id).await?;
    // The originator's signatures travel with the copy; the forwarder may
    // add its own over the original as it received it.
    let mut signatures = app.store.signatures(&row.id).await?;
    let as_received = content::message_json(&row, &content, &[]);
    let recipient_ids: Vec<String> = recipients.iter().map(ToString::to_string).collect();
    if let Some(own) = super::signed::check(
        &app,
        &ctx,
        &headers,
        &forwarder,
        SignatureRole::Forwarder,
        &attachments,
        |digest_of| {
            crate::signature::forward_statement(
                forwarder.as_str(),
                &as_received,
                &recipient_ids,
                digest_of,
            )
        },
    )
    .await?
    {
        signatures.push(own);
    }
    let now = OffsetDateTime::now_utc();
    let new_id = uuid::Uuid::now_v7().to_string();
    // A copy never outlives the original's retention.
    let own = compute_retention(&policy.retention, now, None, &personal_data.subjects, None);
    let retain_until_ms = to_ms(own.retain_until).min(row.retain_until_ms);
    let (sealed, wrapped) = content::seal(&app.master_key, &new_id, &content)?;
    let accepted_at = format_at(now);
    let copy = MessageRow {
        id: new_id.clone(),
        sender: forwarder.to_string(),
        forwarded_from: Some(row.id.clone()),
        officer,
        accepted_at: accepted_at.clone(),
        accepted_ms: to_ms(now),
        retain_until_ms,
        retention_basis: json_text(&json!({"kind": "original", "message": row.root_id})),
        held: row.held,
        erased_at_ms: None,
        content: Some(sealed),
        collect_seq: 0,
        ..row.clone()
    };
    ctx.note_detail("message_ids", json!([new_id]));
    ctx.note_detail("forward_id", json!(new_id));
    let submit = WriteOp::from(Submit {
        message: Box::new(copy),
        deliveries: recipients
            .iter()
            .map(|r| NewDelivery {
                recipient: r.to_string(),
            })
            .collect(),
        data_key: wrapped,
        attachments,
        idempotency: None,
        signatures,
    });
    let op = submit.checked(expected);
    let (_, rec) = app
        .store
        .write(op, ctx.draft(Action::Disclose, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    app.metrics.message_accepted();
    for r in &recipients {
        app.inbox.notify(r);
    }
    let response = json!({
        "id": new_id,
        "forwarded_from": row.id,
        "originator": row.originator,
        "accepted_at": accepted_at,
        "retain_until": ms_to_text(retain_until_ms),
        "review_on": row.review_on,
        "recipients": recipients.iter().map(|r| json!({"partner": r, "status": DeliveryStatus::Queued})).collect::<Vec<_>>(),
    });
    Ok(created(&new_id, response.to_string()))
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
        (status = 410, description = "The family was erased", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn grant(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    let officer = ctx.officer()?.to_owned();
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let mut errs = FieldErrors::default();
    let (mut partner, mut scope) = (None, None);
    if let Some(mut o) = Obj::new(&doc, "", &mut errs) {
        partner = o.required_str("partner", &mut errs).and_then(|s| {
            let p = PartnerId::parse(s).filter(|p| app.policy().partner(p).is_some());
            if p.is_none() {
                errs.push("partner", "must be a partner in the policy");
            }
            p
        });
        scope = o.required_str("scope", &mut errs).and_then(|s| {
            let scope = PermissionScope::parse(s);
            if scope.is_none() {
                errs.push("scope", "must be forward or judicial_use");
            }
            scope
        });
        o.finish(&mut errs);
    }
    let (Some(partner), Some(scope)) = (partner, scope) else {
        return Err(invalid(errs));
    };
    let (row, _) = visible_message(&app, &ctx, &caller, &id).await?;
    ctx.note_counterparts([partner.to_string()]);
    ctx.note_detail("scope", json!(scope));
    require_originator(&row, &caller)?;
    let now = OffsetDateTime::now_utc();
    let at = format_at(now);
    let grant = WriteOp::from(Grant {
        root_id: row.root_id.clone(),
        partner: partner.to_string(),
        scope,
        at_ms: to_ms(now),
        officer,
    });
    let op = grant.checked(Expected::live(&row.id, &row.root_id));
    let (_, rec) = app
        .store
        .write(op, ctx.draft(Action::Grant, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": row.root_id, "partner": partner, "scope": scope, "granted_at": at})),
    )
        .into_response())
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
        (status = 409, description = "The family changed while the request was decided (label, hold, permissions); retry", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The content was erased at retention", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn judicial_use(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    ctx.officer()?;
    let bytes = super::body::read_limited(body, &headers, app.settings.max_body_bytes).await?;
    let mut reference = None;
    if !bytes.is_empty() {
        super::body::require_json(&headers)?;
        let doc = super::body::parse_json(&bytes)?;
        let mut errs = FieldErrors::default();
        if let Some(mut o) = Obj::new(&doc, "", &mut errs) {
            reference = o
                .optional_str("reference", &mut errs)
                .and_then(|s| text(s, "reference", 1, 200, false, &mut errs));
            o.finish(&mut errs);
        }
        if !errs.is_empty() {
            return Err(invalid(errs));
        }
    }
    let (row, deliveries) = visible_message(&app, &ctx, &caller, &id).await?;
    if !deliveries.iter().any(|d| d.recipient == caller.as_str()) {
        return Err(ApiError::NotFound);
    }
    ctx.note_counterparts([row.originator.clone()]);
    if row.erased_at_ms.is_some() {
        return Err(ApiError::Erased);
    }
    let label = stored_label(&row)?;
    if label.has(HandlingCode::H1) {
        let permitted = app
            .store
            .permissions(&row.root_id)
            .await?
            .iter()
            .any(|p| p.partner == caller.as_str() && p.scope == PermissionScope::JudicialUse);
        if !permitted {
            return Err(ApiError::PolicyDenied(vec![Violation {
                recipient: Some(caller.clone()),
                code: ViolationCode::HandlingCodeH1,
                detail: format!(
                    "H1: {} has not permitted use of this information in judicial proceedings",
                    row.originator
                ),
            }]));
        }
    }
    let now = OffsetDateTime::now_utc();
    let at = format_at(now);
    let use_op = WriteOp::from(JudicialUse {
        message_id: row.id.clone(),
        partner: caller.to_string(),
        at_ms: to_ms(now),
        reference: reference.clone(),
    });
    let mut expected = Expected::live(&row.id, &row.root_id).with_label(&row.label);
    if label.has(HandlingCode::H1) {
        expected = expected.with_permissions(vec![Permission {
            partner: caller.to_string(),
            scope: PermissionScope::JudicialUse,
        }]);
    }
    let op = use_op.checked(expected);
    let (_, rec) = app
        .store
        .write(op, ctx.draft(Action::JudicialUse, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": row.id, "partner": caller, "recorded_at": at, "reference": reference})),
    )
        .into_response())
}

/// The message a hold applies to: the originator (partner) or the gateway
/// DPO may act; other holders get `403 not_originator`, others `404`.
async fn hold_target(app: &AppState, ctx: &RequestCtx, id: &str) -> Result<MessageRow, ApiError> {
    match &ctx.identity {
        crate::tls::Identity::Partner(p) => {
            ctx.officer()?;
            let (row, _) = visible_message(app, ctx, p, id).await?;
            require_originator(&row, p)?;
            Ok(row)
        }
        _ => {
            let id = uuid::Uuid::try_parse(id)
                .map_err(|_| ApiError::NotFound)?
                .to_string();
            ctx.note_message(&id);
            app.store.message(&id).await?.ok_or(ApiError::NotFound)
        }
    }
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
    let mut errs = FieldErrors::default();
    let mut reason = None;
    if let Some(mut o) = Obj::new(&doc, "", &mut errs) {
        reason = o
            .required_str("reason", &mut errs)
            .and_then(|s| text(s, "reason", 1, 1000, true, &mut errs));
        o.finish(&mut errs);
    }
    let Some(reason) = reason else {
        return Err(invalid(errs));
    };
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
pub async fn lift_hold(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    hold(&app, &ctx, &id, None).await
}

async fn hold(
    app: &AppState,
    ctx: &RequestCtx,
    id: &str,
    reason: Option<String>,
) -> Result<Response, ApiError> {
    let row = hold_target(app, ctx, id).await?;
    if row.erased_at_ms.is_some() {
        return Err(ApiError::Erased);
    }
    let held = reason.is_some();
    if let Some(r) = &reason {
        ctx.note_justification(r);
    }
    ctx.note_detail("hold", json!(held));
    ctx.note_counterparts([row.originator.clone()]);
    let set = WriteOp::from(SetHold {
        root_id: row.root_id.clone(),
        held,
        reason: reason.clone(),
    });
    // A hold on a family erased meanwhile would answer for nothing held.
    let op = set.checked(Expected::live(&row.id, &row.root_id));
    let (_, rec) = app
        .store
        .write(op, ctx.draft(Action::Alter, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    Ok(Json(json!({"id": row.root_id, "held": held, "reason": reason})).into_response())
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
        (status = 409, description = "Under a legal hold", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn review(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    ctx.officer()?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let mut errs = FieldErrors::default();
    let (mut decision, mut reason, mut extend) = (None, None, None);
    if let Some(mut o) = Obj::new(&doc, "", &mut errs) {
        decision = o.required_str("decision", &mut errs).and_then(|s| {
            let ok = matches!(s, "keep" | "erase");
            if !ok {
                errs.push("decision", "must be keep or erase");
            }
            ok.then(|| s.to_owned())
        });
        reason = o
            .required_str("reason", &mut errs)
            .and_then(|s| text(s, "reason", 1, 1000, true, &mut errs));
        extend = o
            .optional("extend_days")
            .and_then(|v| as_int_in(v, "extend_days", 1, 36_500, &mut errs));
        if decision.as_deref() == Some("erase") && extend.is_some() {
            errs.push("extend_days", "is only allowed with decision keep");
        }
        o.finish(&mut errs);
    }
    let (Some(decision), Some(reason)) = (decision, reason) else {
        return Err(invalid(errs));
    };
    if !errs.is_empty() {
        return Err(invalid(errs));
    }
    let (row, _) = visible_message(&app, &ctx, &caller, &id).await?;
    require_originator(&row, &caller)?;
    if row.erased_at_ms.is_some() {
        return Err(ApiError::Erased);
    }
    ctx.note_justification(&reason);
    ctx.note_detail("decision", json!(decision));

    if decision == "erase" {
        let family = app.store.family(&row.root_id).await?;
        let ids: Vec<String> = family.iter().map(|m| m.id.clone()).collect();
        // The writer replaces these with the family as it is at commit.
        ctx.note_detail("message_ids", json!(ids));
        ctx.note_detail("rule", json!({"kind": "review"}));
        let op = WriteOp::from(Erase {
            message_ids: ids,
            family_of: Some(row.root_id.clone()),
            at_ms: to_ms(OffsetDateTime::now_utc()),
        });
        let (out, rec) = app
            .store
            .write(op, ctx.draft(Action::Erase, Outcome::Allowed, None))
            .await?;
        ctx.mark_audited(rec.seq);
        delete_blobs(&app.blobs, &out).await;
        let erased = match out {
            WriteOutput::Erased { messages, .. } => messages,
            _ => Vec::new(),
        };
        return Ok(
            Json(json!({"id": row.id, "decision": "erase", "erased": erased})).into_response(),
        );
    }

    let policy = app.policy();
    let max_ms = row.accepted_ms + i64::from(policy.retention.max_days) * 86_400_000;
    let extend_ms = extend.map_or(0, |d| i64::try_from(d).unwrap_or(i64::MAX / 2) * 86_400_000);
    let new_until = row.retain_until_ms.saturating_add(extend_ms);
    if new_until > max_ms {
        return Err(ApiError::InvalidMessage(vec![FieldError {
            field: "extend_days".into(),
            message: format!(
                "would keep the message until {}, beyond the policy's max_days ({} days after acceptance, {})",
                ms_to_text(new_until),
                policy.retention.max_days,
                ms_to_text(max_ms)
            ),
        }]));
    }
    let today = OffsetDateTime::now_utc();
    let next_review = (today + Duration::days(i64::from(policy.retention.review_days))).date();
    let until_date = OffsetDateTime::from_unix_timestamp_nanos(i128::from(new_until) * 1_000_000)
        .map(|t| t.date())
        .unwrap_or(next_review);
    let review_date = next_review.min(until_date);
    let review_on = format_date(review_date);
    ctx.note_detail("extend_days", json!(extend));
    ctx.note_detail("retain_until", json!(ms_to_text(new_until)));
    let keep = WriteOp::from(ReviewKeep {
        message_id: row.id.clone(),
        retain_until_ms: new_until,
        review_on: review_date,
    });
    let op = keep.checked(Expected::live(&row.id, &row.root_id));
    let (_, rec) = app
        .store
        .write(op, ctx.draft(Action::Alter, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    Ok(Json(json!({
        "id": row.id,
        "decision": "keep",
        "retain_until": ms_to_text(new_until),
        "review_on": review_on,
    }))
    .into_response())
}

/// Why `new` is not a raise of `old`, field by field (empty when it is).
pub fn raise_errors(old: &Label, new: &Label) -> Vec<FieldError> {
    let mut e = Vec::new();
    let mut push = |field: &str, message: String| {
        e.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if new.classification < old.classification {
        push(
            "classification",
            format!(
                "cannot be lowered from {} to {}",
                old.classification, new.classification
            ),
        );
    }
    let dropped: Vec<_> = old
        .handling_codes
        .difference(&new.handling_codes)
        .map(|c| c.as_str())
        .collect();
    if !dropped.is_empty() {
        push(
            "handling_codes",
            format!("cannot drop {}", dropped.join(", ")),
        );
    }
    if let (Some(old_text), Some(new_text)) = (&old.h3_text, &new.h3_text)
        && !new_text.contains(old_text.as_str())
    {
        push(
            "h3_text",
            "must keep the existing restriction text (it may add to it)".into(),
        );
    }
    match (&old.releasable_to, &new.releasable_to) {
        (Some(_), None) => push("releasable_to", "cannot be removed once set".into()),
        (Some(o), Some(n)) if !n.is_subset(o) => {
            let added: Vec<_> = n.difference(o).map(|p| p.as_str()).collect();
            push("releasable_to", format!("cannot add {}", added.join(", ")));
        }
        _ => {}
    }
    if new.review_on.is_some() && new.review_on != old.review_on {
        push(
            "review_on",
            "cannot be changed here; record a review decision instead".into(),
        );
    }
    e
}

/// Checks that every current holder may hold the information under `new`.
fn holder_violations(
    app: &AppState,
    new: &Label,
    originator: &PartnerId,
    holders: &BTreeSet<PartnerId>,
) -> Vec<Violation> {
    let policy = app.policy();
    let mut v = Vec::new();
    let level = new.classification;
    if level > app.settings.accreditation {
        v.push(Violation {
            recipient: None,
            code: ViolationCode::ClassificationExceedsAccreditation,
            detail: format!(
                "{level} is above the gateway's accredited maximum {}",
                app.settings.accreditation
            ),
        });
    }
    let clearance = |p: &PartnerId| {
        policy
            .partner(p)
            .map_or(Classification::BasicProtection, |x| x.clearance)
    };
    if level > clearance(originator) {
        v.push(Violation {
            recipient: None,
            code: ViolationCode::SenderNotCleared,
            detail: format!(
                "{level} is above {originator}'s clearance {}",
                clearance(originator)
            ),
        });
    }
    for h in holders {
        if level > clearance(h) {
            v.push(Violation {
                recipient: Some(h.clone()),
                code: ViolationCode::RecipientNotCleared,
                detail: format!(
                    "{h} holds the information and is cleared only to {}",
                    clearance(h)
                ),
            });
        }
        if !new.releasable_to_partner(h) {
            v.push(Violation {
                recipient: Some(h.clone()),
                code: ViolationCode::NotReleasable,
                detail: format!(
                    "{h} already holds the information and would not be in releasable_to"
                ),
            });
        }
    }
    v
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
        (status = 409, description = "The family changed while the raise was decided (a new holder, another raise); retry", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The family was erased", body = crate::api::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub async fn raise_label(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    ctx.officer()?;
    let doc = read_json(body, &headers, app.settings.max_body_bytes).await?;
    let mut errs = FieldErrors::default();
    let parsed = Label::parse(&doc, "", OffsetDateTime::now_utc().date(), &mut errs);
    let Some(mut new) = parsed.filter(|_| errs.is_empty()) else {
        return Err(invalid(errs));
    };
    let (row, _) = visible_message(&app, &ctx, &caller, &id).await?;
    require_originator(&row, &caller)?;
    if row.erased_at_ms.is_some() {
        return Err(ApiError::Erased);
    }
    let old = stored_label(&row)?;
    let not_raised = raise_errors(&old, &new);
    if !not_raised.is_empty() {
        return Err(ApiError::LabelNotRaised(not_raised));
    }
    if new.review_on.is_none() {
        new.review_on = old.review_on;
    }
    let family = app.store.family(&row.root_id).await?;
    let mut holders: BTreeSet<PartnerId> = app
        .store
        .family_recipients(&row.root_id)
        .await?
        .iter()
        .filter_map(|p| PartnerId::parse(p))
        .collect();
    holders.extend(family.iter().filter_map(|m| PartnerId::parse(&m.sender)));
    holders.remove(&caller);
    ctx.note_counterparts(&holders);
    let violations = holder_violations(&app, &new, &caller, &holders);
    if !violations.is_empty() {
        return Err(ApiError::PolicyDenied(violations));
    }
    ctx.note_detail(
        "label",
        json!({"from": old.classification, "to": new.classification, "handling_codes": new.handling_codes}),
    );
    ctx.note_detail(
        "message_ids",
        json!(family.iter().map(|m| &m.id).collect::<Vec<_>>()),
    );
    let raise = WriteOp::from(RaiseLabel {
        root_id: row.root_id.clone(),
        label: new.clone(),
    });
    // The holders were checked against the family read here; a forward
    // committed since may have added one the new label excludes.
    let op = raise.checked(
        Expected::live(&row.id, &row.root_id)
            .with_label(&row.label)
            .with_family(family.iter().map(|m| m.id.clone()).collect()),
    );
    let (_, rec) = app
        .store
        .write(op, ctx.draft(Action::Alter, Outcome::Allowed, None))
        .await?;
    ctx.mark_audited(rec.seq);
    Ok(
        Json(json!({"id": row.root_id, "label": new, "marking": new.classification.marking()}))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn label(v: Value) -> Label {
        let mut errs = FieldErrors::default();
        Label::parse(&v, "", date!(2026 - 01 - 01), &mut errs).expect("label")
    }

    #[test]
    fn raises_and_lowerings() {
        let old = label(json!({
            "classification": "EU_RESTRICTED", "handling_codes": ["H2", "H3"], "h3_text": "No border police.",
            "releasable_to": ["RS-MOI", "EU-ECTC"]
        }));
        let up = label(json!({
            "classification": "EU_CONFIDENTIAL", "handling_codes": ["H1", "H2", "H3"],
            "h3_text": "No border police. No customs.", "releasable_to": ["EU-ECTC"]
        }));
        assert!(raise_errors(&old, &up).is_empty());
        assert!(raise_errors(&old, &old).is_empty(), "no change is allowed");
        let down = label(
            json!({"classification": "BASIC_PROTECTION", "handling_codes": ["H3"], "h3_text": "x"}),
        );
        let fields: Vec<_> = raise_errors(&old, &down)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "classification",
                "handling_codes",
                "h3_text",
                "releasable_to"
            ]
        );
        let wider = label(json!({
            "classification": "EU_RESTRICTED", "handling_codes": ["H2", "H3"], "h3_text": "No border police.",
            "releasable_to": ["RS-MOI", "EU-ECTC", "XK-CTD"]
        }));
        assert_eq!(raise_errors(&old, &wider)[0].message, "cannot add XK-CTD");
    }
}
