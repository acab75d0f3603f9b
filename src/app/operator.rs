//! Operating a running gateway: reloading policy and TLS material, the
//! certificates it knows and when they expire, and the file watcher that
//! makes a revocation bite within a second.
//!
//! A reload loads everything first and swaps only when all of it is valid,
//! so a broken policy or a half-copied certificate never replaces a working
//! configuration: the old one keeps serving and the error names the file,
//! line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::app::AppState;
use crate::audit::record::{Action, Outcome, RecordDraft, format_at};
use crate::domain::FieldError;
use crate::pki::EXPIRY_WARNING_DAYS;
use crate::policy::Policy;
use crate::store::WriteOp;
use crate::tls::{KnownCert, PeerCert, PolicyTrust, TlsError, TlsMaterial};

/// Certificates presented by clients, remembered for the admin API and
/// the expiry metrics (bounded: only certificates of our CA get this far).
#[derive(Debug, Default)]
pub struct SeenCerts(std::sync::Mutex<BTreeMap<String, (String, i64)>>);

impl SeenCerts {
    /// Remembers a presented certificate.
    pub fn see(&self, peer: &PeerCert, identity: &str) {
        let mut m = match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if m.len() < 100_000 {
            m.insert(peer.serial.clone(), (identity.to_owned(), peer.not_after));
        }
    }

    fn all(&self) -> Vec<(String, String, i64)> {
        let m = match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.iter()
            .map(|(s, (i, n))| (s.clone(), i.clone(), *n))
            .collect()
    }
}

