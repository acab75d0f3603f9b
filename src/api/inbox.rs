//! `GET /v1/inbox`: headers of delivered messages, with long polling.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::context::RequestCtx;
use super::problem::ApiError;
use crate::app::AppState;
use crate::app::content::{self, marking_of};
use crate::audit::record::{Action, Outcome};
use crate::domain::FieldError;
use crate::store::InboxRow;

/// Longest long-poll wait, in seconds (SPEC §3).
pub const MAX_WAIT_SECS: u64 = 60;
/// Largest page.
pub const MAX_LIMIT: u32 = 500;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;

/// Query parameters of the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxQuery {
    /// Cursor: entries after the position it seals (see `cursor`); none
    /// starts from the beginning.
    pub after: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Seconds to wait for a first entry.
    pub wait: u64,
}

/// Parses `after`, `limit`, `wait`; unknown or repeated parameters are
/// errors, each named.
pub fn parse_query(raw: Option<&str>) -> Result<InboxQuery, Vec<FieldError>> {
    let mut q = InboxQuery {
        after: None,
        limit: DEFAULT_LIMIT,
        wait: 0,
    };
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&k) {
            errors.push(FieldError {
                field: crate::domain::text::echo(k),
                message: "is given more than once".into(),
            });
            continue;
        }
        seen.push(k);
        let num = v.parse::<u64>();
        match (k, num) {
            ("after", _) if !v.is_empty() && v.len() <= crate::app::cursor::MAX_LEN => {
                q.after = Some(v.to_owned());
            }
            ("after", _) => errors.push(bad_cursor()),
            ("limit", Ok(n)) if (1..=u64::from(MAX_LIMIT)).contains(&n) => q.limit = n as u32,
            ("limit", _) => errors.push(FieldError {
                field: "limit".into(),
                message: format!("must be a whole number from 1 to {MAX_LIMIT}"),
            }),
            ("wait", Ok(n)) if n <= MAX_WAIT_SECS => q.wait = n,
            ("wait", _) => errors.push(FieldError {
                field: "wait".into(),
                message: format!("must be a whole number of seconds from 0 to {MAX_WAIT_SECS}"),
            }),
            (other, _) => errors.push(FieldError {
                field: crate::domain::text::echo(other),
                message: "is not a parameter of this endpoint (after, limit, wait)".into(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(errors)
    }
}

/// The error for a cursor this inbox did not issue.
fn bad_cursor() -> FieldError {
    FieldError {
        field: "after".into(),
        message: "must be a cursor returned as `next` by an earlier call".into(),
    }
}

/// `GET /v1/inbox`.
#[utoipa::path(
    get,
    path = "/v1/inbox",
    tag = "messages",
    operation_id = "inbox",
    summary = "Headers of messages delivered to the caller, oldest first",
    params(
        ("after" = Option<String>, Query, description = "Cursor: the `next` of an earlier page, opaque (omit it or send `0` to start from the beginning)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size (default 50)"),
        ("wait" = Option<u32>, Query, minimum = 0, maximum = 60, description = "Seconds to long-poll for a first entry (default 0)")
    ),
    responses(
        (status = 200, description = "A page of headers", body = crate::api::schema::InboxPage)
    )
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = ctx.partner()?.clone();
    let q = parse_query(raw.as_deref()).map_err(ApiError::InvalidRequest)?;
    let after = match &q.after {
        None => 0,
        Some(c) => app
            .cursor_key
            .open(caller.as_str(), c)
            .map_err(|_| ApiError::InvalidRequest(vec![bad_cursor()]))?,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait);
    let mut wake = app.inbox.subscribe(&caller);
    // A shutting-down gateway answers long polls at once (with what is
    // there), so a drain is bounded by the slowest real request, not by
    // `wait`.
    let mut stopping = app.shutting_down.subscribe();
    let rows = loop {
        wake.borrow_and_update();
        let rows = app.store.inbox(caller.as_str(), after, q.limit).await?;
        if !rows.is_empty() || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
            break rows;
        }
        // Woken by a delivery or a shutdown, or give up at the deadline;
        // re-query either way.
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, wake.changed()) => {}
            _ = stopping.changed() => {}
        }
    };

    let mut messages = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in &rows {
        let (item, opened) = entry(&app, row);
        if !opened {
            unreadable.push(row);
        }
        messages.push(item);
    }
    report_unreadable(&app, &ctx, &unreadable).await?;
    // An empty page hands back the cursor it was given, so a client can
    // tell it is up to date by comparing; otherwise a fresh sealed one.
    let next = match (rows.last(), &q.after) {
        (None, Some(given)) => given.clone(),
        (last, _) => {
            let position = last.map_or(after, |r| u64::try_from(r.seq).unwrap_or(after));
            app.cursor_key
                .seal(caller.as_str(), position)
                .map_err(|e| {
                    tracing::error!(error = %e, "an inbox cursor could not be sealed");
                    ApiError::Internal
                })?
        }
    };
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut senders: Vec<&str> = rows.iter().map(|r| r.sender.as_str()).collect();
    senders.sort_unstable();
    senders.dedup();
    ctx.note_counterparts(senders);
    ctx.note_detail("message_ids", json!(ids));
    Ok(Json(json!({"messages": messages, "next": next})).into_response())
}

