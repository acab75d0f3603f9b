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
    /// The hold an origin gateway's notice sets or lifts (SPEC §11), kept
    /// apart from this gateway's own: lifting one leaves the other.
    pub by_origin: bool,
    /// The notice for the peers holding copies (SPEC §11), queued in the
    /// same transaction; `None` on a holder applying a peer's notice.
    pub notice: Option<NoticeFanout>,
}

impl SetHold {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        // `held` is the effective flag: this source's hold or the other's.
        let (this, other) = if self.by_origin {
            ("hold_origin", "hold_local")
        } else {
            ("hold_local", "hold_origin")
        };
        tx.conn
            .execute(
                &format!(
                    "UPDATE messages SET {this} = $2, \
                     held = CASE WHEN $2 = 1 OR {other} = 1 THEN 1 ELSE 0 END, \
                     hold_reason = CASE WHEN $2 = 1 THEN $3 WHEN {other} = 1 THEN hold_reason ELSE NULL END \
                     WHERE {IN_FAMILY}"
                ),
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
