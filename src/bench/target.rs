//! What the load runs against: a gateway of the benchmark's own, a running
//! gateway, or the baseline echo server.
//!
//! The own gateway is a child process (`brdo serve` from this same binary)
//! in a temporary directory with a fresh PKI, the demo policy and a SQLite
//! file, so the CPU and peak memory read from its `/proc` entry are the
//! gateway's alone, not the load generator's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::StatusCode;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::BenchError;
use super::options::{Parties, TargetSpec};
use super::scenario::Endpoint;
use brdo::config::{Config, TlsConfig};
use brdo::pki::{self, Subject};
use brdo::tls::{Connections, ServeOptions, TlsMaterial, TlsState};

fn setup(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("{what}: {e}"))
}

/// A prepared target.
#[derive(Debug)]
pub struct Prepared {
    /// The gateway's mTLS address.
    pub addr: SocketAddr,
    /// The PKI directory.
    pub pki: PathBuf,
    /// The gateway's process, when known.
    pub server_pid: Option<u32>,
    parties: Parties,
    own: Option<(Child, PathBuf)>,
}

impl Prepared {
    /// Where and as whom workers connect; `echo` for the baseline.
    pub fn endpoint(&self, addr: SocketAddr, echo: bool) -> Endpoint {
        Endpoint {
            addr,
            pki: self.pki.clone(),
            parties: self.parties.clone(),
            echo,
            sent: None,
        }
    }

    /// Stops the own gateway and deletes its directory.
    pub fn stop(mut self) {
        if let Some((mut child, dir)) = self.own.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some((child, dir)) = &mut self.own {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Prepares `spec`: for [`TargetSpec::Own`], creates and starts a gateway.
pub async fn prepare(spec: &TargetSpec, parties: &Parties) -> Result<Prepared, BenchError> {
    match spec {
        TargetSpec::Running {
            addr,
            pki,
            server_pid,
        } => Ok(Prepared {
            addr: *addr,
            pki: pki.clone(),
            server_pid: *server_pid,
            parties: parties.clone(),
            own: None,
        }),
        TargetSpec::Own { database } => start_own(parties, database.as_deref()).await,
    }
}

/// A free local port (bound and released; the gateway binds it again).
fn free_port() -> Result<SocketAddr, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| setup("finding a free port", e))
}

/// The own gateway's configuration; `database` is a TOML string literal.
fn own_config(addr: SocketAddr, metrics: SocketAddr, database: &str) -> String {
    format!(
        "[server]\nlisten = \"{addr}\"\nmetrics_listen = \"{metrics}\"\n\
         max_connections_per_identity = 1024\n\
         rate_limit_per_second = 0\n\
         [tls]\ncert = \"pki/gateway.crt\"\nkey = \"pki/gateway.key\"\n\
         client_ca = \"pki/ca.crt\"\ncrl = \"pki/ca.crl\"\n\
         [database]\nurl = {database}\n\
         [audit]\nsigning_key = \"pki/audit-signing.key\"\npublic_key = \"pki/audit-signing.pub\"\n\
         [crypto]\nmaster_key_file = \"data/master.key\"\n\
         [storage]\nblob_dir = \"data/blobs\"\n\
         [policy]\nfile = \"policy.toml\"\n"
    )
}

/// Writes a PKI, policy and config under `dir`; returns the config path.
/// `database` is the gateway's database URL, a SQLite file in `dir` when
/// `None`.
pub fn write_own(
    dir: &Path,
    parties: &Parties,
    addr: SocketAddr,
    metrics: SocketAddr,
    database: Option<&str>,
) -> Result<PathBuf, BenchError> {
    let pki_dir = dir.join("pki");
    let now = OffsetDateTime::now_utc();
    pki::init(&pki_dir, &[], now).map_err(|e| setup("pki init", e))?;
    for p in std::iter::once(&parties.sender).chain(&parties.recipients) {
        pki::issue(
            &pki_dir,
            &Subject::Partner(p.clone()),
            30,
            "brdo-bench",
            now,
        )
        .map_err(|e| setup("pki issue", e))?;
    }
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(dir.join("data"))
        .map_err(|e| setup("data directory", e))?;
    brdo::crypto::MasterKey::create(&dir.join("data").join("master.key"))
        .map_err(|e| setup("master key", e))?;
    std::fs::write(dir.join("policy.toml"), brdo_tools::demo_data::POLICY)
        .map_err(|e| setup("policy.toml", e))?;
    let config = dir.join("gateway.toml");
    let database = toml::Value::String(database.unwrap_or("sqlite://data/brdo.db").to_owned());
    std::fs::write(&config, own_config(addr, metrics, &database.to_string()))
        .map_err(|e| setup("gateway.toml", e))?;
    Ok(config)
}

/// Writes the files and starts `brdo serve` on them; returns the child and
/// its address.
fn spawn_own(
    dir: &Path,
    parties: &Parties,
    database: Option<&str>,
) -> Result<(Child, SocketAddr), BenchError> {
    let addr = free_port()?;
    let config = write_own(dir, parties, addr, free_port()?, database)?;
    let exe = std::env::current_exe().map_err(|e| setup("finding the brdo binary", e))?;
    let log =
        std::fs::File::create(dir.join("gateway.log")).map_err(|e| setup("gateway.log", e))?;
    let child = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| setup("starting brdo serve", e))?;
    Ok((child, addr))
}

