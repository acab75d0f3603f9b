//! The effective configuration as operators and auditors see it: without
//! secrets, with a digest, and with every setting weaker than its safe
//! default named.
//!
//! Why: a gateway started with TLS 1.2, no CRL watch, a higher
//! accreditation or no rate limit works exactly like a safe one, so the
//! weakening would go unnoticed. Each is logged at WARN on start, recorded
//! in the `config_start` audit record with the digest, and served on
//! `GET /v1/admin/config`.

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, TlsMinVersion};

/// A setting that is weaker than its safe default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Weakened {
    /// The key, `section.key`.
    pub setting: &'static str,
    /// Its value now.
    pub value: Value,
    /// The safe default.
    pub default: Value,
    /// What the difference gives up.
    pub risk: &'static str,
}

/// The effective configuration, its digest and its weakenings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigReport {
    /// The configuration as JSON (passwords in URLs replaced; paths kept,
    /// key material is never in the configuration).
    pub config: Value,
    /// SHA-256 (hex) of the RFC 8785 canonical form of `config`.
    pub digest: String,
    /// Settings weaker than their safe defaults.
    pub weakened: Vec<Weakened>,
}

impl ConfigReport {
    /// Describes `config`.
    pub fn of(config: &Config) -> Self {
        let value = serde_json::to_value(config).unwrap_or(Value::Null);
        let canonical = crate::audit::jcs::canonicalize(&value);
        let digest = hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ));
        Self {
            config: value,
            digest,
            weakened: weakened(config),
        }
    }

    /// Logs each weakened setting at WARN.
    pub fn warn(&self) {
        for w in &self.weakened {
            tracing::warn!(
                setting = w.setting,
                value = %w.value,
                default = %w.default,
                risk = w.risk,
                "setting weaker than its safe default"
            );
        }
    }

    /// Details of the `config_start` record: the digest and the weakened
    /// settings (the configuration itself is served on the admin API).
    pub(crate) fn record_details(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("config_digest".into(), self.digest.clone().into());
        m.insert("weakened".into(), json!(self.weakened));
        m
    }
}

/// Every setting of `c` weaker than the default: a rule per setting whose
/// direction matters for security.
pub fn weakened(c: &Config) -> Vec<Weakened> {
    let d = Config::default();
    let mut n = Notes(Vec::new());
    tls_and_accreditation(c, &d, &mut n);
    server_sizes(c, &d, &mut n);
    server_times_and_floods(c, &d, &mut n);
    audit_and_retention(c, &d, &mut n);
    n.0
}

/// The weakened settings found so far, in the order the rules are written
/// (the report and the audit record list them in that order).
struct Notes(Vec<Weakened>);

impl Notes {
    /// Notes `setting` as weakened when `cond` holds.
    fn note(
        &mut self,
        cond: bool,
        setting: &'static str,
        value: Value,
        default: Value,
        risk: &'static str,
    ) {
        if cond {
            self.0.push(Weakened {
                setting,
                value,
                default,
                risk,
            });
        }
    }
}

/// The handshake, revocation watch and accreditation rules.
fn tls_and_accreditation(c: &Config, d: &Config, n: &mut Notes) {
    n.note(
        c.tls.min_version != TlsMinVersion::Tls13,
        "tls.min_version",
        json!(c.tls.min_version),
        json!(d.tls.min_version),
        "TLS 1.2 handshakes are accepted",
    );
    n.note(
        c.tls.watch_interval_ms == 0 || c.tls.watch_interval_ms > d.tls.watch_interval_ms,
        "tls.watch_interval_ms",
        json!(c.tls.watch_interval_ms),
        json!(d.tls.watch_interval_ms),
        "a revocation takes effect later (0: only after POST /v1/admin/reload)",
    );
    n.note(
        c.accreditation.max_classification > d.accreditation.max_classification,
        "accreditation.max_classification",
        json!(c.accreditation.max_classification),
        json!(d.accreditation.max_classification),
        "messages above EU_CONFIDENTIAL are accepted",
    );
}

