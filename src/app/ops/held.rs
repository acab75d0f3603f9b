//! A message as its holders reach it: who holds it, and its stored label,
//! personal data and originator turned back into domain values.

use serde_json::Value;

use super::{Caller, OpError, Trail};
use crate::app::AppState;
use crate::domain::label::Label;
use crate::domain::{PartnerId, PersonalData};
use crate::store::{DeliveryRow, MessageRow};

/// A message the caller holds (as sender or recipient), with its
/// deliveries; anything else is `NotFound`, exactly like a missing id.
/// Notes the message and counterparts for the audit record.
pub(crate) async fn visible_message(
    app: &AppState,
    trail: &dyn Trail,
    caller: &PartnerId,
    id: &str,
) -> Result<(MessageRow, Vec<DeliveryRow>), OpError> {
    let id = match uuid::Uuid::try_parse(id) {
        Ok(u) if id.len() == 36 => u.to_string(),
        _ => return Err(OpError::NotFound),
    };
    trail.message(&id);
    let row = app.store.message(&id).await?.ok_or(OpError::NotFound)?;
    let deliveries = app.store.deliveries(&id).await?;
    let is_sender = row.sender == caller.as_str();
    if !is_sender && !deliveries.iter().any(|d| d.recipient == caller.as_str()) {
        return Err(OpError::NotFound);
    }
    if is_sender {
        trail.counterparts(deliveries.iter().map(|d| d.recipient.clone()).collect());
    } else {
        trail.counterparts(vec![row.sender.clone()]);
    }
    Ok((row, deliveries))
}

/// [`visible_message`] for a caller.
pub(crate) async fn visible_to(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
) -> Result<(MessageRow, Vec<DeliveryRow>), OpError> {
    visible_message(app, caller.trail, &caller.partner, id).await
}

/// Whether `partner` holds `row` (sent it or has a delivery of it).
pub(crate) async fn holder_of(
    app: &AppState,
    row: &MessageRow,
    partner: &PartnerId,
) -> Result<bool, OpError> {
    if row.sender == partner.as_str() {
        return Ok(true);
    }
    Ok(app
        .store
        .deliveries(&row.id)
        .await?
        .iter()
        .any(|d| d.recipient == partner.as_str()))
}

/// The originator of `row`, or `NotOriginator` for other holders.
pub(crate) fn require_originator(row: &MessageRow, caller: &PartnerId) -> Result<(), OpError> {
    if row.originator == caller.as_str() {
        Ok(())
    } else {
        Err(OpError::NotOriginator)
    }
}

/// The content of a row unless it was erased.
pub(crate) fn live_content(row: &MessageRow) -> Result<&[u8], OpError> {
    row.content
        .as_deref()
        .filter(|_| row.erased_at_ms.is_none())
        .ok_or(OpError::Erased)
}

/// The stored label as a domain value.
pub(crate) fn stored_label(row: &MessageRow) -> Result<Label, OpError> {
    serde_json::from_str::<Value>(&row.label)
        .ok()
        .as_ref()
        .and_then(Label::from_stored)
        .ok_or_else(|| {
            tracing::error!(message = %row.id, "stored label does not parse");
            OpError::Internal
        })
}

/// The stored personal-data statement as a domain value.
pub(crate) fn stored_personal_data(row: &MessageRow) -> Result<PersonalData, OpError> {
    serde_json::from_str::<Value>(&row.personal_data)
        .ok()
        .as_ref()
        .and_then(PersonalData::from_stored)
        .ok_or(OpError::Internal)
}

/// A stored partner id as a domain value.
pub(crate) fn partner_of(s: &str) -> Result<PartnerId, OpError> {
    PartnerId::parse(s).ok_or(OpError::Internal)
}

/// A value as the text of a JSON column.
pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}
