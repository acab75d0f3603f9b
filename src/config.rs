//! `gateway.toml` → a typed [`Config`].
//!
//! Every key has a safe default and unknown keys are an error: a misspelt
//! `max_clasification` must stop the gateway, not silently leave the
//! accreditation at its default. `BRDO_SECTION__KEY` environment variables
//! override keys so containers can be configured without editing files.
//! Relative paths are resolved against the config file's folder so the same
//! file works from any working directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::Classification;
use crate::domain::text::line_col;

/// The whole gateway configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listening sockets and request limits.
    pub server: ServerConfig,
    /// Certificates and TLS protocol settings.
    pub tls: TlsConfig,
    /// The store.
    pub database: DatabaseConfig,
    /// The gateway's accreditation.
    pub accreditation: AccreditationConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// Encryption at rest.
    pub crypto: CryptoConfig,
    /// The policy file.
    pub policy: PolicyConfig,
    /// The retention sweeper.
    pub retention: RetentionConfig,
    /// Where attachment content lives.
    pub storage: StorageConfig,
    /// The PKI directory the admin API lists.
    pub pki: PkiConfig,
    /// Exchange with peer gateways.
    pub federation: FederationConfig,
}

/// `[federation]`: this gateway's id among gateways and how it relays to
/// its peers (which `policy.toml` lists as `[[peer]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// This gateway's id (`urn:brdo:gateway:ID` in `gateway.crt`); `None`:
    /// no federation, and a policy with `[[peer]]` is refused at start.
    pub id: Option<crate::domain::PartnerId>,
    /// A recipient still unreached after this long becomes `undeliverable`.
    pub give_up_after_hours: u64,
    /// First retry delay after a failed relay; it doubles (with jitter) up
    /// to `max_backoff_secs`.
    pub initial_backoff_ms: u64,
    /// The longest wait between two attempts at one peer.
    pub max_backoff_secs: u64,
    /// Per-request deadline of a relay call (connect, TLS, answer).
    pub request_timeout_secs: u64,
    /// Overrides `give_up_after_hours` in seconds when set: for tests and
    /// drills that cannot wait hours.
    pub give_up_after_secs: Option<u64>,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            id: None,
            give_up_after_hours: 72,
            initial_backoff_ms: 200,
            max_backoff_secs: 300,
            request_timeout_secs: 10,
            give_up_after_secs: None,
        }
    }
}

