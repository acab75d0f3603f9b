//! Floods and traffic analysis (issue 16): refusals rate limited and
//! folded into counted audit records, per-identity connection slots, idle
//! connections, trickled bodies, reloads audited before they apply, and
//! partners seeing only values about their own traffic.

use std::time::Duration;

use brdo_tools::client::{Client, Protocol};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::audit::block_audit_writes;
use crate::harness::*;

/// Sum of the refusals `serial`'s records after `from` stand for: one per
/// record, or its `details.count` for a counted record; and the number of
/// records.
async fn refusals_recorded(gw: &TestGateway, from: u64, serial: &str) -> (u64, u64) {
    let n = gw.audit_size().await;
    let (mut requests, mut records) = (0, 0);
    for seq in from + 1..=n {
        let r = gw.audit_record(seq).await;
        if r["action"] != "deny" || r["actor"]["cert_serial"] != serial {
            continue;
        }
        records += 1;
        requests += r["details"]["count"].as_u64().unwrap_or(1);
    }
    (requests, records)
}

/// The serial of `<stem>.crt` in the gateway's PKI.
fn serial_of(gw: &TestGateway, stem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(gw.pki.join(format!("{stem}.crt"))).expect("cert");
    brdo::tls::PeerCert::from_der(
        &rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("pem"),
    )
    .serial
}

