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

use tokio::sync::{mpsc, oneshot};

use super::audit_rows::{Head, append, read_head, write_pending};
use super::merkle_rows::{CheckpointPolicy, Tree, flush, load_tree, maybe_checkpoint};
use super::write_conn::WriteConn;

use super::events::{CHANNEL, ClusterEvent, payloads};
use super::expected::Expected;
use super::new_messages::{NewMessage, NewMessages};
use super::reads::IN_FAMILY;
use super::rows::{AttachmentRow, DeliveryRow, MessageRow, NewDelivery, SignatureRow};
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
    /// `op`, only if what it was decided on still holds at commit (see
    /// [`Expected`]); otherwise refused with nothing written.
    Checked {
        /// What the decision rested on.
        expected: Expected,
        /// The write.
        op: Box<WriteOp>,
    },
    /// Store an accepted message (or a forward) with its deliveries, data
    /// key and attachment links.
    Submit {
        /// The message (its `collect_seq` is set here).
        message: Box<MessageRow>,
        /// One per recipient.
        deliveries: Vec<NewDelivery>,
        /// The wrapped data key: (master key id, wrapped bytes).
        data_key: (String, Vec<u8>),
        /// Attachments the message carries (already checked).
        attachments: Vec<String>,
        /// Idempotency key to record: (partner, key, request hash, response).
        idempotency: Option<(String, String, String, String)>,
        /// Sender signatures, in order (a forward's originator's first).
        signatures: Vec<SignatureRow>,
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
    /// The originator grants a permission on its information.
    Grant {
        /// The family.
        root_id: String,
        /// To whom.
        partner: String,
        /// `forward` or `judicial_use`.
        scope: String,
        /// Now, RFC 3339.
        at: String,
        /// The granting officer.
        officer: String,
    },
    /// A recipient records judicial use.
    JudicialUse {
        /// The message.
        message_id: String,
        /// The recipient.
        partner: String,
        /// Now, RFC 3339.
        at: String,
        /// The proceedings' reference.
        reference: Option<String>,
    },
    /// Set or lift a legal hold on a whole family.
    SetHold {
        /// The family.
        root_id: String,
        /// Set (true) or lift.
        held: bool,
        /// Why, when set.
        reason: Option<String>,
    },
    /// A `keep` review decision: new dates for one message.
    ReviewKeep {
        /// The message.
        message_id: String,
        /// New end of retention, unix ms.
        retain_until_ms: i64,
        /// New review date.
        review_on: String,
    },
    /// Raise the label of a whole family.
    RaiseLabel {
        /// The family.
        root_id: String,
        /// New label JSON.
        label: String,
        /// New classification rank.
        classification: i64,
    },
    /// Erase messages' content, all or none (refused if any is held;
    /// already erased ones are skipped).
    Erase {
        /// The messages (one, or a forwarding family).
        message_ids: Vec<String>,
        /// Erase the family with this root as it is at commit instead: a
        /// forward committed before the erasure is erased with it.
        family_of: Option<String>,
        /// Now, unix ms.
        at_ms: i64,
    },
    /// Store an uploaded attachment (its blob is already on disk).
    Upload {
        /// The row.
        attachment: AttachmentRow,
        /// The wrapped data key.
        data_key: (String, Vec<u8>),
    },
    /// Remove an attachment no message references.
    EraseOrphan {
        /// The attachment.
        attachment_id: String,
        /// Now, unix ms.
        at_ms: i64,
    },
    /// Audit retention: reduce records up to `through_seq` to their hashes,
    /// and drop tombstones of messages erased before `tombstones_before_ms`.
    ReduceAudit {
        /// Last record to reduce (records before it are reduced already or
        /// reduced now: reduction is always a prefix).
        through_seq: u64,
        /// Erased messages older than this lose their tombstones.
        tombstones_before_ms: i64,
    },
    /// Re-wrap data keys under a new master key.
    Rewrap {
        /// (owner, new master key id, new wrapped key).
        keys: Vec<(String, String, Vec<u8>)>,
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
    /// Messages or an orphan upload were erased.
    Erased {
        /// The messages the erasure covered (as at commit; those erased
        /// before included).
        messages: Vec<String>,
        /// Attachments that lost their last reference; their blobs can be
        /// deleted.
        attachments: Vec<String>,
    },
}

pub(super) struct Job {
    pub op: WriteOp,
    pub audit: RecordDraft,
    pub reply: oneshot::Sender<Result<(WriteOutput, AuditRecord), StoreError>>,
}

pub(super) async fn run(
    mut conn: WriteConn,
    backend: Backend,
    origin: String,
    policy: CheckpointPolicy,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Time-based checkpoints need a batch even when no request comes.
    let tick = policy
        .interval
        .min(std::time::Duration::from_secs(5))
        .max(std::time::Duration::from_millis(100));
    loop {
        let first = if policy.signer.is_some() {
            match tokio::time::timeout(tick, rx.recv()).await {
                Ok(Some(job)) => Some(job),
                Ok(None) => break,
                Err(_) => None,
            }
        } else {
            match rx.recv().await {
                Some(job) => Some(job),
                None => break,
            }
        };
        batch.extend(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, backend, &origin, &policy, &mut batch).await;
    }
}

async fn run_batch(
    conn: &mut WriteConn,
    backend: Backend,
    origin: &str,
    policy: &CheckpointPolicy,
    batch: &mut Vec<Job>,
) {
    let mut results: Vec<Result<(WriteOutput, AuditRecord), StoreError>> =
        Vec::with_capacity(batch.len());
    let outcome = async {
        begin(conn, backend).await?;
        let mut head = read_head(conn).await?;
        let mut tree = load_tree(conn, head.seq).await?;
        let mut new_messages = NewMessages::default();
        for job in batch.iter() {
            let (op, expected) = match &job.op {
                WriteOp::Checked { expected, op } => (&**op, Some(expected)),
                op => (op, None),
            };
            // A check reads only rows committed before its request was
            // decided, and what earlier writes of this batch changed in
            // place; it needs no flush of its own.
            if !matches!(op, WriteOp::Submit { .. } | WriteOp::AuditOnly) {
                // Other writes may read or change what the submits wrote.
                new_messages.write(conn).await?;
            }
            let before = head.seq;
            let checked = match expected {
                Some(x) => x.check(conn).await,
                None => Ok(()),
            };
            let r = match checked {
                Ok(()) => {
                    apply(
                        conn,
                        &mut head,
                        &mut tree,
                        &mut new_messages,
                        op,
                        job.audit.clone(),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match r {
                Err(StoreError::Unavailable(e)) => return Err(StoreError::Unavailable(e)),
                // A failure after the op's first write (its audit record)
                // would leave half of it in the transaction: abort all.
                Err(e) if head.seq != before => return Err(StoreError::Unavailable(e.to_string())),
                other => results.push(other),
            }
        }
        new_messages.write(conn).await?;
        write_pending(conn, &mut head).await?;
        flush(conn, &mut tree).await?;
        maybe_checkpoint(conn, &tree, policy).await?;
        if backend == Backend::Postgres {
            announce(conn, origin, batch, &results).await?;
        }
        conn.run("COMMIT").await?;
        if backend == Backend::Sqlite && erased_any(&results) {
            truncate_wal(conn).await;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = outcome {
        tracing::error!(error = %e, jobs = batch.len(), "write batch failed; every request in it fails closed");
        let _ = conn.run("ROLLBACK").await;
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

/// Whether a committed job of the batch erased anything.
fn erased_any(results: &[Result<(WriteOutput, AuditRecord), StoreError>]) -> bool {
    results
        .iter()
        .any(|r| matches!(r, Ok((WriteOutput::Erased { .. }, _))))
}

/// Copies the log into the database file and empties it, so that no
/// frame still holds the pages as they were before an erasure (a wrapped
/// data key, a signature) once the erasure is answered. `secure_delete`
/// has already zeroed the erased cells in the new pages. A failure (a
/// reader on an old snapshot past the busy timeout) leaves the frames to
/// the next erasure's or the background task's checkpoint; the erasure
/// itself is committed either way.
async fn truncate_wal(conn: &mut WriteConn) {
    match conn.fetch_all("PRAGMA wal_checkpoint(TRUNCATE)", &[]).await {
        Ok(rows) if rows.first().and_then(|r| r.int(0).ok()) == Some(0) => {}
        Ok(_) => {
            tracing::warn!("the log could not be emptied after an erasure; retried at the next")
        }
        Err(e) => tracing::warn!(error = %e, "the log could not be emptied after an erasure"),
    }
}

/// Sends, inside the batch's transaction, what the other nodes must act
/// on; PostgreSQL delivers it on commit (see `events`).
async fn announce(
    conn: &mut WriteConn,
    origin: &str,
    batch: &[Job],
    results: &[Result<(WriteOutput, AuditRecord), StoreError>],
) -> Result<(), StoreError> {
    let mut events = Vec::new();
    for (job, r) in batch.iter().zip(results) {
        if r.is_err() {
            continue;
        }
        let op = match &job.op {
            WriteOp::Checked { op, .. } => &**op,
            op => op,
        };
        match op {
            WriteOp::Submit { deliveries, .. } => events.extend(
                deliveries
                    .iter()
                    .map(|d| ClusterEvent::Inbox(d.recipient.clone())),
            ),
            WriteOp::SetPartnerState { partner, .. } => {
                events.push(ClusterEvent::PartnerState(partner.clone()));
            }
            _ => {}
        }
    }
    for payload in payloads(origin, &events) {
        conn.execute(
            "SELECT pg_notify($1, $2)",
            &[CHANNEL.into(), payload.as_str().into()],
        )
        .await?;
    }
    Ok(())
}

async fn begin(conn: &mut WriteConn, backend: Backend) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => {
            conn.run("BEGIN IMMEDIATE").await?;
        }
        Backend::Postgres => {
            conn.run("BEGIN").await?;
            // One chain across all nodes: batches take turns.
            conn.run("SELECT pg_advisory_xact_lock(727274)").await?;
        }
    }
    Ok(())
}

async fn apply<'a>(
    conn: &mut WriteConn,
    head: &mut Head,
    tree: &mut Tree,
    new_messages: &mut NewMessages<'a>,
    op: &'a WriteOp,
    audit: RecordDraft,
) -> Result<(WriteOutput, AuditRecord), StoreError> {
    match op {
        WriteOp::AuditOnly => Ok((WriteOutput::Done, append(conn, head, tree, audit).await?)),
        // Unwrapped by `run_batch`; a nested one is never built.
        WriteOp::Checked { .. } => Err(StoreError::Corrupt("nested checked write".into())),
        WriteOp::Submit {
            message,
            deliveries,
            data_key,
            attachments,
            idempotency,
            signatures,
        } => {
            if let Some((partner, key, _, _)) = idempotency {
                let taken = conn
                    .fetch_optional(
                        "SELECT 1 FROM idempotency WHERE partner = $1 AND key = $2",
                        &[partner.as_str().into(), key.as_str().into()],
                    )
                    .await?;
                if taken.is_some() || new_messages.holds_key(partner, key) {
                    return Err(StoreError::IdempotencyRace);
                }
            }
            let rec = append(conn, head, tree, audit).await?;
            new_messages.push(NewMessage {
                message,
                seq: rec.seq,
                deliveries,
                data_key,
                attachments,
                signatures,
                idempotency: idempotency.as_ref(),
            });
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::MarkDelivered {
            message_id,
            recipient,
            at,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            conn.execute("UPDATE deliveries SET status = 'delivered', updated_at = $3 WHERE message_id = $1 AND recipient = $2 AND status = 'queued'", &[message_id.as_str().into(), recipient.as_str().into(), at.as_str().into()]).await?;
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
            let rec = append(conn, head, tree, audit).await?;
            if current.status == "acknowledged" {
                return Ok((WriteOutput::Delivery(current), rec));
            }
            conn.execute("UPDATE deliveries SET status = 'acknowledged', updated_at = $3 WHERE message_id = $1 AND recipient = $2", &[message_id.as_str().into(), recipient.as_str().into(), at.as_str().into()]).await?;
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
            let rec = append(conn, head, tree, audit).await?;
            conn.execute("INSERT INTO partner_state (partner, suspended, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (partner) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at", &[partner.as_str().into(), i64::from(*suspended).into(), at.as_str().into()]).await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::Grant {
            root_id,
            partner,
            scope,
            at,
            officer,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            conn.execute("INSERT INTO permissions (root_id, partner, scope, granted_at, officer) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (root_id, partner, scope) DO NOTHING", &[root_id.as_str().into(), partner.as_str().into(), scope.as_str().into(), at.as_str().into(), officer.as_str().into()]).await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::JudicialUse {
            message_id,
            partner,
            at,
            reference,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            conn.execute("INSERT INTO judicial_uses (message_id, partner, recorded_at, reference) VALUES ($1, $2, $3, $4)", &[message_id.as_str().into(), partner.as_str().into(), at.as_str().into(), reference.as_deref().into()]).await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::SetHold {
            root_id,
            held,
            reason,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            conn.execute(
                &format!("UPDATE messages SET held = $2, hold_reason = $3 WHERE {IN_FAMILY}"),
                &[
                    root_id.as_str().into(),
                    i64::from(*held).into(),
                    reason.as_deref().into(),
                ],
            )
            .await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::ReviewKeep {
            message_id,
            retain_until_ms,
            review_on,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            conn.execute("UPDATE messages SET retain_until_ms = $2, review_on = $3 WHERE id = $1 AND erased_at_ms IS NULL", &[message_id.as_str().into(), (*retain_until_ms).into(), review_on.as_str().into()]).await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::RaiseLabel {
            root_id,
            label,
            classification,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            conn.execute(
                &format!("UPDATE messages SET label = $2, classification = $3 WHERE {IN_FAMILY}"),
                &[
                    root_id.as_str().into(),
                    label.as_str().into(),
                    (*classification).into(),
                ],
            )
            .await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::Erase {
            message_ids,
            family_of,
            at_ms,
        } => {
            let mut audit = audit;
            let ids = match family_of {
                Some(root) => {
                    let ids = family_ids(conn, root).await?;
                    if let Some(d) = audit.details.as_mut() {
                        d.insert("message_ids".into(), serde_json::json!(ids));
                    }
                    ids
                }
                None => message_ids.clone(),
            };
            let mut live = Vec::with_capacity(ids.len());
            for id in &ids {
                let Some(row) = conn
                    .fetch_optional(
                        "SELECT held, erased_at_ms FROM messages WHERE id = $1",
                        &[id.as_str().into()],
                    )
                    .await?
                else {
                    continue;
                };
                let held = row.int(0)?;
                let erased = row.opt_int(1)?;
                if erased.is_some() {
                    continue;
                }
                if held != 0 {
                    return Err(StoreError::Held);
                }
                live.push(id.clone());
            }
            if live.is_empty() {
                return Err(StoreError::AlreadyErased);
            }
            let rec = append(conn, head, tree, audit).await?;
            let mut gone = Vec::new();
            for id in &live {
                // The Content-Type goes too: its parameters are the
                // client's text and often name the content (`name="…"`).
                conn.execute(
                    "UPDATE messages SET content = NULL, content_type = '', erased_at_ms = $2 WHERE id = $1",
                    &[id.as_str().into(), (*at_ms).into()],
                )
                .await?;
                conn.execute(
                    "DELETE FROM data_keys WHERE owner = $1",
                    &[id.as_str().into()],
                )
                .await?;
                // A signature states digests of the subject and body: with
                // a guess at a short subject it would confirm it.
                conn.execute(
                    "DELETE FROM message_signatures WHERE message_id = $1",
                    &[id.as_str().into()],
                )
                .await?;
                // The idempotency row's request hash is a digest of the
                // whole request, content included. Without it a replay of
                // the key matches no body: `409`, never a new message.
                conn.execute(
                    "UPDATE idempotency SET request_hash = '' WHERE message_id = $1",
                    &[id.as_str().into()],
                )
                .await?;
                // Attachments no longer carried by any message still holding content.
                let rows = conn.fetch_all("SELECT ma.attachment_id FROM message_attachments ma WHERE ma.message_id = $1 AND NOT EXISTS ( \
                       SELECT 1 FROM message_attachments o JOIN messages m ON m.id = o.message_id \
                       WHERE o.attachment_id = ma.attachment_id AND m.erased_at_ms IS NULL)", &[id.as_str().into()]).await?;
                for r in &rows {
                    let a = r.text(0)?;
                    if !gone.contains(&a) {
                        erase_attachment(conn, &a, *at_ms).await?;
                        gone.push(a);
                    }
                }
            }
            Ok((
                WriteOutput::Erased {
                    messages: ids,
                    attachments: gone,
                },
                rec,
            ))
        }
        WriteOp::Upload {
            attachment,
            data_key,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            conn.execute("INSERT INTO attachments (id, owner, content_type, size, sha256, created_ms, erased_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL)", &[attachment.id.as_str().into(), attachment.owner.as_str().into(), attachment.content_type.as_str().into(), attachment.size.into(), attachment.sha256.as_str().into(), attachment.created_ms.into()]).await?;
            put_data_key(conn, &attachment.id, data_key).await?;
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::EraseOrphan {
            attachment_id,
            at_ms,
        } => {
            let still = conn.fetch_optional("SELECT 1 FROM attachments a WHERE a.id = $1 AND a.erased_at_ms IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM message_attachments ma WHERE ma.attachment_id = a.id)", &[attachment_id.as_str().into()]).await?;
            if still.is_none() {
                return Err(StoreError::NotFound);
            }
            let rec = append(conn, head, tree, audit).await?;
            erase_attachment(conn, attachment_id, *at_ms).await?;
            Ok((
                WriteOutput::Erased {
                    messages: Vec::new(),
                    attachments: vec![attachment_id.clone()],
                },
                rec,
            ))
        }
        WriteOp::ReduceAudit {
            through_seq,
            tombstones_before_ms,
        } => {
            let rec = append(conn, head, tree, audit).await?;
            // The reduction below must see every record of this batch.
            write_pending(conn, head).await?;
            let through = to_i64(*through_seq)?;
            conn.execute("UPDATE audit_log SET reduced = 1, at = NULL, actor_role = NULL, actor_id = NULL, actor_officer = NULL, \
                 actor_cert_serial = NULL, action = NULL, message_id = NULL, counterparts = NULL, outcome = NULL, \
                 code = NULL, justification = NULL, request_id = NULL, node = NULL, details = NULL \
                 WHERE reduced = 0 AND seq <= $1", &[through.into()]).await?;
            conn.execute(
                "DELETE FROM audit_parties WHERE seq <= $1",
                &[through.into()],
            )
            .await?;
            conn.execute(
                "DELETE FROM audit_messages WHERE seq <= $1",
                &[through.into()],
            )
            .await?;
            for table in [
                "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
                "DELETE FROM message_attachments WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
                "DELETE FROM message_signatures WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
                "DELETE FROM judicial_uses WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
                "DELETE FROM idempotency WHERE message_id IN (SELECT id FROM messages WHERE erased_at_ms < $1)",
                "DELETE FROM messages WHERE erased_at_ms < $1",
            ] {
                conn.execute(table, &[(*tombstones_before_ms).into()])
                    .await?;
            }
            Ok((WriteOutput::Done, rec))
        }
        WriteOp::Rewrap { keys } => {
            let rec = append(conn, head, tree, audit).await?;
            for (owner, key_id, wrapped) in keys {
                conn.execute(
                    "UPDATE data_keys SET master_key_id = $2, wrapped_key = $3 WHERE owner = $1",
                    &[
                        owner.as_str().into(),
                        key_id.as_str().into(),
                        wrapped.as_slice().into(),
                    ],
                )
                .await?;
            }
            Ok((WriteOutput::Done, rec))
        }
    }
}

async fn put_data_key(
    conn: &mut WriteConn,
    owner: &str,
    key: &(String, Vec<u8>),
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO data_keys (owner, master_key_id, wrapped_key) VALUES ($1, $2, $3)",
        &[owner.into(), key.0.as_str().into(), key.1.as_slice().into()],
    )
    .await?;
    Ok(())
}

/// The family's messages as they are in this transaction, oldest first.
async fn family_ids(conn: &mut WriteConn, root: &str) -> Result<Vec<String>, StoreError> {
    conn.fetch_all(
        &format!("SELECT id FROM messages WHERE {IN_FAMILY} ORDER BY accepted_ms, id"),
        &[root.into()],
    )
    .await?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Erases an attachment's key, the digest of its content (which would
/// confirm a guessed file) and its Content-Type (whose parameters often
/// carry the file's name), keeping the row as its tombstone.
async fn erase_attachment(conn: &mut WriteConn, id: &str, at_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE attachments SET erased_at_ms = $2, sha256 = '', content_type = '' WHERE id = $1 AND erased_at_ms IS NULL",
        &[id.into(), at_ms.into()],
    )
    .await?;
    conn.execute("DELETE FROM data_keys WHERE owner = $1", &[id.into()])
        .await?;
    Ok(())
}

async fn delivery(
    conn: &mut WriteConn,
    message_id: &str,
    recipient: &str,
) -> Result<Option<DeliveryRow>, StoreError> {
    let row = conn
        .fetch_optional(
            "SELECT message_id, recipient, seq, status, updated_at FROM deliveries WHERE message_id = $1 AND recipient = $2",
            &[message_id.into(), recipient.into()],
        )
        .await?;
    row.map(|r| {
        Ok(DeliveryRow {
            message_id: r.text(0)?,
            recipient: r.text(1)?,
            seq: r.int(2)?,
            status: r.text(3)?,
            updated_at: r.text(4)?,
        })
    })
    .transpose()
}

pub(super) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("sequence number {n} out of range")))
}
