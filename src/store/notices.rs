//! Lifecycle notices in the store (SPEC §11 "Lifecycle across gateways").
//!
//! The originator's decisions (erase, hold, lift hold, label raise, grant)
//! must reach every peer gateway that holds a copy of the family, and a
//! holder that erases a peer's message by its own retention must tell the
//! origin. Both leave through the relay outbox, queued by the write that
//! makes the change in the same transaction, so a decision that committed
//! is never lost on the way and one that did not is never announced.
//!
//! Ordering: a notice for a copy waits while an older message or notice
//! row for the same copy and peer is queued (`outbox::BLOCKED`), so a notice
//! never overtakes the copy it is about, nor an earlier decision.

use std::sync::Arc;

use sqlx::Row;

use super::Store;
use super::error::StoreError;
use super::family::IN_FAMILY;
use super::outbox::{ISSUED, OutboxEntry, ReceiptRow, insert_entries};
use super::vocab::{DeliveryStatus, OutboxKind};
use super::write_conn::WriteConn;
use crate::crypto::jose::JwsKey;
use crate::domain::PartnerId;
use crate::federation::{Notice, Receipt};

/// A decision to announce to the peers holding copies, with the time of
/// the write that makes it.
#[derive(Debug, Clone)]
pub struct NoticeFanout {
    /// The decision (naming the family's original on this gateway; each
    /// peer's row names the copy that peer holds).
    pub notice: Notice,
    /// Now, unix ms.
    pub at_ms: i64,
}

/// What a write needs to sign receipts for peers inside its transaction
/// (they name the audit record, which exists only there).
#[derive(Debug, Clone)]
pub struct ReceiptSigner {
    /// This gateway's federation id (the receipts' `gateway`).
    pub own: PartnerId,
    /// Its envelope key.
    pub key: Arc<JwsKey>,
}

impl ReceiptSigner {
    /// Signs `r`; a key that cannot sign fails the write (nothing is
    /// committed that a peer would never be told).
    pub(super) fn sign(&self, r: &Receipt) -> Result<String, StoreError> {
        r.sign(&self.key)
            .map_err(|e| StoreError::Unavailable(format!("cannot sign a receipt: {e}")))
    }
}

