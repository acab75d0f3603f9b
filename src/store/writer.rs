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
//! every job in it fails closed. What each op does, with its SQL, lives in
//! `writes`; this module only batches, dispatches and commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::audit_rows::{Head, read_head, write_pending};
use super::backend::Backend;
use super::error::StoreError;
use super::events::{CHANNEL, ClusterEvent, payloads};
use super::merkle_rows::{CheckpointPolicy, Tree, flush, load_tree, maybe_checkpoint};
use super::new_messages::NewMessages;
use super::pending_receipts::PendingReceipts;
use super::write_conn::WriteConn;
use super::writes::{Tx, WriteOp, WriteOutput};
use crate::audit::{AuditRecord, RecordDraft};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 256;

/// What the writer is asked to do.
// Every gateway request is a `Write`; boxing it to shrink the enum for the
// benchmark's small variant would cost every request an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Request {
    /// A write and its audit record: every request of the gateway.
    Write(Job),
    /// A row of the benchmark's durable echo (see [`super::echo_rows`]),
    /// which has no audit record: it measures what a durable write costs
    /// through this same writer, batching and commit.
    EchoRow(EchoRow),
    /// The relay's claim on the outbox rows it took for a round (no audit
    /// record: an outbox row is this gateway's own bookkeeping). Made here
    /// rather than on a pooled connection, where it waited for the
    /// writer's lock between batches (2 to 355 ms measured), it rides in
    /// the next group commit.
    Claim(Claim),
}

/// A claim on outbox rows: each row of `ids` unclaimed or whose claim ran
/// out by `now_ms` is claimed until `until_ms`; the answer lists those.
pub(super) struct Claim {
    /// The rows wanted.
    pub ids: Vec<String>,
    /// Now, unix ms.
    pub now_ms: i64,
    /// The claim's end, unix ms.
    pub until_ms: i64,
    /// The requester's end.
    pub reply: oneshot::Sender<Result<Vec<String>, StoreError>>,
}