/// The error code an inbox item carries instead of its subject when its
/// content cannot be opened.
pub const UNREADABLE_CODE: &str = "content_integrity";

/// One inbox item, and whether its content (if any) opened. A message
/// whose content fails to open is listed with `subject: null` and
/// `error: "content_integrity"` rather than failing the whole page: one
/// damaged row must not stop a partner's cursor from ever passing it.
fn entry(app: &AppState, row: &InboxRow) -> (Value, bool) {
    let (subject, opened) = match (&row.content, &row.master_key_id, &row.wrapped_key) {
        (Some(sealed), Some(key_id), Some(wrapped)) => {
            match content::open_with(&app.master_key, &row.id, key_id, wrapped, sealed) {
                Ok(c) => (Some(c.subject), true),
                Err(_) => (None, false),
            }
        }
        _ => (None, true),
    };
    let label: Value = serde_json::from_str(&row.label).unwrap_or(Value::Null);
    let marking = label
        .get("classification")
        .and_then(Value::as_str)
        .and_then(crate::domain::Classification::parse)
        .map(|c| marking_of(c.rank()));
    let mut item = json!({
        "id": row.id,
        "from": row.sender,
        "subject": subject,
        "label": label,
        "marking": marking,
        "purpose": row.purpose,
        "case_ref": row.case_ref,
        "received_at": row.accepted_at,
        "status": row.status,
    });
    if !opened && let Some(obj) = item.as_object_mut() {
        obj.insert("error".into(), json!(UNREADABLE_CODE));
    }
    (item, opened)
}

/// Tells the DPO about each message a listing could not open: a record
/// per message (action `consult`, outcome `failed`, code
/// `content_integrity`) and the `brdo_content_unreadable_total` counter.
/// Fails closed: without its records the page is not served.
async fn report_unreadable(
    app: &AppState,
    ctx: &RequestCtx,
    rows: &[&InboxRow],
) -> Result<(), ApiError> {
    if rows.is_empty() {
        return Ok(());
    }
    app.metrics.content_unreadable(rows.len());
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    ctx.note_detail("unreadable_ids", json!(ids));
    for row in rows {
        let mut draft = ctx.draft(Action::Consult, Outcome::Failed, Some(UNREADABLE_CODE));
        draft.message_id = Some(row.id.clone());
        draft.counterparts = vec![row.sender.clone()];
        draft.details = json!({"listing": "inbox"}).as_object().cloned();
        app.store.append_audit(draft).await.map_err(|e| {
            tracing::error!(error = %e, "audit record of an unreadable message could not be written");
            ApiError::AuditUnavailable
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(
            parse_query(None),
            Ok(InboxQuery {
                after: None,
                limit: 50,
                wait: 0
            })
        );
        assert_eq!(
            parse_query(Some("after=AbC_-9&limit=2&wait=60")),
            Ok(InboxQuery {
                after: Some("AbC_-9".into()),
                limit: 2,
                wait: 60
            })
        );
        let long = format!("after={}", "A".repeat(crate::app::cursor::MAX_LEN + 1));
        let e = parse_query(Some(&format!(
            "limit=0&wait=61&{long}&colour=red&limit=3&after="
        )))
        .unwrap_err();
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["limit", "wait", "after", "colour", "limit", "after"]
        );
    }
}