/// Every certificate the gateway knows, by serial: its own, those issued in
/// the PKI directory, and those clients presented.
pub(crate) fn known_certificates(app: &AppState) -> Vec<KnownCert> {
    let now = OffsetDateTime::now_utc();
    let mut by_serial: BTreeMap<String, KnownCert> = BTreeMap::new();
    let server = app.tls.server_cert();
    by_serial.insert(server.serial.clone(), server);
    if let Some(dir) = &app.config.pki.dir {
        match crate::pki::list(dir, now) {
            Ok(list) => {
                for c in list {
                    by_serial.entry(c.serial_hex.clone()).or_insert(KnownCert {
                        identity: c.identity,
                        serial: c.serial_hex.clone(),
                        not_after: c.not_after,
                        source: "issued",
                        file: Some(c.file),
                        revoked: app.tls.is_revoked(&c.serial_hex),
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the PKI directory"),
        }
    }
    for (serial, identity, not_after) in app.seen.all() {
        by_serial
            .entry(serial.clone())
            .or_insert_with(|| KnownCert {
                identity,
                revoked: app.tls.is_revoked(&serial),
                serial,
                not_after: OffsetDateTime::from_unix_timestamp(not_after)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                source: "seen",
                file: None,
            });
    }
    by_serial.into_values().collect()
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Partners in the policy now.
    pub partners: usize,
    /// Agreements in the policy now.
    pub agreements: usize,
    /// Serials revoked by the new CRL that were not before.
    pub newly_revoked: Vec<String>,
    /// Connections closed because of them.
    pub connections_closed: usize,
    /// The gateway certificate's serial now.
    pub server_serial: String,
    /// The CRL put in force and the one it replaced, when the number or
    /// the serials changed.
    pub crl_change: Option<(crate::tls::crl::CrlState, crate::tls::crl::CrlState)>,
}

impl ReloadReport {
    /// As JSON for the API and the audit record.
    pub fn details(&self) -> Value {
        json!({
            "partners": self.partners,
            "agreements": self.agreements,
            "newly_revoked": self.newly_revoked,
            "connections_closed": self.connections_closed,
            "server_certificate_serial": self.server_serial,
            "crl": crl_change_details(self.crl_change.as_ref()),
        })
    }

    /// The `crl_update` record for the CRL change this reload made, if any.
    pub(crate) fn crl_record_details(&self) -> Option<serde_json::Map<String, Value>> {
        self.crl_change
            .as_ref()
            .map(|(after, before)| crate::tls::crl::accepted_details(after, Some(before), "reload"))
    }
}

/// A CRL change as the reload's answer and audit record name it: the new
/// and previous numbers, and the serials added and removed.
fn crl_change_details(
    change: Option<&(crate::tls::crl::CrlState, crate::tls::crl::CrlState)>,
) -> Value {
    change.map_or(Value::Null, |(after, before)| {
        let (added, removed) = crate::tls::crl::changes(&before.revoked, &after.revoked);
        json!({
            "crl_number": after.number.to_string(),
            "previous_crl_number": before.number.to_string(),
            "added": added,
            "removed": removed,
        })
    })
}

/// Loads the TLS material (with the CA files `policy` names: the roots
/// follow the policy) and checks its CRL may replace the one in force (not
/// older, not a different list under the same number); the loader has
/// already refused an expired one.
fn load_checked(
    app: &AppState,
    policy: &Policy,
) -> Result<(TlsMaterial, rustls::ServerConfig), TlsError> {
    let tls = &app.config.tls;
    let material = TlsMaterial::load(tls, &PolicyTrust::of(policy))?;
    crate::tls::crl::check_successor(&material.crl_info, &app.tls.crl()).map_err(|refusal| {
        TlsError::CrlRefused {
            path: tls.crl.clone(),
            refusal,
            offered: Box::new(material.crl_info.clone()),
        }
    })?;
    let cfg = material.server_config(tls.min_version)?;
    Ok((material, cfg))
}

/// Counts and logs a refused CRL; the CRL in force stays.
fn note_crl_refusal(app: &AppState, e: &TlsError) {
    if let TlsError::CrlRefused { refusal, .. } = e {
        app.metrics.crl_refused(refusal.code());
        tracing::error!(
            reason = refusal.code(),
            error = %e,
            "CRL refused; the CRL in force stays"
        );
    }
}

/// The CRL change `material` brings, when its number or serials differ.
fn crl_change(
    app: &AppState,
    material: &TlsMaterial,
) -> Option<(crate::tls::crl::CrlState, crate::tls::crl::CrlState)> {
    let before = app.tls.crl();
    let after = crate::tls::crl::CrlState::from(&material.crl_info);
    (after.number != before.number || after.revoked != before.revoked).then_some((after, before))
}

/// Swaps in a TLS configuration built from `material` and closes the open
/// connections of every certificate the new CRL revokes. Infallible, so a
/// caller that has validated everything can make the change all at once.
fn install_tls(
    app: &AppState,
    cfg: rustls::ServerConfig,
    material: &TlsMaterial,
) -> (Vec<String>, usize) {
    let before = app.tls.revoked();
    app.tls.install(cfg, material);
    app.metrics
        .crl_in_force(material.crl_info.number, material.crl_info.next_update);
    let newly: Vec<String> = material.revoked.difference(&before).cloned().collect();
    let closed = app
        .connections
        .close_where(|serial, _| newly.iter().any(|s| s == serial));
    app.metrics.connections_closed(closed);
    (newly, closed)
}

fn tls_field_error(e: impl std::fmt::Display) -> FieldError {
    FieldError {
        field: "tls".into(),
        message: e.to_string(),
    }
}

/// Policy and TLS material loaded and validated, not yet in force: the
/// reload endpoint audits the change before it applies it, so a reload
/// whose record cannot be written changes nothing.
pub struct PreparedReload {
    policy: Policy,
    material: TlsMaterial,
    cfg: rustls::ServerConfig,
    /// Serials the new CRL revokes that the one in force does not.
    pub newly_revoked: Vec<String>,
    /// The CRL to be put in force and the one it replaces, when they differ.
    crl_change: Option<(crate::tls::crl::CrlState, crate::tls::crl::CrlState)>,
}

impl std::fmt::Debug for PreparedReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedReload")
            .field("newly_revoked", &self.newly_revoked)
            .finish_non_exhaustive()
    }
}

impl PreparedReload {
    /// What the reload will change, for its audit record (written before
    /// it applies).
    pub fn details(&self) -> Value {
        json!({
            "partners": self.policy.partners.len(),
            "agreements": self.policy.agreements.len(),
            "newly_revoked": self.newly_revoked,
            "server_certificate_serial": self.material.server_serial,
            "crl": crl_change_details(self.crl_change.as_ref()),
        })
    }

    /// Swaps everything in at once; nothing here can fail.
    pub fn apply(self, app: &AppState) -> ReloadReport {
        let (partners, agreements) = (self.policy.partners.len(), self.policy.agreements.len());
        app.set_policy(self.policy);
        let crl_change = self.crl_change;
        let (newly_revoked, connections_closed) = install_tls(app, self.cfg, &self.material);
        app.metrics.reload("ok");
        ReloadReport {
            partners,
            agreements,
            newly_revoked,
            connections_closed,
            server_serial: app.tls.server_cert().serial,
            crl_change,
        }
    }
}

/// Re-reads policy, certificates and CRL and validates them all, changing
/// nothing; every problem is named.
pub(crate) fn prepare_reload(app: &AppState) -> Result<PreparedReload, Vec<FieldError>> {
    let policy = Policy::load(&app.config.policy.file)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            crate::app::relay::check_peers(&p, app.config.federation.id.as_ref()).map(|()| p)
        })
        .map_err(|message| FieldError {
            field: "policy".into(),
            message,
        });
    // The new policy's CA files become the anchors; with a broken policy
    // the TLS files are still checked (against the policy in force), so
    // every problem is named at once.
    let tls = match &policy {
        Ok(p) => load_checked(app, p),
        Err(_) => load_checked(app, &app.policy()),
    }
    .map_err(|e| {
        note_crl_refusal(app, &e);
        tls_field_error(e)
    });
    match (policy, tls) {
        (Ok(policy), Ok((material, cfg))) => {
            let before = app.tls.revoked();
            let newly_revoked = material.revoked.difference(&before).cloned().collect();
            let crl_change = crl_change(app, &material);
            Ok(PreparedReload {
                policy,
                material,
                cfg,
                newly_revoked,
                crl_change,
            })
        }
        (p, t) => {
            app.metrics.reload("refused");
            Err(p.err().into_iter().chain(t.err()).collect())
        }
    }
}