async fn start_own(parties: &Parties, database: Option<&str>) -> Result<Prepared, BenchError> {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("brdo-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| setup("temporary directory", e))?;
    let (child, addr) = match spawn_own(&dir, parties, database) {
        Ok(c) => c,
        Err(e) => {
            // Nothing may stay behind: the directory holds a CA key.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let mut prepared = Prepared {
        addr,
        pki: dir.join("pki"),
        server_pid: Some(child.id()),
        parties: parties.clone(),
        own: Some((child, dir.clone())),
    };
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(prepared);
        }
        if let Some((child, _)) = &mut prepared.own
            && let Ok(Some(status)) = child.try_wait()
        {
            let log = std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(BenchError::Setup(format!(
                "the benchmark's gateway exited ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(BenchError::Setup(format!(
        "the benchmark's gateway did not listen on {addr} within 30 s"
    )))
}

/// What a baseline's handler does before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineKind {
    /// Nothing: `202 Accepted`.
    Echo,
    /// Stores the request body as one row through the store's own writer
    /// (`brdo::store::Store::open_durable_echo`): `201 Created` once the
    /// batch holding it is durable, `503` if it failed.
    Durable,
}

impl BaselineKind {
    /// The name of its run in the report.
    pub fn label(self) -> &'static str {
        match self {
            Self::Echo => "baseline",
            Self::Durable => "durable",
        }
    }
}

/// A baseline: the gateway's TLS configuration and accept loop
/// ([`brdo::tls::serve`]) in this process, with a handler that answers
/// every request after doing what its [`BaselineKind`] says.
#[derive(Debug)]
pub struct Baseline {
    /// Its address.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// The durable echo's temporary directory (its SQLite files).
    dir: Option<PathBuf>,
}

impl Baseline {
    /// Starts it with `gateway.crt`/`.key`, `ca.crt` and `ca.crl` from
    /// `pki`, on a free local port, with the gateway's default limits.
    pub async fn start(pki: &Path, kind: BaselineKind) -> Result<Self, BenchError> {
        let defaults = Config::default();
        let tls_cfg = TlsConfig {
            cert: pki.join("gateway.crt"),
            key: pki.join("gateway.key"),
            client_ca: pki.join("ca.crt").into(),
            crl: pki.join("ca.crl"),
            ..defaults.tls.clone()
        };
        let material = TlsMaterial::load(&tls_cfg, &brdo::tls::PolicyTrust::default())
            .map_err(|e| setup("baseline TLS", e))?;
        let tls = Arc::new(
            TlsState::new(&material, tls_cfg.min_version).map_err(|e| setup("baseline TLS", e))?,
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| setup("baseline listener", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| setup("baseline listener", e))?;
        let (app, dir) = match kind {
            BaselineKind::Echo => (
                Router::new().fallback(|| async { StatusCode::ACCEPTED }),
                None,
            ),
            BaselineKind::Durable => {
                let (app, dir) = durable_app().await?;
                (app, Some(dir))
            }
        };
        let mut opts = ServeOptions::from_config(&defaults.server);
        // The load comes from one identity; like the benchmark's own
        // gateway, the baseline lets it use every connection slot.
        opts.max_connections_per_identity = opts.max_connections;
        let (shutdown, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(brdo::tls::serve(
            listener,
            tls,
            app,
            opts,
            Arc::new(Connections::default()),
            async {
                let _ = rx.await;
            },
        ));
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            task,
            dir,
        })
    }

    /// Stops it, waits for its connections to end and deletes the durable
    /// echo's files.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The durable echo's handler on a store of its own in a new temporary
/// directory; returns the router and the directory.
async fn durable_app() -> Result<(Router, PathBuf), BenchError> {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir =
        std::env::temp_dir().join(format!("brdo-bench-durable-{}-{nanos}", std::process::id()));
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .map_err(|e| setup("durable echo directory", e))?;
    let store = match brdo::store::Store::open_durable_echo(&dir.join("echo.db")).await {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(setup("durable echo database", e));
        }
    };
    let app = Router::new().fallback(move |body: axum::body::Bytes| {
        let store = store.clone();
        async move {
            match store.append_echo_row(body.to_vec()).await {
                Ok(()) => StatusCode::CREATED,
                Err(_) => StatusCode::SERVICE_UNAVAILABLE,
            }
        }
    });
    Ok((app, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_gateway_gets_the_database_it_is_given() {
        let parties = Parties {
            sender: "AL-CTD".into(),
            recipients: vec!["RS-MOI".into()],
        };
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        for (given, expected) in [
            (None, "sqlite://data/brdo.db"),
            (
                Some("postgres://u@127.0.0.1:5432/b\"x"),
                "postgres://u@127.0.0.1:5432/b\"x",
            ),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = write_own(dir.path(), &parties, addr, addr, given).expect("write");
            let text = std::fs::read_to_string(path).expect("read");
            let config: toml::Value = toml::from_str(&text).expect("valid TOML");
            assert_eq!(config["database"]["url"].as_str(), Some(expected), "{text}");
        }
    }
}