/// The family's messages still holding content, as in the transaction.
pub(super) async fn live_family(
    conn: &mut WriteConn,
    root: &str,
) -> Result<Vec<String>, StoreError> {
    conn.fetch_all(
        &format!(
            "SELECT id FROM messages WHERE {IN_FAMILY} AND erased_at_ms IS NULL ORDER BY accepted_ms, id"
        ),
        &[root.into()],
    )
    .await?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Queues `fanout`'s notice for every peer that holds, or may soon hold, a
/// copy of one of `members`: a delivery through that peer that it has not
/// refused or erased (one given up on may have landed). With `drop_unsent` (an erasure), a copy
/// whose message row still waits unclaimed is never sent instead: the row
/// and the notices queued behind it go, and no notice is needed. Returns
/// the (peer, message) pairs notified.
pub(super) async fn queue_notices(
    conn: &mut WriteConn,
    members: &[String],
    fanout: &NoticeFanout,
    drop_unsent: bool,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut entries = Vec::new();
    for m in members {
        let peers = conn
            .fetch_all(
                // An `undeliverable` copy is told too: an attempt whose
                // answer was lost may have landed.
                "SELECT DISTINCT via FROM deliveries WHERE message_id = $1 AND via IS NOT NULL \
                 AND status NOT IN ($2, $3) ORDER BY via",
                &[
                    m.as_str().into(),
                    DeliveryStatus::Refused.as_str().into(),
                    DeliveryStatus::Erased.as_str().into(),
                ],
            )
            .await?;
        for p in &peers {
            let peer = p.text(0)?;
            if drop_unsent && drop_if_unsent(conn, &peer, m, fanout.at_ms).await? {
                continue;
            }
            entries.push(OutboxEntry {
                id: uuid::Uuid::now_v7().to_string(),
                peer,
                kind: OutboxKind::Notice,
                message_id: m.clone(),
                body: Some(fanout.notice.for_message(m).to_json().to_string()),
                created_ms: fanout.at_ms,
            });
        }
    }
    insert_entries(conn, &entries).await?;
    Ok(entries
        .into_iter()
        .map(|e| (e.peer, e.message_id))
        .collect())
}

/// Removes the message row of `message` for `peer` if it was never sent
/// (never attempted, and no relay holds a claim on it), with the notices
/// queued behind it; returns whether it did. A claimed row may be on the
/// wire, and an attempted one may have landed (the peer stored it and its
/// answer was lost): their copies get a notice like any other.
async fn drop_if_unsent(
    conn: &mut WriteConn,
    peer: &str,
    message: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let dropped = conn
        .execute(
            "DELETE FROM relay_outbox WHERE peer = $1 AND message_id = $2 AND kind = 'message' \
             AND attempts = 0 AND (claimed_until_ms IS NULL OR claimed_until_ms < $3)",
            &[peer.into(), message.into(), now_ms.into()],
        )
        .await?;
    if dropped == 0 {
        return Ok(false);
    }
    conn.execute(
        "DELETE FROM relay_outbox WHERE peer = $1 AND message_id = $2 AND kind = 'notice'",
        &[peer.into(), message.into()],
    )
    .await?;
    Ok(true)
}

/// The peers `message` came from: those this gateway signed an `accepted`
/// receipt to for it.
pub(super) async fn origin_peers(
    conn: &mut WriteConn,
    message: &str,
) -> Result<Vec<String>, StoreError> {
    conn.fetch_all(
        "SELECT DISTINCT peer FROM relay_receipts WHERE message_id = $1 AND direction = $2 \
         AND kind = 'accepted' ORDER BY peer",
        &[message.into(), ISSUED.into()],
    )
    .await?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Stores a family-wide receipt, replacing one of the same kind stored
/// before (a second hold's `applied` supersedes the first's).
pub(super) async fn upsert_receipt(conn: &mut WriteConn, r: &ReceiptRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO relay_receipts (message_id, recipient, peer, direction, kind, jws, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (message_id, recipient, peer, direction, kind) \
         DO UPDATE SET jws = excluded.jws, at_ms = excluded.at_ms",
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
    Ok(())
}

/// Marks every delivery of `message` through `peer` erased (its gateway
/// confirmed the erasure), unless it was refused or given up.
pub(super) async fn mark_erased_via(
    conn: &mut WriteConn,
    message: &str,
    peer: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE deliveries SET status = $3, updated_at = $4 WHERE message_id = $1 AND via = $2 \
         AND status NOT IN ($5, $6, $3)",
        &[
            message.into(),
            peer.into(),
            DeliveryStatus::Erased.as_str().into(),
            crate::domain::time::ms_to_text(at_ms).as_str().into(),
            DeliveryStatus::Refused.as_str().into(),
            DeliveryStatus::Undeliverable.as_str().into(),
        ],
    )
    .await?;
    Ok(())
}

impl Store {
    /// The peers whose confirmation of an erasure of `message` is still
    /// outstanding: an erase notice for it waits in their queue.
    pub async fn erasures_outstanding(&self, message: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT peer, body FROM relay_outbox WHERE message_id = $1 AND kind = 'notice' ORDER BY peer",
        )
        .bind(message.to_owned())
        .fetch_all(self.pool())
        .await?;
        let mut peers: Vec<String> = Vec::new();
        for r in &rows {
            let body: Option<String> = r.try_get(1)?;
            let erase = body
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["kind"] == "erase");
            let peer: String = r.try_get(0)?;
            if erase && !peers.contains(&peer) {
                peers.push(peer);
            }
        }
        Ok(peers)
    }

    /// Whether a notice row must still wait for an older row about the same
    /// copy (checked again after the claim: another node may be slow).
    pub async fn outbox_blocked(&self, entry: &OutboxEntry) -> Result<bool, StoreError> {
        if entry.kind != OutboxKind::Notice {
            return Ok(false);
        }
        let row = sqlx::query(
            "SELECT 1 FROM relay_outbox e WHERE e.peer = $1 AND e.message_id = $2 \
             AND e.kind IN ('message', 'notice') \
             AND (e.created_ms < $3 OR (e.created_ms = $3 AND e.id < $4)) LIMIT 1",
        )
        .bind(entry.peer.clone())
        .bind(entry.message_id.clone())
        .bind(entry.created_ms)
        .bind(entry.id.clone())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Releases a claim without counting an attempt (the row must wait for
    /// an older one).
    pub async fn outbox_release(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE relay_outbox SET claimed_until_ms = NULL WHERE id = $1")
            .bind(id.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Queues `fanout`'s notice, if any, for the peers holding live copies of
/// the family of `root` (a hold, lifted hold, label raise or grant).
pub(super) async fn announce(
    conn: &mut WriteConn,
    root: &str,
    fanout: Option<&NoticeFanout>,
) -> Result<(), StoreError> {
    if let Some(f) = fanout {
        let members = live_family(conn, root).await?;
        queue_notices(conn, &members, f, false).await?;
    }
    Ok(())
}
