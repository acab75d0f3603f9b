//! Persistence: messages, deliveries, keys, idempotency and the audit log.
//!
//! One `Store` serves every backend through sqlx's `Any` driver with SQL
//! both SQLite and PostgreSQL understand (`$N` parameters, TEXT/INTEGER/BLOB,
//! times as RFC 3339 text and unix milliseconds), so handlers never see which
//! database is behind it. Backend differences (transaction start, the chain
//! lock, migrations) are confined to [`Backend`].
//!
//! All writes go through one writer task (`writer`) that batches concurrent
//! requests into one transaction (group commit) and extends the audit hash
//! chain in commit order; a `201` is sent only after that transaction is
//! durable. Reads use a pool of connections and never block the writer
//! (SQLite in WAL mode). On SQLite the writer owns a rusqlite connection
//! and runs on a thread of its own, so a batch's statements need no thread
//! hand-off each (`write_conn`); migrations and reads stay on sqlx.

mod audit_rows;
mod backend;
mod bulk_read;
mod claims;
mod convert;
mod echo_rows;
mod error;
pub(crate) mod events;
mod expected;
mod family;
mod file_modes;
pub(crate) mod json_columns;
mod merkle_rows;
mod new_messages;
pub mod notices;
pub mod outbox;
mod pending_receipts;
mod proofs;
mod reads;
mod relay_reads;
mod rows;
pub mod test_db;
mod vocab;
mod write_conn;
mod writer;
pub mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

pub use audit_rows::AuditFilter;
pub use backend::Backend;
use backend::{normalise_url, sqlite_file};
pub use bulk_read::{Block, BulkReader};
pub use error::StoreError;
pub use expected::Expected;
pub use merkle_rows::CheckpointPolicy;
pub use notices::{NoticeFanout, ReceiptSigner};
pub use outbox::{OutboxEntry, OutboxRow, PeerStateRow, QueueStats, ReceiptRow};
pub use proofs::StoredCheckpoint;
pub use relay_reads::RelaySource;
pub use rows::{
    AttachmentRow, DataKeyRow, DeliveryRow, DueRow, IdempotencyKey, IdempotencyRow, InboxRow,
    MessageRow, NewDelivery, PartnerStateRow, Permission, SignatureRow,
};
pub use vocab::{DeliveryStatus, OutboxKind, PermissionScope, SignatureRole};
pub use writes::{WriteOp, WriteOutput};

use crate::audit::{AuditRecord, RecordDraft};

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Name of this node, written into every audit record it appends.
    pub node: Option<String>,
    /// Size of the read pool.
    pub read_connections: u32,
    /// Checkpoint signing; the default signs nothing.
    pub checkpoints: CheckpointPolicy,
}

impl StoreOptions {
    /// Options for a command-line tool working on a gateway's database: a
    /// small pool, no checkpoint signing (the gateway signs what they
    /// append at its next batch).
    pub fn for_tool(config: &crate::config::Config) -> Self {
        Self {
            url: config.database.url.clone(),
            node: config.tool_node_name(),
            read_connections: 2,
            checkpoints: CheckpointPolicy::default(),
        }
    }
}