/// `[pki]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PkiConfig {
    /// Where `brdo pki` issues certificates; the admin API and the expiry
    /// metrics list them. Default: the folder of the first `tls.client_ca`.
    pub dir: Option<PathBuf>,
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory of encrypted attachment files (mode 0700).
    pub blob_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            blob_dir: "data/blobs".into(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The mTLS API address.
    pub listen: SocketAddr,
    /// Plain-HTTP address for `/metrics`, `/healthz`, `/readyz`.
    pub metrics_listen: SocketAddr,
    /// Largest JSON request body.
    pub max_body_bytes: usize,
    /// Largest attachment upload.
    pub max_attachment_bytes: u64,
    /// Most simultaneous connections past their TLS handshake; further
    /// ones are closed once their handshake is done. At most as many
    /// handshakes may be in progress besides; a new one beyond that makes
    /// the one waiting longest give up, so clients that never finish a
    /// handshake hold no slot.
    pub max_connections: usize,
    /// Most simultaneous connections one certificate identity (its
    /// `urn:brdo:` URI, or its serial when it has none) may hold, so one
    /// certificate cannot take every slot. 0: a quarter of
    /// `max_connections`.
    pub max_connections_per_identity: usize,
    /// Seconds a connection may stay open with no request in progress
    /// (HTTP/1.1 keep-alive and HTTP/2 alike); then it is closed in
    /// order (TLS `close_notify`), so a client can tell it from a cut. A
    /// response still being sent is a request in progress, unless the
    /// client stops reading it: an answer (each HTTP/2 stream on its own)
    /// whose next frame waited this long for the client to take the last
    /// one is cut (a slow read would otherwise hold the connection for
    /// ever); time the server spends making the next frame does not
    /// count. A peer that does not let the close finish within
    /// `header_read_timeout_secs` (an HTTP/2 peer not answering the
    /// GOAWAY's ping) is cut.
    pub idle_timeout_secs: u64,
    /// Seconds an HTTP/2 peer has to answer the keep-alive ping the
    /// gateway sends every 30 s; a peer that does not answer is dropped.
    pub keep_alive_timeout_secs: u64,
    /// Bytes per second a request body must keep arriving at once
    /// `upload_grace_secs` have passed; slower bodies are cut off with
    /// `408 upload_too_slow`. 0 turns the minimum off.
    pub min_upload_bytes_per_second: u64,
    /// Seconds a request body may take before the minimum rate applies.
    pub upload_grace_secs: u64,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Time a client has to finish a request's head once its first byte
    /// came (slowloris); a keep-alive connection waiting for its next
    /// request is bounded by `idle_timeout_secs` instead.
    pub header_read_timeout_secs: u64,
    /// Largest request head (request line and headers, HTTP/1.1) or header
    /// list (HTTP/2), in bytes; larger ones are refused before routing.
    pub max_header_bytes: usize,
    /// Requests per second each certificate identity may send on average;
    /// beyond it `429 rate_limited` with `Retry-After`. 0 turns it off.
    pub rate_limit_per_second: u32,
    /// Requests an identity may send at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Seconds `brdo serve` gives open requests to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// An identifier for this node in logs and audit records.
    pub node: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_body_bytes: 1024 * 1024,
            max_attachment_bytes: 50 * 1024 * 1024,
            max_connections: 1024,
            max_connections_per_identity: 0,
            idle_timeout_secs: 120,
            keep_alive_timeout_secs: 20,
            min_upload_bytes_per_second: 1024,
            upload_grace_secs: 10,
            handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            max_header_bytes: 64 * 1024,
            rate_limit_per_second: 10_000,
            rate_limit_burst: 20_000,
            shutdown_grace_secs: 10,
            node: None,
        }
    }
}

impl ServerConfig {
    /// The connections one identity may hold: the setting, or a quarter of
    /// `max_connections` (at least 1) when it is 0.
    pub(crate) fn per_identity_connections(&self) -> usize {
        match self.max_connections_per_identity {
            0 => (self.max_connections / 4).max(1),
            n => n,
        }
    }
}

/// TLS protocol versions the gateway may negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum TlsMinVersion {
    /// TLS 1.3 only (the default).
    #[serde(rename = "1.3")]
    Tls13,
    /// TLS 1.2 and 1.3, for partners whose systems cannot do 1.3 yet.
    #[serde(rename = "1.2")]
    Tls12,
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The gateway's certificate chain (PEM).
    pub cert: PathBuf,
    /// The gateway's private key (PEM).
    pub key: PathBuf,
    /// The CAs client certificates may chain to (PEM, each file may hold
    /// several certificates): one path or a list. The first is the
    /// gateway's own CA (the one `crl` belongs to, and the default
    /// `[pki] dir`); the others are other authorities' CAs.
    pub client_ca: ClientCas,
    /// The revocation list of the first `client_ca` file's CA (PEM or DER).
    /// Certificates of the other CAs have no revocation list here.
    pub crl: PathBuf,
    /// Lowest TLS version accepted.
    pub min_version: TlsMinVersion,
    /// How often the certificate, key, CA and CRL files are checked for
    /// changes, in milliseconds, so `brdo pki revoke` takes effect without
    /// an operator step. 0 turns the watch off: reloads then happen only
    /// through `POST /v1/admin/reload`.
    pub watch_interval_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: "certs/gateway.crt".into(),
            key: "certs/gateway.key".into(),
            client_ca: ClientCas::from(PathBuf::from("certs/ca.crt")),
            crl: "certs/ca.crl".into(),
            min_version: TlsMinVersion::Tls13,
            watch_interval_ms: 500,
        }
    }
}

