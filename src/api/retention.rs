//! `GET /v1/retention/due`: what a partner must review soon.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::content::{ms_to_text, to_ms};
use super::context::RequestCtx;
use super::problem::ApiError;
use crate::app::AppState;
use crate::domain::FieldError;

/// Parses `within_days` (0 to 3650, default 30).
pub fn parse_within(raw: Option<&str>) -> Result<i64, Vec<FieldError>> {
    let mut within = 30;
    let mut errors = Vec::new();
    let mut seen = false;
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            // Given twice, which one was meant is a guess: refused, as
            // every other endpoint refuses a repeated parameter.
            ("within_days", _) if seen => errors.push(FieldError {
                field: "within_days".into(),
                message: "is given more than once".into(),
            }),
            ("within_days", v) => {
                seen = true;
                match v.parse::<i64>() {
                    Ok(n) if (0..=3650).contains(&n) => within = n,
                    _ => errors.push(FieldError {
                        field: "within_days".into(),
                        message: "must be a whole number of days from 0 to 3650".into(),
                    }),
                }
            }
            (k, _) => errors.push(FieldError {
                field: crate::domain::text::echo(k),
                message: "is not a parameter of this endpoint (within_days)".into(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(within)
    } else {
        Err(errors)
    }
}

/// `GET /v1/retention/due?within_days=N`: the caller's own messages whose
/// review date or end of retention falls within `N` days.
#[utoipa::path(
    get,
    path = "/v1/retention/due",
    tag = "lifecycle",
    operation_id = "retention_due",
    summary = "The caller's messages due for review or erasure",
    params(
        ("within_days" = Option<u32>, Query, description = "Horizon in days")
    ),
    responses(
        (status = 200, description = "Messages due", body = crate::api::schema::RetentionDue)
    )
)]
pub async fn due(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    let within = parse_within(raw.as_deref()).map_err(ApiError::InvalidRequest)?;
    let now = OffsetDateTime::now_utc();
    let horizon = now + Duration::days(within);
    let rows = app
        .store
        .review_due(caller.as_str(), horizon.date(), to_ms(horizon), 500)
        .await?;
    let messages: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "case_ref": r.case_ref,
                "label": serde_json::from_str::<Value>(&r.label).unwrap_or(Value::Null),
                "accepted_at": r.accepted_at,
                "review_on": r.review_on,
                "retain_until": ms_to_text(r.retain_until_ms),
                "held": r.held,
                "forwarded_from": r.forwarded_from,
            })
        })
        .collect();
    ctx.note_detail(
        "message_ids",
        json!(rows.iter().map(|r| &r.id).collect::<Vec<_>>()),
    );
    Ok(Json(json!({"within_days": within, "messages": messages})).into_response())
}