/// The store handle shared by all request handlers.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    writer: mpsc::Sender<writer::Request>,
    backend: Backend,
    /// Opened by [`Store::open_durable_echo`]: may take echo rows.
    echo: bool,
    node: Option<String>,
    url: String,
    origin: String,
    /// Latest erasure time (unix ms) whose dead rows were purged.
    purged_through: Arc<AtomicI64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database, runs migrations and starts
    /// the writer task.
    pub async fn open(opts: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(&opts.url)?;
        if backend == Backend::Sqlite
            && let Some(file) = sqlite_file(&url)
        {
            file_modes::prepare(&file)?;
        }
        let connect_opts = AnyConnectOptions::from_str(&url)?.disable_statement_logging();

        let mut writer_conn = connect_opts.connect().await?;
        backend.prepare_connection(&mut writer_conn, true).await?;
        backend.migrate(&mut writer_conn).await?;

        let pool = AnyPoolOptions::new()
            .max_connections(opts.read_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // A connection to a local SQLite file cannot drop the way a
            // network one can; pinging it before each use was a round trip
            // to its thread per query (`perf`, `brdo bench`).
            .test_before_acquire(backend != Backend::Sqlite)
            .after_connect(move |conn, _| {
                Box::pin(async move { backend.prepare_connection(conn, false).await })
            })
            .connect_with(connect_opts)
            .await?;

        // Set while SQLite's log is long (see `checkpoint_once`).
        let log_large = Arc::new(AtomicBool::new(false));
        if backend == Backend::Sqlite {
            tokio::spawn(checkpoint_wal(pool.clone(), log_large.clone()));
        }
        let (tx, rx) = mpsc::channel(4096);
        // This store's token in what it announces to other nodes.
        let origin = uuid::Uuid::now_v7().to_string();
        match (backend, sqlite_file(&url)) {
            (Backend::Sqlite, Some(path)) => {
                // The migrations ran on sqlx's connection; writes go through
                // rusqlite on a thread of its own (see `write_conn`).
                writer_conn.close().await?;
                let conn = write_conn::WriteConn::open_sqlite(&path)?;
                spawn_sqlite_writer(writer::run(
                    conn,
                    backend,
                    origin.clone(),
                    opts.checkpoints.clone(),
                    rx,
                    log_large,
                ))?;
            }
            _ => {
                tokio::spawn(writer::run(
                    write_conn::WriteConn::Any(writer_conn),
                    backend,
                    origin.clone(),
                    opts.checkpoints.clone(),
                    rx,
                    log_large,
                ));
            }
        }
        Ok(Self {
            pool,
            writer: tx,
            backend,
            echo: false,
            node: opts.node.clone(),
            url,
            origin,
            purged_through: Arc::new(AtomicI64::new(i64::MIN)),
        })
    }

    /// Starts listening for what other nodes commit (PostgreSQL only; a
    /// SQLite store has no other nodes and returns `None`); what this
    /// store announced itself is skipped. The task runs until aborted.
    pub(crate) fn listen_cluster(
        &self,
        handle: impl Fn(events::ClusterEvent) + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(tokio::spawn(events::listen(
                self.url.clone(),
                self.origin.clone(),
                handle,
            ))),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The read pool, for the query modules.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Performs `op` and appends `audit` in one durable transaction; the
    /// record is appended only if `op` succeeds. Returns the op's output and
    /// the appended record.
    pub async fn write(
        &self,
        op: WriteOp,
        mut audit: RecordDraft,
    ) -> Result<(WriteOutput, AuditRecord), StoreError> {
        if audit.node.is_none() {
            audit.node.clone_from(&self.node);
        }
        self.ask(|reply| writer::Request::Write(writer::Job { op, audit, reply }))
            .await
    }

    /// Sends the writer the request `make` builds around its answer's
    /// channel and waits for that answer (after the request's batch has
    /// committed or failed).
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writer::Request,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Unavailable("the writer task has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer task dropped the request".into()))?
    }

    /// Opens a store on a new SQLite file at `path` for the benchmark's
    /// durable echo (`brdo bench --baseline durable`): the gateway's schema,
    /// writer thread, pragmas and WAL checkpoints, plus the echo's table
    /// (see `echo_rows`). Refuses a file that already exists, so the
    /// table, whose rows are not audited, is never added to a gateway's
    /// database.
    pub async fn open_durable_echo(path: &std::path::Path) -> Result<Self, StoreError> {
        if path.exists() {
            return Err(StoreError::Unavailable(format!(
                "{} exists; the durable echo makes a database of its own",
                path.display()
            )));
        }
        let mut store = Self::open(&StoreOptions {
            url: format!("sqlite://{}", path.display()),
            node: None,
            read_connections: 2,
            checkpoints: CheckpointPolicy::default(),
        })
        .await?;
        store.pool.execute(echo_rows::CREATE).await?;
        store.echo = true;
        Ok(store)
    }

    /// Appends `body` as one row of the durable echo's table through the
    /// writer, answering once its batch is durable. No audit record: only
    /// a store from [`Store::open_durable_echo`] takes it; any other is
    /// refused here, before the writer sees it.
    pub async fn append_echo_row(&self, body: Vec<u8>) -> Result<(), StoreError> {
        if !self.echo {
            return Err(StoreError::Unavailable(
                "echo rows go only to the benchmark's durable echo database".into(),
            ));
        }
        self.ask(|reply| writer::Request::EchoRow(writer::EchoRow { body, reply }))
            .await
    }

    /// Claims the rows of `ids` until `until_ms`, each unless another
    /// node holds a claim on it that has not run out; returns the ids this
    /// caller now holds.
    ///
    /// Several rows are claimed in one statement, which returns the ids it
    /// claimed, made by the writer in its next batch (`claims`): on a
    /// pooled connection it waited for the writer's lock between group
    /// commits, and a claim per row starved the relay while partners were
    /// submitting.
    pub async fn claim_outbox(
        &self,
        ids: &[String],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.ask(|reply| {
            writer::Request::Claim(writer::Claim {
                ids: ids.to_vec(),
                now_ms,
                until_ms,
                reply,
            })
        })
        .await
    }

    /// Appends an audit record on its own (read-only requests, failures).
    pub(crate) async fn append_audit(&self, audit: RecordDraft) -> Result<AuditRecord, StoreError> {
        self.write(WriteOp::AuditOnly, audit)
            .await
            .map(|(_, rec)| rec)
    }

    /// Whether the store and the audit log can be written now: the writer
    /// task is alive and the database grants a write lock (SQLite
    /// `BEGIN IMMEDIATE`, PostgreSQL not read-only). Writes nothing.
    pub(crate) async fn check_writable(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::Unavailable(
                "the writer task has stopped".into(),
            ));
        }
        // The probe may be cancelled at any await (a client that hangs up,
        // the readiness timeout); a connection left between BEGIN and
        // ROLLBACK would return to the pool holding the write lock, so the
        // guard closes it instead unless the check ran to its end.
        let mut probe = ProbeConn(Some(self.pool.acquire().await?));
        let conn: &mut AnyConnection = probe.conn()?;
        match self.backend {
            Backend::Sqlite => {
                conn.execute("BEGIN IMMEDIATE").await?;
                conn.execute("ROLLBACK").await?;
            }
            Backend::Postgres => {
                let row = sqlx::query("SELECT current_setting('transaction_read_only')")
                    .fetch_one(&mut *conn)
                    .await?;
                let ro: String = sqlx::Row::try_get(&row, 0)?;
                if ro == "on" {
                    return Err(StoreError::Unavailable("the database is read-only".into()));
                }
                // The lock an INSERT into the audit log takes: refused
                // while anyone holds the table exclusively.
                conn.execute("BEGIN").await?;
                let locked = async {
                    conn.execute("SET LOCAL lock_timeout = '1s'").await?;
                    conn.execute("LOCK TABLE audit_log IN ROW EXCLUSIVE MODE")
                        .await
                };
                let locked = locked.await;
                conn.execute("ROLLBACK").await?;
                locked?;
            }
        }
        probe.finish();
        Ok(())
    }

    /// Takes this process's hold on the master key in the database, beside
    /// the lock file (`crypto::KeyLock`), for nodes on other hosts: on
    /// PostgreSQL a session advisory lock, shared by gateways and
    /// exclusive for `keys rotate`, so a rotation is refused while any node
    /// runs and a node is refused while a rotation runs. `Ok(None)` when
    /// the other side holds it. PostgreSQL releases it when the connection
    /// closes, so a node that dies never blocks a rotation. On SQLite the
    /// lock file is enough (one host): always granted.
    pub async fn key_use_lock(&self, exclusive: bool) -> Result<Option<KeyUseLock>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(Some(KeyUseLock { _conn: None })),
            Backend::Postgres => {
                let mut conn = AnyConnectOptions::from_str(&self.url)?
                    .disable_statement_logging()
                    .connect()
                    .await?;
                let sql = if exclusive {
                    "SELECT pg_try_advisory_lock($1)"
                } else {
                    "SELECT pg_try_advisory_lock_shared($1)"
                };
                let got: bool = sqlx::query_scalar(sql)
                    .bind(KEY_USE_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                if got {
                    Ok(Some(KeyUseLock { _conn: Some(conn) }))
                } else {
                    let _ = conn.close().await;
                    Ok(None)
                }
            }
        }
    }

    /// Takes the right to sweep retention, if no other node holds it.
    ///
    /// On PostgreSQL a session advisory lock on a connection of its own:
    /// `Ok(None)` when another node is sweeping (skip this round). The lock
    /// is released by [`SweepLock::release`], or by PostgreSQL when the
    /// connection closes, so a node that dies mid-sweep never blocks the
    /// others. On SQLite there is one node: always granted.
    pub(crate) async fn try_sweep_lock(&self) -> Result<Option<SweepLock>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(Some(SweepLock { conn: None })),
            Backend::Postgres => {
                let mut conn = AnyConnectOptions::from_str(&self.url)?
                    .disable_statement_logging()
                    .connect()
                    .await?;
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(SWEEP_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                if got {
                    Ok(Some(SweepLock { conn: Some(conn) }))
                } else {
                    let _ = conn.close().await;
                    Ok(None)
                }
            }
        }
    }

    /// Removes what erasures left behind in the database's files, if
    /// anything was erased since the last time (by any node). On
    /// PostgreSQL an `UPDATE` or `DELETE` leaves the old row version (a
    /// wrapped data key, a signature, a digest) in its page as a dead
    /// tuple; a plain `VACUUM` frees the space without overwriting it, so
    /// the tables that hold such values are rewritten (`VACUUM FULL`, a
    /// short exclusive lock on each; they hold small rows only). On SQLite
    /// the writer zeroes freed cells (`secure_delete`) and empties the log
    /// after each erasure; nothing is left to do. Returns whether it
    /// rewrote anything.
    pub async fn purge_erased(&self) -> Result<bool, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(false);
        }
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(t) FROM (SELECT MAX(erased_at_ms) AS t FROM messages \
             UNION ALL SELECT MAX(erased_at_ms) AS t FROM attachments) e",
        )
        .fetch_one(&self.pool)
        .await?;
        let Some(latest) = latest else {
            return Ok(false);
        };
        let since = self.purged_through.load(Ordering::Acquire);
        if latest <= since {
            return Ok(false);
        }
        // A rewrite keeps row versions that a transaction running now (in
        // any database of the server) may still see; erasures committed
        // after such a transaction began are rewritten again next time.
        let pending: i64 = sqlx::query_scalar(PENDING_SQL)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        self.pool.execute(PURGE_SQL).await?;
        if pending == 0 {
            self.purged_through.fetch_max(latest, Ordering::AcqRel);
        }
        Ok(true)
    }

    /// Closes the read pool; the writer stops when the last handle is gone.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The tables whose rows carry what an erasure removes (data keys,