/// `[tls] client_ca`: one CA file or several, never none.
///
/// Why a type of its own: each authority brings its own CA (SPEC §11), so
/// the key takes a TOML string (one file, as before) or an array; it is
/// written back the same way, so a one-file configuration keeps its
/// digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCas(Vec<PathBuf>);

impl ClientCas {
    /// The files, first (the gateway's own CA) first.
    pub fn files(&self) -> &[PathBuf] {
        &self.0
    }

    /// The gateway's own CA file (the CRL's issuer, the default PKI folder).
    pub fn first(&self) -> &Path {
        self.0.first().map_or(Path::new(""), PathBuf::as_path)
    }

    /// Several files; `None` for an empty list.
    pub fn new(files: Vec<PathBuf>) -> Option<Self> {
        (!files.is_empty()).then_some(Self(files))
    }

    fn resolve(&mut self, fix: impl Fn(&mut PathBuf)) {
        self.0.iter_mut().for_each(fix);
    }
}

impl From<PathBuf> for ClientCas {
    fn from(one: PathBuf) -> Self {
        Self(vec![one])
    }
}

impl Serialize for ClientCas {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ClientCas {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A path or a non-empty array of paths.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ClientCas;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a CA file path or a non-empty array of CA file paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ClientCas, E> {
                Ok(ClientCas(vec![PathBuf::from(v)]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ClientCas, A::Error> {
                let mut files = Vec::new();
                while let Some(p) = seq.next_element::<PathBuf>()? {
                    files.push(p);
                }
                ClientCas::new(files)
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &"at least one CA file"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (relative to the config file) or `postgres://…`.
    /// Shown (`GET /v1/admin/config`, the start-up record) with any
    /// password replaced.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
}

impl DatabaseConfig {
    /// Whether the URL names a PostgreSQL database (possibly shared by
    /// several nodes).
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/brdo.db".into(),
        }
    }
}

/// `[accreditation]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccreditationConfig {
    /// Highest classification the gateway is accredited to handle.
    pub max_classification: Classification,
}

impl Default for AccreditationConfig {
    fn default() -> Self {
        Self {
            max_classification: Classification::EuConfidential,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Private key signing checkpoints (PEM, Ed25519 or P-256).
    pub signing_key: PathBuf,
    /// Its public half (PEM), which `brdo audit verify` checks against.
    /// Default (empty): beside `signing_key`, with the extension `.pub`
    /// (`audit-signing.key` → `audit-signing.pub`), as `pki init` writes
    /// it, so moving the key folder needs one setting, not two.
    pub public_key: PathBuf,
    /// Sign a checkpoint every this many records.
    pub checkpoint_every: u64,
    /// ... or after this many seconds with new records.
    pub checkpoint_interval_secs: u64,
    /// Days audit records keep their fields before only the hash remains.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            signing_key: "certs/audit-signing.key".into(),
            public_key: PathBuf::new(),
            checkpoint_every: 1000,
            checkpoint_interval_secs: 60,
            retention_days: 1095,
        }
    }
}

/// `[crypto]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CryptoConfig {
    /// The master key file, made by `brdo keys init` (never by the gateway:
    /// a fresh key would silently open none of the stored content).
    pub master_key_file: PathBuf,
    /// The envelope key signing every delivered message's label binding
    /// (PEM, Ed25519 or P-256; `brdo pki init` makes one). Its public half
    /// is published to recipients beside the audit key's. Default:
    /// `envelope-signing.key` in the folder of `audit.signing_key`, where
    /// `brdo pki init` writes both.
    pub envelope_signing_key: PathBuf,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        Self {
            master_key_file: "data/master.key".into(),
            envelope_signing_key: PathBuf::new(),
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The policy file.
    pub file: PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            file: "config/policy.toml".into(),
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds between retention sweeps; 0 turns the background sweeper off.
    pub sweep_interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            sweep_interval_secs: 300,
        }
    }
}

