//! Acknowledging a delivered message.

use serde::Serialize;
use time::OffsetDateTime;

use super::held::visible_to;
use super::{Caller, OpError};
use crate::app::AppState;
use crate::app::relay::receipt_back;
use crate::audit::record::{Action, Outcome};
use crate::domain::time::to_ms;
use crate::federation::ReceiptKind;
use crate::store::writes::Acknowledge;
use crate::store::{DeliveryStatus, WriteOp, WriteOutput};

/// The caller's delivery of a message as it now stands.
#[derive(Debug, Clone, Serialize)]
pub struct Acknowledged {
    /// The message.
    pub id: String,
    /// The recipient.
    pub partner: String,
    /// Its delivery status (`acknowledged`).
    pub status: DeliveryStatus,
    /// When it changed.
    pub updated_at: String,
}

/// Acknowledges message `id` for the calling recipient.
pub async fn acknowledge(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
) -> Result<Acknowledged, OpError> {
    let (row, deliveries) = visible_to(app, caller, id).await?;
    if !deliveries
        .iter()
        .any(|d| d.recipient == caller.partner.as_str())
    {
        // The sender holds the message but has no delivery to acknowledge.
        return Err(OpError::NotFound);
    }
    if row.erased_at_ms.is_some() {
        return Err(OpError::Erased);
    }
    let op = WriteOp::from(Acknowledge {
        message_id: row.id.clone(),
        recipient: caller.partner.to_string(),
        at_ms: to_ms(OffsetDateTime::now_utc()),
        receipt: receipt_back::entry(app, &row, &caller.partner, ReceiptKind::Acknowledged).await,
    });
    let draft = caller.trail.draft(Action::Acknowledge, Outcome::Allowed);
    let (out, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    app.wake_relay();
    let WriteOutput::Delivery(d) = out else {
        return Err(OpError::Internal);
    };
    Ok(Acknowledged {
        id: row.id,
        partner: d.recipient,
        status: d.status,
        updated_at: d.updated_at,
    })
}