/// signatures, attachment and request digests), rewritten without their
/// dead row versions.
const PURGE_SQL: &str = "VACUUM FULL data_keys, message_signatures, attachments, idempotency";

/// Erased rows (after `$1`) whose erasing transaction is not older than
/// every transaction running now: `age()` is counted back from the next
/// transaction id, so an older transaction id has a greater age.
const PENDING_SQL: &str = "SELECT COUNT(*) FROM ( \
     SELECT xmin AS x FROM messages WHERE erased_at_ms > $1 \
     UNION ALL SELECT xmin AS x FROM attachments WHERE erased_at_ms > $1) e \
     WHERE age(e.x) <= age(((pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296)::text)::xid)";

/// WAL size beyond which the checkpoint task restarts the log.
const WAL_RESTART_BYTES: u64 = 64 << 20;

/// Copies SQLite's write-ahead log into the database file twice a second,
/// off the writer's path: a PASSIVE checkpoint never waits for the writer
/// or readers, so commits keep their fsync of the WAL only. Ends when the
/// pool is closed.
async fn checkpoint_wal(pool: AnyPool, log_large: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = checkpoint_once(&pool, WAL_RESTART_BYTES, &log_large).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
}

/// One round of [`checkpoint_wal`]: a passive checkpoint, then whether
/// the log holds more than `restart_at` bytes of frames since it last
/// started afresh, which it also sets in `log_large` and returns.
///
/// A passive checkpoint never catches up with a writer that commits all
/// the time, and SQLite starts the log afresh only at a write that begins
/// after a checkpoint that did: under steady load the log grew by 90 MB/s,
/// without end. A long log makes the writer catch the checkpoint up itself
/// between two batches (`writer::catch_up_log`): it copies the little
/// written since this round's passive one, and its next transaction writes
/// the log from its start. The file stays near `restart_at`, and its pages
/// stay in the cache instead of being allocated anew.
///
/// This round used to run a RESTART checkpoint from the read pool instead,
/// once the *file* was larger than `restart_at`. Two things made that the
/// p99.9 stall (BENCHMARKS.md, "Performance round 2"): SQLite writes a
/// restarted log over the old file without shortening it, so every round
/// after the first ran one; and a RESTART from another connection first
/// polls for the writer's lock with the busy handler's sleeps, then holds
/// the writer off for its copy, the database file's sync and the wait for
/// readers: 40 to 130 ms per round under load.
async fn checkpoint_once(
    pool: &AnyPool,
    restart_at: u64,
    log_large: &AtomicBool,
) -> Result<bool, sqlx::Error> {
    // (busy, frames in the log, frames copied); -1 when not in WAL mode.
    let (_, log_frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(pool)
        .await?;
    // A frame is a 24-byte header and a page.
    let log_bytes = u64::try_from(log_frames.max(0))
        .unwrap_or(0)
        .saturating_mul(u64::try_from(page_size.max(0)).unwrap_or(0) + 24);
    let large = log_bytes > restart_at;
    log_large.store(large, Ordering::Relaxed);
    Ok(large)
}

/// Advisory lock key of the retention sweeper (the audit chain's writer
/// lock is 727274).
const SWEEP_LOCK_KEY: i64 = 727_275;

/// Advisory lock key of master-key use (see [`Store::key_use_lock`]).
const KEY_USE_LOCK_KEY: i64 = 727_276;

/// A hold on the master key in the database, released when dropped (see
/// [`Store::key_use_lock`]).
pub struct KeyUseLock {
    _conn: Option<AnyConnection>,
}

impl std::fmt::Debug for KeyUseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyUseLock")
            .field("database", &self._conn.is_some())
            .finish()
    }
}

