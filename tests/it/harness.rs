//! The shared test harness: a PKI, a running gateway, clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use brdo::config::Config;
use brdo::gateway::Gateway;
use brdo::pki::{self, Subject};
use brdo::store::test_db::PgTestDb;
use brdo_tools::client::{Client, ClientResponse, Protocol};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// Partners of the demo policy, each with a partner and a DPO certificate.
pub const PARTNERS: &[&str] = brdo_tools::demo_data::PARTNERS;
/// PKCS#12 password of test certificates.
pub const P12_PASSWORD: &str = "test-password";

/// A PKI directory with every certificate the tests use.
pub struct Pki {
    /// The directory.
    pub dir: PathBuf,
    /// A second, unrelated CA with a partner certificate.
    pub foreign: PathBuf,
    _keep: tempfile::TempDir,
}

impl Pki {
    /// Builds a fresh PKI (use when a test revokes or rotates).
    pub fn create() -> Pki {
        let keep = tempfile::tempdir().expect("tempdir");
        let dir = keep.path().join("pki");
        let now = OffsetDateTime::now_utc();
        pki::init(&dir, &[], now).expect("pki init");
        for p in PARTNERS {
            pki::issue(&dir, &Subject::Partner((*p).into()), 30, P12_PASSWORD, now)
                .expect("issue partner");
            pki::issue(&dir, &Subject::Dpo((*p).into()), 30, P12_PASSWORD, now).expect("issue dpo");
        }
        let custom = |stem: &str, uris: &[&str], from: OffsetDateTime, to: OffsetDateTime| {
            let uris: Vec<String> = uris.iter().map(|u| (*u).to_owned()).collect();
            pki::issue_custom(&dir, stem, &uris, from, to, P12_PASSWORD).expect("issue custom");
        };
        let later = now + Duration::days(30);
        custom("no-uri", &[], now - Duration::minutes(5), later);
        custom(
            "two-uris",
            &["urn:brdo:partner:AL-CTD", "urn:brdo:partner:RS-MOI"],
            now - Duration::minutes(5),
            later,
        );
        custom(
            "unknown-partner",
            &["urn:brdo:partner:ZZ-UNKNOWN"],
            now - Duration::minutes(5),
            later,
        );
        custom(
            "malformed-uri",
            &["urn:brdo:partner:al-ctd"],
            now - Duration::minutes(5),
            later,
        );
        custom(
            "expired",
            &["urn:brdo:partner:AL-CTD"],
            now - Duration::days(30),
            now - Duration::days(1),
        );
        let foreign = keep.path().join("foreign");
        pki::init(&foreign, &[], now).expect("foreign init");
        pki::issue(
            &foreign,
            &Subject::Partner("AL-CTD".into()),
            30,
            P12_PASSWORD,
            now,
        )
        .expect("foreign issue");
        Pki {
            dir,
            foreign,
            _keep: keep,
        }
    }

    /// One PKI shared by all tests that do not change it (certificates are
    /// slow to make).
    pub fn shared() -> &'static Pki {
        static SHARED: OnceLock<Pki> = OnceLock::new();
        SHARED.get_or_init(Pki::create)
    }
}

/// The database a test gateway runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// A SQLite file in the test's data directory.
    Sqlite,
    /// A fresh PostgreSQL database of its own.
    Postgres,
}

/// Set to `postgres` to run every integration test's gateway on a fresh
/// PostgreSQL database (server from `BRDO_TEST_POSTGRES_URL`); `.ci/test`
/// runs the suite both ways. Tests that reach into the SQLite file itself
/// ask for SQLite with [`TestGateway::start_sqlite_with`].
pub const DATABASE_VAR: &str = "BRDO_TEST_DATABASE";

/// The backend chosen by [`DATABASE_VAR`].
pub fn default_db() -> DbKind {
    match std::env::var(DATABASE_VAR).as_deref() {
        Ok("postgres") => DbKind::Postgres,
        Ok("sqlite") | Err(_) => DbKind::Sqlite,
        Ok(other) => panic!("{DATABASE_VAR}={other}: use sqlite or postgres"),
    }
}

