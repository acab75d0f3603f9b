//! The running gateway's shared state: what every operation, background
//! task and HTTP handler reaches. It lives below the HTTP layer so that the
//! sweeper, the cluster follower, reloads and health checks can use it
//! without importing the API.

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::inbox_notifier::InboxNotifier;
use super::operator::SeenCerts;
use crate::app::cursor::CursorKey;
use crate::app::rate_limit::RateLimiter;
use crate::app::refusals::RefusalLog;
use crate::blobs::BlobStore;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::crypto::jose::CheckpointVerifier;
use crate::domain::{Classification, PartnerId};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::store::Store;
use crate::tls::Connections;
use crate::tls::TlsState;

/// Settings handlers need, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest JSON body.
    pub max_body_bytes: usize,
    /// The gateway's accredited maximum.
    pub accreditation: Classification,
    /// Largest attachment.
    pub max_attachment_bytes: u64,
    /// Requests per second each identity may send on average (0: no limit).
    pub rate_limit_per_second: u32,
    /// Requests each identity may send at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Bytes per second a request body must keep arriving at after the
    /// grace period (0: no minimum).
    pub min_upload_bytes_per_second: u64,
    /// Seconds a request body may take before the minimum rate applies.
    pub upload_grace_secs: u64,
}

impl Settings {
    /// The settings a configuration gives.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_body_bytes: config.server.max_body_bytes,
            accreditation: config.accreditation.max_classification,
            max_attachment_bytes: config.server.max_attachment_bytes,
            rate_limit_per_second: config.server.rate_limit_per_second,
            rate_limit_burst: config.server.rate_limit_burst,
            min_upload_bytes_per_second: config.server.min_upload_bytes_per_second,
            upload_grace_secs: config.server.upload_grace_secs,
        }
    }
}

/// Everything a handler can reach.
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Live TLS state (revocations).
    pub tls: Arc<TlsState>,
    /// The master key for content.
    pub master_key: Arc<MasterKey>,
    /// Encrypted attachment files.
    pub blobs: BlobStore,
    /// Verifies the gateway's own checkpoints.
    pub checkpoint_verifier: Arc<CheckpointVerifier>,
    /// Signs the label binding of every delivered message.
    pub envelope_key: Arc<crate::crypto::jose::JwsKey>,
    /// Wakes long-polling inbox readers.
    pub inbox: InboxNotifier,
    /// Seals inbox cursors so partners never see the global position.
    pub cursor_key: CursorKey,
    /// Fixed settings.
    pub settings: Settings,
    /// The configuration the gateway was started with (reload re-reads
    /// the files it names).
    pub config: Arc<Config>,
    /// Open connections (closed on revocation or suspension).
    pub connections: Arc<Connections>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Client certificates presented so far.
    pub seen: SeenCerts,
    /// The per-identity request rate limit.
    pub rate_limit: RateLimiter,
    /// Identical refusals folded into counted audit records.
    pub refusals: RefusalLog,
    /// Set when the gateway is shutting down, so long polls answer now
    /// instead of holding the drain up.
    pub shutting_down: tokio::sync::watch::Sender<bool>,
    /// Held by whoever checks TLS material against the CRL in force and
    /// puts it in force (the reload endpoint across its audit write, the
    /// file watch), so a check never goes stale before its install: an
    /// older CRL read by a reload cannot replace a newer one the watch put
    /// in force meanwhile.
    pub tls_change: tokio::sync::Mutex<()>,
    /// Bumped whenever the outbox gains a row, so the relay sends at once
    /// instead of at its next timer (SPEC §11).
    pub relay_wake: tokio::sync::watch::Sender<u64>,
    policy: ArcSwap<Policy>,
    suspended: ArcSwap<BTreeSet<PartnerId>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What [`AppState::new`] is assembled from.
