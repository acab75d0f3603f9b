//! The relay scenario (SPEC §11): two gateways of the benchmark's own in
//! this process, A (`AL-NCB`) and B (`RS-NCB`), each with its own PKI
//! (`pki::init_gateway`), SQLite file, master key and a policy naming the
//! other as `[[peer]]`. Workers submit on A as AL-CTD to RS-MOI, who lives
//! behind B; a reader long-polls RS-MOI's inbox on B and notes when each
//! message id first appears, so each message is timed from its submit on A
//! to its arrival on B. First, the same load submits to EU-ECTC, local to
//! A: the single-gateway baseline, in the same run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::BenchError;
use super::histogram::Latencies;
use super::load;
use super::options::{BenchOptions, Parties};
use super::report::{Machine, RelayFigures, Report};
use super::scenario::{Endpoint, SentLog};
use brdo::config::Config;
use brdo::gateway::Gateway;
use brdo::pki::{self, Subject};
use brdo_tools::client::Client;

/// How long, after the load, messages still in flight may take to arrive.
const DRAIN: Duration = Duration::from_secs(20);

fn setup(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("{what}: {e}"))
}

/// Two gateways that are each other's peer, and their files.
struct Pair {
    a: Gateway,
    b: Gateway,
    a_pki: PathBuf,
    b_pki: PathBuf,
}

fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| setup("finding a free port", e))
}

/// The demo policy with `remote` partners `via` the peer, and the peer.
fn policy(remote: &[&str], peer: &str, port: u16, peer_pki: &Path) -> String {
    let mut text = brdo_tools::demo_data::POLICY.to_owned();
    for p in remote {
        let line = format!("id = \"{p}\"\n");
        text = text.replace(&line, &format!("{line}via = \"{peer}\"\n"));
    }
    text.push_str(&format!(
        "\n[[peer]]\nid = \"{peer}\"\nurl = \"https://127.0.0.1:{port}\"\nca = \"{}\"\nenvelope_key = \"{}\"\n",
        peer_pki.join("ca.crt").display(),
        peer_pki.join("envelope-signing.pub").display()
    ));
    text
}

/// One gateway's files under `dir/name`, its configuration returned.
fn side(
    dir: &Path,
    id: &str,
    partners: &[&str],
    port: u16,
    policy: &str,
) -> Result<Config, BenchError> {
    let root = dir.join(id);
    let (pki_dir, data) = (root.join("pki"), root.join("data"));
    let now = OffsetDateTime::now_utc();
    pki::init_gateway(&pki_dir, &[], Some(id), now).map_err(|e| setup("pki init", e))?;
    for p in partners {
        pki::issue(
            &pki_dir,
            &Subject::Partner((*p).into()),
            30,
            "brdo-bench",
            now,
        )
        .map_err(|e| setup("pki issue", e))?;
    }
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&data)
        .map_err(|e| setup("data directory", e))?;
    std::fs::write(root.join("policy.toml"), policy).map_err(|e| setup("policy.toml", e))?;
    let mut c = Config::default();
    c.server.listen = SocketAddr::from(([127, 0, 0, 1], port));
    c.server.metrics_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.max_connections_per_identity = 1024;
    // The benchmark measures what the gateways can do, not the limiter:
    // at the default 10 000/s the single phase was answered 429.
    c.server.rate_limit_per_second = 0;
    c.tls.cert = pki_dir.join("gateway.crt");
    c.tls.key = pki_dir.join("gateway.key");
    c.tls.client_ca = pki_dir.join("ca.crt").into();
    c.tls.crl = pki_dir.join("ca.crl");
    c.audit.signing_key = pki_dir.join("audit-signing.key");
    c.audit.public_key = pki_dir.join("audit-signing.pub");
    c.pki.dir = Some(pki_dir.clone());
    c.database.url = format!("sqlite://{}", data.join("brdo.db").display());
    c.crypto.master_key_file = data.join("master.key");
    c.crypto.envelope_signing_key = pki_dir.join("envelope-signing.key");
    c.policy.file = root.join("policy.toml");
    c.storage.blob_dir = data.join("blobs");
    c.federation.id = brdo::domain::PartnerId::parse(id);
    brdo::crypto::MasterKey::create(&c.crypto.master_key_file)
        .map_err(|e| setup("master key", e))?;
    Ok(c)
}

