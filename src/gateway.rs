//! Starting and stopping a whole gateway from a [`Config`].
//!
//! `brdo serve`, `brdo demo` and the integration tests all go through
//! [`Gateway::start`], so the tests exercise exactly what operators run:
//! the real TLS accept loop on a real socket, the real store file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api;
use crate::app::{AppParts, AppState, Settings};
use crate::audit::record::{Action, Outcome, RecordDraft};
use crate::blobs::{BlobError, BlobStore};
use crate::config::Config;
use crate::crypto::jose::{CheckpointSigner, JoseError, JwsKey};
use crate::crypto::{KeyLock, KeyLockError, MasterKey, MasterKeyError};
use crate::policy::{Policy, PolicyError};
use crate::store::{CheckpointPolicy, KeyUseLock, Store, StoreError, StoreOptions, WriteOp};
use crate::tls::{ServeOptions, TlsError, TlsMaterial, TlsState};

/// Why the gateway cannot start. `is_config` tells the CLI which exit code
/// to use (2 for configuration, 1 for runtime).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The policy file is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The policy's peers do not fit `[federation]` (SPEC §11).
    #[error("federation: {0}")]
    Federation(String),
    /// Certificates, key or CRL are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The master key is unusable.
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    /// A master key rotation is running.
    #[error(transparent)]
    KeyLock(#[from] KeyLockError),
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit signing key is unusable.
    #[error("audit signing key: {0}")]
    SigningKey(#[from] JoseError),
    /// The envelope (label-binding) signing key is unusable.
    #[error(
        "envelope signing key: {0} (a PKI directory made before label binding has none: `brdo pki envelope-key --dir DIR` creates it)"
    )]
    EnvelopeKey(JoseError),
    /// The inbox cursor key cannot be derived from the audit signing key.
    #[error("audit signing key {path}: {message}")]
    CursorKey {
        /// The key file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The attachment directory cannot be used.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The CRL last recorded in the audit log cannot be read back.
    #[error("CRL in force according to the audit log: {0}")]
    CrlRecord(#[from] crate::tls::crl::RecordedError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl StartError {
    /// Whether this is a configuration problem (exit code 2).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::Policy(_)
                | Self::Tls(_)
                | Self::MasterKey(_)
                | Self::KeyLock(_)
                | Self::Store(StoreError::Exposed(_))
                | Self::SigningKey(_)
                | Self::EnvelopeKey(_)
                | Self::CursorKey { .. }
        )
    }
}

/// The inbox cursor key, derived from the audit signing key: a secret
/// every node of a gateway already holds and that no key rotation
/// replaces, so cursors keep working across nodes and restarts.
fn cursor_key(config: &Config) -> Result<crate::app::cursor::CursorKey, StartError> {
    let path = &config.audit.signing_key;
    let fail = |message: String| StartError::CursorKey {
        path: path.clone(),
        message,
    };
    // The signing key's PEM text: wiped when dropped.
    let secret = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| fail(e.to_string()))?);
    crate::app::cursor::CursorKey::derive(&secret).map_err(|e| fail(e.to_string()))
}

