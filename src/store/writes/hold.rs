//! A legal hold, set or lifted on a whole forwarding family at once.

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::store::convert::flag_to_int;
use crate::store::family::IN_FAMILY;
use crate::store::notices::{NoticeFanout, announce};

/// Set or lift a legal hold on a whole family.
#[derive(Debug, Clone)]
pub struct SetHold {
    /// The family.
    pub root_id: String,
    /// Set (true) or lift.
    pub held: bool,
    /// Why, when set.
    pub reason: Option<String>,
    /// The notice for the peers holding copies (SPEC §11), queued in the
    /// same transaction; `None` on a holder applying a peer's notice.
    pub notice: Option<NoticeFanout>,
}

impl SetHold {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        tx.conn
            .execute(
                &format!("UPDATE messages SET held = $2, hold_reason = $3 WHERE {IN_FAMILY}"),
                &[
                    self.root_id.as_str().into(),
                    flag_to_int(self.held).into(),
                    self.reason.as_deref().into(),
                ],
            )
            .await?;
        announce(tx.conn, &self.root_id, self.notice.as_ref()).await?;
        Ok(done)
    }
}