/// Waits (up to 10 s) until the refusals recorded for `serial` since
/// `from` add up to `expected`; returns (requests, records) as last seen.
async fn settled(gw: &TestGateway, from: u64, serial: &str, expected: u64) -> (u64, u64) {
    let mut last = (0, 0);
    for _ in 0..50 {
        last = refusals_recorded(gw, from, serial).await;
        if last.0 == expected {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

#[tokio::test]
async fn refusal_floods_meet_the_rate_limit_and_are_counted_into_few_records() {
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |c| {
        c.server.rate_limit_per_second = 5;
        c.server.rate_limit_burst = 5;
    })
    .await;
    let ops = gw.client("operator-admin");
    let r = ops
        .post_json("/v1/admin/partners/RS-MOI/suspend", &[], &json!({}))
        .await
        .expect("suspend");
    assert_eq!(r.status, 200, "{}", text(&r.body));

    // (who, certificate, the refusal before the limit bites)
    let cases = [
        ("suspended partner", "partner-RS-MOI", "partner_suspended"),
        ("certificate without identity", "no-uri", "no_identity"),
        (
            "partner the policy does not know",
            "unknown-partner",
            "no_identity",
        ),
    ];
    for (who, stem, first_code) in cases {
        let serial = serial_of(&gw, stem);
        let before = gw.audit_size().await;
        let client = gw.client(stem);
        let (mut first, mut limited) = (0u64, 0u64);
        for _ in 0..40 {
            let r = client.get("/v1/inbox", &[]).await.expect("answered");
            match r.status {
                403 => {
                    assert_problem(&r, 403, first_code);
                    first += 1;
                }
                429 => {
                    assert_problem(&r, 429, "rate_limited");
                    assert!(r.header("retry-after").is_some(), "{who}");
                    limited += 1;
                }
                other => panic!("{who}: unexpected {other}: {}", text(&r.body)),
            }
            assert_eq!(r.header("brdo-audit-seq"), None, "{who}");
        }
        assert!(limited > 0, "{who}: the rate limit applied to refusals");
        assert!(first >= 1, "{who}: the first refusals name their reason");
        // Once the windows close, the records' counts add up to the 40
        // refused requests, in far fewer records.
        let (requests, records) = settled(&gw, before, &serial, 40).await;
        assert_eq!(requests, 40, "{who}: every refusal is accounted for");
        // At most two records per kind and second: a handful while the 40
        // take a second or two, never one per request.
        assert!(records <= 20, "{who}: {records} records for 40 refusals");
    }

    // A revoked certificate does not get as far as the gate: its
    // handshakes are refused and leave nothing in the log.
    let serial = serial_of(&gw, "partner-BA-SIPA");
    brdo::pki::revoke(
        &pki.dir,
        &serial,
        brdo::pki::RevocationReason::KeyCompromise,
        time::OffsetDateTime::now_utc(),
    )
    .expect("revoke");
    let mut refused = false;
    for _ in 0..50 {
        if gw.partner("BA-SIPA").get("/v1/inbox", &[]).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the revocation took effect");
    let before = gw.audit_size().await;
    for _ in 0..40 {
        assert!(gw.partner("BA-SIPA").get("/v1/inbox", &[]).await.is_err());
    }
    let (requests, _) = refusals_recorded(&gw, before, &serial).await;
    assert_eq!(requests, 0, "refused at the handshake, never audited");

    // Everyone else is still served.
    assert_eq!(
        gw.partner("AL-CTD")
            .get("/v1/inbox", &[])
            .await
            .expect("inbox")
            .status,
        200
    );
    let verify = brdo(&[
        "audit",
        "verify",
        "--config",
        write_config(&gw).to_str().expect("utf8"),
    ]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    gw.stop().await;
}

#[tokio::test]
async fn counts_still_open_at_shutdown_reach_the_log() {
    let gw = TestGateway::start().await;
    let serial = serial_of(&gw, "no-uri");
    let before = gw.audit_size().await;
    let client = gw.client("no-uri");
    for _ in 0..10 {
        let r = client.get("/v1/inbox", &[]).await.expect("answered");
        assert_problem(&r, 403, "no_identity");
    }
    // Stop at once, inside the window.
    let config = gw.config.clone();
    let pki = gw.pki.clone();
    let files = gw.stop().await;
    let gw = TestGateway::restart(files, config, &pki).await;
    let (requests, records) = refusals_recorded(&gw, before, &serial).await;
    assert_eq!(
        requests, 10,
        "the open window's count was written at shutdown"
    );
    assert_eq!(records, 2, "the first refusal and one counted record");
    gw.stop().await;
}

/// Reads until EOF or error; whether the peer closed within `limit`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(s: &mut S, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn one_identity_cannot_hold_every_connection_slot() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.max_connections = 16;
        c.server.max_connections_per_identity = 2;
    })
    .await;
    // Two keep-alive connections of AL-CTD (two certificates would share
    // the same identity budget; one certificate is enough to show it).
    let a1 = gw.partner("AL-CTD");
    let a2 = gw.partner("AL-CTD");
    for c in [&a1, &a2] {
        assert_eq!(c.get("/v1/inbox", &[]).await.expect("ok").status, 200);
    }
    // A third is closed right after its handshake, over either protocol.
    let mut third = raw_tls(&gw.pki, "partner-AL-CTD", gw.addr()).await;
    let _ = third
        .write_all(b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "the third connection was not served"
    );
    assert!(gw.partner_h2("AL-CTD").get("/v1/inbox", &[]).await.is_err());
    // Other identities have their own share.
    for p in ["RS-MOI", "EU-ECTC"] {
        assert_eq!(
            gw.partner(p)
                .get("/v1/inbox", &[])
                .await
                .expect("ok")
                .status,
            200
        );
    }
    // Certificates without an identity are counted by serial.
    let n1 = gw.client("no-uri");
    let n2 = gw.client("no-uri");
    for c in [&n1, &n2] {
        assert_problem(
            &c.get("/v1/inbox", &[]).await.expect("answered"),
            403,
            "no_identity",
        );
    }
    assert!(gw.client("no-uri").get("/v1/inbox", &[]).await.is_err());
    // A closed connection gives its slot back.
    drop(a1);
    let mut served = false;
    for _ in 0..50 {
        if let Ok(r) = gw.partner("AL-CTD").get("/v1/inbox", &[]).await {
            assert_eq!(r.status, 200);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the freed slot was usable");
    drop(a2);
    gw.stop().await;
}

/// A keep-alive HTTP/1.1 connection may sit idle up to `idle_timeout_secs`
/// between requests; `header_read_timeout_secs` bounds only a request head
/// once it has begun. hyper's header timer also ran while the connection
/// sat idle, so a client's next request, sent after the header timeout,
/// met a connection dropped without TLS `close_notify` — "EOF occurred in
/// violation of protocol" in the API fuzzer's client. The idle close is an
/// orderly one: the client reads `close_notify`, not a truncation.
#[tokio::test]
async fn keep_alive_outlives_the_header_timeout_and_ends_with_close_notify() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.idle_timeout_secs = 3;
        c.server.header_read_timeout_secs = 1;
    })
    .await;
    let mut h1 = raw_tls(&gw.pki, "partner-AL-CTD", gw.addr()).await;
    let request = b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for round in 0..2 {
        h1.write_all(request).await.expect("request");
        let mut head = [0u8; 12];
        h1.read_exact(&mut head)
            .await
            .unwrap_or_else(|e| panic!("answer {round}: {e}"));
        assert_eq!(&head, b"HTTP/1.1 200", "answer {round}");
        // The rest of the answer (it fits one read: a short inbox page).
        let mut rest = [0u8; 8192];
        let _ = tokio::time::timeout(Duration::from_millis(300), h1.read(&mut rest)).await;
        // Idle for longer than the header timeout, within the idle one.
        tokio::time::sleep(Duration::from_millis(1800)).await;
    }
    // Then silence past the idle timeout: closed, with close_notify.
    let end = read_until_closed(&mut h1, Duration::from_secs(10)).await;
    assert!(
        end.is_ok(),
        "an idle connection ends with close_notify, not {end:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_over_http1_and_http2() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.idle_timeout_secs = 1;
        c.server.header_read_timeout_secs = 30;
    })
    .await;
    // HTTP/1.1: one request, then silence.
    let mut h1 = raw_tls(&gw.pki, "partner-AL-CTD", gw.addr()).await;
    h1.write_all(b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut head = [0u8; 12];
    h1.read_exact(&mut head).await.expect("answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut h1, Duration::from_secs(10)).await,
        "an idle HTTP/1.1 connection is closed"
    );

    // HTTP/2: a connection that never sends a request, and one that went
    // quiet after one.
    for requests in [0, 1] {
        let cfg = brdo_tools::client::tls_config(
            &gw.pki.join("partner-AL-CTD.crt"),
            &gw.pki.join("partner-AL-CTD.key"),
            &gw.pki.join("ca.crt"),
            Protocol::Http2,
        )
        .expect("tls config");
        let tcp = tokio::net::TcpStream::connect(gw.addr())
            .await
            .expect("tcp");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(name, tcp)
            .await
            .expect("handshake");
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .expect("h2 handshake");
        let conn = tokio::spawn(conn);
        for _ in 0..requests {
            let req =
                hyper::Request::get(format!("https://localhost:{}/v1/inbox", gw.addr().port()))
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .expect("request");
            let r = send.send_request(req).await.expect("answered");
            assert_eq!(r.status(), 200);
        }
        let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
        assert!(
            ended.is_ok(),
            "an idle HTTP/2 connection ({requests} requests) is closed"
        );
    }
    // A long poll is not idle: it is answered, not cut.
    let r = gw
        .partner_h2("RS-MOI")
        .get("/v1/inbox?wait=3", &[])
        .await
        .expect("long poll answered");
    assert_eq!(r.status, 200);
    gw.stop().await;
}