/// `url` with the password of its user part and any query (which may carry
/// one) replaced, so the effective configuration can be shown and recorded.
pub(crate) fn redact_url(url: &str) -> String {
    let (url, had_query) = match url.split_once('?') {
        Some((u, _)) => (u, true),
        None => (url, false),
    };
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or_default();
                    let hidden = if userinfo.contains(':') {
                        ":[redacted]"
                    } else {
                        ""
                    };
                    format!("{scheme}://{user}{hidden}@{host}{path}")
                }
                None => format!("{scheme}://{rest}"),
            }
        }
        None => url.to_owned(),
    };
    if had_query {
        out.push_str("?[redacted]");
    }
    out
}

fn serialize_redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// A configuration that cannot be used; the message names the file, key or
/// variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path} cannot be read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file or an override is not valid.
    #[error("config file {path}{location}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// ` line L column C` when known.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// An environment override names no known key or has a bad value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The envelope signing key file: `crypto.envelope_signing_key`, or
    /// `envelope-signing.key` beside `audit.signing_key`.
    pub(crate) fn envelope_key_path(&self) -> PathBuf {
        if self.crypto.envelope_signing_key.as_os_str().is_empty() {
            self.audit
                .signing_key
                .with_file_name(crate::pki::ENVELOPE_KEY_FILE)
        } else {
            self.crypto.envelope_signing_key.clone()
        }
    }

    /// The name this gateway writes into audit records and logs:
    /// `server.node`, or, when several nodes may share the database
    /// (PostgreSQL), `HOSTNAME:PORT` so that every record still names the
    /// node that wrote it. On SQLite there is one node and no default.
    pub(crate) fn node_name(&self) -> Option<String> {
        if self.server.node.is_some() || !self.database.is_postgres() {
            return self.server.node.clone();
        }
        Some(format!("{}:{}", host_name(), self.server.listen.port()))
    }

    /// The name command-line tools write into the records they append:
    /// `server.node`, or `HOSTNAME:cli` on PostgreSQL.
    pub(crate) fn tool_node_name(&self) -> Option<String> {
        if self.server.node.is_some() || !self.database.is_postgres() {
            return self.server.node.clone();
        }
        Some(format!("{}:cli", host_name()))
    }

    /// Reads a config file, applies `BRDO_*__*` overrides from the process
    /// environment and resolves relative paths.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("BRDO_"))
            .collect();
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_text(&text, path, base, &env)
    }

    /// Parses config text with the given overrides; `base` resolves relative
    /// paths. Split out from [`Config::load`] so tests need no files.
    pub(crate) fn from_text(
        text: &str,
        path: &Path,
        base: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let invalid =
            |span: Option<std::ops::Range<usize>>, message: String| ConfigError::Invalid {
                path: path.to_owned(),
                location: span
                    .map(|s| {
                        let (l, c) = line_col(text, s.start);
                        format!(" line {l} column {c}")
                    })
                    .unwrap_or_default(),
                message: message.trim_end().to_owned(),
            };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_owned()))?;
        for (var, value) in env {
            apply_override(&mut table, var, value)?;
        }
        let overridden = env.keys().any(|k| k.contains("__"));
        let mut config: Config = if overridden {
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Env {
                var: env
                    .keys()
                    .filter(|k| k.contains("__"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                message: e.message().trim_end().to_owned(),
            })?
        } else {
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_owned()))?
        };
        config.resolve_paths(base);
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        self.tls.client_ca.resolve(fix);
        fix(&mut self.tls.crl);
        fix(&mut self.audit.signing_key);
        if self.audit.public_key.as_os_str().is_empty() {
            self.audit.public_key = self.audit.signing_key.with_extension("pub");
        } else {
            fix(&mut self.audit.public_key);
        }
        fix(&mut self.crypto.master_key_file);
        if !self.crypto.envelope_signing_key.as_os_str().is_empty() {
            fix(&mut self.crypto.envelope_signing_key);
        }
        fix(&mut self.policy.file);
        fix(&mut self.storage.blob_dir);
        match &mut self.pki.dir {
            Some(dir) => fix(dir),
            None => self.pki.dir = self.tls.client_ca.first().parent().map(Path::to_path_buf),
        }
        if let Some(rest) = self.database.url.strip_prefix("sqlite://") {
            let (file, query) = rest
                .split_once('?')
                .map_or((rest, None), |(f, q)| (f, Some(q)));
            let p = Path::new(file);
            if p.is_relative() && file != ":memory:" {
                let joined = base.join(p);
                self.database.url = match query {
                    Some(q) => format!("sqlite://{}?{q}", joined.display()),
                    None => format!("sqlite://{}", joined.display()),
                };
            }
        }
    }

    /// The SQLite file, when the store is SQLite; used to keep data files
    /// beside it and by tests that inspect the file.
    #[cfg(test)]
    pub(crate) fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database.url.strip_prefix("sqlite://")?;
        Some(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
    }
}