pub struct AppParts {
    /// The store.
    pub store: Store,
    /// Live TLS state.
    pub tls: Arc<TlsState>,
    /// The master key.
    pub master_key: Arc<MasterKey>,
    /// Attachment files.
    pub blobs: BlobStore,
    /// Verifies the gateway's own checkpoints (the DPO page shows the result).
    pub checkpoint_verifier: Arc<CheckpointVerifier>,
    /// The envelope key (label bindings).
    pub envelope_key: Arc<crate::crypto::jose::JwsKey>,
    /// The policy.
    pub policy: Policy,
    /// The inbox cursor key.
    pub cursor_key: CursorKey,
    /// Partners suspended at start.
    pub suspended: BTreeSet<PartnerId>,
    /// Fixed settings.
    pub settings: Settings,
    /// The configuration.
    pub config: Arc<Config>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(parts: AppParts) -> Self {
        let rate_limit = RateLimiter::new(
            parts.settings.rate_limit_per_second,
            parts.settings.rate_limit_burst,
        );
        Self {
            store: parts.store,
            tls: parts.tls,
            master_key: parts.master_key,
            blobs: parts.blobs,
            checkpoint_verifier: parts.checkpoint_verifier,
            envelope_key: parts.envelope_key,
            inbox: InboxNotifier::default(),
            cursor_key: parts.cursor_key,
            settings: parts.settings,
            config: parts.config,
            connections: Arc::new(Connections::default()),
            metrics: Arc::new(Metrics::default()),
            seen: SeenCerts::default(),
            rate_limit,
            refusals: RefusalLog::default(),
            shutting_down: tokio::sync::watch::channel(false).0,
            tls_change: tokio::sync::Mutex::new(()),
            relay_wake: tokio::sync::watch::channel(0).0,
            policy: ArcSwap::from_pointee(parts.policy),
            suspended: ArcSwap::from_pointee(parts.suspended),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Replaces the policy (reload).
    pub(crate) fn set_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    /// Wakes the relay: a row was added to the outbox.
    pub fn wake_relay(&self) {
        self.relay_wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// What a write needs to sign receipts for peers in its transaction;
    /// `None` for a gateway without a federation id.
    pub fn receipt_signer(&self) -> Option<crate::store::ReceiptSigner> {
        Some(crate::store::ReceiptSigner {
            own: self.config.federation.id.clone()?,
            key: self.envelope_key.clone(),
        })
    }

    /// The originator's decision as a notice for the peers holding copies
    /// (SPEC §11), stamped now; `None` for a gateway without a federation
    /// id (it has no peers).
    pub fn notice(&self, notice: crate::federation::Notice) -> Option<crate::store::NoticeFanout> {
        self.config.federation.id.as_ref()?;
        Some(crate::store::NoticeFanout {
            notice,
            at_ms: crate::domain::time::to_ms(time::OffsetDateTime::now_utc()),
        })
    }

    /// Partners suspended now.
    pub fn suspended(&self) -> Arc<BTreeSet<PartnerId>> {
        self.suspended.load_full()
    }

    /// Whether a partner is suspended now.
    pub(crate) fn is_suspended(&self, p: &PartnerId) -> bool {
        self.suspended.load().contains(p)
    }

    /// Suspends (`true`) or resumes one partner in the set, atomically
    /// with respect to other changes of the set.
    pub(crate) fn mark_suspended(&self, partner: &PartnerId, suspended: bool) {
        self.suspended.rcu(|set| {
            let mut set = (**set).clone();
            if suspended {
                set.insert(partner.clone());
            } else {
                set.remove(partner);
            }
            set
        });
    }

    /// Replaces the suspended set with `set` read from the store, unless the
    /// set changed since `read_from` was loaded (a newer change must not be
    /// overwritten by an older read); returns whether it was replaced.
    pub(crate) fn replace_suspended_if(
        &self,
        read_from: &Arc<BTreeSet<PartnerId>>,
        set: BTreeSet<PartnerId>,
    ) -> bool {
        let previous = self.suspended.compare_and_swap(read_from, Arc::new(set));
        Arc::ptr_eq(&previous, read_from)
    }
}
