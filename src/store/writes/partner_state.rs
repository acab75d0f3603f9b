//! An operator suspending or resuming a partner.

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::domain::time::ms_to_text;
use crate::store::convert::flag_to_int;

/// Suspend or resume a partner.
#[derive(Debug, Clone)]
pub struct SetPartnerState {
    /// The partner.
    pub partner: String,
    /// Whether it is suspended now.
    pub suspended: bool,
    /// Now, unix ms.
    pub at_ms: i64,
}

impl SetPartnerState {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        tx.conn
            .execute(
                "INSERT INTO partner_state (partner, suspended, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (partner) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at",
                &[
                    self.partner.as_str().into(),
                    flag_to_int(self.suspended).into(),
                    ms_to_text(self.at_ms).as_str().into(),
                ],
            )
            .await?;
        Ok(done)
    }
}
