//! A demo gateway: a directory with its own PKI, configuration, policy,
//! SQLite database and master key, and the gateway running on it.
//!
//! The quickstart runs one; a federation scenario would run several side by
//! side, each a [`Site`] in its own directory on its own ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use brdo::gateway::Gateway;
use brdo::pki::{self, Subject};
use brdo::telemetry::Telemetry;
use brdo_tools::client::Client;

use super::{DEMO_P12_PASSWORD, DEMO_POLICY};

/// The configuration a demo site starts with; paths are relative to the
/// file so the directory can be moved.
fn config_text(listen: &str, metrics_listen: &str, gateway_id: Option<&str>) -> String {
    let federation = gateway_id.map_or_else(String::new, |id| {
        format!(
            "\n[federation]\nid = \"{id}\"\n# Quick retries: the demo's peers start together.\n\
             initial_backoff_ms = 100\nmax_backoff_secs = 2\nrequest_timeout_secs = 5\n"
        )
    });
    let mut text = format!(
        r#"# Written by `brdo demo`; paths are relative to this file.
[server]
listen = "{listen}"
metrics_listen = "{metrics_listen}"

[tls]
cert = "pki/gateway.crt"
key = "pki/gateway.key"
client_ca = "pki/ca.crt"
crl = "pki/ca.crl"

[database]
url = "sqlite://data/brdo.db"

[audit]
signing_key = "pki/audit-signing.key"
public_key = "pki/audit-signing.pub"

[crypto]
master_key_file = "data/master.key"

[policy]
file = "policy.toml"
"#
    );
    text.push_str(&federation);
    text
}

/// Where a demo gateway lives and listens. Kept between runs: a second run
/// reuses the PKI, database and key, so earlier messages and the audit log
/// are still there.
#[derive(Debug, Clone)]
pub struct Site {
    /// The directory holding `pki/`, `data/`, `gateway.toml` and
    /// `policy.toml`.
    pub dir: PathBuf,
    /// `server.listen` written into a new configuration.
    pub listen: String,
    /// `server.metrics_listen` written into a new configuration.
    pub metrics_listen: String,
    /// This gateway's id among gateways (`[federation] id`, and a PKI made
    /// by `pki init --gateway-id`); `None` for a gateway on its own.
    pub gateway_id: Option<String>,
    /// The partners this gateway serves, each given a partner and a DPO
    /// certificate.
    pub partners: &'static [&'static str],
}

