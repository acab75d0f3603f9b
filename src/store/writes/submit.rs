//! Storing an accepted message or a forward. The rows themselves wait in
//! the batch (`NewMessages`) for one multi-row INSERT per table; here only
//! the idempotency check and the audit record run at once.

use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::crypto::Sealed;
use crate::store::error::StoreError;
use crate::store::new_messages::NewMessage;
use crate::store::outbox::{OutboxEntry, insert_entries};
use crate::store::rows::{IdempotencyKey, MessageRow, NewDelivery, SignatureRow};

/// Store an accepted message (or a forward) with its deliveries, data key
/// and attachment links.
#[derive(Debug, Clone)]
pub struct Submit {
    /// The message (its `collect_seq` is set here).
    pub message: Box<MessageRow>,
    /// One per recipient.
    pub deliveries: Vec<NewDelivery>,
    /// The wrapped data key sealing its content.
    pub data_key: Sealed,
    /// Attachments the message carries (already checked).
    pub attachments: Vec<String>,
    /// Idempotency key to record.
    pub idempotency: Option<IdempotencyKey>,
    /// Sender signatures, in order (a forward's originator's first).
    pub signatures: Vec<SignatureRow>,
    /// One outbox row per peer gateway behind which accepted recipients
    /// live (SPEC §11), in the message's transaction.
    pub outbox: Vec<OutboxEntry>,
}

impl Submit {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply<'a>(&'a self, tx: &mut Tx<'_, 'a>, audit: RecordDraft) -> Applied {
        if let Some(k) = &self.idempotency {
            let taken = tx
                .conn
                .fetch_optional(
                    "SELECT 1 FROM idempotency WHERE partner = $1 AND key = $2",
                    &[k.partner.as_str().into(), k.key.as_str().into()],
                )
                .await?;
            if taken.is_some() || tx.new_messages.holds_key(&k.partner, &k.key) {
                return Err(StoreError::IdempotencyRace);
            }
        }
        let rec = tx.append(audit).await?;
        insert_entries(tx.conn, &self.outbox).await?;
        tx.new_messages.push(NewMessage {
            message: &self.message,
            seq: rec.seq,
            deliveries: &self.deliveries,
            data_key: &self.data_key,
            attachments: &self.attachments,
            signatures: &self.signatures,
            idempotency: self.idempotency.as_ref(),
        });
        Ok((WriteOutput::Done, rec))
    }
}