/// What a test gateway leaves behind: its data directory and, on
/// PostgreSQL, its database. Restart a gateway on them, or drop to delete.
pub struct Files {
    /// The temporary directory (PKI-independent data, config files).
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, when the gateway ran on one.
    #[expect(dead_code, reason = "held for its Drop, which drops the database")]
    pub pg: Option<PgTestDb>,
}

/// A running gateway with its own data directory.
pub struct TestGateway {
    /// The gateway.
    pub gateway: Gateway,
    /// Its configuration.
    pub config: Config,
    /// The PKI directory its clients use.
    pub pki: PathBuf,
    /// Data directory (database, master key).
    pub data: PathBuf,
    files: Files,
}

/// Builds the configuration of a test gateway.
pub fn test_config(pki: &Path, data: &Path) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().expect("addr");
    c.server.metrics_listen = "127.0.0.1:0".parse().expect("addr");
    c.tls.cert = pki.join("gateway.crt");
    c.tls.key = pki.join("gateway.key");
    c.tls.client_ca = pki.join("ca.crt").into();
    c.tls.crl = pki.join("ca.crl");
    c.audit.signing_key = pki.join("audit-signing.key");
    c.audit.public_key = pki.join("audit-signing.pub");
    c.pki.dir = Some(pki.to_owned());
    c.database.url = format!("sqlite://{}", data.join("brdo.db").display());
    c.crypto.master_key_file = data.join("master.key");
    c.crypto.envelope_signing_key = pki.join("envelope-signing.key");
    c.policy.file = data.join("policy.toml");
    c.storage.blob_dir = data.join("blobs");
    // Tests sweep explicitly; a background sweep would race them.
    c.retention.sweep_interval_secs = 0;
    c
}

impl TestGateway {
    /// A gateway on the shared PKI with default settings.
    pub async fn start() -> TestGateway {
        Self::start_with(&Pki::shared().dir, |_| {}).await
    }

    /// A gateway on `pki`, with settings adjusted by `tweak`, on the
    /// backend [`DATABASE_VAR`] names.
    pub async fn start_with(pki: &Path, tweak: impl FnOnce(&mut Config)) -> TestGateway {
        Self::start_on(default_db(), pki, tweak).await
    }

    /// A gateway on a SQLite file, whatever [`DATABASE_VAR`] says: for
    /// tests that open the file itself.
    pub async fn start_sqlite_with(pki: &Path, tweak: impl FnOnce(&mut Config)) -> TestGateway {
        Self::start_on(DbKind::Sqlite, pki, tweak).await
    }

