//! A recipient recording the use of a message in judicial proceedings.

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::domain::time::ms_to_text;

/// A recipient records judicial use.
#[derive(Debug, Clone)]
pub struct JudicialUse {
    /// The message.
    pub message_id: String,
    /// The recipient.
    pub partner: String,
    /// Now, unix ms.
    pub at_ms: i64,
    /// The proceedings' reference.
    pub reference: Option<String>,
}

impl JudicialUse {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        tx.conn
            .execute(
                "INSERT INTO judicial_uses (message_id, partner, recorded_at, reference) VALUES ($1, $2, $3, $4)",
                &[
                    self.message_id.as_str().into(),
                    self.partner.as_str().into(),
                    ms_to_text(self.at_ms).as_str().into(),
                    self.reference.as_deref().into(),
                ],
            )
            .await?;
        Ok(done)
    }
}