/// One row for the durable echo's table and where to answer once its
/// batch has committed (or failed).
pub(super) struct EchoRow {
    /// The request body, stored as it came.
    pub body: Vec<u8>,
    /// The requester's end.
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

/// One request to the writer: a write, its audit record, and where to
/// send the answer once the batch has committed (or failed).
pub(super) struct Job {
    /// The write.
    pub op: WriteOp,
    /// Its audit record, appended only if the write succeeds.
    pub audit: RecordDraft,
    /// The requester's end.
    pub reply: oneshot::Sender<JobResult>,
}

/// The writer task: takes what is queued, up to [`MAX_BATCH`] jobs, and
/// runs it as one batch; with checkpoint signing, also wakes without
/// requests so time-based checkpoints are made. Ends when every `Store`
/// handle is gone.
pub(super) async fn run(
    mut conn: WriteConn,
    backend: Backend,
    origin: String,
    policy: CheckpointPolicy,
    mut rx: mpsc::Receiver<Request>,
    log_large: Arc<AtomicBool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut caught_up = Instant::now();
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
        if backend == Backend::Sqlite
            && log_large.load(Ordering::Relaxed)
            && caught_up.elapsed() >= CATCH_UP_EVERY
        {
            caught_up = Instant::now();
            if catch_up_log(&mut conn).await {
                // Its next transaction starts the log afresh.
                log_large.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// Least time between two of the writer's own checkpoints while the log
/// is long: a reader on an older snapshot can keep one from catching up,
/// and each costs a sync of the database file.
const CATCH_UP_EVERY: Duration = Duration::from_millis(50);

/// Copies the rest of a long log into the database file between two
/// batches (see `super::checkpoint_once`). No other transaction writes
/// meanwhile, so unless a reader is on an older snapshot the copy is
/// complete, and SQLite starts the log afresh at the next batch's
/// `BEGIN`. Passive: it never waits for a reader. Only what the
/// background checkpoint has not copied yet is left to copy, so the batch
/// after it waits for that and one sync of the database file. Returns
/// whether it copied the whole log; a failure or a partial copy leaves the
/// log to the next try; nothing is lost.
async fn catch_up_log(conn: &mut WriteConn) -> bool {
    // (busy, frames in the log, frames copied)
    match conn.fetch_all("PRAGMA wal_checkpoint(PASSIVE)", &[]).await {
        Ok(rows) => rows.first().is_some_and(|r| {
            matches!(
                (r.int(0), r.int(1), r.int(2)),
                (Ok(0), Ok(log), Ok(copied)) if log == copied
            )
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the writer's checkpoint of a long log failed; retried");
            false
        }
    }
}

/// A job's answer.
type JobResult = Result<(WriteOutput, AuditRecord), StoreError>;

/// A request's answer, of its kind.
// As for `Request`: the large variant is the gateway's every answer.
#[allow(clippy::large_enum_variant)]
enum Answer {
    /// A write's.
    Write(JobResult),
    /// An echo row's.
    EchoRow(Result<(), StoreError>),
    /// A claim's: the rows claimed.
    Claim(Result<Vec<String>, StoreError>),
}

impl Answer {
    /// The answer of the kind `request` expects when its batch failed.
    fn failed(request: &Request, msg: &str) -> Self {
        let e = StoreError::Unavailable(msg.to_owned());
        match request {
            Request::Write(_) => Answer::Write(Err(e)),
            Request::EchoRow(_) => Answer::EchoRow(Err(e)),
            Request::Claim(_) => Answer::Claim(Err(e)),
        }
    }
}

/// The batch's writes with their answers (echo rows left out).
fn writes<'b>(
    batch: &'b [Request],
    results: &'b [Answer],
) -> impl Iterator<Item = (&'b Job, &'b JobResult)> {
    batch.iter().zip(results).filter_map(|pair| match pair {
        (Request::Write(job), Answer::Write(r)) => Some((job, r)),
        _ => None,
    })
}

/// Runs one batch in one transaction and answers its jobs: each its own
/// result after the commit, or all the batch's failure.
async fn run_batch(
    conn: &mut WriteConn,
    backend: Backend,
    origin: &str,
    policy: &CheckpointPolicy,
    batch: &mut Vec<Request>,
) {
    let mut results: Vec<Answer> = Vec::with_capacity(batch.len());
    let outcome = async {
        begin(conn, backend).await?;
        let mut head = read_head(conn).await?;
        let mut tree = load_tree(conn, head.seq).await?;
        run_jobs(conn, &mut head, &mut tree, batch, &mut results).await?;
        write_pending(conn, &mut head).await?;
        flush(conn, &mut tree).await?;
        maybe_checkpoint(conn, &tree, policy).await?;
        if backend == Backend::Postgres {
            announce(conn, origin, batch, &results).await?;
        }
        conn.run("COMMIT").await?;
        if backend == Backend::Sqlite && erased_any(batch, &results) {
            truncate_wal(conn).await;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = outcome {
        tracing::error!(error = %e, jobs = batch.len(), "write batch failed; every request in it fails closed");
        let _ = conn.run("ROLLBACK").await;
        let msg = e.to_string();
        results = batch.iter().map(|r| Answer::failed(r, &msg)).collect();
    }
    for (request, answer) in batch.drain(..).zip(results) {
        // The requester may have gone away; its work is committed anyway.
        match (request, answer) {
            (Request::Write(job), Answer::Write(r)) => {
                let _ = job.reply.send(r);
            }
            (Request::EchoRow(row), Answer::EchoRow(r)) => {
                let _ = row.reply.send(r);
            }
            (Request::Claim(claim), Answer::Claim(r)) => {
                let _ = claim.reply.send(r);
            }
            // Each answer is made for its request's kind; dropping the
            // reply answers "the writer dropped the request".
            _ => {}
        }
    }
}

/// Runs each job of the batch (its check, then its write) in order,
/// pushing its result; ends with the batch's submits written. An error
/// returned aborts the whole batch.
async fn run_jobs(
    conn: &mut WriteConn,
    head: &mut Head,
    tree: &mut Tree,
    batch: &[Request],
    results: &mut Vec<Answer>,
) -> Result<(), StoreError> {
    let mut new_messages = NewMessages::default();
    let mut receipts = PendingReceipts::default();
    for request in batch {
        let job = match request {
            Request::Write(job) => job,
            Request::EchoRow(row) => {
                // Like a write's, a database error aborts the batch.
                super::echo_rows::insert(conn, &row.body).await?;
                results.push(Answer::EchoRow(Ok(())));
                continue;
            }
            Request::Claim(claim) => {
                // Rows are claimable only once committed (the relay read
                // them as due), so no held submit needs writing first.
                let claimed =
                    super::claims::claim_in(conn, &claim.ids, claim.now_ms, claim.until_ms).await?;
                results.push(Answer::Claim(Ok(claimed)));
                continue;
            }
        };
        let (op, expected) = job.op.unwrapped();
        // A check reads only rows committed before its request was
        // decided, and what earlier writes of this batch changed in
        // place; it needs no flush of its own.
        if !matches!(op, WriteOp::Submit(_) | WriteOp::AuditOnly) {
            // Other writes may read or change what the submits wrote.
            new_messages.write(conn).await?;
        }
        if !matches!(
            op,
            WriteOp::Submit(_) | WriteOp::AuditOnly | WriteOp::Receive(_)
        ) {
            // ... or the receipts the receives made.
            signed_receipts(conn, &mut receipts, results).await?;
        }
        let before = head.seq;
        let checked = match expected {
            Some(x) => x.check(conn).await,
            None => Ok(()),
        };
        let r = match checked {
            Ok(()) => {
                let mut tx = Tx {
                    conn: &mut *conn,
                    head: &mut *head,
                    tree: &mut *tree,
                    new_messages: &mut new_messages,
                    receipts: &mut receipts,
                    job: results.len(),
                };
                op.apply(&mut tx, job.audit.clone()).await
            }
            Err(e) => Err(e),
        };
        match r {
            Err(StoreError::Unavailable(e)) => return Err(StoreError::Unavailable(e)),
            // A failure after the op's first write (its audit record)
            // would leave half of it in the transaction: abort all.
            Err(e) if head.seq != before => return Err(StoreError::Unavailable(e.to_string())),
            other => results.push(Answer::Write(other)),
        }
    }
    new_messages.write(conn).await?;
    signed_receipts(conn, &mut receipts, results).await
}

/// Signs and stores the receipts waiting in `receipts`, each into its
/// job's answer.
async fn signed_receipts(
    conn: &mut WriteConn,
    receipts: &mut PendingReceipts,
    results: &mut [Answer],
) -> Result<(), StoreError> {
    for (job, row) in receipts.write(conn).await? {
        if let Some(Answer::Write(Ok((WriteOutput::Receipts(rows), _)))) = results.get_mut(job) {
            rows.push(row);
        } else {
            // A receipt made for a job whose answer is not a receive's.
            return Err(StoreError::Unavailable(
                "a receipt without its receive".into(),
            ));
        }
    }
    Ok(())
}

/// Whether a committed job of the batch erased anything.
fn erased_any(batch: &[Request], results: &[Answer]) -> bool {
    writes(batch, results).any(|(_, r)| {
        matches!(
            r,
            Ok((
                WriteOutput::Erased { .. } | WriteOutput::Notice { erased: true, .. },
                _
            ))
        )
    })
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
    batch: &[Request],
    results: &[Answer],
) -> Result<(), StoreError> {
    let mut events = Vec::new();
    for (job, r) in writes(batch, results) {
        if r.is_err() {
            continue;
        }
        match job.op.unwrapped().0 {
            WriteOp::Submit(s) => events.extend(
                s.deliveries
                    .iter()
                    .map(|d| ClusterEvent::Inbox(d.recipient.clone())),
            ),
            WriteOp::Receive(r) => events.extend(r.accepted.iter().flat_map(|s| {
                s.deliveries
                    .iter()
                    .map(|d| ClusterEvent::Inbox(d.recipient.clone()))
            })),
            WriteOp::SetPartnerState(s) => {
                events.push(ClusterEvent::PartnerState(s.partner.clone()));
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

/// Starts the batch's transaction, holding the chain's lock.
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
