//! Storing a message a peer gateway relayed (SPEC §11): the message for
//! the recipients this gateway accepted, its `collect` and `deny` records,
//! and one signed receipt per recipient, all in one transaction. The
//! receipts of the accepted recipients name the `collect` record's
//! sequence number, so they can only be made here, once it has one; they
//! are signed with the rest of the batch's (`store::pending_receipts`)
//! before it commits, and the job's answer carries them.

use std::sync::Arc;

use super::submit::Submit;
use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::crypto::jose::JwsKey;
use crate::domain::PartnerId;
use crate::federation::{Receipt, ReceiptKind, ReceiptViolation};
use crate::store::error::StoreError;
use crate::store::outbox::{ISSUED, ReceiptRow};

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
        if seen.is_some() || tx.receipts.holds(id) {
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
                receipts.push(self.receipt(
                    ReceiptKind::Accepted,
                    &d.recipient,
                    Some(rec.seq),
                    Vec::new(),
                ));
            }
        }
        for (recipient, violations) in &self.refused {
            receipts.push(self.receipt(
                ReceiptKind::Refused,
                recipient.as_str(),
                None,
                violations.clone(),
            ));
        }
        for r in receipts {
            let row = self.row(&r);
            tx.receipts.push(tx.job, r, row, self.signer.clone());
        }
        // The rows come with the batch's signature, before the commit.
        Ok((WriteOutput::Receipts(Vec::new()), rec))
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

    /// The row of receipt `r`, to be signed.
    fn row(&self, r: &Receipt) -> ReceiptRow {
        ReceiptRow {
            message_id: self.message_id.clone(),
            recipient: r
                .recipient
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            peer: self.peer.to_string(),
            direction: ISSUED,
            kind: r.kind.as_str().to_owned(),
            jws: String::new(),
            at_ms: self.at.1,
        }
    }
}
