//! What a partner must review soon: its own messages whose review date or
//! end of retention falls within a horizon.

use serde::Serialize;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{OpError, Trail};
use crate::app::AppState;
use crate::domain::PartnerId;
use crate::domain::time::{ms_to_text, to_ms};

/// Most messages one answer lists.
const MAX_DUE: u32 = 500;

/// A message due for review or erasure.
#[derive(Debug, Clone, Serialize)]
pub struct Due {
    /// The message.
    pub id: String,
    /// Its case reference.
    pub case_ref: Option<String>,
    /// Its label as stored.
    pub label: Value,
    /// When it was accepted.
    pub accepted_at: String,
    /// When it is to be reviewed.
    pub review_on: String,
    /// When its retention ends.
    pub retain_until: String,
    /// Whether a legal hold keeps it.
    pub held: bool,
    /// The message it copies, for a forward.
    pub forwarded_from: Option<String>,
}

/// The partner's messages due within `within_days` days from now.
pub async fn due(
    app: &AppState,
    partner: &PartnerId,
    trail: &dyn Trail,
    within_days: i64,
) -> Result<Vec<Due>, OpError> {
    let horizon = OffsetDateTime::now_utc() + Duration::days(within_days);
    let rows = app
        .store
        .review_due(partner.as_str(), horizon.date(), to_ms(horizon), MAX_DUE)
        .await?;
    trail.detail(
        "message_ids",
        json!(rows.iter().map(|r| &r.id).collect::<Vec<_>>()),
    );
    Ok(rows
        .into_iter()
        .map(|r| Due {
            label: serde_json::from_str::<Value>(&r.label).unwrap_or(Value::Null),
            retain_until: ms_to_text(r.retain_until_ms),
            held: r.held,
            id: r.id,
            case_ref: r.case_ref,
            accepted_at: r.accepted_at,
            review_on: r.review_on,
            forwarded_from: r.forwarded_from,
        })
        .collect())
}