fn system_record(action: Action, details: Value) -> RecordDraft {
    RecordDraft::system(
        "tls-watch",
        action,
        details.as_object().cloned().unwrap_or_default(),
    )
}

/// Warns of certificates expiring within 30 days at start and then daily,
/// so the warning reaches the log well before the certificate stops working.
pub(crate) async fn warn_expiring_daily(app: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(86_400));
    loop {
        tick.tick().await;
        warn_expiring(&app);
    }
}

/// Size and modification time of the TLS files the watch compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles(Vec<Option<(u64, SystemTime)>>);

/// The TLS files' state now. Taken by the gateway *before* it loads them,
/// so a change made while it starts (a revocation during a slow store
/// open) is seen by the watch's first look rather than missed.
pub(crate) fn tls_files(tls: &crate::config::TlsConfig, trust: &PolicyTrust) -> TlsFiles {
    TlsFiles(fingerprint(&watched_paths(tls, trust)))
}

/// The files the watch compares: `[tls]`'s and the CA files the policy in
/// force names (a new peer CA is picked up like a new client CA).
fn watched_paths(tls: &crate::config::TlsConfig, trust: &PolicyTrust) -> Vec<PathBuf> {
    let mut paths = vec![tls.cert.clone(), tls.key.clone(), tls.crl.clone()];
    paths.extend(tls.client_ca.files().iter().cloned());
    paths.extend(trust.files().map(Path::to_path_buf));
    paths
}

/// Size and modification time of each watched file.
fn fingerprint(paths: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect()
}

/// Reloads the TLS material when its files change (checked every
/// `interval`): a new CRL refuses revoked certificates on new handshakes and
/// closes their open connections within a second; a new server certificate
/// is used by new connections while open ones finish. Each newly revoked
/// serial is a `cert_revoke` audit record; other changes a `config_reload`.
/// `loaded` is the files' state when the material in force was read.
pub async fn watch(app: Arc<AppState>, interval: Duration, loaded: TlsFiles) {
    let mut last = loaded.0;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let policy = app.policy();
        let trust = PolicyTrust::of(&policy);
        let now = fingerprint(&watched_paths(&app.config.tls, &trust));
        if now == last {
            continue;
        }
        last = now;
        // The same lock as the reload endpoint: its check of the CRL in
        // force must still hold when it installs.
        let _tls_change = app.tls_change.lock().await;
        match load_checked(&app, &policy) {
            Ok((material, cfg)) => installed(&app, cfg, &material).await,
            Err(TlsError::CrlRefused {
                refusal, offered, ..
            }) => crl_refused(&app, &refusal, &offered).await,
            Err(e) => {
                // Often a file mid-copy: the next change retries.
                app.metrics.reload("refused");
                tracing::error!(error = %e, "TLS files changed but are not usable; the previous ones stay in force");
            }
        }
    }
}

