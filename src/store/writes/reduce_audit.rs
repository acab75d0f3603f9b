//! Audit retention: old records reduced to their hashes (the chain still
//! verifies) and old tombstones of erased messages dropped.

use super::tx::{Applied, Tx};
use crate::audit::RecordDraft;
use crate::store::audit_rows::write_pending;
use crate::store::convert::to_i64;

/// Audit retention: reduce records up to `through_seq` to their hashes,
/// and drop tombstones of messages erased before `tombstones_before_ms`.
#[derive(Debug, Clone)]
pub struct ReduceAudit {
    /// Last record to reduce (records before it are reduced already or
    /// reduced now: reduction is always a prefix).
    pub through_seq: u64,
    /// Erased messages older than this (unix ms) lose their tombstones.
    pub tombstones_before_ms: i64,
}

/// Every column of a record but its seq and hashes, emptied.
const REDUCE_SQL: &str = "UPDATE audit_log SET reduced = 1, at = NULL, actor_role = NULL, actor_id = NULL, \
     actor_officer = NULL, actor_cert_serial = NULL, action = NULL, message_id = NULL, counterparts = NULL, \
     outcome = NULL, code = NULL, justification = NULL, request_id = NULL, node = NULL, details = NULL \
     WHERE reduced = 0 AND seq <= $1";

/// The rows of messages erased before `$1`, children before the message.
const TOMBSTONE_SQL: [&str; 6] = [
    "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
    "DELETE FROM message_attachments WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
    "DELETE FROM message_signatures WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
    "DELETE FROM judicial_uses WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
    "DELETE FROM idempotency WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
    "DELETE FROM messages WHERE erased_at_ms < $1",
];

impl ReduceAudit {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let done = tx.append_done(audit).await?;
        // The reduction below must see every record of this batch.
        write_pending(tx.conn, tx.head).await?;
        let through = to_i64(self.through_seq)?;
        tx.conn.execute(REDUCE_SQL, &[through.into()]).await?;
        for sql in [
            "DELETE FROM audit_parties WHERE seq <= $1",
            "DELETE FROM audit_messages WHERE seq <= $1",
        ] {
            tx.conn.execute(sql, &[through.into()]).await?;
        }
        for sql in TOMBSTONE_SQL {
            tx.conn
                .execute(sql, &[self.tombstones_before_ms.into()])
                .await?;
        }
        Ok(done)
    }
}