/// A pooled connection that goes back to the pool only through
/// [`ProbeConn::finish`]; dropped anywhere else (an error, a cancelled
/// future) it is closed, which ends any transaction it was in.
struct ProbeConn(Option<sqlx::pool::PoolConnection<sqlx::Any>>);

impl ProbeConn {
    fn conn(&mut self) -> Result<&mut sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        self.0
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("the probe connection is gone".into()))
    }

    fn finish(mut self) {
        // Dropping the pooled connection returns it to the pool.
        drop(self.0.take());
    }
}

impl Drop for ProbeConn {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

/// The right to sweep retention, held until released or dropped (see
/// [`Store::try_sweep_lock`]).
pub struct SweepLock {
    conn: Option<AnyConnection>,
}

impl std::fmt::Debug for SweepLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepLock")
            .field("database", &self.conn.is_some())
            .finish()
    }
}

impl SweepLock {
    /// Releases the lock now (dropping it releases it when the connection
    /// closes).
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(SWEEP_LOCK_KEY)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// Runs the SQLite writer on a thread of its own with a runtime of its own:
/// its statements run synchronously there, so a batch never waits for
/// another thread (see `write_conn`), and the request handlers' runtime is
/// never blocked by them. The thread ends when the last `Store` handle is
/// dropped (the job channel closes). It logs where the thread that opened
/// the store logs (a process running several gateways gives each its own
/// log).
fn spawn_sqlite_writer(
    writer: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot start the writer's runtime: {e}")))?;
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    std::thread::Builder::new()
        .name("brdo-writer".into())
        .spawn(move || tracing::dispatcher::with_default(&dispatch, || runtime.block_on(writer)))
        .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod tests;
