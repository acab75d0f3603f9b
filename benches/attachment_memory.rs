//! Memory stays flat while a 50 MiB attachment goes up and down.
//!
//! Starts a real `brdo serve` process on a temporary PKI and database,
//! uploads a 50 MiB attachment, sends it in a message, downloads it as the
//! recipient, and reports the server's resident memory before and its peak
//! (VmHWM) after. Run with `cargo bench --bench attachment_memory`; the
//! figure belongs in BENCHMARKS.md. Not a test: nothing here asserts a time.

// A benchmark reads top to bottom as one script: bench code is exempt from the length limit.
#![allow(clippy::too_many_lines)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brdo_tools::client::Client;
use serde_json::json;

const SIZE: usize = 50 * 1024 * 1024;

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let pki = dir.join("pki");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("policy.toml"), brdo_tools::demo_data::POLICY).expect("policy");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [tls]\ncert = \"{p}/gateway.crt\"\nkey = \"{p}/gateway.key\"\nclient_ca = \"{p}/ca.crt\"\ncrl = \"{p}/ca.crl\"\n\
         [database]\nurl = \"sqlite://{d}/brdo.db\"\n[crypto]\nmaster_key_file = \"{d}/master.key\"\n\
         [policy]\nfile = \"{d}/policy.toml\"\n[storage]\nblob_dir = \"{d}/blobs\"\n[retention]\nsweep_interval_secs = 0\n",
        p = pki.display(),
        d = data.display()
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, toml).expect("config");
    path
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    let now = time::OffsetDateTime::now_utc();
    brdo::pki::init(&pki, &[], now).expect("pki");
    for p in ["AL-CTD", "RS-MOI"] {
        brdo::pki::issue(
            &pki,
            &brdo::pki::Subject::Partner(p.into()),
            1,
            "bench",
            now,
        )
        .expect("issue");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let config = write_config(dir.path(), port);
    let mut server = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["serve", "--config", config.to_str().expect("utf8")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn brdo serve");
    let pid = server.id();
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let albania = Client::from_pki(&pki, "partner-AL-CTD", addr).expect("client");
    let serbia = Client::from_pki(&pki, "partner-RS-MOI", addr).expect("client");
    let officer = [("brdo-officer", "bench")];
    // Warm up: connections, pools, one small attachment end to end.
    let mut ready = false;
    for _ in 0..100 {
        if albania.get("/v1/inbox", &[]).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "server did not start");
    let small = albania
        .request(
            hyper::Method::POST,
            "/v1/attachments",
            &officer,
            Some(vec![1u8; 100_000]),
        )
        .await
        .expect("warm-up upload");
    assert_eq!(small.status, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = status_kib(pid, "VmRSS:");

    let payload: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let started = Instant::now();
    let up = albania
        .request(
            hyper::Method::POST,
            "/v1/attachments",
            &officer,
            Some(payload.clone()),
        )
        .await
        .expect("upload");
    assert_eq!(up.status, 201, "{}", String::from_utf8_lossy(&up.body));
    let up_secs = started.elapsed().as_secs_f64();
    let att = up.json()["id"].as_str().expect("id").to_owned();
    let msg = json!({
        "recipients": ["RS-MOI"], "subject": "case file", "body": "see attachment",
        "label": {"classification": "EU_RESTRICTED"},
        "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
        "purpose": "investigation", "personal_data": {"subjects": ["suspect"]}, "attachments": [att]
    });
    let sent = albania
        .post_json("/v1/messages", &officer, &msg)
        .await
        .expect("send");
    assert_eq!(sent.status, 201);
    let id = sent.json()["id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    let down = serbia
        .get(
            &format!("/v1/messages/{id}/attachments/{att}"),
            &[
                ("brdo-officer", "bench"),
                ("brdo-justification", "benchmark"),
            ],
        )
        .await
        .expect("download");
    let down_secs = started.elapsed().as_secs_f64();
    assert_eq!(down.status, 200);
    assert!(down.body == payload, "bytes differ");
    let peak = status_kib(pid, "VmHWM:");
    let after = status_kib(pid, "VmRSS:");
    let _ = server.kill();
    let _ = server.wait();
    let mib = |k: u64| k as f64 / 1024.0;
    println!("attachment memory: 50 MiB up in {up_secs:.2} s, down in {down_secs:.2} s");
    println!(
        "server RSS before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB: peak growth {:.1} MiB (budget 16 MiB)",
        mib(before),
        mib(peak),
        mib(after),
        mib(peak.saturating_sub(before))
    );
}