impl Pair {
    /// Makes both sides' files under `dir` and starts B, then A.
    async fn start(dir: &Path) -> Result<Self, BenchError> {
        let (a_port, b_port) = (free_port()?, free_port()?);
        let (a_pki, b_pki) = (dir.join("AL-NCB/pki"), dir.join("RS-NCB/pki"));
        // Policies name the peer's files, which exist once both PKIs do.
        let a = side(dir, "AL-NCB", &["AL-CTD", "EU-ECTC"], a_port, "")?;
        let b = side(dir, "RS-NCB", &["RS-MOI"], b_port, "")?;
        let others: Vec<&str> = brdo_tools::demo_data::PARTNERS
            .iter()
            .copied()
            .filter(|p| *p != "RS-MOI")
            .collect();
        let write = |c: &Config, text: String| {
            std::fs::write(&c.policy.file, text).map_err(|e| setup("policy.toml", e))
        };
        write(&a, policy(&["RS-MOI"], "RS-NCB", b_port, &b_pki))?;
        write(&b, policy(&others, "AL-NCB", a_port, &a_pki))?;
        let b = Gateway::start(&b)
            .await
            .map_err(|e| setup("gateway B", e))?;
        let a = match Gateway::start(&a).await {
            Ok(a) => a,
            Err(e) => {
                b.stop().await;
                return Err(setup("gateway A", e));
            }
        };
        Ok(Self { a, b, a_pki, b_pki })
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }

    fn endpoint(&self, to: &str, sent: Option<Arc<SentLog>>) -> Endpoint {
        Endpoint {
            addr: self.a.addr,
            pki: self.a_pki.clone(),
            parties: Parties {
                sender: "AL-CTD".into(),
                recipients: vec![to.into()],
            },
            echo: false,
            sent,
        }
    }
}

/// Runs the scenario: the single-gateway baseline, then the relay run and
/// its end-to-end figures.
pub async fn run(opts: &BenchOptions) -> Result<Report, BenchError> {
    let machine = Machine::read();
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!("brdo-bench-relay-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| setup("temporary directory", e))?;
    let result = match Pair::start(&dir).await {
        Ok(pair) => {
            let r = measure(opts, &pair, machine).await;
            pair.stop().await;
            r
        }
        Err(e) => Err(e),
    };
    // Nothing may stay behind: the directory holds CA keys.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(opts: &BenchOptions, pair: &Pair, machine: Machine) -> Result<Report, BenchError> {
    let spec = &opts.load;
    let single = load::run(spec, &pair.endpoint("EU-ECTC", None), None, "single").await?;
    let sent = Arc::new(SentLog::default());
    let arrivals = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = Client::from_pki(&pair.b_pki, "partner-RS-MOI", pair.b.addr)
        .map_err(|e| setup("the inbox reader on B", e))?;
    let reading = tokio::spawn(read_inbox(reader, arrivals.clone(), stop.clone()));
    let measure_from = Instant::now() + spec.warmup;
    let end = measure_from + spec.duration;
    let submits = load::run(
        spec,
        &pair.endpoint("RS-MOI", Some(sent.clone())),
        None,
        "relay",
    )
    .await;
    let window: Vec<(String, Instant)> = sent
        .0
        .lock()
        .map(|log| {
            log.iter()
                .filter(|(_, t)| *t >= measure_from)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until && !all_arrived(&arrivals, &window) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reading.await;
    let submits = submits?;
    let arrived = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut latencies = Latencies::new();
    for (id, at) in &window {
        if let Some(got) = arrived.get(id) {
            latencies.record(got.saturating_duration_since(*at));
        }
    }
    let in_window = arrived
        .values()
        .filter(|t| **t >= measure_from && **t <= end)
        .count();
    let secs = spec.duration.as_secs_f64();
    let throughput = if secs > 0.0 {
        in_window as f64 / secs
    } else {
        0.0
    };
    let latency = latencies.summary();
    let figures = RelayFigures {
        sent: window.len() as u64,
        arrived: latency.count,
        missing: (window.len() as u64).saturating_sub(latency.count),
        throughput,
        latency,
        ratio_to_single: (single.throughput > 0.0).then(|| throughput / single.throughput),
    };
    Ok(Report::new(machine, Some(single), submits).with_relay(figures))
}

fn all_arrived(
    arrivals: &std::sync::Mutex<HashMap<String, Instant>>,
    window: &[(String, Instant)],
) -> bool {
    arrivals
        .lock()
        .map(|a| window.iter().all(|(id, _)| a.contains_key(id)))
        .unwrap_or(true)
}

/// Long-polls RS-MOI's inbox on B, noting when each id first appears.
async fn read_inbox(
    client: Client,
    arrivals: Arc<std::sync::Mutex<HashMap<String, Instant>>>,
    stop: Arc<AtomicBool>,
) {
    let mut after: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let path = match &after {
            Some(c) => format!("/v1/inbox?limit=100&wait=1&after={c}"),
            None => "/v1/inbox?limit=100&wait=1".to_owned(),
        };
        let Ok(resp) = client.get(&path, &[]).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let now = Instant::now();
        let v = resp.json();
        if let Some(next) = v["next"].as_str() {
            after = Some(next.to_owned());
        }
        if let Ok(mut a) = arrivals.lock() {
            for m in v["messages"].as_array().into_iter().flatten() {
                if let Some(id) = m["id"].as_str() {
                    a.entry(id.to_owned()).or_insert(now);
                }
            }
        }
    }
}
