//! The forwarding family in SQL: an original and every forward that copies
//! it share a root. Readers, the writer's checks and the writes that act on
//! a whole family (hold, label raise, erasure) all select it the same way.

use super::error::StoreError;
use super::write_conn::WriteConn;

/// The messages of the forwarding family whose root is `$1`: the original
/// by its primary key, its forwards by `messages_root`, which holds forwards
/// only (`root_id <> id`). `COALESCE(root_id, id) = $1` meant the same but
/// could use neither index and scanned every message.
pub(super) const IN_FAMILY: &str = "(id = $1 OR (root_id = $1 AND root_id <> id))";

/// The family's message ids as they are in the writer's transaction,
/// oldest first.
pub(super) async fn family_ids(
    conn: &mut WriteConn,
    root: &str,
) -> Result<Vec<String>, StoreError> {
    conn.fetch_all(
        &format!("SELECT id FROM messages WHERE {IN_FAMILY} ORDER BY accepted_ms, id"),
        &[root.into()],
    )
    .await?
    .iter()
    .map(|r| r.text(0))
    .collect()
}