    /// A gateway on `db`.
    pub async fn start_on(db: DbKind, pki: &Path, tweak: impl FnOnce(&mut Config)) -> TestGateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // Owner-only, as the gateway requires of a data directory.
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&data)
            .expect("data dir");
        std::fs::write(data.join("policy.toml"), brdo_tools::demo_data::POLICY).expect("policy");
        let mut config = test_config(pki, &data);
        let pg = match db {
            DbKind::Sqlite => None,
            DbKind::Postgres => {
                let pg = PgTestDb::create()
                    .await
                    .expect("BRDO_TEST_DATABASE=postgres needs a PostgreSQL server");
                config.database.url = pg.url.clone();
                Some(pg)
            }
        };
        tweak(&mut config);
        // The gateway never makes a master key itself (`brdo keys init`).
        brdo::crypto::MasterKey::create(&config.crypto.master_key_file).expect("master key");
        let gateway = Gateway::start(&config).await.expect("gateway starts");
        TestGateway {
            gateway,
            config,
            pki: pki.to_owned(),
            data,
            files: Files { dir, pg },
        }
    }

    /// Starts a gateway again on the files a stopped one left (`stop`'s guard).
    pub async fn restart(files: Files, config: Config, pki: &Path) -> TestGateway {
        let data = files.dir.path().join("data");
        let gateway = Gateway::start(&config).await.expect("gateway restarts");
        TestGateway {
            gateway,
            config,
            pki: pki.to_owned(),
            data,
            files,
        }
    }

    /// A second node of the same gateway: same database, PKI, keys and
    /// attachment directory, its own listeners and node name. Stop it
    /// before the first (which owns the files).
    pub async fn another_node(&self, node: &str) -> TestGateway {
        let mut config = self.config.clone();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.metrics_listen = "127.0.0.1:0".parse().expect("addr");
        config.server.node = Some(node.to_owned());
        let gateway = Gateway::start(&config).await.expect("second node starts");
        TestGateway {
            gateway,
            config,
            pki: self.pki.clone(),
            data: self.data.clone(),
            files: Files {
                dir: tempfile::tempdir().expect("tempdir"),
                pg: None,
            },
        }
    }

    /// Which database this gateway runs on.
    pub fn db_kind(&self) -> DbKind {
        if self.config.database.is_postgres() {
            DbKind::Postgres
        } else {
            DbKind::Sqlite
        }
    }

    /// A connection pool on the gateway's database, as an auditor or an
    /// attacker with database access would have.
    pub async fn db(&self) -> sqlx::AnyPool {
        open_db(&self.config.database.url).await
    }

    /// The API address.
    pub fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// A client presenting `<stem>.crt` from the gateway's PKI.
    pub fn client(&self, stem: &str) -> Client {
        Client::from_pki(&self.pki, stem, self.addr()).expect("client")
    }

    /// A partner's client.
    pub fn partner(&self, id: &str) -> Client {
        self.client(&format!("partner-{id}"))
    }

    /// A client speaking HTTP/2.
    pub fn partner_h2(&self, id: &str) -> Client {
        self.partner(id).with_protocol(Protocol::Http2)
    }

    /// Number of audit records.
    pub async fn audit_size(&self) -> u64 {
        self.gateway
            .app
            .store
            .audit_size()
            .await
            .expect("audit size")
    }

    /// The audit record with this seq, as served to DPOs.
    pub async fn audit_record(&self, seq: u64) -> Value {
        let page = self
            .gateway
            .app
            .store
            .audit_page(seq - 1, 1)
            .await
            .expect("read audit");
        let (rec, reduced) = page
            .into_iter()
            .next()
            .filter(|(r, _)| r.seq == seq)
            .expect("record exists");
        brdo::api::audit::record_json(&rec, reduced)
    }

    /// The audit record of a response: the one `Brdo-Audit-Seq` names
    /// (DPOs and operators get it), else the one carrying its
    /// `Brdo-Request-Id` (partners get no sequence number).
    pub async fn audit_of(&self, resp: &ClientResponse) -> Value {
        if let Some(seq) = resp.header("brdo-audit-seq") {
            return self.audit_record(seq.parse().expect("seq")).await;
        }
        let id = resp
            .header("brdo-request-id")
            .expect("Brdo-Request-Id header")
            .to_owned();
        self.audit_by_request(&id)
            .await
            .unwrap_or_else(|| panic!("no audit record carries request id {id}"))
    }

    /// The audit record of request `id`, newest first search.
    pub async fn audit_by_request(&self, id: &str) -> Option<Value> {
        let n = self.audit_size().await;
        for seq in (1..=n).rev() {
            let rec = self.audit_record(seq).await;
            if rec["request_id"] == id {
                return Some(rec);
            }
        }
        None
    }

    /// Rows in a table of the gateway's database (read directly, as an
    /// auditor would).
    pub async fn count(&self, table: &str) -> i64 {
        let pool = self.db().await;
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .expect("count");
        pool.close().await;
        n
    }

    /// Stops the gateway; the returned guard keeps its files until dropped.
    pub async fn stop(self) -> Files {
        self.gateway.stop().await;
        self.files
    }
}

/// A one-connection pool on a database URL of either backend.
pub async fn open_db(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("open the gateway's database")
}

/// Officer header.
pub const OFFICER: (&str, &str) = ("brdo-officer", "insp.hoxha");
/// Justification header.
pub const JUSTIFICATION: (&str, &str) = ("brdo-justification", "Case AL-2026-0042: border alert");

