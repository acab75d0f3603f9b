//! Operating the PKI safely (issue 19): CRL number and nextUpdate checks,
//! revoked-set auditing, `pki crl refresh`, the directory lock, forced
//! revocation, directory and key modes, and the start-up configuration
//! report.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::harness::*;

fn serial_of(pki: &std::path::Path, stem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(pki.join(format!("{stem}.crt"))).expect("cert");
    brdo::tls::PeerCert::from_der(
        &rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("pem"),
    )
    .serial
}

/// Every audit record of `action`, oldest first.
async fn records_of(gw: &TestGateway, action: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for seq in 1..=gw.audit_size().await {
        let r = gw.audit_record(seq).await;
        if r["action"] == action {
            out.push(r);
        }
    }
    out
}

/// Polls until `probe` holds (a hang guard, not a timing claim).
async fn eventually(mut probe: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("did not happen within 5 s");
}

async fn metrics(gw: &TestGateway) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.gateway.metrics_addr)
        .await
        .expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

fn crl_number_on_disk(pki: &std::path::Path) -> u128 {
    brdo::pki::verified_crl_info(
        &std::fs::read(pki.join("ca.crl")).expect("crl"),
        &std::fs::read(pki.join("ca.crt")).expect("ca"),
    )
    .expect("crl info")
    .number
}

#[tokio::test]
async fn an_older_crl_put_back_is_refused_recorded_and_refused_again_at_restart() {
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    let start = records_of(&gw, "crl_update").await;
    assert_eq!(start.len(), 1, "the CRL in force at start is recorded");
    assert_eq!(start[0]["details"]["cause"], "start");
    assert_eq!(start[0]["details"]["crl_number"], "1");

    let old = std::fs::read(pki.dir.join("ca.crl")).expect("crl");
    let serial = serial_of(&pki.dir, "partner-RS-MOI");
    let out = brdo(&[
        "pki",
        "revoke",
        "--dir",
        pki.dir.to_str().expect("utf8"),
        "--serial",
        &serial,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    eventually(async || gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err()).await;
    eventually(async || records_of(&gw, "crl_update").await.len() == 2).await;
    let change = &records_of(&gw, "crl_update").await[1];
    assert_eq!(change["outcome"], "allowed");
    assert_eq!(change["details"]["added"], json!([serial]));
    assert_eq!(change["details"]["removed"], json!([]));
    assert_eq!(change["details"]["crl_number"], "2");
    assert_eq!(change["details"]["previous_crl_number"], "1");

    // The earlier list (number 1) is put back: refused, recorded, counted;
    // the revocation stays in force.
    std::fs::write(pki.dir.join("ca.crl"), &old).expect("put back");
    eventually(async || records_of(&gw, "crl_update").await.len() == 3).await;
    let refused = &records_of(&gw, "crl_update").await[2];
    assert_eq!(refused["outcome"], "denied");
    assert_eq!(refused["code"], "crl_rollback");
    assert_eq!(refused["details"]["offered_crl_number"], "1");
    assert_eq!(refused["details"]["crl_number"], "2");
    assert!(gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err());
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("others")
            .status,
        200
    );
    assert!(
        metrics(&gw)
            .await
            .contains("brdo_crl_refused_total{reason=\"crl_rollback\"} 1")
    );
    // The reload endpoint refuses it too, naming the CRL.
    let r = gw
        .client("operator-admin")
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    let problem = assert_problem(&r, 400, "reload_refused");
    assert!(
        problem.to_string().contains("CRL number 1 is lower than 2"),
        "{problem}"
    );
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["outcome"].as_str()),
        (Some("config_reload"), Some("failed"))
    );
    assert!(
        metrics(&gw)
            .await
            .contains("brdo_crl_refused_total{reason=\"crl_rollback\"} 2")
    );

    // A restart with the older list on disk is refused: the number in
    // force was kept in the audit log.
    let config = gw.config.clone();
    let files = gw.stop().await;
    let err = brdo::gateway::Gateway::start(&config)
        .await
        .expect_err("refused");
    assert!(err.is_config());
    assert!(
        err.to_string().contains("CRL number 1 is lower than 2"),
        "{err}"
    );
    // With the current list back it starts, and records the list again.
    let out = brdo(&[
        "pki",
        "crl",
        "refresh",
        "--dir",
        pki.dir.to_str().expect("utf8"),
    ]);
    // The refresh re-signs the list on disk (number 1 → 2): still not
    // newer than the 2 in force with other serials, so it is refused too.
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = brdo::gateway::Gateway::start(&config)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("other serials"), "{err}");
    let out = brdo(&[
        "pki",
        "revoke",
        "--dir",
        pki.dir.to_str().expect("utf8"),
        "--serial",
        &serial,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(crl_number_on_disk(&pki.dir), 3);
    let gw = TestGateway::restart(files, config, &pki.dir).await;
    assert!(gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err());
    let last = records_of(&gw, "crl_update").await;
    let last = last.last().expect("record");
    assert_eq!(last["details"]["cause"], "start");
    assert_eq!(last["details"]["crl_number"], "3");
    assert_eq!(last["details"]["previous_crl_number"], "2");
    gw.stop().await;
}

#[tokio::test]
async fn an_expired_crl_is_refused_at_start_and_while_running() {
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    // A list signed 400 days ago: its nextUpdate passed 35 days ago.
    let long_ago = OffsetDateTime::now_utc() - time::Duration::days(400);
    brdo::pki::refresh_crl(&pki.dir, long_ago).expect("sign");
    eventually(async || {
        records_of(&gw, "crl_update")
            .await
            .iter()
            .any(|r| r["code"] == "crl_expired")
    })
    .await;
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("the list in force stays")
            .status,
        200
    );
    assert!(
        metrics(&gw)
            .await
            .contains("brdo_crl_refused_total{reason=\"crl_expired\"} 1")
    );
    let config = gw.config.clone();
    let files = gw.stop().await;
    let err = brdo::gateway::Gateway::start(&config)
        .await
        .expect_err("refused");
    assert!(err.is_config());
    let msg = err.to_string();
    assert!(
        msg.contains("nextUpdate") && msg.contains("has passed") && msg.contains("pki crl refresh"),
        "{msg}"
    );
    // `pki crl refresh` makes it usable again.
    let out = brdo(&[
        "pki",
        "crl",
        "refresh",
        "--dir",
        pki.dir.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("CRL number 3"),
        "{}",
        text(&out.stdout)
    );
    let gw = TestGateway::restart(files, config, &pki.dir).await;
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("in")
            .status,
        200
    );
    let m = metrics(&gw).await;
    assert!(m.contains("brdo_crl_number 3"), "{m}");
    gw.stop().await;
}

