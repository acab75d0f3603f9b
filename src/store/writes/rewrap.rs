//! Re-wrapping data keys under a new master key (`keys rotate`).

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::store::rows::DataKeyRow;

/// Re-wrap data keys under a new master key.
#[derive(Debug, Clone)]
pub struct Rewrap {
    /// The keys, each under its new master key.
    pub keys: Vec<DataKeyRow>,
}

impl Rewrap {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        for k in &self.keys {
            tx.conn
                .execute(
                    "UPDATE data_keys SET master_key_id = $2, wrapped_key = $3 WHERE owner = $1",
                    &[
                        k.owner.as_str().into(),
                        k.key.master_key_id.as_str().into(),
                        k.key.wrapped_key.as_slice().into(),
                    ],
                )
                .await?;
        }
        Ok(done)
    }
}