/// Applies `BRDO_SECTION__KEY=value`; variables without `__` are not config
/// keys (e.g. `BRDO_TEST_PG_URL`) and are left alone.
fn apply_override(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = var.strip_prefix("BRDO_") else {
        return Ok(());
    };
    let Some((section, key)) = rest.split_once("__") else {
        return Ok(());
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    // Parse as a TOML value when it is one (numbers, booleans); otherwise a string.
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !matches!(v, toml::Value::Table(_)))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let entry = table
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => {
            t.insert(key, parsed);
            Ok(())
        }
        _ => Err(ConfigError::Env {
            var: var.to_owned(),
            message: format!("[{section}] is not a section"),
        }),
    }
}

/// The machine's host name (Linux), or `localhost` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_text(
            text,
            Path::new("/etc/brdo/gateway.toml"),
            Path::new("/etc/brdo"),
            &env,
        )
    }

    #[test]
    fn empty_file_gives_safe_defaults() {
        let c = load("", &[]).expect("defaults");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(c.server.max_body_bytes, 1_048_576);
        assert_eq!(c.server.max_header_bytes, 65_536);
        assert_eq!(
            (c.server.rate_limit_per_second, c.server.rate_limit_burst),
            (10_000, 20_000)
        );
        assert_eq!(c.server.shutdown_grace_secs, 10);
        assert_eq!(c.server.max_connections_per_identity, 0);
        assert_eq!(c.server.per_identity_connections(), 256);
        assert_eq!(
            (c.server.idle_timeout_secs, c.server.keep_alive_timeout_secs),
            (120, 20)
        );
        assert_eq!(
            (
                c.server.min_upload_bytes_per_second,
                c.server.upload_grace_secs
            ),
            (1024, 10)
        );
        assert_eq!(
            c.accreditation.max_classification,
            Classification::EuConfidential
        );
        assert_eq!(c.tls.min_version, TlsMinVersion::Tls13);
        assert_eq!(c.tls.cert, Path::new("/etc/brdo/certs/gateway.crt"));
        assert_eq!(c.database.url, "sqlite:///etc/brdo/data/brdo.db");
        assert_eq!(
            c.sqlite_path().as_deref(),
            Some(Path::new("/etc/brdo/data/brdo.db"))
        );
    }

    #[test]
    fn the_shipped_config_file_parses_with_the_documented_limits() {
        let c = load(include_str!("../config/gateway.toml"), &[]).expect("config/gateway.toml");
        assert_eq!(c.server.max_connections, 1024);
        assert_eq!(c.server.max_header_bytes, 65_536);
        assert_eq!(c.server.rate_limit_per_second, 10_000);
        assert_eq!(c.tls.min_version, TlsMinVersion::Tls13);
    }

    #[test]
    fn unknown_keys_are_errors_with_location() {
        let e = load("[accreditation]\nmax_clasification = \"EU_SECRET\"\n", &[])
            .expect_err("unknown key");
        let msg = e.to_string();
        assert!(
            msg.contains("line 2 column 1") && msg.contains("max_clasification"),
            "{msg}"
        );
        assert!(load("[nonsense]\n", &[]).is_err());
    }

    #[test]
    fn environment_overrides() {
        let c = load(
            "[database]\nurl = \"sqlite://a.db\"\n",
            &[
                ("BRDO_DATABASE__URL", "postgres://localhost/test"),
                ("BRDO_SERVER__MAX_BODY_BYTES", "2048"),
                ("BRDO_TEST_PG_URL", "ignored"),
            ],
        )
        .expect("overrides");
        assert_eq!(c.database.url, "postgres://localhost/test");
        assert_eq!(c.server.max_body_bytes, 2048);
        let e = load("", &[("BRDO_SERVER__NOPE", "1")]).expect_err("unknown override");
        assert!(e.to_string().contains("BRDO_SERVER__NOPE"), "{e}");
    }

    #[test]
    fn client_ca_is_one_file_or_a_list() {
        let one = load("[tls]\nclient_ca = \"a/ca.crt\"\n", &[]).expect("one");
        assert_eq!(one.tls.client_ca.files(), [Path::new("/etc/brdo/a/ca.crt")]);
        assert_eq!(one.pki.dir.as_deref(), Some(Path::new("/etc/brdo/a")));
        // One file is written back as a string: the digest of an existing
        // configuration does not change.
        let v = serde_json::to_value(&one.tls).expect("json");
        assert_eq!(v["client_ca"], "/etc/brdo/a/ca.crt");

        let many = load(
            "[tls]\nclient_ca = [\"own/ca.crt\", \"/other/ca.crt\"]\n",
            &[],
        )
        .expect("list");
        assert_eq!(
            many.tls.client_ca.files(),
            [
                Path::new("/etc/brdo/own/ca.crt"),
                Path::new("/other/ca.crt")
            ]
        );
        assert_eq!(many.pki.dir.as_deref(), Some(Path::new("/etc/brdo/own")));
        let v = serde_json::to_value(&many.tls).expect("json");
        assert_eq!(
            v["client_ca"],
            serde_json::json!(["/etc/brdo/own/ca.crt", "/other/ca.crt"])
        );

        for bad in ["client_ca = []", "client_ca = 3", "client_ca = [1]"] {
            let e = load(&format!("[tls]\n{bad}\n"), &[]).expect_err(bad);
            // Named by line and column, as every config error.
            assert!(e.to_string().contains("line 2"), "{bad}: {e}");
        }
        let env = load("", &[("BRDO_TLS__CLIENT_CA", "/env/ca.crt")]).expect("env");
        assert_eq!(env.tls.client_ca.files(), [Path::new("/env/ca.crt")]);
    }

    #[test]
    fn audit_public_key_defaults_beside_the_signing_key() {
        let c = load("", &[]).expect("defaults");
        assert_eq!(
            c.audit.public_key,
            Path::new("/etc/brdo/certs/audit-signing.pub")
        );
        let c = load("[audit]\nsigning_key = \"/keys/audit-signing.key\"\n", &[]).expect("moved");
        assert_eq!(c.audit.public_key, Path::new("/keys/audit-signing.pub"));
        let c = load("[audit]\nsigning_key = \"k/sign.pem\"\n", &[]).expect("other name");
        assert_eq!(c.audit.public_key, Path::new("/etc/brdo/k/sign.pub"));
        let c = load(
            "[audit]\nsigning_key = \"/keys/a.key\"\npublic_key = \"elsewhere/a.pub\"\n",
            &[],
        )
        .expect("explicit");
        assert_eq!(c.audit.public_key, Path::new("/etc/brdo/elsewhere/a.pub"));
    }

    #[test]
    fn absolute_paths_stay() {
        let c = load(
            "[tls]\ncert = \"/x/gw.crt\"\n[database]\nurl = \"sqlite:///var/brdo.db\"\n",
            &[],
        )
        .expect("ok");
        assert_eq!(c.tls.cert, Path::new("/x/gw.crt"));
        assert_eq!(c.database.url, "sqlite:///var/brdo.db");
    }
}
