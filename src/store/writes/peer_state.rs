//! An operator suspending or resuming a peer gateway (SPEC §11): no relay
//! to it and nothing accepted from it while suspended.

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::store::convert::flag_to_int;

/// Suspend or resume a peer gateway.
#[derive(Debug, Clone)]
pub struct SetPeerState {
    /// The peer.
    pub peer: String,
    /// Whether it is suspended now.
    pub suspended: bool,
}

impl SetPeerState {
    /// Performs the write inside the batch's transaction: its audit
    /// record, then its row.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        tx.conn
            .execute(
                "INSERT INTO peer_state (peer, suspended) VALUES ($1, $2) \
                 ON CONFLICT (peer) DO UPDATE SET suspended = excluded.suspended",
                &[
                    self.peer.as_str().into(),
                    flag_to_int(self.suspended).into(),
                ],
            )
            .await?;
        Ok(done)
    }
}
