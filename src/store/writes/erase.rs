//! Erasing messages' content: all of them or none (refused if any is
//! held), keeping each row as its tombstone.

use super::erase_orphan::erase_attachment;
use super::tx::{Applied, Tx, WriteOutput};
use crate::audit::RecordDraft;
use crate::federation::{Receipt, ReceiptKind};
use crate::store::convert::int_to_flag;
use crate::store::error::StoreError;
use crate::store::family::family_ids;
use crate::store::notices::{
    NoticeFanout, ReceiptSigner, origin_peers, queue_notices, upsert_receipt,
};
use crate::store::outbox::{ISSUED, OutboxEntry, ReceiptRow, insert_entries};
use crate::store::vocab::OutboxKind;
use crate::store::write_conn::WriteConn;

/// Erase messages' content, all or none (refused if any is held; already
/// erased ones are skipped).
#[derive(Debug, Clone)]
pub struct Erase {
    /// The messages (one, or a forwarding family).
    pub message_ids: Vec<String>,
    /// Erase the family with this root as it is at commit instead: a
    /// forward committed before the erasure is erased with it.
    pub family_of: Option<String>,
    /// Now, unix ms.
    pub at_ms: i64,
    /// The erase notice for the peers holding copies of what is erased
    /// (SPEC §11); a copy never sent is dropped instead. `None` on a
    /// holder applying a peer's notice.
    pub notice: Option<NoticeFanout>,
    /// Signs the `erased` receipts owed to the peers the erased messages
    /// came from (a holder erasing by its own retention); `None` when the
    /// erasure is a peer's notice (its answer carries the receipt).
    pub receipts: Option<ReceiptSigner>,
}

impl Erase {
    /// Performs the write inside the batch's transaction: its checks,
    /// then its audit record, then its rows.
    pub(super) async fn apply(&self, tx: &mut Tx<'_, '_>, audit: RecordDraft) -> Applied {
        let mut audit = audit;
        let ids = match &self.family_of {
            Some(root) => {
                let ids = family_ids(tx.conn, root).await?;
                if let Some(d) = audit.details.as_mut() {
                    d.insert("message_ids".into(), serde_json::json!(ids));
                }
                ids
            }
            None => self.message_ids.clone(),
        };
        let live = live_unheld(tx.conn, &ids).await?;
        if live.is_empty() {
            return Err(StoreError::AlreadyErased);
        }
        let rec = tx.append(audit).await?;
        let mut gone = Vec::new();
        for id in &live {
            erase_message(tx.conn, id, self.at_ms, &mut gone).await?;
        }
        if let Some(f) = &self.notice {
            queue_notices(tx.conn, &live, f, true).await?;
        }
        if let Some(signer) = &self.receipts {
            tell_origins(tx.conn, &live, signer, rec.seq, self.at_ms).await?;
        }
        let out = WriteOutput::Erased {
            messages: ids,
            attachments: gone,
        };
        Ok((out, rec))
    }
}

/// The messages of `ids` still holding content; `Held` if any of them is
/// under a legal hold.
async fn live_unheld(conn: &mut WriteConn, ids: &[String]) -> Result<Vec<String>, StoreError> {
    let mut live = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = conn
            .fetch_optional(
                "SELECT held, erased_at_ms FROM messages WHERE id = $1",
                &[id.as_str().into()],
            )
            .await?
        else {
            continue;
        };
        let held = int_to_flag(row.int(0)?);
        if row.opt_int(1)?.is_some() {
            continue;
        }
        if held {
            return Err(StoreError::Held);
        }
        live.push(id.clone());
    }
    Ok(live)
}

/// Erases one message's content and what would confirm it, and the
/// attachments no message still holding content carries (added to `gone`).
async fn erase_message(
    conn: &mut WriteConn,
    id: &str,
    at_ms: i64,
    gone: &mut Vec<String>,
) -> Result<(), StoreError> {
    // The Content-Type goes too: its parameters are the client's text and
    // often name the content (`name="…"`).
    conn.execute(
        "UPDATE messages SET content = NULL, content_type = '', erased_at_ms = $2 WHERE id = $1",
        &[id.into(), at_ms.into()],
    )
    .await?;
    conn.execute("DELETE FROM data_keys WHERE owner = $1", &[id.into()])
        .await?;
    // A signature states digests of the subject and body: with a guess at
    // a short subject it would confirm it.
    conn.execute(
        "DELETE FROM message_signatures WHERE message_id = $1",
        &[id.into()],
    )
    .await?;
    // The idempotency row's request hash is a digest of the whole request,
    // content included. Without it a replay of the key matches no body:
    // `409`, never a new message.
    conn.execute(
        "UPDATE idempotency SET request_hash = '' WHERE message_id = $1",
        &[id.into()],
    )
    .await?;
    // Attachments no longer carried by any message still holding content.
    let rows = conn
        .fetch_all(
            "SELECT ma.attachment_id FROM message_attachments ma WHERE ma.message_id = $1 AND NOT EXISTS ( \
             SELECT 1 FROM message_attachments o JOIN messages m ON m.id = o.message_id \
             WHERE o.attachment_id = ma.attachment_id AND m.erased_at_ms IS NULL)",
            &[id.into()],
        )
        .await?;
    for r in &rows {
        let a = r.text(0)?;
        if !gone.contains(&a) {
            erase_attachment(conn, &a, at_ms).await?;
            gone.push(a);
        }
    }
    Ok(())
}

/// Queues a signed `erased` receipt (naming the erasure's audit record)
/// for each peer one of `ids` came from, and keeps it as issued.
async fn tell_origins(
    conn: &mut WriteConn,
    ids: &[String],
    signer: &ReceiptSigner,
    seq: u64,
    at_ms: i64,
) -> Result<(), StoreError> {
    let at = crate::domain::time::ms_to_text(at_ms);
    for id in ids {
        for peer in origin_peers(conn, id).await? {
            let Some(to) = crate::domain::PartnerId::parse(&peer) else {
                continue;
            };
            let receipt = Receipt {
                v: 1,
                kind: ReceiptKind::Erased,
                gateway: signer.own.clone(),
                to,
                message_id: id.clone(),
                recipient: None,
                at: at.clone(),
                audit_seq: Some(seq),
                tree_size: Some(seq),
                violations: Vec::new(),
                notice: None,
            };
            let jws = signer.sign(&receipt)?;
            let entry = OutboxEntry {
                id: uuid::Uuid::now_v7().to_string(),
                peer: peer.clone(),
                kind: OutboxKind::Receipt,
                message_id: id.clone(),
                body: Some(jws.clone()),
                created_ms: at_ms,
            };
            insert_entries(conn, std::slice::from_ref(&entry)).await?;
            let row = ReceiptRow {
                message_id: id.clone(),
                recipient: String::new(),
                peer,
                direction: ISSUED,
                kind: ReceiptKind::Erased.as_str().to_owned(),
                jws,
                at_ms,
            };
            upsert_receipt(conn, &row).await?;
        }
    }
    Ok(())
}
