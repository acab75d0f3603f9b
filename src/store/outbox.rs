//! The relay's outbox, receipts and peer state (SPEC §11).
//!
//! What the relay changes while it works — claiming a row, counting a
//! failed attempt, noting a peer's last success or error, dropping a row
//! whose message was erased before it left — is bookkeeping about
//! deliveries, not processing of personal data: it carries no content and
//! no audit record, so it is written here directly on a pooled connection
//! instead of through the audited writer. Everything a DPO must be able
//! to follow (a message relayed, refused, given up; a receipt recorded; a
//! peer suspended) is a write in `writes` with its audit record.

use sqlx::Row;

use super::Store;
use super::error::StoreError;
use super::vocab::OutboxKind;
use super::write_conn::WriteConn;

/// SQL: the outbox row `relay_outbox` is a notice that must wait, because
/// an older message or notice row for the same copy and peer is queued.
pub(super) const BLOCKED: &str = "(relay_outbox.kind = 'notice' AND EXISTS (\
    SELECT 1 FROM relay_outbox e WHERE e.peer = relay_outbox.peer \
    AND e.message_id = relay_outbox.message_id AND e.kind IN ('message', 'notice') \
    AND (e.created_ms < relay_outbox.created_ms \
         OR (e.created_ms = relay_outbox.created_ms AND e.id < relay_outbox.id))))";

/// A row to add to the outbox (in the transaction that creates the need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Row id (UUIDv7).
    pub id: String,
    /// The peer gateway it goes to.
    pub peer: String,
    /// What it carries.
    pub kind: OutboxKind,
    /// The message (for a notice, the family's original).
    pub message_id: String,
    /// A notice's JSON or a receipt's JWS; `None` for a message.
    pub body: Option<String>,
    /// Now, unix ms (also its first attempt time).
    pub created_ms: i64,
}

/// An outbox row as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The row's entry.
    pub entry: OutboxEntry,
    /// Attempts made so far.
    pub attempts: i64,
    /// Until when this node's claim runs (unix ms), as it set it: the
    /// token that shows the row is still its own (`Store::renew_claim`).
    pub claim: Option<i64>,
}

/// A peer's state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStateRow {
    /// The peer gateway.
    pub peer: String,
    /// Whether the operator suspended it.
    pub suspended: bool,
    /// Last successful exchange, unix ms.
    pub last_success_ms: Option<i64>,
    /// Why the last attempt failed (no content, no secrets).
    pub last_error: Option<String>,
    /// When it failed, unix ms.
    pub last_error_ms: Option<i64>,
}

/// One peer's queue, for operators and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// The peer gateway.
    pub peer: String,
    /// Rows waiting.
    pub depth: i64,
    /// The oldest waiting row's creation, unix ms.
    pub oldest_ms: Option<i64>,
}

/// A stored receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    /// The message.
    pub message_id: String,
    /// The recipient; empty for a family-wide receipt.
    pub recipient: String,
    /// The other gateway (the signer of a received receipt, the one it
    /// was issued to otherwise).
    pub peer: String,
    /// `received` or `issued`.
    pub direction: &'static str,
    /// The receipt's kind word.
    pub kind: String,
    /// The compact JWS.
    pub jws: String,
    /// When it was stored, unix ms.
    pub at_ms: i64,
}

/// A receipt this gateway received from a peer.
pub const RECEIVED: &str = "received";
/// A receipt this gateway signed for a peer.
pub const ISSUED: &str = "issued";

