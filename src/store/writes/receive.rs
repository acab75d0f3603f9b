//! Storing a message a peer gateway relayed (SPEC §11): the message for
//! the recipients this gateway accepted, its `collect` and `deny` records,
//! and one signed receipt per recipient, all in one transaction. The
//! receipts of the accepted recipients name the `collect` record's
//! sequence number, so they can only be signed here, once it has one.

use std::sync::Arc;

use super::submit::Submit;
use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::crypto::jose::JwsKey;
use crate::domain::PartnerId;
use crate::federation::{Receipt, ReceiptKind, ReceiptViolation};
use crate::store::error::StoreError;
use crate::store::outbox::{ISSUED, ReceiptRow, insert_receipts};

/// A relayed message to store (or, all refused, only to answer).
#[derive(Debug, Clone)]
pub struct Receive {
    /// The calling peer gateway.
    pub peer: PartnerId,
    /// This gateway's id.
    pub own_id: PartnerId,
    /// The message id (the same on both gateways).
    pub message_id: String,
    /// The message and the deliveries to the accepted recipients; `None`
    /// when every recipient was refused (nothing is stored). Its audit
    /// record is the job's (`collect`).
    pub accepted: Option<Submit>,
    /// The recipients refused and why; their `deny` record.
    pub refused: Vec<(PartnerId, Vec<ReceiptViolation>)>,
    /// The `deny` record when some but not all were refused (when all
    /// were, the job's record is the `deny`).
    pub deny_audit: Option<RecordDraft>,
    /// Signs the receipts (this gateway's envelope key).
    pub signer: Arc<JwsKey>,
    /// Now (RFC 3339) and unix ms.
    pub at: (String, i64),
}

impl Receive {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit records, then its rows. A message id seen before
    /// (from this peer or anyone) is refused as `IdempotencyRace` with
    /// nothing written; the caller answers the stored receipts.
    pub(super) async fn apply<'a>(&'a self, tx: &mut Tx<'_, 'a>, audit: RecordDraft) -> Applied {
        let id = self.message_id.as_str();
        let seen = tx
            .conn
            .fetch_optional(
                "SELECT 1 FROM messages WHERE id = $1 UNION ALL \
                 SELECT 1 FROM relay_receipts WHERE message_id = $1 AND direction = $2",
                &[id.into(), ISSUED.into()],
            )
            .await?;
        if seen.is_some() {
            return Err(StoreError::IdempotencyRace);
        }
        let rec = match &self.accepted {
            Some(submit) => submit.apply(tx, audit).await?.1,
            None => tx.append(audit).await?,
        };
        if let Some(deny) = &self.deny_audit {
            tx.append(deny.clone()).await?;
        }
        let mut receipts = Vec::new();
        if let Some(submit) = &self.accepted {
            for d in &submit.deliveries {
                let r = self.receipt(
                    ReceiptKind::Accepted,
                    &d.recipient,
                    Some(rec.seq),
                    Vec::new(),
                );
                receipts.push(self.signed(r)?);
            }
        }
        for (recipient, violations) in &self.refused {
            let r = self.receipt(
                ReceiptKind::Refused,
                recipient.as_str(),
                None,
                violations.clone(),
            );
            receipts.push(self.signed(r)?);
        }
        insert_receipts(tx.conn, &receipts).await?;
        Ok((WriteOutput::Receipts(receipts), rec))
    }

    fn receipt(
        &self,
        kind: ReceiptKind,
        recipient: &str,
        seq: Option<u64>,
        violations: Vec<ReceiptViolation>,
    ) -> Receipt {
        Receipt {
            v: 1,
            kind,
            gateway: self.own_id.clone(),
            to: self.peer.clone(),
            message_id: self.message_id.clone(),
            recipient: PartnerId::parse(recipient),
            at: self.at.0.clone(),
            audit_seq: seq,
            // The tree holds every record up to and including this one.
            tree_size: seq,
            violations,
            notice: None,
        }
    }

    fn signed(&self, r: Receipt) -> Result<ReceiptRow, StoreError> {
        let jws = r
            .sign(&self.signer)
            .map_err(|e| StoreError::Unavailable(format!("cannot sign a receipt: {e}")))?;
        Ok(ReceiptRow {
            message_id: self.message_id.clone(),
            recipient: r.recipient.map(|p| p.to_string()).unwrap_or_default(),
            peer: self.peer.to_string(),
            direction: ISSUED,
            kind: r.kind.as_str().to_owned(),
            jws,
            at_ms: self.at.1,
        })
    }
}