/// Sends a request head and `first` body bytes over raw TLS, then one
/// byte every 300 ms; returns the response text.
async fn trickle(gw: &TestGateway, head: &str, first: &[u8]) -> String {
    let mut s = raw_tls(&gw.pki, "partner-AL-CTD", gw.addr()).await;
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(first).await.expect("first bytes");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    // Headers in; give the body a moment.
                    let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf))
                        .await
                        .map(|r| r.map(|n| answer.extend_from_slice(&buf[..n])));
                    break;
                }
            }
            Err(_) => {
                if s.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn bodies_slower_than_the_minimum_rate_are_cut_with_408() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.min_upload_bytes_per_second = 1000;
        c.server.upload_grace_secs = 1;
    })
    .await;
    let cases = [
        (
            "message",
            "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Brdo-Officer: insp.hoxha\r\nContent-Length: 5000\r\n\r\n",
            "collect",
        ),
        (
            "attachment",
            "POST /v1/attachments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pdf\r\n\
             Brdo-Officer: insp.hoxha\r\nContent-Length: 100000\r\n\r\n",
            "upload",
        ),
    ];
    for (what, head, action) in cases {
        let answer = trickle(&gw, head, b"{").await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer}");
        assert!(answer.contains("upload_too_slow"), "{what}: {answer}");
        let id = header_of(&answer, "brdo-request-id").expect("request id");
        let rec = gw.audit_by_request(id).await.expect("audited");
        assert_eq!(rec["code"], "upload_too_slow", "{what}");
        assert_eq!(rec["action"], action, "{what}");
    }
    assert_eq!(gw.count("messages").await, 0);
    assert_eq!(gw.count("attachments").await, 0);
    // A body at a normal pace is served.
    submit_ok(&gw).await;
    let up = upload(&gw, "AL-CTD", vec![7u8; 200_000], "application/pdf").await;
    assert_eq!(up.status, 201, "{}", text(&up.body));
    gw.stop().await;
}

#[tokio::test]
async fn a_reload_whose_record_cannot_be_written_changes_nothing() {
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
    let agreements = gw.gateway.app.policy().agreements.len();

    let policy_path = gw.config.policy.file.clone();
    let good = std::fs::read_to_string(&policy_path).expect("policy");
    let extended = format!(
        "{good}\n[[agreement]]\nparties = [\"XK-CTD\", \"RS-MOI\"]\nbasis = \"appropriate_safeguards\"\n\
         reference = \"Test arrangement\"\nmax_classification = \"BASIC_PROTECTION\"\npurposes = [\"investigation\"]\n\
         personal_data = false\nspecial_categories = false\n"
    );
    std::fs::write(&policy_path, extended).expect("write");

    block_audit_writes(&gw, true).await;
    let size = gw.audit_size().await;
    let r = ops
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    assert_problem(&r, 503, "audit_unavailable");
    assert_eq!(
        gw.gateway.app.policy().agreements.len(),
        agreements,
        "the new policy was not put in force"
    );
    block_audit_writes(&gw, false).await;
    assert_eq!(gw.audit_size().await, size, "nothing was recorded");
    assert_problem(
        &submit(&gw, "XK-CTD", &to_kosovo).await,
        403,
        "no_legal_basis",
    );

    // Once the log is writable the same reload applies, audited first.
    let r = ops
        .post_json("/v1/admin/reload", &[], &serde_json::json!({}))
        .await
        .expect("reload");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "config_reload");
    assert_eq!(
        rec["details"]["reload"]["agreements"],
        agreements as u64 + 1
    );
    assert_eq!(submit(&gw, "XK-CTD", &to_kosovo).await.status, 201);
    gw.stop().await;
}

