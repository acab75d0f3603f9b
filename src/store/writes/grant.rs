//! An originator granting a permission on its information (granting it
//! again changes nothing).

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::domain::time::ms_to_text;
use crate::store::notices::{NoticeFanout, announce};
use crate::store::vocab::PermissionScope;

/// The originator grants a permission on its information.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The family.
    pub root_id: String,
    /// To whom.
    pub partner: String,
    /// What it permits.
    pub scope: PermissionScope,
    /// Now, unix ms.
    pub at_ms: i64,
    /// The granting officer.
    pub officer: String,
    /// The notice for the peers holding copies (SPEC §11), queued in the
    /// same transaction; `None` on a holder applying a peer's notice.
    pub notice: Option<NoticeFanout>,
}

impl Grant {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        tx.conn
            .execute(
                "INSERT INTO permissions (root_id, partner, scope, granted_at, officer) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (root_id, partner, scope) DO NOTHING",
                &[
                    self.root_id.as_str().into(),
                    self.partner.as_str().into(),
                    self.scope.as_str().into(),
                    ms_to_text(self.at_ms).as_str().into(),
                    self.officer.as_str().into(),
                ],
            )
            .await?;
        announce(tx.conn, &self.root_id, self.notice.as_ref()).await?;
        Ok(done)
    }
}
