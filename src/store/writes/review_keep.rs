//! A `keep` review decision: the message stays, with new dates.

use time::Date;

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::domain::label::format_date;

/// A `keep` review decision: new dates for one message.
#[derive(Debug, Clone)]
pub struct ReviewKeep {
    /// The message.
    pub message_id: String,
    /// New end of retention, unix ms.
    pub retain_until_ms: i64,
    /// New review date.
    pub review_on: Date,
}

impl ReviewKeep {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        tx.conn
            .execute(
                "UPDATE messages SET retain_until_ms = $2, review_on = $3 WHERE id = $1 AND erased_at_ms IS NULL",
                &[
                    self.message_id.as_str().into(),
                    self.retain_until_ms.into(),
                    format_date(self.review_on).as_str().into(),
                ],
            )
            .await?;
        Ok(done)
    }
}
