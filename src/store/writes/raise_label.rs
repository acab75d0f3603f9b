//! Raising the label of a whole forwarding family: every copy carries the
//! label in force.

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::domain::Label;
use crate::store::family::IN_FAMILY;
use crate::store::json_columns::label_text;
use crate::store::notices::{NoticeFanout, announce};

/// Raise the label of a whole family.
#[derive(Debug, Clone)]
pub struct RaiseLabel {
    /// The family.
    pub root_id: String,
    /// The new label (its classification rank is stored beside it).
    pub label: Label,
    /// The notice for the peers holding copies (SPEC §11), queued in the
    /// same transaction; `None` on a holder applying a peer's notice.
    pub notice: Option<NoticeFanout>,
}

impl RaiseLabel {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        tx.conn
            .execute(
                &format!("UPDATE messages SET label = $2, classification = $3 WHERE {IN_FAMILY}"),
                &[
                    self.root_id.as_str().into(),
                    label_text(&self.label).as_str().into(),
                    self.label.classification.rank().into(),
                ],
            )
            .await?;
        announce(tx.conn, &self.root_id, self.notice.as_ref()).await?;
        Ok(done)
    }
}
