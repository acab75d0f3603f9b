//! Operators (SPEC §1, §6): revocation and rotation without restart,
//! expiry, suspension, reload, metrics and health.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brdo_tools::client::Protocol;
use rustls::pki_types::ServerName;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// The serial of the certificate the gateway presents to a new connection.
async fn server_serial(gw: &TestGateway) -> String {
    let cfg = brdo_tools::client::tls_config(
        &gw.pki.join("partner-AL-CTD.crt"),
        &gw.pki.join("partner-AL-CTD.key"),
        &gw.pki.join("ca.crt"),
        Protocol::Http1,
    )
    .expect("tls");
    let tcp = tokio::net::TcpStream::connect(gw.addr())
        .await
        .expect("tcp");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let cert = tls.get_ref().1.peer_certificates().expect("server cert")[0].clone();
    brdo::tls::PeerCert::from_der(&cert).serial
}

fn serial_of(gw: &TestGateway, stem: &str) -> String {
    let pem = std::fs::read(gw.pki.join(format!("{stem}.crt"))).expect("cert");
    use rustls::pki_types::pem::PemObject;
    brdo::tls::PeerCert::from_der(
        &rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("pem"),
    )
    .serial
}

/// Polls `probe` until it returns true (bounded: a hang guard, not a timing claim).
async fn eventually(mut probe: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    for _ in 0..100 {
        if probe().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("did not happen within 5 s");
}

#[tokio::test]
async fn revocation_refuses_new_handshakes_and_closes_open_connections() {
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    let serbia = gw.partner("RS-MOI");
    let serbia_h2 = gw.partner_h2("RS-MOI");
    assert_eq!(serbia.get("/v1/inbox", &[]).await.expect("h1").status, 200);
    assert_eq!(
        serbia_h2.get("/v1/inbox", &[]).await.expect("h2").status,
        200
    );
    // A long poll in flight on its own connection.
    let poller = gw.partner("RS-MOI");
    let poll = tokio::spawn(async move { poller.get("/v1/inbox?wait=30", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let serial = serial_of(&gw, "partner-RS-MOI");
    brdo::pki::revoke(
        &pki.dir,
        &serial,
        brdo::pki::RevocationReason::KeyCompromise,
        time::OffsetDateTime::now_utc(),
    )
    .expect("revoke");
    let took = eventually(async || gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err()).await;
    eprintln!("revocation refused new handshakes after {took:?}");
    // The long poll is cut off rather than answered, even when a message arrives.
    submit_ok(&gw).await;
    let polled = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("poll ends")
        .expect("join");
    assert!(
        polled.is_err(),
        "the in-flight request got no answer: {:?}",
        polled.map(|r| r.status)
    );
    // Open keep-alive (HTTP/1.1) and HTTP/2 connections are closed or refused.
    for client in [&serbia, &serbia_h2] {
        match client.get("/v1/inbox", &[]).await {
            Err(_) => {}
            Ok(r) => {
                assert_problem(&r, 403, "certificate_revoked");
            }
        };
    }
    // Others carry on; the revocation is in the audit log.
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("ok")
            .status,
        200
    );
    let n = gw.audit_size().await;
    let mut found = false;
    for seq in 1..=n {
        let r = gw.audit_record(seq).await;
        if r["action"] == "cert_revoke" && r["details"]["serial"] == serial.as_str() {
            assert_eq!(r["actor"]["role"], "system");
            assert!(r["details"]["connections_closed"].as_u64() >= Some(2));
            found = true;
        }
    }
    assert!(found, "a cert_revoke record names the serial");
    let (_, metrics) = plain_get(gw.gateway.metrics_addr, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("brdo_connections_closed_total ") && !l.ends_with(" 0"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn revocation_by_the_reload_endpoint_when_the_watch_is_off() {
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |c| c.tls.watch_interval_ms = 0).await;
    let serbia = gw.partner("RS-MOI");
    assert_eq!(serbia.get("/v1/inbox", &[]).await.expect("ok").status, 200);
    let serial = serial_of(&gw, "partner-RS-MOI");
    let out = brdo(&[
        "pki",
        "revoke",
        "--dir",
        pki.dir.to_str().expect("utf8"),
        "--serial",
        &serial,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Without the watch nothing changes until an operator reloads.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        gw.partner("RS-MOI")
            .get("/v1/inbox", &[])
            .await
            .expect("still in")
            .status,
        200
    );
    let r = gw
        .client("operator-admin")
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["newly_revoked"], json!([serial]));
    assert!(r.json()["connections_closed"].as_u64() >= Some(1));
    assert!(
        gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err(),
        "handshake refused"
    );
    match serbia.get("/v1/inbox", &[]).await {
        Err(_) => {}
        Ok(r) => {
            assert_problem(&r, 403, "certificate_revoked");
        }
    }
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "config_reload");
    assert_eq!(rec["details"]["reload"]["newly_revoked"], json!([serial]));
    let n = gw.audit_size().await;
    let mut found = false;
    for seq in 1..=n {
        let r = gw.audit_record(seq).await;
        if r["action"] == "cert_revoke" && r["details"]["serial"] == serial.as_str() {
            assert_eq!(r["actor"]["role"], "operator");
            found = true;
        }
    }
    assert!(
        found,
        "a cert_revoke record names the operator who reloaded"
    );
    gw.stop().await;
}

#[tokio::test]
async fn no_handshake_resumes_a_session() {
    let gw = TestGateway::start().await;
    // A client that would resume if the server let it.
    let mut cfg = brdo_tools::client::tls_config(
        &gw.pki.join("partner-AL-CTD.crt"),
        &gw.pki.join("partner-AL-CTD.key"),
        &gw.pki.join("ca.crt"),
        Protocol::Http1,
    )
    .expect("tls");
    cfg.resumption = rustls::client::Resumption::in_memory_sessions(32);
    let cfg = Arc::new(cfg);
    for attempt in 0..3 {
        let tcp = tokio::net::TcpStream::connect(gw.addr())
            .await
            .expect("tcp");
        let mut tls = tokio_rustls::TlsConnector::from(cfg.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        // Drive the connection so any ticket the server sends is read.
        tls.write_all(b"GET /v1/inbox HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        assert!(
            buf.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full),
            "connection {attempt} ran a full handshake"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn server_certificate_rotation_without_outage() {
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    let before = server_serial(&gw).await;
    // Work in flight on an open connection across the rotation.
    let poller = gw.partner("RS-MOI");
    let poll = tokio::spawn(async move { poller.get("/v1/inbox?wait=20", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let out = brdo(&[
        "pki",
        "issue",
        "--dir",
        pki.dir.to_str().expect("utf8"),
        "--gateway",
        "--days",
        "90",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new_serial = text(&out.stdout).trim().to_owned();
    let r = gw
        .client("operator-admin")
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["server_certificate_serial"], new_serial.as_str());
    assert_eq!(
        server_serial(&gw).await,
        new_serial,
        "new connections see the new certificate"
    );
    assert_ne!(before, new_serial);
    // The open connection finishes its work.
    let id = submit_ok(&gw).await;
    let polled = poll.await.expect("join").expect("the long poll completes");
    assert_eq!(polled.json()["messages"][0]["id"], id.as_str());
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["actor"]["role"].as_str()),
        (Some("config_reload"), Some("operator"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn suspension_cuts_a_partner_off_at_once_and_resume_restores_it() {
    let gw = TestGateway::start().await;
    let serbia = gw.partner("RS-MOI");
    assert_eq!(serbia.get("/v1/inbox", &[]).await.expect("ok").status, 200);
    let poller = gw.partner("RS-MOI");
    let poll = tokio::spawn(async move { poller.get("/v1/inbox?wait=30", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ops = gw.client("operator-admin");
    let r = ops
        .post_json(
            "/v1/admin/partners/RS-MOI/suspend",
            &[],
            &json!({"reason": "Key compromise suspected"}),
        )
        .await
        .expect("suspend");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["status"], "suspended");
    assert!(r.json()["connections_closed"].as_u64() >= Some(2));
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "partner_suspend");
    assert_eq!(rec["justification"], "Key compromise suspected");
    assert!(
        poll.await.expect("join").is_err(),
        "the open long poll was cut off"
    );
    let refused = gw
        .partner("RS-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("request");
    assert_problem(&refused, 403, "partner_suspended");
    let denied = submit(&gw, "AL-CTD", &message()).await;
    let p = assert_problem(&denied, 403, "recipient_suspended");
    assert_eq!(p["violations"][0]["recipient"], "RS-MOI");
    let partners = ops
        .get("/v1/admin/partners", &[])
        .await
        .expect("partners")
        .json();
    let rs = partners["partners"]
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["id"] == "RS-MOI")
        .expect("RS-MOI")
        .clone();
    assert_eq!(rs["status"], "suspended");
    assert!(
        rs["certificates"].as_array().is_some_and(|c| !c.is_empty()),
        "{rs}"
    );

    let r = ops
        .request(
            hyper::Method::POST,
            "/v1/admin/partners/RS-MOI/resume",
            &[("content-type", "application/json")],
            None,
        )
        .await
        .expect("resume");
    assert_eq!(r.json()["status"], "active");
    assert_eq!(gw.audit_of(&r).await["action"], "partner_resume");
    assert_eq!(
        gw.partner("RS-MOI")
            .get("/v1/inbox", &[])
            .await
            .expect("ok")
            .status,
        200
    );
    assert_eq!(submit(&gw, "AL-CTD", &message()).await.status, 201);
    // Survives a restart: the state is in the store.
    ops.request(
        hyper::Method::POST,
        "/v1/admin/partners/ME-MOI/suspend",
        &[("content-type", "application/json")],
        None,
    )
    .await
    .expect("suspend");
    let (config, pki) = (gw.config.clone(), gw.pki.clone());
    let files = gw.stop().await;
    let gw = TestGateway::restart(files, config, &pki).await;
    assert_problem(
        &gw.partner("ME-MOI").get("/v1/inbox", &[]).await.expect("r"),
        403,
        "partner_suspended",
    );
    // Unknown partners and other roles.
    let ops = gw.client("operator-admin");
    assert_problem(
        &ops.request(
            hyper::Method::POST,
            "/v1/admin/partners/ZZ-NONE/suspend",
            &[("content-type", "application/json")],
            None,
        )
        .await
        .expect("r"),
        404,
        "not_found",
    );
    assert_problem(
        &gw.partner("AL-CTD")
            .get("/v1/admin/partners", &[])
            .await
            .expect("r"),
        403,
        "forbidden_role",
    );
    assert_problem(
        &gw.client("dpo-gateway")
            .get("/v1/admin/certificates", &[])
            .await
            .expect("r"),
        403,
        "forbidden_role",
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_broken_policy_is_refused_and_the_old_one_keeps_serving() {
    let gw = TestGateway::start().await;
    let ops = gw.client("operator-admin");
    let mut to_kosovo = message();
    to_kosovo["recipients"] = json!(["RS-MOI"]);
    to_kosovo["label"] = json!({"classification": "BASIC_PROTECTION"});
    to_kosovo["personal_data"] = json!({"subjects": []});
    assert_problem(
        &submit(&gw, "XK-CTD", &to_kosovo).await,
        403,
        "no_legal_basis",
    );

    let policy_path = gw.config.policy.file.clone();
    let good = std::fs::read_to_string(&policy_path).expect("policy");
    let broken = good.replacen("max_days = 1825", "max_days = \"forever\"", 1);
    std::fs::write(&policy_path, &broken).expect("write");
    let r = ops
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    let p = assert_problem(&r, 400, "reload_refused");
    let line = broken
        .lines()
        .position(|l| l.contains("\"forever\""))
        .expect("line")
        + 1;
    let msg = p["errors"][0]["message"].as_str().expect("message");
    assert_eq!(p["errors"][0]["field"], "policy");
    assert!(msg.contains(&format!("line {line} column 12")), "{msg}");
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["outcome"].as_str()),
        (Some("config_reload"), Some("failed"))
    );
    assert_eq!(
        submit_ok(&gw).await.len(),
        36,
        "the old policy still serves"
    );

    // A valid change applies at once: a new agreement for XK-CTD and RS-MOI.
    let extended = format!(
        "{good}\n[[agreement]]\nparties = [\"XK-CTD\", \"RS-MOI\"]\nbasis = \"appropriate_safeguards\"\n\
         reference = \"Test arrangement\"\nmax_classification = \"BASIC_PROTECTION\"\npurposes = [\"investigation\"]\n\
         personal_data = false\nspecial_categories = false\n"
    );
    std::fs::write(&policy_path, extended).expect("write");
    let r = ops
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["agreements"], 9);
    assert_eq!(submit(&gw, "XK-CTD", &to_kosovo).await.status, 201);
    gw.stop().await;
}

#[tokio::test]
async fn expiry_is_visible_in_pki_list_admin_api_metrics_and_logs() {
    let pki = Pki::create();
    let now = time::OffsetDateTime::now_utc();
    brdo::pki::issue_custom(
        &pki.dir,
        "partner-BA-SIPA",
        &["urn:brdo:partner:BA-SIPA".to_owned()],
        now - time::Duration::days(1),
        now + time::Duration::days(10),
        P12_PASSWORD,
    )
    .expect("expiring cert");
    let out = brdo(&["pki", "list", "--dir", pki.dir.to_str().expect("utf8")]);
    let listing = text(&out.stdout);
    let row = listing
        .lines()
        .find(|l| l.starts_with("partner-BA-SIPA.crt"))
        .expect("listed");
    assert!(
        row.contains("urn:brdo:partner:BA-SIPA") && row.contains("expir"),
        "{row}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("expired.crt") && l.contains("expired")),
        "{listing}"
    );

    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    let certs = gw
        .client("operator-admin")
        .get("/v1/admin/certificates", &[])
        .await
        .expect("certs")
        .json();
    let list = certs["certificates"].as_array().expect("list");
    let ba = list
        .iter()
        .find(|c| c["file"] == "partner-BA-SIPA.crt")
        .expect("BA-SIPA");
    assert_eq!(ba["status"], "expiring");
    assert!(
        ba["days_left"]
            .as_f64()
            .is_some_and(|d| (9.0..10.1).contains(&d)),
        "{ba}"
    );
    assert!(
        list.iter()
            .any(|c| c["source"] == "server" && c["status"] == "valid")
    );
    assert!(list.iter().any(|c| c["status"] == "expired"));
    let (status, metrics) = plain_get(gw.gateway.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with("brdo_certificate_expiry_days{identity=\"urn:brdo:partner:BA-SIPA\"")),
        "{metrics}"
    );
    let config = write_config(&gw);
    let _files = gw.stop().await;

    // `brdo serve` warns in its log at start.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["serve", "--config", config.to_str().expect("utf8")])
        .env("BRDO_SERVER__LISTEN", "127.0.0.1:0")
        .env("BRDO_SERVER__METRICS_LISTEN", "127.0.0.1:0")
        .env("BRDO_PKI__DIR", pki.dir.to_str().expect("utf8"))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    let _ = child.wait();
    let warning = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["message"] == "certificate expires within 30 days"
                && v["identity"] == "urn:brdo:partner:BA-SIPA"
        });
    assert!(
        warning.is_some(),
        "a JSON log warning names the certificate:\n{err}"
    );

    // At a terminal the same warning is human-readable text.
    let command = format!(
        "BRDO_SERVER__LISTEN=127.0.0.1:0 BRDO_SERVER__METRICS_LISTEN=127.0.0.1:0 BRDO_PKI__DIR='{}' \
         timeout -s TERM 3 '{}' serve --config '{}'",
        pki.dir.display(),
        env!("CARGO_BIN_EXE_brdo"),
        config.display()
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) gives the gateway a terminal");
    let console = text(&out.stdout);
    let line = console
        .lines()
        .find(|l| l.contains("certificate expires within 30 days") && l.contains("BA-SIPA"))
        .unwrap_or_else(|| panic!("warning at the terminal:\n{console}"));
    assert!(
        serde_json::from_str::<serde_json::Value>(line.trim()).is_err() && line.contains("WARN"),
        "{line}"
    );
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let gw = TestGateway::start().await;
    submit_ok(&gw).await;
    submit(&gw, "XK-CTD", &message()).await;
    read(&gw, "RS-MOI", "not-an-id").await;
    let addr = gw.gateway.metrics_addr;
    assert_eq!(plain_get(addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(plain_get(addr, "/readyz").await.0, 200);
    let (_, m) = plain_get(addr, "/metrics").await;
    for needle in [
        "brdo_requests_total{route=\"/v1/messages\",status=\"201\"} 1",
        "brdo_requests_total{route=\"/v1/messages\",status=\"403\"} 1",
        "brdo_requests_total{route=\"/v1/messages/{id}\",status=\"404\"} 1",
        "brdo_messages_accepted_total 1",
        "brdo_messages_denied_total{code=\"no_legal_basis\"} 1",
        "brdo_messages_denied_total{code=\"sender_not_cleared\"} 1",
        "# TYPE brdo_request_duration_seconds histogram",
        "brdo_retention_sweeps_total 0",
        "brdo_partners_suspended 0",
    ] {
        assert!(m.lines().any(|l| l == needle), "missing {needle}\n{m}");
    }
    assert!(
        m.lines()
            .any(|l| l.starts_with("brdo_audit_records ") && l != "brdo_audit_records 0")
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("brdo_audit_checkpoint_age_seconds "))
    );
    assert!(
        !m.contains("Travel of a returning"),
        "no content in metrics"
    );
    assert!(
        !m.contains("/v1/messages/01"),
        "routes are templates, never concrete ids"
    );

    // Not ready while another process holds the database's write lock.
    let pool = gw.db().await;
    let mut conn = pool.acquire().await.expect("conn");
    let lock: &[&str] = match gw.db_kind() {
        DbKind::Sqlite => &["BEGIN EXCLUSIVE"],
        DbKind::Postgres => &["BEGIN", "LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE"],
    };
    for sql in lock {
        sqlx::Executor::execute(&mut *conn, *sql)
            .await
            .expect("lock");
    }
    assert_eq!(plain_get(addr, "/readyz").await.0, 503);
    sqlx::Executor::execute(&mut *conn, "ROLLBACK")
        .await
        .expect("unlock");
    drop(conn);
    pool.close().await;
    assert_eq!(plain_get(addr, "/readyz").await.0, 200);
    gw.stop().await;
}

/// A reload validates the CRL on disk, writes its audit record and only
/// then puts the CRL in force. If the watch finds a newer CRL (a
/// revocation) meanwhile, the older list the reload read must not end up
/// in force: that would let the just-revoked certificate in again. The
/// reload's audit write is held up by holding SQLite's write lock from the
/// test while the revocation lands.
#[tokio::test]
async fn a_reload_in_flight_never_puts_back_a_crl_older_than_the_one_in_force() {
    let pki = Pki::create();
    let gw = TestGateway::start_sqlite_with(&pki.dir, |c| c.tls.watch_interval_ms = 100).await;
    assert_eq!(
        gw.partner("RS-MOI")
            .get("/v1/inbox", &[])
            .await
            .expect("in")
            .status,
        200
    );
    let crl_number = async || {
        let (_, m) = plain_get(gw.gateway.metrics_addr, "/metrics").await;
        m.lines()
            .find_map(|l| l.strip_prefix("brdo_crl_number "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let before = crl_number().await;
    assert!(!before.is_empty(), "the CRL number is exported");
    let lock = rusqlite::Connection::open(gw.data.join("brdo.db")).expect("open db");
    lock.busy_timeout(Duration::from_secs(5)).expect("busy");
    lock.execute_batch("BEGIN IMMEDIATE").expect("write lock");

    // The reload reads the CRL on disk (nothing revoked) and waits for its
    // audit record.
    let operator = gw.client("operator-admin");
    let reload = tokio::spawn(async move {
        operator
            .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
            .await
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Meanwhile a revocation, which the watch finds. Give it the chance to
    // put the newer CRL in force while the reload waits (it must not
    // when the two are serialised, so this wait is bounded, not asserted).
    let serial = serial_of(&gw, "partner-RS-MOI");
    brdo::pki::revoke(
        &pki.dir,
        &serial,
        brdo::pki::RevocationReason::KeyCompromise,
        time::OffsetDateTime::now_utc(),
    )
    .expect("revoke");
    for _ in 0..30 {
        if crl_number().await != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    lock.execute_batch("ROLLBACK").expect("release");
    drop(lock);
    let r = reload.await.expect("join").expect("reload answered");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    // The newer CRL ends up in force, whatever the order: the revoked
    // certificate is refused and stays refused.
    eventually(async || gw.partner("RS-MOI").get("/v1/inbox", &[]).await.is_err()).await;
    assert_ne!(crl_number().await, before, "the newer CRL is in force");
    gw.stop().await;
}
