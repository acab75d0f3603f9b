//! The single writer: group commit and the audit hash chain.
//!
//! Requests queue here; the writer takes everything queued (up to
//! `MAX_BATCH`), runs it in one transaction, appends each job's audit record
//! to the chain in order, commits once and then answers every job. One
//! fsync thus covers many requests, and the chain is extended by exactly
//! one task per node. Across processes or nodes, the transaction start
//! (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock) serialises batches,
//! and the chain head is re-read inside each one.
//!
//! An op does its checks (SELECTs) before its first write, so a domain
//! failure (e.g. an idempotency race) leaves nothing behind and needs no
//! savepoint; any database error after that aborts the whole batch, and
//! every job in it fails closed.

use sqlx::{AnyConnection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::audit_rows::{Head, append, read_head};
use super::rows::{DeliveryRow, MessageRow, NewDelivery};
use super::{Backend, StoreError};
use crate::audit::{AuditRecord, RecordDraft};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 256;

/// A write to perform together with its audit record.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WriteOp {
    /// Nothing but the audit record.
    AuditOnly,
    /// Store an accepted message with its deliveries and data key.
    Submit {
        /// The message (its `collect_seq` is set here).
        message: Box<MessageRow>,
        /// One per recipient.
        deliveries: Vec<NewDelivery>,
        /// The wrapped data key: (master key id, wrapped bytes).
        data_key: (String, Vec<u8>),
        /// Idempotency key to record: (partner, key, request hash, response).
        idempotency: Option<(String, String, String, String)>,
    },
    /// First read by a recipient: `queued` → `delivered`.
    MarkDelivered {
        /// The message.
        message_id: String,
        /// The reading recipient.
        recipient: String,
        /// Now, RFC 3339.
        at: String,
    },
    /// A recipient acknowledges.
    Acknowledge {
        /// The message.
        message_id: String,
        /// The acknowledging recipient.
        recipient: String,
        /// Now, RFC 3339.
        at: String,
    },
    /// Suspend or resume a partner.
    SetPartnerState {
        /// The partner.
        partner: String,
        /// Whether it is suspended now.
        suspended: bool,
        /// Now, RFC 3339.
        at: String,
    },
}

/// What a write produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WriteOutput {
    /// Nothing beyond the audit record.
    Done,
    /// The delivery after the change.
    Delivery(DeliveryRow),
}

pub(super) struct Job {
    pub op: WriteOp,
    pub audit: RecordDraft,
    pub reply: oneshot::Sender<Result<(WriteOutput, AuditRecord), StoreError>>,
}

pub(super) async fn run(mut conn: AnyConnection, backend: Backend, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, backend, &mut batch).await;
    }
}

async fn run_batch(conn: &mut AnyConnection, backend: Backend, batch: &mut Vec<Job>) {
    let mut results: Vec<Result<(WriteOutput, AuditRecord), StoreError>> =
        Vec::with_capacity(batch.len());
    let outcome = async {
        begin(conn, backend).await?;
        let mut head = read_head(conn).await?;
        for job in batch.iter() {
            let before = head.seq;
            let r = apply(conn, &mut head, &job.op, job.audit.clone()).await;
            match r {
                Err(StoreError::Unavailable(e)) => return Err(StoreError::Unavailable(e)),
                // A failure after the op's first write (its audit record)
                // would leave half of it in the transaction: abort all.
                Err(e) if head.seq != before => return Err(StoreError::Unavailable(e.to_string())),
                other => results.push(other),
            }
        }
        conn.execute("COMMIT").await?;
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = outcome {
        tracing::error!(error = %e, jobs = batch.len(), "write batch failed; every request in it fails closed");
        let _ = conn.execute("ROLLBACK").await;
        let msg = e.to_string();
        results = batch
            .iter()
            .map(|_| Err(StoreError::Unavailable(msg.clone())))
            .collect();
    }
    for (job, result) in batch.drain(..).zip(results) {
        // The requester may have gone away; its work is committed anyway.
        let _ = job.reply.send(result);
    }
}

async fn begin(conn: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => {
            conn.execute("BEGIN IMMEDIATE").await?;
        }
        Backend::Postgres => {
            conn.execute("BEGIN").await?;
            // One chain across all nodes: batches take turns.
            conn.execute("SELECT pg_advisory_xact_lock(727274)").await?;
        }
    }
    Ok(())
}

