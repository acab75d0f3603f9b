//! `GET /v1/inbox`: headers of delivered messages, with long polling. The
//! query and the cursor are read here; the listing is `app::ops::inbox`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::ops;
use crate::app::ops::inbox::PageRequest;
use crate::domain::FieldError;

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
    let req = PageRequest {
        after,
        given: q.after,
        limit: q.limit,
        wait: q.wait,
    };
    let page = ops::inbox::list(&app, &caller, ctx.as_ref(), req).await?;
    let answer = serde_json::to_value(&page).map_err(|_| ApiError::Internal)?;
    Ok(Json(answer).into_response())
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