/// A valid message from AL-CTD to RS-MOI and EU-ECTC.
pub fn message() -> Value {
    json!({
        "recipients": ["RS-MOI", "EU-ECTC"],
        "subject": "Travel of a returning foreign terrorist fighter",
        "body": "Details follow.",
        "content_type": "text/plain",
        "label": {
            "classification": "EU_RESTRICTED",
            "handling_codes": ["H0", "H2", "H3"],
            "h3_text": "Not to be shared with border police units.",
            "releasable_to": ["RS-MOI", "EU-ECTC"],
            "review_on": "2029-11-21"
        },
        "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
        "purpose": "investigation",
        "personal_data": {
            "subjects": ["suspect"],
            "special_categories": [],
            "special_categories_basis": null,
            "minors": false
        },
        "case_ref": "AL-2026-0042",
        "in_reply_to": null,
        "attachments": [],
        "retention_days": 365
    })
}

/// Submits `msg` as `from` with an officer; returns the response.
pub async fn submit(gw: &TestGateway, from: &str, msg: &Value) -> ClientResponse {
    gw.partner(from)
        .post_json("/v1/messages", &[OFFICER], msg)
        .await
        .expect("submit request")
}

/// Submits the standard message from AL-CTD and returns its id.
pub async fn submit_ok(gw: &TestGateway) -> String {
    let resp = submit(gw, "AL-CTD", &message()).await;
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    resp.json()["id"].as_str().expect("id").to_owned()
}