async fn apply(
    conn: &mut AnyConnection,
    head: &mut Head,
    op: &WriteOp,
    audit: RecordDraft,
) -> Result<(WriteOutput, AuditRecord), StoreError> {
    match op {
        WriteOp::AuditOnly => Ok((WriteOutput::Done, append(conn, head, audit).await?)),
        WriteOp::Submit {
            message,
            deliveries,
            data_key,
            idempotency,
        } => {
            if let Some((partner, key, _, _)) = idempotency {
                let taken =
                    sqlx::query("SELECT 1 FROM idempotency WHERE partner = $1 AND key = $2")
                        .bind(partner.as_str())
                        .bind(key.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                if taken.is_some() {
                    return Err(StoreError::IdempotencyRace);
                }
            }
            let rec = append(conn, head, audit).await?;
            insert_message(conn, message, rec.seq).await?;
            sqlx::query(
                "INSERT INTO data_keys (owner, master_key_id, wrapped_key) VALUES ($1, $2, $3)",
            )
            .bind(message.id.as_str())
            .bind(data_key.0.as_str())
            .bind(data_key.1.clone())
            .execute(&mut *conn)
            .await?;
            for d in deliveries {
                sqlx::query(
                    "INSERT INTO deliveries (message_id, recipient, seq, status, updated_at) VALUES ($1, $2, $3, 'queued', $4)",
                )
                .bind(message.id.as_str())
                .bind(d.recipient.as_str())
                .bind(to_i64(rec.seq)?)
                .bind(message.accepted_at.as_str())
                .execute(&mut *conn)
                .await?;
            }
            if let Some((partner, key, hash, response)) = idempotency {
                sqlx::query(
                    "INSERT INTO idempotency (partner, key, request_hash, message_id, response, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(partner.as_str())
                .bind(key.as_str())
                .bind(hash.as_str())
                .bind(message.id.as_str())
                .bind(response.as_str())
                .bind(message.accepted_ms)
                .execute(&mut *conn)
                .await?;
            }
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::MarkDelivered {
            message_id,
            recipient,
            at,
        } => {
            let rec = append(conn, head, audit).await?;
            sqlx::query(
                "UPDATE deliveries SET status = 'delivered', updated_at = $3 WHERE message_id = $1 AND recipient = $2 AND status = 'queued'",
            )
            .bind(message_id.as_str())
            .bind(recipient.as_str())
            .bind(at.as_str())
            .execute(&mut *conn)
            .await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::Acknowledge {
            message_id,
            recipient,
            at,
        } => {
            let current = delivery(conn, message_id, recipient)
                .await?
                .ok_or(StoreError::NotFound)?;
            let rec = append(conn, head, audit).await?;
            if current.status == "acknowledged" {
                return Ok((WriteOutput::Delivery(current), rec));
            }
            sqlx::query(
                "UPDATE deliveries SET status = 'acknowledged', updated_at = $3 WHERE message_id = $1 AND recipient = $2",
            )
            .bind(message_id.as_str())
            .bind(recipient.as_str())
            .bind(at.as_str())
            .execute(&mut *conn)
            .await?;
            let updated = DeliveryRow {
                status: "acknowledged".to_owned(),
                updated_at: at.clone(),
                ..current
            };
            Ok((WriteOutput::Delivery(updated), rec))
        }
        WriteOp::SetPartnerState {
            partner,
            suspended,
            at,
        } => {
            let rec = append(conn, head, audit).await?;
            sqlx::query(
                "INSERT INTO partner_state (partner, suspended, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (partner) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at",
            )
            .bind(partner.as_str())
            .bind(i64::from(*suspended))
            .bind(at.as_str())
            .execute(&mut *conn)
            .await?;
            Ok((WriteOutput::Done, rec))
        }
    }
}

async fn delivery(
    conn: &mut AnyConnection,
    message_id: &str,
    recipient: &str,
) -> Result<Option<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as::<_, DeliveryRow>(
        "SELECT message_id, recipient, seq, status, updated_at FROM deliveries WHERE message_id = $1 AND recipient = $2",
    )
    .bind(message_id.to_owned())
    .bind(recipient.to_owned())
    .fetch_optional(&mut *conn)
    .await?)
}

async fn insert_message(
    conn: &mut AnyConnection,
    m: &MessageRow,
    collect_seq: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO messages (id, sender, originator, forwarded_from, officer, classification, label, evaluation, \
         purpose, personal_data, case_ref, in_reply_to, content_type, retention_days, attachments, accepted_at, \
         accepted_ms, retain_until_ms, review_on, retention_basis, held, erased_at_ms, content, collect_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
    )
    .bind(m.id.clone())
    .bind(m.sender.clone())
    .bind(m.originator.clone())
    .bind(m.forwarded_from.clone())
    .bind(m.officer.clone())
    .bind(m.classification)
    .bind(m.label.clone())
    .bind(m.evaluation.clone())
    .bind(m.purpose.clone())
    .bind(m.personal_data.clone())
    .bind(m.case_ref.clone())
    .bind(m.in_reply_to.clone())
    .bind(m.content_type.clone())
    .bind(m.retention_days)
    .bind(m.attachments.clone())
    .bind(m.accepted_at.clone())
    .bind(m.accepted_ms)
    .bind(m.retain_until_ms)
    .bind(m.review_on.clone())
    .bind(m.retention_basis.clone())
    .bind(m.held)
    .bind(m.erased_at_ms)
    .bind(m.content.clone())
    .bind(to_i64(collect_seq)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("sequence number {n} out of range")))
}