/// The rate and size limits of the server.
fn server_sizes(c: &Config, d: &Config, n: &mut Notes) {
    n.note(
        c.server.rate_limit_per_second == 0
            || c.server.rate_limit_per_second > d.server.rate_limit_per_second,
        "server.rate_limit_per_second",
        json!(c.server.rate_limit_per_second),
        json!(d.server.rate_limit_per_second),
        "an identity may send more requests (0: no limit)",
    );
    n.note(
        c.server.rate_limit_burst > d.server.rate_limit_burst,
        "server.rate_limit_burst",
        json!(c.server.rate_limit_burst),
        json!(d.server.rate_limit_burst),
        "an identity may send a larger burst",
    );
    n.note(
        c.server.max_body_bytes > d.server.max_body_bytes,
        "server.max_body_bytes",
        json!(c.server.max_body_bytes),
        json!(d.server.max_body_bytes),
        "larger request bodies are read into memory",
    );
    n.note(
        c.server.max_attachment_bytes > d.server.max_attachment_bytes,
        "server.max_attachment_bytes",
        json!(c.server.max_attachment_bytes),
        json!(d.server.max_attachment_bytes),
        "larger uploads are accepted",
    );
    n.note(
        c.server.max_connections > d.server.max_connections,
        "server.max_connections",
        json!(c.server.max_connections),
        json!(d.server.max_connections),
        "more simultaneous connections are held",
    );
    n.note(
        c.server.max_header_bytes > d.server.max_header_bytes,
        "server.max_header_bytes",
        json!(c.server.max_header_bytes),
        json!(d.server.max_header_bytes),
        "larger request heads are read",
    );
}

/// The server's timeouts and flood limits.
fn server_times_and_floods(c: &Config, d: &Config, n: &mut Notes) {
    n.note(
        c.server.handshake_timeout_secs == 0
            || c.server.handshake_timeout_secs > d.server.handshake_timeout_secs,
        "server.handshake_timeout_secs",
        json!(c.server.handshake_timeout_secs),
        json!(d.server.handshake_timeout_secs),
        "a slow client holds a connection longer",
    );
    n.note(
        c.server.header_read_timeout_secs == 0
            || c.server.header_read_timeout_secs > d.server.header_read_timeout_secs,
        "server.header_read_timeout_secs",
        json!(c.server.header_read_timeout_secs),
        json!(d.server.header_read_timeout_secs),
        "a slow client holds a connection longer",
    );
    // The flood limits: each 0 or a larger value gives a caller more room
    // to hold connections, request tasks or upload files.
    n.note(
        c.server.max_connections_per_identity != 0
            && c.server.max_connections_per_identity > (c.server.max_connections / 4).max(1),
        "server.max_connections_per_identity",
        json!(c.server.max_connections_per_identity),
        json!(d.server.max_connections_per_identity),
        "one certificate identity may hold more than a quarter of the connection slots",
    );
    n.note(
        c.server.idle_timeout_secs > d.server.idle_timeout_secs,
        "server.idle_timeout_secs",
        json!(c.server.idle_timeout_secs),
        json!(d.server.idle_timeout_secs),
        "an idle connection holds its slot longer",
    );
    n.note(
        c.server.keep_alive_timeout_secs > d.server.keep_alive_timeout_secs,
        "server.keep_alive_timeout_secs",
        json!(c.server.keep_alive_timeout_secs),
        json!(d.server.keep_alive_timeout_secs),
        "an HTTP/2 peer that stopped answering holds its connection longer",
    );
    n.note(
        c.server.min_upload_bytes_per_second < d.server.min_upload_bytes_per_second,
        "server.min_upload_bytes_per_second",
        json!(c.server.min_upload_bytes_per_second),
        json!(d.server.min_upload_bytes_per_second),
        "a request body may trickle slower and hold its request and upload file (0: for ever)",
    );
    n.note(
        c.server.upload_grace_secs > d.server.upload_grace_secs,
        "server.upload_grace_secs",
        json!(c.server.upload_grace_secs),
        json!(d.server.upload_grace_secs),
        "a request body may send nothing for longer before the minimum rate applies",
    );
}

/// The checkpoint and sweep rules.
fn audit_and_retention(c: &Config, d: &Config, n: &mut Notes) {
    n.note(
        c.audit.checkpoint_every > d.audit.checkpoint_every,
        "audit.checkpoint_every",
        json!(c.audit.checkpoint_every),
        json!(d.audit.checkpoint_every),
        "more audit records wait for a signed checkpoint",
    );
    n.note(
        c.audit.checkpoint_interval_secs > d.audit.checkpoint_interval_secs,
        "audit.checkpoint_interval_secs",
        json!(c.audit.checkpoint_interval_secs),
        json!(d.audit.checkpoint_interval_secs),
        "audit records wait longer for a signed checkpoint",
    );
    n.note(
        c.retention.sweep_interval_secs == 0
            || c.retention.sweep_interval_secs > d.retention.sweep_interval_secs,
        "retention.sweep_interval_secs",
        json!(c.retention.sweep_interval_secs),
        json!(d.retention.sweep_interval_secs),
        "content is erased later after its retention ends (0: not by this gateway)",
    );
}

