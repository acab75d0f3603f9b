//! A recipient's acknowledgement of a message (repeatable: a second one
//! answers the delivery as it is).

use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::domain::time::ms_to_text;
use crate::store::error::StoreError;
use crate::store::outbox::{OutboxEntry, insert_entries};
use crate::store::rows::DeliveryRow;
use crate::store::vocab::DeliveryStatus;
use crate::store::write_conn::WriteConn;

/// A recipient acknowledges.
#[derive(Debug, Clone)]
pub struct Acknowledge {
    /// The message.
    pub message_id: String,
    /// The acknowledging recipient.
    pub recipient: String,
    /// Now, unix ms.
    pub at_ms: i64,
    /// For a message a peer relayed: the `acknowledged` receipt to send
    /// back to it, queued only if this acknowledgement is the first.
    pub receipt: Option<OutboxEntry>,
}

impl Acknowledge {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let current = delivery(tx.conn, &self.message_id, &self.recipient)
            .await?
            .ok_or(StoreError::NotFound)?;
        let rec = tx.append(audit).await?;
        if current.status == DeliveryStatus::Acknowledged {
            return Ok((WriteOutput::Delivery(current), rec));
        }
        let at = ms_to_text(self.at_ms);
        tx.conn
            .execute(
                "UPDATE deliveries SET status = $4, updated_at = $3 WHERE message_id = $1 AND recipient = $2",
                &[
                    self.message_id.as_str().into(),
                    self.recipient.as_str().into(),
                    at.as_str().into(),
                    DeliveryStatus::Acknowledged.as_str().into(),
                ],
            )
            .await?;
        if let Some(r) = &self.receipt {
            insert_entries(tx.conn, std::slice::from_ref(r)).await?;
        }
        let updated = DeliveryRow {
            status: DeliveryStatus::Acknowledged,
            updated_at: at,
            ..current
        };
        Ok((WriteOutput::Delivery(updated), rec))
    }
}

/// The delivery as it is in the writer's transaction.
async fn delivery(
    conn: &mut WriteConn,
    message_id: &str,
    recipient: &str,
) -> Result<Option<DeliveryRow>, StoreError> {
    let row = conn
        .fetch_optional(
            "SELECT message_id, recipient, seq, status, updated_at, via FROM deliveries WHERE message_id = $1 AND recipient = $2",
            &[message_id.into(), recipient.into()],
        )
        .await?;
    row.map(|r| {
        Ok(DeliveryRow {
            message_id: r.text(0)?,
            recipient: r.text(1)?,
            seq: r.int(2)?,
            status: DeliveryStatus::try_from(r.text(3)?)?,
            updated_at: r.text(4)?,
            via: r.opt_text(5)?,
        })
    })
    .transpose()
}
