//! The originator's review decision: keep the information (possibly
//! longer, within the policy's maximum) or erase the whole family now.

use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::erase::{Erasure, erase};
use super::held::{require_originator, visible_to};
use super::{Caller, OpError};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome};
use crate::domain::FieldError;
use crate::domain::label::format_date;
use crate::domain::time::ms_to_text;
use crate::store::writes::ReviewKeep;
use crate::store::{Expected, MessageRow, WriteOp};

/// A review decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep, extending retention by this many days if given.
    Keep {
        /// Days added to the retention.
        extend_days: Option<u64>,
    },
    /// Erase the family now.
    Erase,
}

/// What the decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewed {
    /// Kept until `retain_until`, next reviewed on `review_on`.
    Kept {
        /// The message.
        id: String,
        /// When its retention now ends.
        retain_until: String,
        /// When it is next reviewed.
        review_on: String,
    },
    /// The family was erased.
    Erased {
        /// The message.
        id: String,
        /// Every message erased.
        erased: Vec<String>,
    },
}

/// Records the caller's review decision on message `id`.
pub async fn review(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
    decision: Decision,
    reason: &str,
) -> Result<Reviewed, OpError> {
    let (row, _) = visible_to(app, caller, id).await?;
    require_originator(&row, &caller.partner)?;
    if row.erased_at_ms.is_some() {
        return Err(OpError::Erased);
    }
    caller.trail.justification(reason);
    let name = match decision {
        Decision::Keep { .. } => "keep",
        Decision::Erase => "erase",
    };
    caller.trail.detail("decision", json!(name));
    match decision {
        Decision::Erase => erase_family(app, caller, row, reason).await,
        Decision::Keep { extend_days } => keep(app, caller, row, extend_days).await,
    }
}

async fn erase_family(
    app: &AppState,
    caller: &Caller<'_>,
    row: MessageRow,
    reason: &str,
) -> Result<Reviewed, OpError> {
    let family = app.store.family(&row.root_id).await?;
    let ids: Vec<String> = family.iter().map(|m| m.id.clone()).collect();
    // The writer replaces these with the family as it is at commit.
    caller.trail.detail("message_ids", json!(ids));
    caller.trail.detail("rule", json!({"kind": "review"}));
    let what = Erasure {
        message_ids: ids,
        family_of: Some(row.root_id.clone()),
        notice: Some(reason.to_owned()),
        receipts: app.receipt_signer(),
    };
    let draft = caller.trail.draft(Action::Erase, Outcome::Allowed);
    let done = erase(&app.store, &app.blobs, what, draft).await?;
    caller.trail.audited(done.seq);
    app.wake_relay();
    Ok(Reviewed::Erased {
        id: row.id,
        erased: done.messages,
    })
}

async fn keep(
    app: &AppState,
    caller: &Caller<'_>,
    row: MessageRow,
    extend: Option<u64>,
) -> Result<Reviewed, OpError> {
    let policy = app.policy();
    let max_ms = row.accepted_ms + i64::from(policy.retention.max_days) * 86_400_000;
    let extend_ms = extend.map_or(0, |d| i64::try_from(d).unwrap_or(i64::MAX / 2) * 86_400_000);
    let new_until = row.retain_until_ms.saturating_add(extend_ms);
    if new_until > max_ms {
        return Err(OpError::Invalid(vec![FieldError {
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
    caller.trail.detail("extend_days", json!(extend));
    caller
        .trail
        .detail("retain_until", json!(ms_to_text(new_until)));
    let keep = WriteOp::from(ReviewKeep {
        message_id: row.id.clone(),
        retain_until_ms: new_until,
        review_on: review_date,
    });
    let op = keep.checked(Expected::live(&row.id, &row.root_id));
    let draft = caller.trail.draft(Action::Alter, Outcome::Allowed);
    let (_, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    Ok(Reviewed::Kept {
        id: row.id,
        retain_until: ms_to_text(new_until),
        review_on,
    })
}
