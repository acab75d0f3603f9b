//! A partner's inbox: the headers of messages delivered to it, oldest
//! first, with long polling. Positions are sealed into cursors so a partner
//! never sees the gateway-wide order.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::{OpError, Trail};
use crate::app::AppState;
use crate::app::content::{self, marking_of};
use crate::audit::record::{Action, Outcome};
use crate::domain::PartnerId;
use crate::store::{DeliveryStatus, InboxRow};

/// The error code an inbox item carries instead of its subject when its
/// content cannot be opened.
pub(crate) const UNREADABLE_CODE: &str = "content_integrity";

/// Which page to list.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// The position the given cursor sealed (0 without one).
    pub after: u64,
    /// The cursor as given, handed back on an empty page.
    pub given: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Seconds to wait for a first entry.
    pub wait: u64,
}

/// One inbox item.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The message.
    pub id: String,
    /// Its sender.
    pub from: String,
    /// Its subject, `None` when the content is erased or unreadable.
    pub subject: Option<String>,
    /// Its label as stored.
    pub label: Value,
    /// The display marking of its classification.
    pub marking: Option<&'static str>,
    /// Its purpose.
    pub purpose: String,
    /// Its case reference.
    pub case_ref: Option<String>,
    /// When it was accepted.
    pub received_at: String,
    /// The caller's delivery status.
    pub status: DeliveryStatus,
    /// [`UNREADABLE_CODE`] when the content failed to open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// A page of the inbox.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The items.
    pub messages: Vec<Entry>,
    /// The cursor to continue from.
    pub next: String,
}

/// Lists the calling partner's inbox, waiting up to `wait` seconds for a
/// first entry.
pub async fn list(
    app: &AppState,
    partner: &PartnerId,
    trail: &dyn Trail,
    req: PageRequest,
) -> Result<Page, OpError> {
    let rows = wait_for_rows(app, partner, &req).await?;
    let mut messages = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in &rows {
        let item = entry(app, row);
        if item.error.is_some() {
            unreadable.push(row);
        }
        messages.push(item);
    }
    report_unreadable(app, trail, &unreadable).await?;
    // An empty page hands back the cursor it was given, so a client can
    // tell it is up to date by comparing; otherwise a fresh sealed one.
    let next = match (rows.last(), &req.given) {
        (None, Some(given)) => given.clone(),
        (last, _) => {
            let position = last.map_or(req.after, |r| u64::try_from(r.seq).unwrap_or(req.after));
            app.cursor_key
                .seal(partner.as_str(), position)
                .map_err(|e| {
                    tracing::error!(error = %e, "an inbox cursor could not be sealed");
                    OpError::Internal
                })?
        }
    };
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut senders: Vec<String> = rows.iter().map(|r| r.sender.clone()).collect();
    senders.sort_unstable();
    senders.dedup();
    trail.counterparts(senders);
    trail.detail("message_ids", json!(ids));
    Ok(Page { messages, next })
}

/// The rows after the cursor, waiting for a delivery (or a shutdown, or
/// the deadline) while there are none.
async fn wait_for_rows(
    app: &AppState,
    partner: &PartnerId,
    req: &PageRequest,
) -> Result<Vec<InboxRow>, OpError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(req.wait);
    let mut wake = app.inbox.subscribe(partner);
    // A shutting-down gateway answers long polls at once (with what is
    // there), so a drain is bounded by the slowest real request, not by
    // `wait`.
    let mut stopping = app.shutting_down.subscribe();
    loop {
        wake.borrow_and_update();
        let rows = app
            .store
            .inbox(partner.as_str(), req.after, req.limit)
            .await?;
        if !rows.is_empty() || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
            return Ok(rows);
        }
        // Woken by a delivery or a shutdown, or give up at the deadline;
        // re-query either way.
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, wake.changed()) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// One inbox item. A message whose content fails to open is listed with
/// `subject: null` and `error: "content_integrity"` rather than failing
/// the whole page: one damaged row must not stop a partner's cursor from
/// ever passing it.
fn entry(app: &AppState, row: &InboxRow) -> Entry {
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
    Entry {
        id: row.id.clone(),
        from: row.sender.clone(),
        subject,
        label,
        marking,
        purpose: row.purpose.clone(),
        case_ref: row.case_ref.clone(),
        received_at: row.accepted_at.clone(),
        status: row.status,
        error: (!opened).then_some(UNREADABLE_CODE),
    }
}

/// Tells the DPO about each message a listing could not open: a record
/// per message (action `consult`, outcome `failed`, code
/// `content_integrity`) and the `brdo_content_unreadable_total` counter.
/// Fails closed: without its records the page is not served.
async fn report_unreadable(
    app: &AppState,
    trail: &dyn Trail,
    rows: &[&InboxRow],
) -> Result<(), OpError> {
    if rows.is_empty() {
        return Ok(());
    }
    app.metrics.content_unreadable(rows.len());
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    trail.detail("unreadable_ids", json!(ids));
    for row in rows {
        let mut draft = trail.draft(Action::Consult, Outcome::Failed);
        draft.code = Some(UNREADABLE_CODE.to_owned());
        draft.message_id = Some(row.id.clone());
        draft.counterparts = vec![row.sender.clone()];
        draft.details = json!({"listing": "inbox"}).as_object().cloned();
        app.store.append_audit(draft).await.map_err(|e| {
            tracing::error!(error = %e, "audit record of an unreadable message could not be written");
            OpError::AuditUnavailable
        })?;
    }
    Ok(())
}