impl Site {
    /// The PKI directory (CA, gateway and client certificates, PKCS#12
    /// files, audit and envelope keys).
    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The gateway configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("gateway.toml")
    }

    /// The data directory (database, master key, blobs, the demo's log).
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Creates what is missing: PKI (every demo partner's and DPO's
    /// certificate, the operator's, all with the demo PKCS#12 password),
    /// master key, configuration and policy. What exists is kept.
    pub fn prepare(&self) -> Result<(), String> {
        let pki_dir = self.pki();
        let now = OffsetDateTime::now_utc();
        if !pki_dir.join(pki::CA_KEY_FILE).exists() {
            pki::init_gateway(&pki_dir, &[], self.gateway_id.as_deref(), now)
                .map_err(|e| e.to_string())?;
            let mut subjects = Vec::new();
            for p in self.partners {
                subjects.push(Subject::Partner((*p).to_owned()));
                subjects.push(Subject::Dpo((*p).to_owned()));
            }
            // init's own operator and DPO certificates get the demo password too.
            subjects.push(Subject::Operator("admin".into()));
            subjects.push(Subject::Dpo("gateway".into()));
            for subject in &subjects {
                pki::issue(&pki_dir, subject, 365, DEMO_P12_PASSWORD, now)
                    .map_err(|e| e.to_string())?;
            }
        }
        // A demo directory from before label binding gets its envelope key.
        pki::ensure_envelope_key(&pki_dir).map_err(|e| e.to_string())?;
        // The demo is an explicit init step: it makes the master key on its
        // first run (a gateway never does).
        let key = self.data().join("master.key");
        if !key.exists() {
            brdo::crypto::MasterKey::create(&key).map_err(|e| e.to_string())?;
        }
        write_new(&self.config(), &self.config_text())?;
        write_new(&self.policy(), DEMO_POLICY)
    }

    /// The policy file.
    pub fn policy(&self) -> PathBuf {
        self.dir.join("policy.toml")
    }

    /// The configuration this site's fields describe.
    pub fn config_text(&self) -> String {
        config_text(
            &self.listen,
            &self.metrics_listen,
            self.gateway_id.as_deref(),
        )
    }

    /// Starts the gateway on the prepared directory, its metrics reported
    /// to `telemetry`. A failure is printed and given as the exit code.
    pub async fn start(self, telemetry: &Telemetry) -> Result<DemoGateway, u8> {
        let gateway = super::super::serve::start(
            &self.config(),
            telemetry,
            " (is another gateway or demo already running?)",
        )
        .await?;
        Ok(DemoGateway {
            site: self,
            gateway,
            runtime: None,
        })
    }

    /// Starts the gateway on a runtime of its own, whose threads (and its
    /// store's writer thread) log to this site's `data/gateway.log` as well
    /// as the console: several gateways in one process, each with its own
    /// log. It listens where the site says, whatever `BRDO_SERVER__LISTEN`
    /// says, since its peers were told that address.
    pub async fn start_apart(self, telemetry: &Telemetry) -> Result<DemoGateway, String> {
        let name = self.gateway_id.clone().unwrap_or_else(|| "gateway".into());
        let mut config = brdo::config::Config::load(&self.config()).map_err(|e| e.to_string())?;
        let addr = |s: &str| {
            s.parse::<SocketAddr>()
                .map_err(|e| format!("{name}: address {s}: {e}"))
        };
        config.server.listen = addr(&self.listen)?;
        config.server.metrics_listen = addr(&self.metrics_listen)?;
        let log_path = self.data().join(super::LOG_FILE);
        let log = super::open_log(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let dispatch = telemetry.dispatch_with_file(log);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("brdo-{name}"))
            .enable_all()
            .on_thread_start(move || {
                // The guard would restore the process-wide subscriber when
                // dropped; this thread keeps the gateway's for its life.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .map_err(|e| format!("{name}: cannot start its runtime: {e}"))?;
        let started = runtime
            .spawn(async move { Gateway::start(&config).await })
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        match started {
            Ok(gateway) => {
                telemetry.observe(gateway.app.metrics.clone());
                Ok(DemoGateway {
                    site: self,
                    gateway,
                    runtime: Some(runtime),
                })
            }
            Err(e) => {
                runtime.shutdown_background();
                Err(format!("{name}: {e} (is another demo already running?)"))
            }
        }
    }
}

fn write_new(path: &Path, text: &str) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A running demo gateway and the site it runs on.
pub struct DemoGateway {
    site: Site,
    gateway: Gateway,
    /// The runtime of a gateway started apart ([`Site::start_apart`]).
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for DemoGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoGateway")
            .field("site", &self.site)
            .field("addr", &self.gateway.addr)
            .finish_non_exhaustive()
    }
}

impl DemoGateway {
    /// The address it listens on (the port may be ephemeral).
    pub fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// Its directory and files.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// An mTLS client with the certificate `stem` (`partner-AL-CTD`,
    /// `dpo-gateway` …) from this site's PKI.
    pub fn client(&self, stem: &str) -> Result<Client, String> {
        Client::from_pki(&self.site.pki(), stem, self.addr()).map_err(|e| format!("{stem}: {e}"))
    }

    /// Drains open requests and stops (and its own runtime, if it has one).
    pub async fn stop(self) {
        let Self {
            gateway, runtime, ..
        } = self;
        match runtime {
            None => gateway.stop().await,
            Some(runtime) => {
                let _ = runtime.spawn(gateway.stop()).await;
                runtime.shutdown_background();
            }
        }
    }
}