/// A running gateway.
pub struct Gateway {
    /// The address the mTLS API listens on.
    pub addr: SocketAddr,
    /// The plain-HTTP metrics and health address.
    pub metrics_addr: SocketAddr,
    /// Shared state, for in-process inspection (tests, demo).
    pub app: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    refusal_flusher: Option<JoinHandle<()>>,
    /// Held while the gateway runs: `keys rotate` is refused meanwhile.
    _key_locks: (KeyLock, KeyUseLock),
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Refuses to start with a CRL older than (or conflicting with) the one
/// last put in force according to the audit log; the refusal is recorded.
async fn check_recorded_crl(
    store: &Store,
    config: &Config,
    material: &TlsMaterial,
) -> Result<Option<crate::tls::crl::CrlState>, StartError> {
    let Some(recorded) = crate::tls::crl::recorded(store).await? else {
        return Ok(None);
    };
    let Err(refusal) = crate::tls::crl::check_successor(&material.crl_info, &recorded) else {
        return Ok(Some(recorded));
    };
    let mut draft = start_record(
        Action::CrlUpdate,
        crate::tls::crl::refused_details(&material.crl_info, &recorded, "start"),
    );
    draft.outcome = Outcome::Denied;
    draft.code = Some(refusal.code().to_owned());
    store.write(WriteOp::AuditOnly, draft).await?;
    tracing::error!(reason = refusal.code(), error = %refusal, "CRL refused; not starting");
    Err(StartError::Tls(TlsError::CrlRefused {
        path: config.tls.crl.clone(),
        refusal,
        offered: Box::new(material.crl_info.clone()),
    }))
}

/// Logs the weakened settings and writes the `config_start` record (the
/// effective configuration's digest and its weakenings) and the
/// `crl_update` record of the CRL put in force, with what changed since the
/// last one recorded.
async fn record_start(
    app: &AppState,
    config: &Config,
    material: &TlsMaterial,
    recorded_crl: Option<&crate::tls::crl::CrlState>,
) -> Result<(), StartError> {
    let report = crate::config_report::ConfigReport::of(config);
    report.warn();
    app.store
        .write(
            WriteOp::AuditOnly,
            start_record(Action::ConfigStart, report.record_details()),
        )
        .await?;
    let crl = crate::tls::crl::CrlState::from(&material.crl_info);
    app.store
        .write(
            WriteOp::AuditOnly,
            start_record(
                Action::CrlUpdate,
                crate::tls::crl::accepted_details(&crl, recorded_crl, "start"),
            ),
        )
        .await?;
    app.metrics.crl_in_force(crl.number, crl.next_update);
    Ok(())
}

fn start_record(
    action: Action,
    details: serde_json::Map<String, serde_json::Value>,
) -> RecordDraft {
    RecordDraft::system("start", action, details)
}

/// Warns about every partner cleared above the gateway's accreditation
/// (the accreditation caps it; an operator should know the policy says more).
fn warn_clearance_above_accreditation(policy: &Policy, config: &Config) {
    for p in policy.partners.values() {
        if p.clearance > config.accreditation.max_classification {
            tracing::warn!(
                partner = %p.id,
                clearance = %p.clearance,
                accreditation = %config.accreditation.max_classification,
                "partner clearance is above the gateway's accreditation; the accreditation caps it"
            );
        }
    }
}

/// Opens the store as the serving gateway does: eight readers and signed
/// checkpoints at the configured pace.
async fn open_store(config: &Config, signer: CheckpointSigner) -> Result<Store, StartError> {
    Ok(Store::open(&StoreOptions {
        read_connections: 8,
        checkpoints: CheckpointPolicy {
            signer: Some(Arc::new(signer)),
            every: config.audit.checkpoint_every.max(1),
            interval: Duration::from_secs(config.audit.checkpoint_interval_secs.max(1)),
        },
        node: config.node_name(),
        ..StoreOptions::for_tool(config)
    })
    .await?)
}

/// Starts the tasks that run beside the requests: following other nodes,
/// the retention sweep, the daily expiry warning and the TLS file watch.
fn spawn_background(
    app: &Arc<AppState>,
    config: &Config,
    tls_files: crate::app::operator::TlsFiles,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut background = Vec::new();
    // Other nodes' deliveries and suspensions (PostgreSQL only).
    if let Some(tasks) = crate::app::cluster::follow(app) {
        background.extend(tasks);
    }
    if config.retention.sweep_interval_secs > 0 {
        background.push(tokio::spawn(crate::app::sweeper::run_periodically(
            app.clone(),
            Duration::from_secs(config.retention.sweep_interval_secs),
        )));
    }
    // The relay to peer gateways (SPEC §11), when this gateway has an id.
    background.extend(crate::app::relay::worker::start(app));
    background.push(tokio::spawn(crate::app::operator::warn_expiring_daily(
        app.clone(),
    )));
    if config.tls.watch_interval_ms > 0 {
        background.push(tokio::spawn(crate::app::operator::watch(
            app.clone(),
            Duration::from_millis(config.tls.watch_interval_ms),
            tls_files,
        )));
    }
    background
}

/// Binds a listener and reads back its address (port 0 picks one).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Serves `/metrics`, `/healthz` and `/readyz` on their own listener.
fn serve_health(app: &Arc<AppState>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
    let health = crate::app::health::router(app.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, health).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    })
}

/// Serves the mTLS API until the returned sender fires (or is dropped).
fn serve_api(
    app: &Arc<AppState>,
    listener: TcpListener,
    tls: Arc<TlsState>,
    config: &Config,
) -> (tokio::task::JoinHandle<()>, oneshot::Sender<()>) {
    let opts = ServeOptions::from_config(&config.server);
    let (tx, rx) = oneshot::channel::<()>();
    let router = api::router(app.clone());
    let task = tokio::spawn(crate::tls::serve(
        listener,
        tls,
        router,
        opts,
        app.connections.clone(),
        async {
            let _ = rx.await;
        },
    ));
    (task, tx)
}