#[cfg(test)]
// A test reads top to bottom as one script: test code is exempt from the length limit.
#[allow(clippy::too_many_lines)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_weakens_nothing() {
        let r = ConfigReport::of(&Config::default());
        assert!(r.weakened.is_empty(), "{:?}", r.weakened);
        assert_eq!(r.digest.len(), 64);
        assert_eq!(r.digest, ConfigReport::of(&Config::default()).digest);
    }

    /// Each weakening from issue 19 (and each rule) as a table row: the
    /// change, and the setting that must be named.
    #[test]
    fn every_weakening_is_named_and_changes_the_digest() {
        type Change = fn(&mut Config);
        let table: &[(Change, &str)] = &[
            (
                |c| c.tls.min_version = TlsMinVersion::Tls12,
                "tls.min_version",
            ),
            (|c| c.tls.watch_interval_ms = 0, "tls.watch_interval_ms"),
            (
                |c| c.accreditation.max_classification = crate::domain::Classification::EuTopSecret,
                "accreditation.max_classification",
            ),
            (
                |c| c.server.rate_limit_per_second = 0,
                "server.rate_limit_per_second",
            ),
            (
                |c| c.server.rate_limit_burst = 1_000_000,
                "server.rate_limit_burst",
            ),
            (
                |c| c.server.max_body_bytes = 1 << 30,
                "server.max_body_bytes",
            ),
            (
                |c| c.server.max_attachment_bytes = 1 << 40,
                "server.max_attachment_bytes",
            ),
            (
                |c| c.server.max_connections = 1 << 20,
                "server.max_connections",
            ),
            (
                |c| c.server.max_header_bytes = 1 << 24,
                "server.max_header_bytes",
            ),
            (
                |c| c.server.handshake_timeout_secs = 0,
                "server.handshake_timeout_secs",
            ),
            (
                |c| c.server.header_read_timeout_secs = 600,
                "server.header_read_timeout_secs",
            ),
            (
                |c| c.server.max_connections_per_identity = 1024,
                "server.max_connections_per_identity",
            ),
            (
                |c| c.server.idle_timeout_secs = 86_400,
                "server.idle_timeout_secs",
            ),
            (
                |c| c.server.keep_alive_timeout_secs = 3600,
                "server.keep_alive_timeout_secs",
            ),
            (
                |c| c.server.min_upload_bytes_per_second = 0,
                "server.min_upload_bytes_per_second",
            ),
            (
                |c| c.server.upload_grace_secs = 3600,
                "server.upload_grace_secs",
            ),
            (
                |c| c.audit.checkpoint_every = 1 << 20,
                "audit.checkpoint_every",
            ),
            (
                |c| c.audit.checkpoint_interval_secs = 86_400,
                "audit.checkpoint_interval_secs",
            ),
            (
                |c| c.retention.sweep_interval_secs = 0,
                "retention.sweep_interval_secs",
            ),
        ];
        let base = ConfigReport::of(&Config::default());
        for (change, setting) in table {
            let mut c = Config::default();
            change(&mut c);
            let r = ConfigReport::of(&c);
            let names: Vec<_> = r.weakened.iter().map(|w| w.setting).collect();
            assert_eq!(names, vec![*setting]);
            assert_ne!(r.digest, base.digest, "{setting}");
            let details = r.record_details();
            assert_eq!(details["weakened"][0]["setting"], *setting);
        }
        // Stricter than the default is not a weakening.
        let mut c = Config::default();
        c.server.rate_limit_per_second = 5;
        c.tls.watch_interval_ms = 100;
        c.accreditation.max_classification = crate::domain::Classification::EuRestricted;
        c.server.max_connections_per_identity = 16;
        c.server.min_upload_bytes_per_second = 4096;
        c.server.idle_timeout_secs = 30;
        assert!(weakened(&c).is_empty());
    }

    #[test]
    fn database_passwords_are_not_shown() {
        let mut c = Config::default();
        c.database.url = "postgres://brdo:s3cret@db.example:5432/brdo?sslpassword=x".into();
        let r = ConfigReport::of(&c);
        let text = r.config.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("sslpassword"),
            "{text}"
        );
        assert_eq!(
            r.config["database"]["url"],
            "postgres://brdo:[redacted]@db.example:5432/brdo?[redacted]"
        );
        for (url, shown) in [
            ("sqlite://data/brdo.db", "sqlite://data/brdo.db"),
            ("postgres://brdo@db/x", "postgres://brdo@db/x"),
            ("postgresql://u:p@h", "postgresql://u:[redacted]@h"),
        ] {
            assert_eq!(crate::config::redact_url(url), shown);
        }
    }
}
