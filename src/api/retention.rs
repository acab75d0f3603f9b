//! `GET /v1/retention/due`: what a partner must review soon.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::ops;
use crate::domain::FieldError;

/// Parses `within_days` (0 to 3650, default 30).
pub(crate) fn parse_within(raw: Option<&str>) -> Result<i64, Vec<FieldError>> {
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
    let messages = ops::due::due(&app, &caller, ctx.as_ref(), within).await?;
    Ok(Json(json!({"within_days": within, "messages": messages})).into_response())
}