/// Puts changed TLS material in force and records what changed: each newly
/// revoked serial, or the reload, and the CRL's advance.
async fn installed(app: &AppState, cfg: rustls::ServerConfig, material: &TlsMaterial) {
    let change = crl_change(app, material);
    let (newly, closed) = install_tls(app, cfg, material);
    app.metrics.reload("ok");
    tracing::info!(
        newly_revoked = newly.len(),
        connections_closed = closed,
        "TLS material reloaded"
    );
    let mut records: Vec<RecordDraft> = if newly.is_empty() {
        vec![system_record(
            Action::ConfigReload,
            json!({"tls": "reloaded", "server_certificate_serial": app.tls.server_cert().serial}),
        )]
    } else {
        newly
            .iter()
            .map(|s| {
                system_record(
                    Action::CertRevoke,
                    json!({"serial": s, "connections_closed": closed}),
                )
            })
            .collect()
    };
    if let Some((after, before)) = &change {
        records.push(system_record(
            Action::CrlUpdate,
            Value::Object(crate::tls::crl::accepted_details(
                after,
                Some(before),
                "watch",
            )),
        ));
    }
    for r in records {
        if let Err(e) = app.store.write(WriteOp::AuditOnly, r).await {
            tracing::error!(error = %e, "could not record the TLS reload in the audit log");
        }
    }
}

/// Records a CRL the watch refused (counted, logged, audited as denied); the
/// CRL in force stays.
async fn crl_refused(
    app: &AppState,
    refusal: &crate::tls::crl::CrlRefusal,
    offered: &crate::pki::CrlInfo,
) {
    // A definite refusal, not a file mid-copy: counted, logged
    // and recorded; the CRL in force stays.
    app.metrics.reload("refused");
    app.metrics.crl_refused(refusal.code());
    tracing::error!(reason = refusal.code(), error = %refusal, "CRL refused; the CRL in force stays");
    let mut draft = system_record(
        Action::CrlUpdate,
        Value::Object(crate::tls::crl::refused_details(
            offered,
            &app.tls.crl(),
            "watch",
        )),
    );
    draft.outcome = Outcome::Denied;
    draft.code = Some(refusal.code().to_owned());
    if let Err(e) = app.store.write(WriteOp::AuditOnly, draft).await {
        tracing::error!(error = %e, "could not record the refused CRL in the audit log");
    }
}

/// Logs a warning for every known certificate that expires within 30 days.
pub(crate) fn warn_expiring(app: &AppState) {
    let now = OffsetDateTime::now_utc();
    warn_crl_expiring(app, now);
    for c in known_certificates(app) {
        let days = c.days_left(now);
        if c.revoked || days > EXPIRY_WARNING_DAYS as f64 {
            continue;
        }
        if days < 0.0 {
            tracing::warn!(
                identity = %c.identity,
                serial = %c.serial,
                not_after = %format_at(c.not_after),
                "certificate has expired"
            );
        } else {
            tracing::warn!(
                identity = %c.identity,
                serial = %c.serial,
                days_left = days.floor(),
                not_after = %format_at(c.not_after),
                "certificate expires within 30 days"
            );
        }
    }
}

/// Warns (log and metric) when the CRL in force reaches its nextUpdate
/// within [`crate::tls::crl::CRL_WARNING_DAYS`]: past it the gateway refuses
/// every client certificate until the CA re-signs the list.
pub(crate) fn warn_crl_expiring(app: &AppState, now: OffsetDateTime) {
    let crl = app.tls.crl();
    let days = (crl.next_update - now.unix_timestamp()) as f64 / 86_400.0;
    if days > crate::tls::crl::CRL_WARNING_DAYS as f64 {
        return;
    }
    app.metrics.crl_expiry_warning();
    tracing::warn!(
        crl_number = %crl.number,
        days_left = days.floor(),
        "the CRL in force reaches its nextUpdate soon; after it every client certificate is refused: run `brdo pki crl refresh`"
    );
}