impl Gateway {
    /// Loads everything `config` names and starts serving.
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let policy = Policy::load(&config.policy.file)?;
        crate::app::relay::check_peers(&policy, config.federation.id.as_ref())
            .map_err(StartError::Federation)?;
        warn_clearance_above_accreditation(&policy, config);
        // The accepted client anchors: `[tls] client_ca` and the CA files
        // the policy names (peers, bound partners).
        let trust = crate::tls::PolicyTrust::of(&policy);
        let tls_files = crate::app::operator::tls_files(&config.tls, &trust);
        let material = TlsMaterial::load(&config.tls, &trust)?;
        let tls = Arc::new(TlsState::new(&material, config.tls.min_version)?);
        // Before the key is read: a rotation in progress must finish first.
        let key_lock = KeyLock::shared(&config.crypto.master_key_file)?;
        let master_key = Arc::new(MasterKey::load_ring(&config.crypto.master_key_file)?);
        let signer = CheckpointSigner::from_pem_file(&config.audit.signing_key)?;
        let cursor_key = cursor_key(config)?;
        let checkpoint_verifier = Arc::new(signer.verifier()?);
        let envelope_key = Arc::new(
            JwsKey::from_pem_file(&config.envelope_key_path()).map_err(StartError::EnvelopeKey)?,
        );
        let store = open_store(config, signer).await?;
        let db_key_lock =
            store
                .key_use_lock(false)
                .await?
                .ok_or_else(|| KeyLockError::RotationRunning {
                    path: "the database's master key lock".into(),
                })?;
        check_key_ids(&store, &master_key, &config.crypto.master_key_file).await?;
        let recorded_crl = match check_recorded_crl(&store, config, &material).await {
            Ok(r) => r,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        let blobs = BlobStore::open(&config.storage.blob_dir)?;
        // Files an erasure could not delete, or uploads a crash cut off.
        crate::app::sweeper::sweep_blob_strays(&store, &blobs).await?;
        let suspended = store.suspended_partners().await?;
        let app = Arc::new(AppState::new(AppParts {
            store,
            tls: tls.clone(),
            master_key,
            blobs,
            checkpoint_verifier,
            envelope_key,
            policy,
            cursor_key,
            suspended,
            config: Arc::new(config.clone()),
            settings: Settings::from_config(config),
        }));
        record_start(&app, config, &material, recorded_crl.as_ref()).await?;
        let mut background = spawn_background(&app, config, tls_files);
        let (metrics_listener, metrics_addr) = bind(config.server.metrics_listen).await?;
        background.push(serve_health(&app, metrics_listener));
        let (listener, addr) = bind(config.server.listen).await?;
        let (task, tx) = serve_api(&app, listener, tls, config);
        let refusal_flusher = Some(tokio::spawn(crate::app::refusals::flush_periodically(
            app.clone(),
        )));
        tracing::info!(%addr, %metrics_addr, "gateway listening");
        Ok(Self {
            addr,
            metrics_addr,
            app,
            shutdown: Some(tx),
            task,
            background,
            refusal_flusher,
            _key_locks: (key_lock, db_key_lock),
        })
    }

    /// Stops accepting, lets open requests finish, and waits.
    pub async fn stop(mut self) {
        self.app.shutting_down.send_replace(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        // Every request has been answered: the refusals counted in open
        // windows go into the log before it closes, so no count is lost.
        if let Some(flusher) = self.refusal_flusher.take() {
            let _ = flusher.await;
        }
        let counts = self.app.refusals.take_all();
        if !crate::app::refusals::write(&self.app, counts).await {
            tracing::error!("refusal counts could not be written to the audit log at shutdown");
        }
        for t in &self.background {
            t.abort();
        }
        self.app.store.close().await;
    }

    /// Waits until the server task ends (it ends only on `stop`).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Refuses a database whose data keys name a master key the ring lacks:
/// content sealed under it would answer `content_integrity` forever, and
/// a gateway started on the wrong key (another node's, a fresh one) would
/// add content no other node can open.
async fn check_key_ids(
    store: &Store,
    ring: &MasterKey,
    path: &std::path::Path,
) -> Result<(), StartError> {
    let unknown: Vec<String> = store
        .data_key_master_ids()
        .await?
        .into_iter()
        .filter(|id| ring.opener(id).is_none())
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(MasterKeyError::UnknownKeys {
            path: path.to_owned(),
            ids: unknown.join(", "),
        }
        .into())
    }
}