/// Asserts a problem document with `status` and `code`; returns it.
pub fn assert_problem(resp: &ClientResponse, status: u16, code: &str) -> Value {
    assert_eq!(
        resp.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    let v = resp.json();
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["type"], format!("urn:brdo:error:{code}"));
    assert_eq!(v["status"], status);
    assert!(v["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(v["detail"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(v["request_id"].as_str(), resp.header("brdo-request-id"));
    v
}

/// Runs the `brdo` binary.
pub fn brdo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(args)
        .output()
        .expect("run brdo")
}

/// Bytes as text, for messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes the gateway's config as a TOML file for the CLI; returns its path.
pub fn write_config(gw: &TestGateway) -> PathBuf {
    let c = &gw.config;
    let toml = format!(
        "[database]\nurl = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = [{}]\ncrl = \"{}\"\n\
         [crypto]\nmaster_key_file = \"{}\"\nenvelope_signing_key = \"{}\"\n[policy]\nfile = \"{}\"\n[storage]\nblob_dir = \"{}\"\n\
         [retention]\nsweep_interval_secs = 0\n[audit]\nsigning_key = \"{}\"\npublic_key = \"{}\"\n\
         checkpoint_every = {}\nretention_days = {}\n",
        c.database.url,
        c.tls.cert.display(),
        c.tls.key.display(),
        c.tls
            .client_ca
            .files()
            .iter()
            .map(|p| format!("\"{}\"", p.display()))
            .collect::<Vec<_>>()
            .join(", "),
        c.tls.crl.display(),
        c.crypto.master_key_file.display(),
        c.crypto.envelope_signing_key.display(),
        c.policy.file.display(),
        c.storage.blob_dir.display(),
        c.audit.signing_key.display(),
        c.audit.public_key.display(),
        c.audit.checkpoint_every,
        c.audit.retention_days,
    );
    let path = gw.data.join("gateway.toml");
    std::fs::write(&path, toml).expect("config");
    path
}

/// Uploads `bytes` as `partner`.
pub async fn upload(
    gw: &TestGateway,
    partner: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> ClientResponse {
    gw.partner(partner)
        .request(
            hyper::Method::POST,
            "/v1/attachments",
            &[OFFICER, ("content-type", content_type)],
            Some(bytes),
        )
        .await
        .expect("upload")
}

/// Reads a message as `partner` with officer and justification.
pub async fn read(gw: &TestGateway, partner: &str, id: &str) -> ClientResponse {
    gw.partner(partner)
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read")
}

/// POSTs JSON as `partner` with an officer.
pub async fn post(gw: &TestGateway, partner: &str, path: &str, body: &Value) -> ClientResponse {
    gw.partner(partner)
        .post_json(path, &[OFFICER], body)
        .await
        .expect("post")
}

/// Sends `msg` from `from` and returns the new id, asserting 201.
pub async fn send(gw: &TestGateway, from: &str, msg: &Value) -> String {
    let r = submit(gw, from, msg).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    r.json()["id"].as_str().expect("id").to_owned()
}

/// A TLS connection presenting `<stem>.crt` from `pki`, speaking nothing
/// yet: for tests that write raw HTTP/1.1 bytes (slow clients, streamed
/// uploads) where [`Client`] would send whole requests.
pub async fn raw_tls(
    pki: &Path,
    stem: &str,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    tls_over(pki, stem, Protocol::Http1, tcp).await
}

/// The TLS handshake of `<stem>.crt` from `pki`, offering `protocol` by
/// ALPN, over `tcp` (a socket the test may have shaped: its buffer sizes).
pub async fn tls_over(
    pki: &Path,
    stem: &str,
    protocol: Protocol,
    tcp: tokio::net::TcpStream,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let cfg = brdo_tools::client::tls_config(
        &pki.join(format!("{stem}.crt")),
        &pki.join(format!("{stem}.key")),
        &pki.join("ca.crt"),
        protocol,
    )
    .expect("client TLS config");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Reads `s` until the gateway ends the connection, for at most `limit`
/// (panics if it is still open then): `Ok` for an orderly end (TLS
/// `close_notify`), the read's error for a truncation.
pub async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    limit: std::time::Duration,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the connection is closed in time")
}

/// A real `brdo serve` process on a config written by [`write_config`],
/// listening on a free port (metrics on an ephemeral one, so processes of
/// parallel tests do not collide). Killed when dropped if still running.
pub struct ServeProcess {
    /// The child process.
    pub child: std::process::Child,
    /// The API address.
    pub addr: SocketAddr,
    /// Where its stderr (the logs) goes.
    pub log: PathBuf,
}

impl ServeProcess {
    /// Starts `brdo serve --config CONFIG` with `env` added, and waits until
    /// it serves `AL-CTD`'s client (up to 20 s).
    pub async fn start(config: &Path, pki: &Path, env: &[(&str, &str)]) -> ServeProcess {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        Self::start_at(config, pki, "partner-AL-CTD", addr, env).await
    }

    /// Starts `brdo serve --config CONFIG` listening on `addr` with `env`
    /// added, and waits until it answers the client `<probe>.crt` of `pki`
    /// (up to 20 s). Its logs are appended to `serve-<port>.log` beside the
    /// config, so a restart on the same port keeps the earlier run's.
    pub async fn start_at(
        config: &Path,
        pki: &Path,
        probe: &str,
        addr: SocketAddr,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let log = config.with_file_name(format!("serve-{}.log", addr.port()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_brdo"))
            .args(["serve", "--config", config.to_str().expect("utf8")])
            .env("BRDO_SERVER__LISTEN", addr.to_string())
            .env("BRDO_SERVER__METRICS_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            // Logs go to a file beside the config (a pipe nobody reads
            // would fill up and stall the server).
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn brdo serve");
        let mut process = ServeProcess { child, addr, log };
        let probe = Client::from_pki(pki, probe, addr).expect("client");
        for _ in 0..200 {
            if probe.get("/v1/inbox", &[]).await.is_ok() {
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                let logs = std::fs::read_to_string(&process.log).unwrap_or_default();
                panic!("brdo serve exited early with {status}: {logs}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = process.child.kill();
        panic!("brdo serve did not start serving within 20 s");
    }

    /// Sends `signal` (`KILL`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits up to `limit` for the process to exit; returns its exit status
    /// (panics past the limit).
    pub async fn wait_exit(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "brdo serve still running {limit:?} after the signal"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Two gateways among gateways (SPEC §11): each with its own PKI made by
/// `pki::init_gateway`, its own database and a policy naming the other as
/// `[[peer]]`, with the other's partners `via` it. Gateway A (`AL-NCB`)
/// serves AL-CTD, EU-ECTC and the rest of the demo partners; gateway B
/// (`RS-NCB`) serves RS-MOI and ME-MOI. Both listen on fixed ports picked
/// up front, so one can be stopped and started again at the same address.
pub struct Federation {
    /// Gateway A (`AL-NCB`), `None` while stopped.
    pub a: Option<TestGateway>,
    /// Gateway B (`RS-NCB`), `None` while stopped.
    pub b: Option<TestGateway>,
    /// A's PKI directory.
    pub a_pki: PathBuf,
    /// B's PKI directory.
    pub b_pki: PathBuf,
    /// B's configuration (to restart it).
    pub b_config: Option<Config>,
    b_files: Option<Files>,
    _keep: tempfile::TempDir,
}

/// Partners each side of a [`Federation`] serves itself.
pub const B_PARTNERS: &[&str] = &["RS-MOI", "ME-MOI"];

/// A free local port for a gateway that binds it later, drawn at random
/// below the kernel's ephemeral range. A port the kernel hands out for
/// `bind(0)` comes from that range, and so does the local port of every
/// outgoing connection: between this check and the gateway's own bind,
/// one of the suite's thousands of client connections could take it, and
/// the gateway failed to start ("gateway starts", once in a full run of
/// `federation_red`). Below the range only another test's draw can
/// collide, one chance in thousands.
pub fn free_port() -> u16 {
    const LOWEST: u16 = 10_000;
    let low = ephemeral_low().unwrap_or(32_768);
    if low > LOWEST + 1_000 {
        for _ in 0..1_000 {
            // Each `RandomState` has keys of its own, seeded per process.
            let draw = std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                std::process::id(),
            ) as u16;
            let port = LOWEST + draw % (low - LOWEST);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// The first port of the kernel's ephemeral range (Linux).
fn ephemeral_low() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The demo policy with `partners` behind `peer` and extra `[[peer]]`
/// tables appended.
pub fn federated_policy(partners: &[&str], via: &str, peers: &str) -> String {
    let mut text = brdo_tools::demo_data::POLICY.to_owned();
    for p in partners {
        let line = format!("id = \"{p}\"\n");
        text = text.replace(&line, &format!("{line}via = \"{via}\"\n"));
    }
    text.push('\n');
    text.push_str(peers);
    text
}

/// A `[[peer]]` table.
pub fn peer_table(id: &str, port: u16, ca: &Path, envelope_key: &Path) -> String {
    format!(
        "[[peer]]\nid = \"{id}\"\nurl = \"https://127.0.0.1:{port}\"\nca = \"{}\"\nenvelope_key = \"{}\"\n",
        ca.display(),
        envelope_key.display()
    )
}

/// What both sides of a federation are built from (SPEC §11): each
/// side's PKI made by `pki::init_gateway`, its policy naming the other as
/// `[[peer]]` with the other's partners `via` it, and the fixed ports both
/// listen on (so either can be stopped and started again at its address).
pub struct Sites {
    /// A's PKI directory (`AL-NCB`; AL-CTD and EU-ECTC certificates).
    pub a_pki: PathBuf,
    /// B's PKI directory (`RS-NCB`; [`B_PARTNERS`] certificates).
    pub b_pki: PathBuf,
    /// A's policy file.
    pub a_policy: PathBuf,
    /// B's policy file.
    pub b_policy: PathBuf,
    /// A's API port.
    pub a_port: u16,
    /// B's API port.
    pub b_port: u16,
}

impl Sites {
    /// Builds both sides' PKIs and policies under `dir`; `policy` adjusts
    /// each one's policy text (`"AL-NCB"` or `"RS-NCB"`).
    pub fn build(dir: &Path, policy: impl Fn(&str, String) -> String) -> Sites {
        let now = OffsetDateTime::now_utc();
        let a_pki = dir.join("a-pki");
        let b_pki = dir.join("b-pki");
        pki::init_gateway(&a_pki, &[], Some("AL-NCB"), now).expect("pki A");
        pki::init_gateway(&b_pki, &[], Some("RS-NCB"), now).expect("pki B");
        for p in ["AL-CTD", "EU-ECTC"] {
            pki::issue(&a_pki, &Subject::Partner(p.into()), 30, P12_PASSWORD, now).expect("issue");
        }
        for p in B_PARTNERS {
            pki::issue(
                &b_pki,
                &Subject::Partner((*p).into()),
                30,
                P12_PASSWORD,
                now,
            )
            .expect("issue");
        }
        let (a_port, b_port) = (free_port(), free_port());
        // Each gateway trusts its own CA for its partners; the peer's CA
        // comes from the policy's [[peer]] ca and vouches for that peer's
        // gateway id alone (SPEC §11).
        let a_policy = dir.join("a-policy.toml");
        let b_policy = dir.join("b-policy.toml");
        let text_a = federated_policy(
            B_PARTNERS,
            "RS-NCB",
            &peer_table(
                "RS-NCB",
                b_port,
                &b_pki.join("ca.crt"),
                &b_pki.join("envelope-signing.pub"),
            ),
        );
        let others: Vec<&str> = PARTNERS
            .iter()
            .copied()
            .filter(|p| !B_PARTNERS.contains(p))
            .collect();
        let text_b = federated_policy(
            &others,
            "AL-NCB",
            &peer_table(
                "AL-NCB",
                a_port,
                &a_pki.join("ca.crt"),
                &a_pki.join("envelope-signing.pub"),
            ),
        );
        std::fs::write(&a_policy, policy("AL-NCB", text_a)).expect("policy A");
        std::fs::write(&b_policy, policy("RS-NCB", text_b)).expect("policy B");
        Sites {
            a_pki,
            b_pki,
            a_policy,
            b_policy,
            a_port,
            b_port,
        }
    }

    /// The federation settings of side `id` (`"AL-NCB"` or `"RS-NCB"`):
    /// its port, policy, id and quick retries.
    pub fn setup(&self, id: &str, c: &mut Config) {
        let (port, policy) = if id == "AL-NCB" {
            (self.a_port, &self.a_policy)
        } else {
            (self.b_port, &self.b_policy)
        };
        c.server.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        c.policy.file = policy.clone();
        c.federation.id = brdo::domain::PartnerId::parse(id);
        c.federation.initial_backoff_ms = 50;
        c.federation.max_backoff_secs = 1;
        c.federation.request_timeout_secs = 3;
    }
}

impl Federation {
    /// Starts both gateways; `tweak` adjusts each one's configuration
    /// (`"AL-NCB"` or `"RS-NCB"`) and `policy` each one's policy text.
    pub async fn start_with(
        tweak: impl Fn(&str, &mut Config),
        policy: impl Fn(&str, String) -> String,
    ) -> Federation {
        let keep = tempfile::tempdir().expect("tempdir");
        let sites = Sites::build(keep.path(), policy);
        let b = TestGateway::start_with(&sites.b_pki, |c| {
            sites.setup("RS-NCB", c);
            tweak("RS-NCB", c);
        })
        .await;
        let a = TestGateway::start_with(&sites.a_pki, |c| {
            sites.setup("AL-NCB", c);
            tweak("AL-NCB", c);
        })
        .await;
        Federation {
            b_config: Some(b.config.clone()),
            a: Some(a),
            b: Some(b),
            a_pki: sites.a_pki,
            b_pki: sites.b_pki,
            b_files: None,
            _keep: keep,
        }
    }

    /// Both gateways with the default settings.
    pub async fn start() -> Federation {
        Self::start_with(|_, _| {}, |_, p| p).await
    }

    /// Gateway A.
    pub fn a(&self) -> &TestGateway {
        self.a.as_ref().expect("A runs")
    }

    /// Gateway B.
    pub fn b(&self) -> &TestGateway {
        self.b.as_ref().expect("B runs")
    }

    /// Stops B, keeping its files.
    pub async fn stop_b(&mut self) {
        let b = self.b.take().expect("B runs");
        self.b_files = Some(b.stop().await);
    }

    /// Starts B again on its files and address.
    pub async fn start_b(&mut self) {
        let files = self.b_files.take().expect("B stopped");
        let config = self.b_config.clone().expect("config");
        self.b = Some(TestGateway::restart(files, config, &self.b_pki).await);
    }

    /// A client presenting A's gateway certificate to B (as A's relay
    /// does): for hostile documents.
    pub fn a_as_gateway_to_b(&self) -> Client {
        let cfg = brdo_tools::client::tls_config(
            &self.a_pki.join("gateway.crt"),
            &self.a_pki.join("gateway.key"),
            &self.b_pki.join("ca.crt"),
            Protocol::Http1,
        )
        .expect("tls");
        Client::new(cfg, self.b().addr(), "localhost", Protocol::Http1)
    }
}

/// GET on the plain metrics address: status and body.
pub async fn plain_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// One side of a [`ProcFederation`]: a gateway run as `brdo serve`
/// processes on its own files, at a fixed address.
pub struct ProcSide {
    /// Its PKI directory.
    pub pki: PathBuf,
    /// Its configuration, as written to `config_file`.
    pub config: Config,
    /// The `gateway.toml` the processes read.
    pub config_file: PathBuf,
    /// Its API address (fixed across restarts: the peer's policy names it).
    pub addr: SocketAddr,
    /// The partner certificate that probes it at start.
    pub probe: &'static str,
    /// The running process, `None` while down.
    pub process: Option<ServeProcess>,
}

impl ProcSide {
    /// Starts `brdo serve` on this side's files.
    pub async fn start(&mut self) {
        assert!(self.process.is_none(), "already running");
        let p =
            ServeProcess::start_at(&self.config_file, &self.pki, self.probe, self.addr, &[]).await;
        self.process = Some(p);
    }

    /// SIGKILLs the process and waits until it is gone.
    pub async fn kill(&mut self) {
        let mut p = self.process.take().expect("running");
        p.signal("KILL");
        p.wait_exit(std::time::Duration::from_secs(10)).await;
    }

    /// A partner's client.
    pub fn partner(&self, id: &str) -> Client {
        Client::from_pki(&self.pki, &format!("partner-{id}"), self.addr).expect("client")
    }

    /// A count read from the side's database directly (`SELECT COUNT(*)
    /// FROM <from>`), as an auditor would; works while the process is down.
    pub async fn count(&self, from: &str) -> i64 {
        let pool = open_db(&self.config.database.url).await;
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {from}")))
                .fetch_one(&pool)
                .await
                .expect("count");
        pool.close().await;
        n
    }

    /// The end of the process's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let Some(p) = &self.process else {
            return String::from("(not running)");
        };
        let text = std::fs::read_to_string(&p.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or_default().to_owned()
    }
}

/// The two gateways of [`Federation`] (the same PKIs and policies, built by
/// [`Sites`]) run as real `brdo serve` processes on written config files,
/// so a test can SIGKILL either side. Each has its own data directory and
/// database (a fresh PostgreSQL database of its own when
/// [`DATABASE_VAR`] says so). Nothing runs until a side is started.
pub struct ProcFederation {
    /// Gateway A (`AL-NCB`).
    pub a: ProcSide,
    /// Gateway B (`RS-NCB`).
    pub b: ProcSide,
    _pg: Vec<PgTestDb>,
    _keep: tempfile::TempDir,
}

impl ProcFederation {
    /// Writes both sides' files; `tweak` adjusts each one's configuration.
    pub async fn create(tweak: impl Fn(&str, &mut Config)) -> ProcFederation {
        let keep = tempfile::tempdir().expect("tempdir");
        let sites = Sites::build(keep.path(), |_, p| p);
        let mut pg = Vec::new();
        let mut side = async |id: &str, pki: &Path, port: u16, probe: &'static str| {
            let dir = keep.path().join(id);
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                .recursive(true)
                .create(dir.join("data"))
                .expect("data dir");
            let mut config = test_config(pki, &dir.join("data"));
            sites.setup(id, &mut config);
            if default_db() == DbKind::Postgres {
                let db = PgTestDb::create()
                    .await
                    .expect("BRDO_TEST_DATABASE=postgres needs a PostgreSQL server");
                config.database.url = db.url.clone();
                pg.push(db);
            }
            tweak(id, &mut config);
            brdo::crypto::MasterKey::create(&config.crypto.master_key_file).expect("master key");
            let config_file = dir.join("gateway.toml");
            std::fs::write(
                &config_file,
                toml::to_string(&config).expect("config as TOML"),
            )
            .expect("config file");
            ProcSide {
                pki: pki.to_owned(),
                addr: format!("127.0.0.1:{port}").parse().expect("addr"),
                config,
                config_file,
                probe,
                process: None,
            }
        };
        let a = side("AL-NCB", &sites.a_pki, sites.a_port, "partner-AL-CTD").await;
        let b = side("RS-NCB", &sites.b_pki, sites.b_port, "partner-RS-MOI").await;
        ProcFederation {
            a,
            b,
            _pg: pg,
            _keep: keep,
        }
    }
}
