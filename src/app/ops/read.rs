//! Reading a whole message (consultation): the content is opened, the
//! document is bound to its label, and the first read by a recipient marks
//! its delivery.

use serde_json::Value;
use time::OffsetDateTime;

use super::held::{live_content, visible_to};
use super::{Caller, OpError, signed};
use crate::app::AppState;
use crate::app::content::{self, message_json};
use crate::app::relay::receipt_back;
use crate::audit::record::{Action, Outcome};
use crate::domain::time::to_ms;
use crate::federation::ReceiptKind;
use crate::store::DeliveryStatus;
use crate::store::WriteOp;
use crate::store::writes::MarkDelivered;

/// Reads message `id` for a holder who gave `justification`; returns the
/// delivered document (with its label binding and signatures).
pub async fn read(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
    justification: &str,
) -> Result<Value, OpError> {
    caller.trail.justification(justification);
    let (row, deliveries) = visible_to(app, caller, id).await?;
    let sealed = live_content(&row)?;
    let content = content::open(&app.store, &app.master_key, &row.id, sealed).await?;
    let recipients: Vec<String> = deliveries.iter().map(|d| d.recipient.clone()).collect();
    let mut doc = message_json(&row, &content, &recipients);
    let binding = bind(app, &doc).await?;
    let signatures = app.store.signatures(&row.id).await?;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("binding".into(), Value::String(binding));
        obj.insert("signatures".into(), signed::delivered(&signatures));
    }
    let caller_id = caller.partner.as_str();
    let first_read = deliveries
        .iter()
        .any(|d| d.recipient == caller_id && d.status == DeliveryStatus::Queued);
    let op = if first_read {
        WriteOp::from(MarkDelivered {
            message_id: row.id.clone(),
            recipient: caller.partner.to_string(),
            at_ms: to_ms(OffsetDateTime::now_utc()),
            receipt: receipt_back::entry(app, &row, &caller.partner, ReceiptKind::Delivered).await,
        })
    } else {
        WriteOp::AuditOnly
    };
    // Content read before an erasure committed is handed out only if the
    // consultation's record commits before it too.
    let op = op.checked(crate::store::Expected::live(&row.id, &row.root_id));
    let draft = caller.trail.draft(Action::Consult, Outcome::Allowed);
    let (_, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    if first_read {
        app.wake_relay();
    }
    Ok(doc)
}

/// The label binding of a delivered message document (see
/// [`crate::binding`]); attachment digests come from their uploads. A
/// message that cannot be bound is not delivered.
async fn bind(app: &AppState, doc: &Value) -> Result<String, OpError> {
    let ids = doc["attachments"].as_array().into_iter().flatten();
    let digests = content::attachment_digests(&app.store, ids.filter_map(Value::as_str)).await?;
    crate::binding::sign(&app.envelope_key, doc, |id| {
        digests.get(id).cloned().unwrap_or_default()
    })
    .map_err(|e| {
        tracing::error!(error = %e, "cannot sign a label binding; the message is not delivered");
        OpError::Internal
    })
}