/// A page of `client`'s inbox after `after`.
async fn page(client: &Client, after: Option<&str>) -> brdo_tools::client::ClientResponse {
    let path = match after {
        Some(a) => format!("/v1/inbox?after={a}"),
        None => "/v1/inbox".to_owned(),
    };
    client.get(&path, &[]).await.expect("inbox")
}

#[tokio::test]
async fn partners_see_nothing_of_other_partners_traffic() {
    let gw = TestGateway::start().await;
    let serbia = gw.partner("RS-MOI");
    // Traffic that does not concern Serbia.
    let mut elsewhere = message();
    elsewhere["recipients"] = json!(["EU-ECTC"]);
    elsewhere["label"]["releasable_to"] = json!(["EU-ECTC"]);
    for _ in 0..3 {
        send(&gw, "AL-CTD", &elsewhere).await;
    }
    let id = submit_ok(&gw).await;

    // No gateway-wide sequence for partners; DPOs and operators keep it.
    let first = page(&serbia, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("brdo-audit-seq"), None);
    let sent = submit(&gw, "AL-CTD", &message()).await;
    assert_eq!(sent.header("brdo-audit-seq"), None);
    let dpo = gw
        .client("dpo-RS-MOI")
        .get("/v1/audit", &[OFFICER])
        .await
        .expect("dpo");
    assert!(
        dpo.header("brdo-audit-seq").is_some(),
        "{}",
        text(&dpo.body)
    );
    let op = gw
        .client("operator-admin")
        .get("/v1/admin/partners", &[])
        .await
        .expect("ops");
    assert!(op.header("brdo-audit-seq").is_some());

    // The cursor is opaque: no number in it, and a fresh one each time.
    let v = first.json();
    assert_eq!(v["messages"][0]["id"], id.as_str());
    let cursor = v["next"].as_str().expect("next").to_owned();
    assert!(cursor.parse::<u64>().is_err(), "{cursor}");
    let again = page(&serbia, None).await.json();
    assert_ne!(again["next"], cursor.as_str(), "sealed with a fresh nonce");
    // It pages on: the second message, then an empty page keeping it.
    let second = page(&serbia, Some(&cursor)).await.json();
    assert_eq!(second["messages"].as_array().expect("list").len(), 1);
    let last = second["next"].as_str().expect("next").to_owned();
    let empty = page(&serbia, Some(&last)).await.json();
    assert_eq!(empty["messages"], json!([]));
    assert_eq!(empty["next"], last.as_str());
    // More traffic elsewhere changes nothing Serbia can see.
    for _ in 0..3 {
        send(&gw, "AL-CTD", &elsewhere).await;
    }
    let still = page(&serbia, Some(&last)).await.json();
    assert_eq!(still["next"], last.as_str());
    // `0` starts from the beginning.
    let from_start = page(&serbia, Some("0")).await.json();
    assert_eq!(from_start["messages"].as_array().expect("list").len(), 2);

    // Edited, numeric, foreign or stale cursors: 400 naming `after`.
    let mut edited = cursor.clone().into_bytes();
    let i = edited.len() / 2;
    edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).expect("ascii");
    let eu_cursor = page(&gw.partner("EU-ECTC"), None).await.json()["next"]
        .as_str()
        .expect("next")
        .to_owned();
    for (what, bad) in [
        ("edited", edited.as_str()),
        ("a number", "3"),
        ("another partner's", eu_cursor.as_str()),
        ("garbage", "not-a-cursor"),
    ] {
        let r = page(&serbia, Some(bad)).await;
        let p = assert_problem(&r, 400, "invalid_request");
        assert_eq!(p["errors"][0]["field"], "after", "{what}: {p}");
    }
    let mut records: Vec<Value> = Vec::new();
    for seq in 1..=gw.audit_size().await {
        records.push(gw.audit_record(seq).await);
    }
    assert!(
        !records.iter().any(|r| r.to_string().contains(&cursor)),
        "cursors are not written to the log"
    );
    gw.stop().await;
}