/// Adds outbox rows inside a write's transaction.
pub(super) async fn insert_entries(
    conn: &mut WriteConn,
    entries: &[OutboxEntry],
) -> Result<(), StoreError> {
    for e in entries {
        conn.execute(
            "INSERT INTO relay_outbox (id, peer, kind, message_id, body, created_ms, next_attempt_ms, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, 0)",
            &[
                e.id.as_str().into(),
                e.peer.as_str().into(),
                e.kind.as_str().into(),
                e.message_id.as_str().into(),
                e.body.as_deref().into(),
                e.created_ms.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Stores receipts inside a write's transaction; one stored before (same
/// message, recipient, peer, direction and kind) is kept as it was.
pub(super) async fn insert_receipts(
    conn: &mut WriteConn,
    receipts: &[ReceiptRow],
) -> Result<(), StoreError> {
    for r in receipts {
        conn.execute(
            "INSERT INTO relay_receipts (message_id, recipient, peer, direction, kind, jws, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (message_id, recipient, peer, direction, kind) DO NOTHING",
            &[
                r.message_id.as_str().into(),
                r.recipient.as_str().into(),
                r.peer.as_str().into(),
                r.direction.into(),
                r.kind.as_str().into(),
                r.jws.as_str().into(),
                r.at_ms.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Whether an outbox row is still there, inside a write's transaction: a
/// row another node finished (or dropped) must not be recorded twice.
pub(super) async fn entry_exists(conn: &mut WriteConn, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .fetch_optional("SELECT 1 FROM relay_outbox WHERE id = $1", &[id.into()])
        .await?
        .is_some())
}

/// Removes an outbox row inside a write's transaction.
pub(super) async fn delete_entry(conn: &mut WriteConn, id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM relay_outbox WHERE id = $1", &[id.into()])
        .await?;
    Ok(())
}

const OUTBOX_COLUMNS: &str =
    "id, peer, kind, message_id, body, created_ms, attempts FROM relay_outbox";

fn outbox_row(r: &sqlx::any::AnyRow) -> Result<OutboxRow, StoreError> {
    let kind: String = r.try_get(2)?;
    Ok(OutboxRow {
        entry: OutboxEntry {
            id: r.try_get(0)?,
            peer: r.try_get(1)?,
            kind: OutboxKind::try_from(kind)?,
            message_id: r.try_get(3)?,
            body: r.try_get(4)?,
            created_ms: r.try_get(5)?,
        },
        attempts: r.try_get(6)?,
        claim: None,
    })
}

fn receipt_row(r: &sqlx::any::AnyRow) -> Result<ReceiptRow, StoreError> {
    let direction: String = r.try_get(3)?;
    Ok(ReceiptRow {
        message_id: r.try_get(0)?,
        recipient: r.try_get(1)?,
        peer: r.try_get(2)?,
        direction: if direction == ISSUED {
            ISSUED
        } else {
            RECEIVED
        },
        kind: r.try_get(4)?,
        jws: r.try_get(5)?,
        at_ms: r.try_get(6)?,
    })
}

const RECEIPT_COLUMNS: &str =
    "message_id, recipient, peer, direction, kind, jws, at_ms FROM relay_receipts";

impl Store {
    /// Up to `limit` rows for `peer` due at `now_ms` and claimed by no one,
    /// oldest first; a notice waits while an older row about the same copy
    /// is queued ([`BLOCKED`]).
    pub async fn outbox_due(
        &self,
        peer: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} WHERE peer = $1 AND next_attempt_ms <= $2 \
             AND (claimed_until_ms IS NULL OR claimed_until_ms < $2) AND NOT {BLOCKED} \
             ORDER BY created_ms, id LIMIT $3 + 0"
        )))
        .bind(peer.to_owned())
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(outbox_row).collect()
    }

    /// Every row waiting for `peer`, oldest first (tests, give-up).
    pub async fn outbox_of(&self, peer: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} WHERE peer = $1 ORDER BY created_ms, id"
        )))
        .bind(peer.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(outbox_row).collect()
    }

    /// Extends this node's claim on a row, held until `held_ms`, to
    /// `until_ms`; false if the row is gone (an erasure dropped it) or its
    /// claim is no longer this node's (it ran out and another took it).
    /// A sender renews before each request, so a row on the wire is never
    /// taken for unsent.
    pub async fn renew_claim(
        &self,
        id: &str,
        held_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE relay_outbox SET claimed_until_ms = $3 WHERE id = $1 AND claimed_until_ms = $2",
        )
        .bind(id.to_owned())
        .bind(held_ms)
        .bind(until_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases claims this node took but did not use (the rest of a lane
    /// after a failure): the rows are due again at once.
    pub async fn release_outbox(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("UPDATE relay_outbox SET claimed_until_ms = NULL WHERE id = $1")
                .bind(id.clone())
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Counts a failed attempt: the row waits until `next_ms`, its claim
    /// released, with the error's kind.
    pub async fn outbox_failed(
        &self,
        id: &str,
        next_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE relay_outbox SET attempts = attempts + 1, next_attempt_ms = $2, last_error = $3, \
             claimed_until_ms = NULL WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(next_ms)
        .bind(error.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drops a row that must never be sent (its message was erased first).
    pub async fn outbox_drop(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM relay_outbox WHERE id = $1")
            .bind(id.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Notes the outcome of an exchange with `peer`: a success, or the
    /// error's kind.
    pub async fn peer_contact(
        &self,
        peer: &str,
        error: Option<&str>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = if error.is_some() {
            "INSERT INTO peer_state (peer, suspended, last_error, last_error_ms) VALUES ($1, 0, $2, $3) \
             ON CONFLICT (peer) DO UPDATE SET last_error = excluded.last_error, last_error_ms = excluded.last_error_ms"
        } else {
            "INSERT INTO peer_state (peer, suspended, last_success_ms) VALUES ($1, 0, $3) \
             ON CONFLICT (peer) DO UPDATE SET last_success_ms = excluded.last_success_ms"
        };
        sqlx::query(sql)
            .bind(peer.to_owned())
            .bind(error.map(str::to_owned))
            .bind(at_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether the operator suspended `peer`.
    pub async fn peer_suspended(&self, peer: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT suspended FROM peer_state WHERE peer = $1")
            .bind(peer.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => super::convert::int_to_flag(r.try_get(0)?),
            None => false,
        })
    }

    /// Every peer's stored state.
    pub async fn peer_states(&self) -> Result<Vec<PeerStateRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT peer, suspended, last_success_ms, last_error, last_error_ms FROM peer_state ORDER BY peer",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PeerStateRow {
                    peer: r.try_get(0)?,
                    suspended: super::convert::int_to_flag(r.try_get(1)?),
                    last_success_ms: r.try_get(2)?,
                    last_error: r.try_get(3)?,
                    last_error_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Each peer's queue depth and oldest row.
    pub async fn outbox_stats(&self) -> Result<Vec<QueueStats>, StoreError> {
        let rows = sqlx::query(
            "SELECT peer, COUNT(*), MIN(created_ms) FROM relay_outbox GROUP BY peer ORDER BY peer",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QueueStats {
                    peer: r.try_get(0)?,
                    depth: r.try_get(1)?,
                    oldest_ms: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The earliest time one of `peer`'s rows becomes due, unix ms: a row
    /// another node holds (claimed until after `now_ms`) counts from the
    /// end of its claim, so no loop spins on rows it cannot take.
    pub async fn outbox_next_due(
        &self,
        peer: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(CASE WHEN claimed_until_ms IS NOT NULL AND claimed_until_ms > $2 \
             THEN claimed_until_ms ELSE next_attempt_ms END) \
             FROM relay_outbox WHERE peer = $1 AND NOT {BLOCKED}"
        )))
        .bind(peer.to_owned())
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?
        .try_get(0)?)
    }

    /// Receipts stored for a message in one direction, oldest first.
    pub async fn receipts_of(
        &self,
        message_id: &str,
        direction: &str,
    ) -> Result<Vec<ReceiptRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECEIPT_COLUMNS} WHERE message_id = $1 AND direction = $2 ORDER BY at_ms, recipient, kind"
        )))
        .bind(message_id.to_owned())
        .bind(direction.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(receipt_row).collect()
    }
}