#[tokio::test]
async fn concurrent_revocations_are_all_listed_with_distinct_crl_numbers() {
    let pki = Pki::create();
    let dir = pki.dir.to_str().expect("utf8").to_owned();
    let mut serials: Vec<String> = PARTNERS
        .iter()
        .flat_map(|p| {
            [
                serial_of(&pki.dir, &format!("partner-{p}")),
                serial_of(&pki.dir, &format!("dpo-{p}")),
            ]
        })
        .collect();
    serials.sort();
    let children: Vec<std::process::Child> = serials
        .iter()
        .map(|s| {
            std::process::Command::new(env!("CARGO_BIN_EXE_brdo"))
                .args(["pki", "revoke", "--dir", &dir, "--serial", s])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let listed = brdo::pki::revoked_serials(&std::fs::read(pki.dir.join("ca.crl")).expect("crl"))
        .expect("serials");
    assert_eq!(listed.into_iter().collect::<Vec<_>>(), serials);
    assert_eq!(crl_number_on_disk(&pki.dir), 1 + serials.len() as u128);
    let log = std::fs::read_to_string(pki.dir.join(brdo::pki::LOG_FILE)).expect("log");
    let mut numbers: Vec<u128> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|l| l["event"] == "revoke")
        .map(|l| l["crl_number"].as_str().expect("n").parse().expect("n"))
        .collect();
    numbers.sort_unstable();
    let expected: Vec<u128> = (2..2 + serials.len() as u128).collect();
    assert_eq!(numbers, expected, "each revocation wrote its own list");
}

#[tokio::test]
async fn a_certificate_whose_file_is_gone_is_revoked_with_force() {
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    let serial = serial_of(&pki.dir, "partner-RS-MOI");
    // The client keeps its copy; the PKI directory loses the file.
    let keep = tempfile::tempdir().expect("tmp");
    for ext in ["crt", "key"] {
        std::fs::copy(
            pki.dir.join(format!("partner-RS-MOI.{ext}")),
            keep.path().join(format!("partner-RS-MOI.{ext}")),
        )
        .expect("copy");
    }
    std::fs::copy(pki.dir.join("ca.crt"), keep.path().join("ca.crt")).expect("ca");
    std::fs::remove_file(pki.dir.join("partner-RS-MOI.crt")).expect("rm");
    let client = brdo_tools::client::Client::from_pki(keep.path(), "partner-RS-MOI", gw.addr())
        .expect("client");
    assert_eq!(client.get("/v1/inbox", &[]).await.expect("in").status, 200);

    let dir = pki.dir.to_str().expect("utf8");
    let out = brdo(&["pki", "revoke", "--dir", dir, "--serial", &serial]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    let out = brdo(&[
        "pki", "revoke", "--dir", dir, "--serial", &serial, "--force",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("revoked because of --force"),
        "{}",
        text(&out.stderr)
    );
    let log = std::fs::read_to_string(pki.dir.join(brdo::pki::LOG_FILE)).expect("log");
    let line: Value = serde_json::from_str(log.lines().last().expect("line")).expect("json");
    assert_eq!(line["serial"], serial.as_str());
    assert_eq!(line["forced"], true);
    eventually(async || client.get("/v1/inbox", &[]).await.is_err()).await;
    gw.stop().await;
}

#[tokio::test]
async fn pki_commands_refuse_an_open_directory_or_readable_ca_key_and_change_nothing() {
    let pki = Pki::create();
    let dir = pki.dir.to_str().expect("utf8");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    let serial = serial_of(&pki.dir, "partner-AL-CTD");
    let commands: Vec<Vec<&str>> = vec![
        vec!["pki", "issue", "--dir", dir, "--partner", "ZZ-NEW"],
        vec!["pki", "issue", "--dir", dir, "--gateway"],
        vec!["pki", "revoke", "--dir", dir, "--serial", &serial],
        vec!["pki", "crl", "refresh", "--dir", dir],
    ];
    let key = pki.dir.join("ca.key");
    let crl_before = std::fs::read(pki.dir.join("ca.crl")).expect("crl");
    for (path, open, what) in [
        (pki.dir.clone(), 0o755, "PKI directory"),
        (key.clone(), 0o644, "CA key"),
    ] {
        let safe = mode(&path);
        set(&path, open);
        for args in &commands {
            let out = brdo(args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}: {}",
                text(&out.stderr)
            );
            let err = text(&out.stderr);
            assert!(
                err.contains(what) && err.contains("refusing"),
                "{args:?}: {err}"
            );
            assert_eq!(mode(&path), open, "{args:?} left the mode alone");
        }
        set(&path, safe);
    }
    assert_eq!(
        std::fs::read(pki.dir.join("ca.crl")).expect("crl"),
        crl_before
    );
    assert!(!pki.dir.join("partner-ZZ-NEW.crt").exists());

    // `init` into an existing shared directory is refused, not chmodded.
    let shared = tempfile::tempdir().expect("tmp");
    let target = shared.path().join("shared");
    std::fs::create_dir(&target).expect("mkdir");
    set(&target, 0o755);
    let out = brdo(&["pki", "init", "--dir", target.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(mode(&target), 0o755);
    assert!(!target.join("ca.key").exists());
}

#[tokio::test]
async fn weakened_settings_are_logged_recorded_and_shown_to_operators() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.tls.min_version = brdo::config::TlsMinVersion::Tls12;
        c.tls.watch_interval_ms = 0;
        c.accreditation.max_classification = brdo::domain::Classification::EuTopSecret;
        c.server.rate_limit_per_second = 0;
        c.server.min_upload_bytes_per_second = 0;
    })
    .await;
    let start = records_of(&gw, "config_start").await;
    assert_eq!(start.len(), 1);
    let rec = &start[0];
    assert_eq!(rec["actor"]["role"], "system");
    let recorded: Vec<&str> = rec["details"]["weakened"]
        .as_array()
        .expect("list")
        .iter()
        .map(|w| w["setting"].as_str().expect("name"))
        .collect();
    let expected = [
        "tls.min_version",
        "tls.watch_interval_ms",
        "accreditation.max_classification",
        "server.rate_limit_per_second",
        "server.min_upload_bytes_per_second",
        "retention.sweep_interval_secs",
    ];
    assert_eq!(recorded, expected);

    let r = gw
        .client("operator-admin")
        .get("/v1/admin/config", &[])
        .await
        .expect("config");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let body = r.json();
    assert_eq!(body["digest"], rec["details"]["config_digest"]);
    assert_eq!(body["config"]["tls"]["min_version"], "1.2");
    assert_eq!(
        body["config"]["accreditation"]["max_classification"],
        "EU_TOP_SECRET"
    );
    let shown: Vec<&str> = body["weakened"]
        .as_array()
        .expect("list")
        .iter()
        .map(|w| w["setting"].as_str().expect("name"))
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(body["weakened"][0]["default"], "1.3");
    // Operators only.
    for who in ["partner-AL-CTD", "dpo-gateway"] {
        let r = gw
            .client(who)
            .get("/v1/admin/config", &[])
            .await
            .expect("r");
        assert_eq!(r.status, 403, "{who}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn weakened_settings_are_warned_about_by_brdo_serve() {
    let gw = TestGateway::start().await;
    let config = write_config(&gw);
    let serve = ServeProcess::start(
        &config,
        &gw.pki,
        // A TOML string: a bare 1.2 would be read as a number.
        &[
            ("BRDO_TLS__MIN_VERSION", "\"1.2\""),
            ("BRDO_SERVER__RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;
    let log = std::fs::read_to_string(&serve.log).expect("log");
    for setting in ["tls.min_version", "server.rate_limit_per_second"] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(setting) && l.contains("safe default")),
            "{setting}: {log}"
        );
    }
    drop(serve);
    gw.stop().await;
}

#[tokio::test]
async fn a_revocation_written_while_the_gateway_starts_is_not_missed() {
    let pki = Pki::create();
    // The test's runtime has one thread: the watch task has not run yet
    // when `start` returns, so this revocation lands between the gateway
    // reading the CRL and the watch's first look.
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    let serial = serial_of(&pki.dir, "partner-RS-MOI");
    brdo::pki::revoke(
        &pki.dir,
        &serial,
        brdo::pki::RevocationReason::KeyCompromise,
        OffsetDateTime::now_utc(),
    )
    .expect("revoke");
    eventually(async || gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err()).await;
    gw.stop().await;
}
