//! The receipts a write batch's receives made, signed together at the end
//! (SPEC §11, *Batch signatures*).
//!
//! A receipt names the audit record of its step, which exists only inside
//! the writer's transaction; signing each there cost the writer an Ed25519
//! signature per relayed message, and the origin a check per receipt. The
//! receives of one batch therefore leave their receipts here, and before
//! the batch commits (or before a write that could read them) they are
//! signed with one signature over their Merkle root, stored in one go, and
//! handed to their jobs' answers.

use std::sync::Arc;

use crate::crypto::jose::JwsKey;
use crate::federation::Receipt;
use crate::store::error::StoreError;
use crate::store::outbox::{ReceiptRow, insert_receipts};
use crate::store::write_conn::WriteConn;

/// One receipt waiting for its signature.
struct Pending {
    /// The job (its index in the batch) whose answer carries it.
    job: usize,
    receipt: Receipt,
    /// Its row, `jws` still empty.
    row: ReceiptRow,
    signer: Arc<JwsKey>,
}

/// The batch's unsigned receipts.
#[derive(Default)]
pub(in crate::store) struct PendingReceipts(Vec<Pending>);

impl PendingReceipts {
    /// Holds `receipt` (its `row` without `jws`) for job `job`, to be
    /// signed with `signer`.
    pub fn push(&mut self, job: usize, receipt: Receipt, row: ReceiptRow, signer: Arc<JwsKey>) {
        self.0.push(Pending {
            job,
            receipt,
            row,
            signer,
        });
    }

    /// Whether a receipt for `message_id` waits here: a second receive of
    /// the same id in the same batch is a replay.
    pub fn holds(&self, message_id: &str) -> bool {
        self.0.iter().any(|p| p.row.message_id == message_id)
    }

    /// Signs every waiting receipt (one signature per signing key and
    /// peer: a receipt's Merkle path and the root's `size` speak of the
    /// others under its root, so one peer's never sit with another's),
    /// stores them, and returns each job's rows in the order made. A
    /// receipt that cannot be signed fails the batch (nothing is
    /// committed).
    pub async fn write(
        &mut self,
        conn: &mut WriteConn,
    ) -> Result<Vec<(usize, ReceiptRow)>, StoreError> {
        let mut waiting = std::mem::take(&mut self.0);
        let mut out = Vec::with_capacity(waiting.len());
        while let Some(first) = waiting.first() {
            let key = first.signer.clone();
            let peer = first.row.peer.clone();
            let (same, rest): (Vec<Pending>, Vec<Pending>) = waiting
                .into_iter()
                .partition(|p| Arc::ptr_eq(&p.signer, &key) && p.row.peer == peer);
            waiting = rest;
            let receipts: Vec<Receipt> = same.iter().map(|p| p.receipt.clone()).collect();
            let tokens = Receipt::sign_all(&receipts, &key)
                .map_err(|e| StoreError::Unavailable(format!("cannot sign a receipt: {e}")))?;
            let rows: Vec<(usize, ReceiptRow)> = same
                .into_iter()
                .zip(tokens)
                .map(|(p, jws)| (p.job, ReceiptRow { jws, ..p.row }))
                .collect();
            let plain: Vec<ReceiptRow> = rows.iter().map(|(_, r)| r.clone()).collect();
            insert_receipts(conn, &plain).await?;
            out.extend(rows);
        }
        Ok(out)
    }
}
