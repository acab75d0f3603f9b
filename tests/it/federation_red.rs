//! Attacks on federation (SPEC §11) by a peer gateway that misbehaves:
//! documents claiming origins it does not front, senders this gateway
//! has cut off, free text the partner-facing rules refuse, and answers
//! too large to hold.

use brdo::crypto::jose::JwsKey;
use brdo::federation::RelayedMessage;
use serde_json::{Value, json};

use crate::fed::with_third_peer;
use crate::harness::{Federation, assert_problem, text};

/// A document as A's relay would send it to B, bound with A's envelope
/// key, with the given sender, originator and officer.
fn document(
    fed: &Federation,
    sender: &str,
    originator: &str,
    officer: &str,
    recipients: &[&str],
) -> Value {
    document_in(fed, sender, originator, officer, recipients, None)
}

/// [`document`], a forward into the family `family` names when given.
fn document_in(
    fed: &Federation,
    sender: &str,
    originator: &str,
    officer: &str,
    recipients: &[&str],
    family: Option<&str>,
) -> Value {
    let mut doc = RelayedMessage {
        v: 1,
        id: uuid::Uuid::now_v7().to_string(),
        originator: originator.into(),
        sender: sender.into(),
        officer: officer.into(),
        recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
        subject: "Relayed".into(),
        body: "Body".into(),
        content_type: "text/plain".into(),
        label: json!({"classification": "EU_RESTRICTED", "handling_codes": ["H0"]}),
        evaluation: json!({"scheme": "EU-4x4", "source": "B", "information": "2"}),
        purpose: "investigation".into(),
        personal_data: json!({"subjects": [], "special_categories": [], "special_categories_basis": null, "minors": false}),
        case_ref: None,
        in_reply_to: None,
        accepted_at: "2026-01-01T00:00:00.000Z".into(),
        retain_until: "2099-01-01T00:00:00.000Z".into(),
        review_on: "2098-01-01".into(),
        attachments: Vec::new(),
        binding: String::new(),
        signatures: Vec::new(),
        forwarded_from: None,
        family: String::new(),
    };
    if sender == originator {
        doc.family = doc.id.clone();
    } else {
        // A forward: of a message of the originator's, in its family.
        let original = family.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        doc.forwarded_from = Some(original.clone());
        doc.family = original;
    }
    let key = JwsKey::from_pem_file(&fed.a_pki.join("envelope-signing.key")).expect("key");
    doc.binding = brdo::binding::sign(&key, &doc.binding_view(), |_| String::new()).expect("sign");
    serde_json::to_value(&doc).expect("json")
}

async fn post(fed: &Federation, doc: &Value) -> brdo_tools::client::ClientResponse {
    fed.a_as_gateway_to_b()
        .post_json("/v1/federation/messages", &[], doc)
        .await
        .expect("post")
}

/// A peer fronts its own partners only: a document whose originator
/// lives on this gateway or behind another peer is a forgery the calling
/// peer cannot have relayed honestly (SPEC §11: the origin refuses such a
/// forward itself because "its gateway would refuse it"). Accepting it
/// would attribute information to a partner that never provided it, and
/// make that partner the one whose permission H2/H1 ask for.
#[tokio::test]
async fn a_forged_originator_is_refused_audited_and_stores_nothing() {
    let fed = Federation::start_with(|_, _| {}, with_third_peer).await;
    let b = fed.b();
    let cases = [
        ("originator local to B", "ME-MOI"),
        ("originator behind another peer", "XK-CTD"),
        ("originator the receiving recipient itself", "RS-MOI"),
    ];
    for (what, originator) in cases {
        let doc = document(&fed, "AL-CTD", originator, "insp.hoxha", &["RS-MOI"]);
        let r = post(&fed, &doc).await;
        assert_problem(&r, 403, "origin_not_behind_peer");
        let rec = b.audit_of(&r).await;
        assert_eq!(rec["code"], "origin_not_behind_peer", "{what}: {rec}");
    }
    assert_eq!(b.count("messages").await, 0, "nothing stored");
    assert_eq!(b.count("relay_receipts").await, 0, "no receipt issued");
    // A forward whose originator does live behind A is still accepted.
    let doc = document(&fed, "AL-CTD", "EU-ECTC", "insp.hoxha", &["RS-MOI"]);
    let r = post(&fed, &doc).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
}

/// A partner this gateway's operator suspended is cut off on every call
/// (SPEC §1); living behind a peer must not be a way around it.
#[tokio::test]
async fn a_suspended_sender_behind_a_peer_is_refused() {
    let fed = Federation::start().await;
    let b = fed.b();
    let r = b
        .client("operator-admin")
        .post_json(
            "/v1/admin/partners/AL-CTD/suspend",
            &[],
            &json!({"reason": "drill"}),
        )
        .await
        .expect("suspend");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let doc = document(&fed, "AL-CTD", "AL-CTD", "insp.hoxha", &["RS-MOI"]);
    let r = post(&fed, &doc).await;
    assert_problem(&r, 403, "partner_suspended");
    assert_eq!(b.audit_of(&r).await["code"], "partner_suspended");
    assert_eq!(b.count("messages").await, 0);
    assert_eq!(b.count("relay_receipts").await, 0);
    // Resumed, the same document goes through (the refusal stored nothing).
    let r = b
        .client("operator-admin")
        .post_json("/v1/admin/partners/AL-CTD/resume", &[], &json!({}))
        .await
        .expect("resume");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let r = post(&fed, &doc).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
}

/// The officer a peer names is free text stored with the message and
/// shown to recipients: the same rule as `Brdo-Officer` (SPEC §1) —
/// invisible formatting, bidirectional controls and odd spaces refused,
/// naming the field; the accepted name kept in NFC.
#[tokio::test]
async fn a_relayed_officer_obeys_the_free_text_rule() {
    let fed = Federation::start().await;
    let b = fed.b();
    let hostile = [
        ("right-to-left override", "insp.\u{202E}ahxoh"),
        ("zero width space", "insp.\u{200B}hoxha"),
        ("no-break space", "insp.\u{00A0}hoxha"),
        ("line feed", "insp.\nhoxha"),
        ("too long", &"x".repeat(129)),
        ("empty", ""),
    ];
    for (what, officer) in hostile {
        let doc = document(&fed, "AL-CTD", "AL-CTD", officer, &["RS-MOI"]);
        let r = post(&fed, &doc).await;
        let p = assert_problem(&r, 400, "invalid_message");
        assert_eq!(p["errors"][0]["field"], "officer", "{what}: {p}");
    }
    assert_eq!(b.count("messages").await, 0);
    // Decomposed input is stored precomposed.
    let doc = document(&fed, "AL-CTD", "AL-CTD", "insp. Ho\u{0308}xha", &["RS-MOI"]);
    let r = post(&fed, &doc).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let officer: String = sqlx::query_scalar("SELECT officer FROM messages")
        .fetch_one(&b.db().await)
        .await
        .expect("officer");
    assert_eq!(officer, "insp. H\u{00F6}xha");
}

/// A TLS listener at `addr` with B's own gateway certificate (so A's
/// relay trusts it), for the hostile peers below.
async fn posing_as_b(
    fed: &Federation,
    addr: std::net::SocketAddr,
) -> (tokio_rustls::TlsAcceptor, tokio::net::TcpListener) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fed.b_pki.join("gateway.crt"))
            .expect("cert")
            .collect::<Result<_, _>>()
            .expect("certs");
    let key = PrivateKeyDer::from_pem_file(fed.b_pki.join("gateway.key")).expect("key");
    let mut cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    (acceptor, listener)
}

/// Serves one peer address as a hostile gateway would: B's own gateway
/// certificate (so A's relay trusts it), and to every request `status`
/// with a JSON body of `pad` bytes of whitespace and then `body`, its
/// length undeclared.
async fn fake_peer(
    fed: &Federation,
    addr: std::net::SocketAddr,
    status: &'static str,
    pad: usize,
    body: Vec<u8>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (acceptor, listener) = posing_as_b(fed, addr).await;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut seen = Vec::new();
            let mut buf = [0u8; 8192];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            // No length declared: the body ends when the connection does,
            // so only a limit on what is read stops the reader.
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
            );
            if tls.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 1 << 16];
            let mut left = pad;
            while left > 0 {
                let n = left.min(chunk.len());
                if tls.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
            let _ = tls.write_all(&body).await;
            // close_notify: the body ends here, cleanly.
            let _ = tls.shutdown().await;
        });
    }
}

/// The one peer as the operator of `gw` sees it.
async fn peer_of(gw: &crate::harness::TestGateway) -> Value {
    let r = gw
        .client("operator-admin")
        .get("/v1/admin/peers", &[])
        .await
        .expect("peers");
    r.json()["peers"][0].clone()
}

/// Stops B, serves its address with [`fake_peer`], sends a message from
/// A and waits until A's relay records an error for the peer; returns
/// the message id and that `last_error`.
async fn relay_to_fake_peer(
    fed: &mut Federation,
    status: &'static str,
    pad: usize,
    body: Vec<u8>,
) -> (String, String) {
    let addr = fed.b().addr();
    fed.stop_b().await;
    let fed = &*fed;
    let server = fake_peer(fed, addr, status, pad, body);
    let watch = async {
        let a = fed.a();
        let before = peer_of(a).await["last_error_at"].clone();
        let id = crate::harness::send(a, "AL-CTD", &crate::harness::message()).await;
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let peer = peer_of(a).await;
            if let Some(e) = peer["last_error"].as_str()
                && peer["last_error_at"] != before
            {
                return (id, e.to_owned());
            }
            assert!(started.elapsed().as_secs() < 20, "{peer}");
        }
    };
    tokio::select! {
        () = server => panic!("the fake peer stopped"),
        found = watch => found,
    }
}

/// A peer's answer is read into memory whole: a hostile or broken peer
/// answering with an endless body must not be able to exhaust the
/// origin's memory. The relay reads at most a bounded answer, names the
/// reason in the peer's `last_error`, and the row waits.
#[tokio::test]
async fn an_oversized_answer_from_a_peer_is_not_read_whole() {
    let mut fed = Federation::start().await;
    let (id, error) = relay_to_fake_peer(&mut fed, "201 Created", 64 << 20, b"{}".to_vec()).await;
    assert!(
        error.contains("larger than"),
        "the answer was read whole: {error}"
    );
    assert_eq!(
        fed.a()
            .count(&format!("relay_outbox WHERE message_id = '{id}'"))
            .await,
        1,
        "the row waits"
    );
}

/// What a peer answers is the peer's text: it must not reach the
/// operators' `last_error`, the outbox row or the log, where it could
/// carry anything (the content of the message it was just sent, forged
/// log lines). Only the kind of failure is kept.
#[tokio::test]
async fn a_peers_own_words_stay_out_of_last_error() {
    const MARK: &str = "SECRET-SUBJECT";
    let fed = Federation::start().await;
    let jws = {
        let key = JwsKey::from_pem_file(&fed.b_pki.join("envelope-signing.key")).expect("key");
        brdo::federation::Receipt {
            v: 1,
            kind: brdo::federation::ReceiptKind::Accepted,
            gateway: brdo::domain::PartnerId::parse("RS-NCB").expect("id"),
            to: brdo::domain::PartnerId::parse("AL-NCB").expect("id"),
            message_id: format!("{MARK}\nWARN forged log line"),
            recipient: brdo::domain::PartnerId::parse("RS-MOI"),
            at: "2026-01-01T00:00:00.000Z".into(),
            audit_seq: Some(1),
            tree_size: Some(1),
            violations: Vec::new(),
            notice: None,
        }
        .sign(&key)
        .expect("sign")
    };
    let mut fed = fed;
    let cases: Vec<(&'static str, Value)> = vec![
        (
            "201 Created",
            json!({"receipts": [{"recipient": "RS-MOI", "kind": "accepted", "jws": jws}]}),
        ),
        (
            "201 Created",
            json!({"receipts": [{"recipient": "RS-MOI", "kind": "accepted", "jws":
                format!("{}.{}.x", "eyJhbGciOiJFZERTQSJ9", MARK)}]}),
        ),
        (
            "403 Forbidden",
            json!({"code": format!("{MARK}\nWARN forged"), "detail": MARK}),
        ),
    ];
    for (status, body) in cases {
        let (id, error) =
            relay_to_fake_peer(&mut fed, status, 0, body.to_string().into_bytes()).await;
        assert!(
            !error.contains(MARK) && !error.contains('\n'),
            "{status} {body}: {error}"
        );
        let stored: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM relay_outbox WHERE message_id = $1")
                .bind(&id)
                .fetch_one(&fed.a().db().await)
                .await
                .expect("row");
        let stored = stored.unwrap_or_default();
        assert!(!stored.contains(MARK), "{status}: {stored}");
        fed.start_b().await;
        // B takes the waiting row; the next case starts from a clean peer.
        let started = std::time::Instant::now();
        while fed.a().count("relay_outbox").await > 0 {
            assert!(started.elapsed().as_secs() < 20, "the row still waits");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// A relayed forward names its family (`family`, `forwarded_from`); a
/// peer naming the family of a message B's own partner originated must
/// not gain the originator's say over it (SPEC §11: only the originator's
/// gateway decides). A notice naming the peer's "forward" applies to the
/// whole family, so each kind would reach B's partner's message: erase it,
/// hold it, raise its label or grant a permission on it.
#[tokio::test]
async fn a_forward_into_a_foreign_family_gives_the_peer_no_say_over_it() {
    let fed = Federation::start().await;
    let b = fed.b();
    let mut m = crate::harness::message();
    m["recipients"] = json!(["RS-MOI"]);
    m["label"] = json!({"classification": "EU_RESTRICTED", "handling_codes": ["H2"]});
    let local = crate::harness::send(b, "ME-MOI", &m).await;
    let doc = document_in(
        &fed,
        "AL-CTD",
        "EU-ECTC",
        "insp.hoxha",
        &["RS-MOI"],
        Some(&local),
    );
    let r = post(&fed, &doc).await;
    assert_problem(&r, 403, "origin_not_behind_peer");
    assert_eq!(b.audit_of(&r).await["code"], "origin_not_behind_peer");
    let fwd = doc["id"].as_str().expect("id").to_owned();
    let notices = [
        json!({"v": 1, "kind": "hold", "message_id": fwd, "reason": "r"}),
        json!({"v": 1, "kind": "label", "message_id": fwd,
            "label": {"classification": "EU_SECRET", "handling_codes": ["H2"]}}),
        json!({"v": 1, "kind": "grant", "message_id": fwd, "partner": "RS-MOI", "scope": "forward"}),
        json!({"v": 1, "kind": "erase", "message_id": fwd, "reason": "r"}),
    ];
    for n in &notices {
        let r = fed
            .a_as_gateway_to_b()
            .post_json("/v1/federation/notices", &[], n)
            .await
            .expect("post");
        assert_ne!(r.status, 500, "{}", text(&r.body));
    }
    let untouched = format!(
        "id = '{local}' AND erased_at_ms IS NULL AND held = 0 AND classification = (SELECT classification FROM messages WHERE id = '{local}') AND label LIKE '%EU_RESTRICTED%'"
    );
    assert_eq!(
        b.count(&format!("messages WHERE {untouched}")).await,
        1,
        "relay: {}",
        text(&r.body)
    );
    assert_eq!(
        b.count(&format!("permissions WHERE root_id = '{local}'"))
            .await,
        0
    );
}

/// A client presenting B's gateway certificate to A (as B's relay does).
fn b_as_gateway_to_a(fed: &Federation) -> brdo_tools::client::Client {
    use brdo_tools::client::{Client, Protocol};
    let cfg = brdo_tools::client::tls_config(
        &fed.b_pki.join("gateway.crt"),
        &fed.b_pki.join("gateway.key"),
        &fed.a_pki.join("ca.crt"),
        Protocol::Http1,
    )
    .expect("tls");
    Client::new(cfg, fed.a().addr(), "localhost", Protocol::Http1)
}

/// An `erased` receipt proves the peer erased a copy it held: one for a
/// message still queued at the origin (never relayed, the peer holds
/// nothing) must not mark its recipients erased — the originator would
/// believe the copy gone, and the status, final, would never show the
/// relay that follows.
#[tokio::test]
async fn an_erased_receipt_for_a_copy_never_relayed_is_refused() {
    use brdo::federation::{Receipt, ReceiptKind};
    let mut fed = Federation::start().await;
    fed.stop_b().await;
    let mut m = crate::harness::message();
    m["recipients"] = json!(["RS-MOI"]);
    m["label"]["releasable_to"] = json!(["RS-MOI"]);
    let id = crate::harness::send(fed.a(), "AL-CTD", &m).await;
    assert_eq!(
        crate::fed::status_of(fed.a(), &id, "RS-MOI").await["status"],
        "queued"
    );
    let receipt = Receipt {
        v: 1,
        kind: ReceiptKind::Erased,
        gateway: brdo::domain::PartnerId::parse("RS-NCB").expect("id"),
        to: brdo::domain::PartnerId::parse("AL-NCB").expect("id"),
        message_id: id.clone(),
        recipient: None,
        at: "2026-01-01T00:00:00.000Z".into(),
        audit_seq: Some(1),
        tree_size: Some(1),
        violations: Vec::new(),
        notice: None,
    };
    let key = JwsKey::from_pem_file(&fed.b_pki.join("envelope-signing.key")).expect("key");
    let jws = receipt.sign(&key).expect("sign");
    let r = b_as_gateway_to_a(&fed)
        .post_json("/v1/federation/receipts", &[], &json!({"receipts": [jws]}))
        .await
        .expect("post");
    assert_problem(&r, 400, "receipt_invalid");
    assert_eq!(
        crate::fed::status_of(fed.a(), &id, "RS-MOI").await["status"],
        "queued"
    );
    fed.start_b().await;
    crate::fed::wait_status(fed.a(), &id, "RS-MOI", "relayed").await;
}

/// What [`slow_upload_peer`] saw: when the upload arrived, and the paths
/// of the JSON requests after it.
#[derive(Default)]
struct Seen {
    uploaded: Option<std::time::Instant>,
    posted: Vec<String>,
}

/// Serves B's address as a peer that reads an attachment upload whole,
/// waits `delay` (within the upload's time limit) and accepts it with
/// `sha256`; every other request is recorded and answered `503`.
async fn slow_upload_peer(
    fed: &Federation,
    addr: std::net::SocketAddr,
    delay: std::time::Duration,
    sha256: String,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
) {
    use tokio::io::AsyncWriteExt;
    let (acceptor, listener) = posing_as_b(fed, addr).await;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, sha256, seen) = (acceptor.clone(), sha256.clone(), seen.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut data = Vec::new();
            let Some((head, head_end, end)) = read_request(&mut tls, &mut data).await else {
                return;
            };
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let length = end - head_end;
            let (status, body) = if path == "/v1/federation/attachments" {
                seen.lock().expect("seen").uploaded = Some(std::time::Instant::now());
                tokio::time::sleep(delay).await;
                let id = uuid::Uuid::now_v7().to_string();
                (
                    "201 Created",
                    json!({"id": id, "sha256": sha256, "size": length}).to_string(),
                )
            } else {
                seen.lock().expect("seen").posted.push(path);
                ("503 Service Unavailable", "{}".to_owned())
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        });
    }
}

/// A row's claim lasts `3 × request_timeout + 5 s`, but an attachment's
/// upload may take `request_timeout + size / 256 KiB/s`: a large upload
/// (or a peer answering it slowly, within that limit) outlives the claim
/// while the row is on the wire. The originator's erasure then finds the
/// row "unclaimed", drops it as never sent and queues no notice — and the
/// relay, already past reading the content, posts the document anyway.
/// The peer would hold a copy of erased information nobody ever asks it
/// to erase. A relay must not post a row whose claim it no longer holds,
/// and holds it for as long as each request may take.
#[tokio::test]
async fn an_erasure_during_a_long_upload_never_leaves_the_copy_unnoticed() {
    let mut fed = Federation::start_with(
        |id, c| {
            if id == "AL-NCB" {
                c.federation.request_timeout_secs = 1;
            }
        },
        |_, p| p,
    )
    .await;
    let addr = fed.b().addr();
    fed.stop_b().await;
    let a = fed.a();
    // 3 MB: the upload may take 1 + 11 s; a row's claim lasts 8 s.
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sha = brdo::binding::sha256_hex(&bytes);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let server = slow_upload_peer(
        &fed,
        addr,
        std::time::Duration::from_secs(10),
        sha,
        seen.clone(),
    );
    let scenario = async {
        let up = crate::harness::upload(a, "AL-CTD", bytes, "application/pdf").await;
        assert_eq!(up.status, 201, "{}", text(&up.body));
        let mut m = crate::harness::message();
        m["recipients"] = json!(["RS-MOI"]);
        m["label"]["releasable_to"] = json!(["RS-MOI"]);
        m["attachments"] = json!([up.json()["id"]]);
        let id = crate::harness::send(a, "AL-CTD", &m).await;
        let started = std::time::Instant::now();
        let uploaded = loop {
            if let Some(at) = seen.lock().expect("seen").uploaded {
                break at;
            }
            assert!(started.elapsed().as_secs() < 20, "no upload");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        // Past the row's claim, while the upload is still being answered.
        tokio::time::sleep_until((uploaded + std::time::Duration::from_millis(8600)).into()).await;
        crate::fed::erase_on_a(a, &id).await;
        tokio::time::sleep_until((uploaded + std::time::Duration::from_secs(13)).into()).await;
        let posted = seen.lock().expect("seen").posted.clone();
        let notices = crate::fed::notices_to_b(a, &id).await;
        assert!(
            !posted.iter().any(|p| p == "/v1/federation/messages") || notices == 1,
            "the erased message was posted ({posted:?}) with no erase notice queued"
        );
    };
    tokio::select! {
        () = server => panic!("the fake peer stopped"),
        () = scenario => {}
    }
}

/// A message row that was already attempted may have landed: the peer
/// stored the copy and its answer was lost (a timeout, a dropped
/// connection, a `5xx` after its commit). An erasure that drops such a row
/// as "never sent" queues no notice, and the peer keeps the erased copy
/// with nobody asking it to erase. Only a row never attempted is unsent.
#[tokio::test]
async fn an_erasure_after_a_failed_attempt_still_tells_the_peer() {
    let mut fed = Federation::start().await;
    let addr = fed.b().addr();
    fed.stop_b().await;
    let a = fed.a();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let server = slow_upload_peer(
        &fed,
        addr,
        std::time::Duration::from_secs(0),
        String::new(),
        seen.clone(),
    );
    let scenario = async {
        let mut m = crate::harness::message();
        m["recipients"] = json!(["RS-MOI"]);
        m["label"]["releasable_to"] = json!(["RS-MOI"]);
        let id = crate::harness::send(a, "AL-CTD", &m).await;
        let started = std::time::Instant::now();
        // The document reached the peer; its answer was a failure.
        while a
            .count(&format!(
                "relay_outbox WHERE message_id = '{id}' AND attempts > 0 AND claimed_until_ms IS NULL"
            ))
            .await
            == 0
        {
            assert!(started.elapsed().as_secs() < 20, "no attempt");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            seen.lock()
                .expect("seen")
                .posted
                .iter()
                .any(|p| p == "/v1/federation/messages")
        );
        crate::fed::erase_on_a(a, &id).await;
        let notices = crate::fed::notices_to_b(a, &id).await;
        assert_eq!(
            notices, 1,
            "the copy the peer may hold gets its erase notice"
        );
    };
    tokio::select! {
        () = server => panic!("the fake peer stopped"),
        () = scenario => {}
    }
}

/// A copy given up on (`undeliverable`) may still have landed: an attempt
/// whose answer was lost. An erasure must not leave such a copy at the
/// peer untold.
#[tokio::test]
async fn an_erasure_after_giving_up_still_tells_the_peer() {
    let mut fed = Federation::start_with(
        |id, c| {
            if id == "AL-NCB" {
                c.federation.give_up_after_secs = Some(2);
            }
        },
        |_, p| p,
    )
    .await;
    let addr = fed.b().addr();
    fed.stop_b().await;
    let a = fed.a();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let server = slow_upload_peer(
        &fed,
        addr,
        std::time::Duration::from_secs(0),
        String::new(),
        seen.clone(),
    );
    let scenario = async {
        let mut m = crate::harness::message();
        m["recipients"] = json!(["RS-MOI"]);
        m["label"]["releasable_to"] = json!(["RS-MOI"]);
        let id = crate::harness::send(a, "AL-CTD", &m).await;
        crate::fed::wait_status(a, &id, "RS-MOI", "undeliverable").await;
        assert!(
            seen.lock()
                .expect("seen")
                .posted
                .iter()
                .any(|p| p == "/v1/federation/messages")
        );
        crate::fed::erase_on_a(a, &id).await;
        let notices = crate::fed::notices_to_b(a, &id).await;
        assert_eq!(
            notices, 1,
            "the copy the peer may hold gets its erase notice"
        );
    };
    tokio::select! {
        () = server => panic!("the fake peer stopped"),
        () = scenario => {}
    }
}

/// The same id twice in one batch is one message: stored once, and both
/// entries answer the same receipts (the second as a replay of the
/// first), whatever the second copy says.
#[tokio::test]
async fn the_same_id_twice_in_a_batch_is_stored_once() {
    let fed = Federation::start().await;
    let b = fed.b();
    let first = document(&fed, "AL-CTD", "AL-CTD", "insp.hoxha", &["RS-MOI"]);
    let mut second = first.clone();
    second["officer"] = json!("insp.other");
    let batch = json!({"v": 1, "messages": [first, second, first]});
    let r = post(&fed, &batch).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let answer = r.json();
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{answer}");
    for got in results {
        assert_eq!(got["status"], 201, "{answer}");
        assert_eq!(got["receipts"], results[0]["receipts"], "{answer}");
    }
    let id = first["id"].as_str().expect("id");
    assert_eq!(b.count(&format!("messages WHERE id = '{id}'")).await, 1);
    assert_eq!(
        b.count(&format!(
            "relay_receipts WHERE message_id = '{id}' AND direction = 'issued'"
        ))
        .await,
        1
    );
    assert_eq!(
        b.count(&format!(
            "audit_log WHERE message_id = '{id}' AND action = 'collect'"
        ))
        .await,
        3,
        "one record per document, one of them the collection"
    );
}

/// A message id is a key on both sides: the same UUID spelled in upper
/// case is the same message, never a second copy stored beside the first
/// (nor one stored under an id its own audit record does not name).
#[tokio::test]
async fn an_id_in_another_case_is_not_a_second_message() {
    let fed = Federation::start().await;
    let b = fed.b();
    let lower = document(&fed, "AL-CTD", "AL-CTD", "insp.hoxha", &["RS-MOI"]);
    let id = lower["id"].as_str().expect("id").to_owned();
    // The same document, its ids in upper case, bound again by the peer.
    let mut upper: brdo::federation::RelayedMessage =
        serde_json::from_value(lower.clone()).expect("doc");
    upper.id = id.to_uppercase();
    upper.family = id.to_uppercase();
    let key = JwsKey::from_pem_file(&fed.a_pki.join("envelope-signing.key")).expect("key");
    upper.binding =
        brdo::binding::sign(&key, &upper.binding_view(), |_| String::new()).expect("sign");
    let upper = serde_json::to_value(&upper).expect("json");
    // Refused alone and in a batch, naming the id; the canonical spelling
    // is then new, and stored once.
    let r = post(&fed, &upper).await;
    let p = assert_problem(&r, 400, "invalid_message");
    assert_eq!(p["errors"][0]["field"], "id", "{p}");
    let r = post(&fed, &json!({"v": 1, "messages": [upper]})).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["results"][0]["status"], 400, "{}", text(&r.body));
    let r = post(&fed, &lower).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    assert_eq!(
        b.count(&format!("messages WHERE lower(id) = '{id}'")).await,
        1,
        "stored twice"
    );
    assert_eq!(
        b.count("messages WHERE id <> lower(id)").await,
        0,
        "stored under an id other than the one audited"
    );
}

/// A batch whose documents cannot be audited fails closed as a whole:
/// `503 audit_unavailable`, no entry, no receipt and nothing stored, the
/// refused document's refusal included; sent again once the log takes
/// writes, each is judged afresh.
#[tokio::test]
async fn a_batch_that_cannot_be_audited_answers_nothing() {
    let fed = Federation::start().await;
    let b = fed.b();
    let good = document(&fed, "AL-CTD", "AL-CTD", "insp.hoxha", &["RS-MOI"]);
    let forged = document(&fed, "RS-MOI", "RS-MOI", "insp.hoxha", &["RS-MOI"]);
    let batch = json!({"v": 1, "messages": [forged, good]});
    crate::audit::block_audit_writes(b, true).await;
    let r = post(&fed, &batch).await;
    let p = assert_problem(&r, 503, "audit_unavailable");
    assert!(p.get("results").is_none(), "{p}");
    assert!(!text(&r.body).contains("jws"), "{}", text(&r.body));
    assert_eq!(b.count("messages").await, 0);
    assert_eq!(b.count("relay_receipts").await, 0);
    crate::audit::block_audit_writes(b, false).await;
    let r = post(&fed, &batch).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let answer = r.json();
    assert_eq!(answer["results"][0]["status"], 403, "{answer}");
    assert_eq!(answer["results"][1]["status"], 201, "{answer}");
    assert_eq!(b.count("messages").await, 1);
}

/// What a scripted peer answers a document (its id, its recipients).
type Answerer = std::sync::Arc<dyn Fn(&str, &[String]) -> Value + Send + Sync>;

/// Serves one peer address as a hostile gateway would (B's gateway
/// certificate), answering each relayed document `201` with what
/// `answer` makes of its id and recipients.
async fn scripted_peer(fed: &Federation, addr: std::net::SocketAddr, answer: Answerer) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (acceptor, listener) = posing_as_b(fed, addr).await;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let answer = answer.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut seen = Vec::new();
            let mut buf = [0u8; 8192];
            let (head, body_at) = loop {
                if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&seen[..at]).to_lowercase(), at + 4);
                }
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            };
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while seen.len() < body_at + length {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let doc: Value = serde_json::from_slice(&seen[body_at..]).unwrap_or(Value::Null);
            let id = doc["id"].as_str().unwrap_or_default().to_owned();
            let recipients: Vec<String> = doc["recipients"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect();
            let body = answer(&id, &recipients).to_string();
            let head = format!(
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.write_all(body.as_bytes()).await;
            let _ = tls.shutdown().await;
        });
    }
}

/// A peer answering a relayed message with receipts of a batch (SPEC
/// §11, *Batch signatures*) that do not hold for it — a root of bindings,
/// a root by another gateway's key, another message's token of a valid
/// batch, a statement, index or path of another token — is an outage: the
/// row waits, no status moves. The same peer's valid batch token ends it.
#[tokio::test]
async fn a_peers_batch_receipts_that_do_not_hold_leave_the_row_waiting() {
    use brdo::federation::batch_sig;
    use brdo::federation::{Receipt, ReceiptKind};
    let mut fed = Federation::start().await;
    let b_key = std::sync::Arc::new(
        JwsKey::from_pem_file(&fed.b_pki.join("envelope-signing.key")).expect("key"),
    );
    let a_key = std::sync::Arc::new(
        JwsKey::from_pem_file(&fed.a_pki.join("envelope-signing.key")).expect("key"),
    );
    let pid = |s: &str| brdo::domain::PartnerId::parse(s).expect("id");
    let receipt = move |id: &str, recipient: &str| {
        let r = Receipt {
            v: 1,
            kind: ReceiptKind::Accepted,
            gateway: pid("RS-NCB"),
            to: pid("AL-NCB"),
            message_id: id.to_owned(),
            recipient: brdo::domain::PartnerId::parse(recipient),
            at: "2026-01-01T00:00:00.000Z".into(),
            audit_seq: Some(7),
            tree_size: Some(7),
            violations: Vec::new(),
            notice: None,
        };
        brdo::audit::jcs::canonicalize(&serde_json::to_value(&r).expect("json")).into_bytes()
    };
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answer = {
        let mode = mode.clone();
        std::sync::Arc::new(move |id: &str, recipients: &[String]| {
            let other = "0190f000-0000-7000-8000-0000000000ff";
            // Each recipient's statement first, another message's after.
            let mut statements: Vec<Vec<u8>> = recipients.iter().map(|r| receipt(id, r)).collect();
            statements.extend(recipients.iter().map(|r| receipt(other, r)));
            let n = recipients.len();
            let sign =
                |key: &JwsKey, typ: &str| batch_sig::sign(key, &statements, typ).expect("sign");
            let swap = |t: &str, part: usize, from: &str| {
                let mut p: Vec<&str> = t.split('~').collect();
                let q: Vec<&str> = from.split('~').collect();
                p[part] = q[part];
                p.join("~")
            };
            let good = sign(&b_key, "brdo-receipt+jws");
            let tokens: Vec<String> = match mode.load(std::sync::atomic::Ordering::SeqCst) {
                0 => sign(&b_key, "brdo-binding+jws")[..n].to_vec(),
                1 => sign(&a_key, "brdo-receipt+jws")[..n].to_vec(),
                2 => good[n..].to_vec(),
                3 => (0..n).map(|i| swap(&good[i], 1, &good[n + i])).collect(),
                4 => (0..n).map(|i| swap(&good[i], 2, &good[n + i])).collect(),
                5 => (0..n).map(|i| swap(&good[i], 3, &good[n + i])).collect(),
                _ => good[..n].to_vec(),
            };
            let list: Vec<Value> = recipients
                .iter()
                .zip(tokens)
                .map(|(r, jws)| json!({"recipient": r, "kind": "accepted", "jws": jws}))
                .collect();
            json!({ "receipts": list })
        }) as Answerer
    };
    let addr = fed.b().addr();
    fed.stop_b().await;
    let fed = &fed;
    let server = scripted_peer(fed, addr, answer);
    let run = async {
        let a = fed.a();
        let id = crate::harness::send(a, "AL-CTD", &crate::harness::message()).await;
        for case in 0..6 {
            mode.store(case, std::sync::atomic::Ordering::SeqCst);
            // Two new errors: the second answers a request made after
            // the case was set.
            for _ in 0..2 {
                let before = peer_of(a).await["last_error_at"].clone();
                let started = std::time::Instant::now();
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    let peer = peer_of(a).await;
                    if peer["last_error"].as_str().is_some() && peer["last_error_at"] != before {
                        break;
                    }
                    assert!(started.elapsed().as_secs() < 30, "case {case}: {peer}");
                }
            }
            assert_eq!(
                a.count(&format!("relay_outbox WHERE message_id = '{id}'"))
                    .await,
                1,
                "case {case}: the row waits"
            );
            assert_eq!(
                a.count(&format!(
                    "deliveries WHERE message_id = '{id}' AND status = 'relayed'"
                ))
                .await,
                0,
                "case {case}: nothing relayed"
            );
        }
        mode.store(6, std::sync::atomic::Ordering::SeqCst);
        let started = std::time::Instant::now();
        while a
            .count(&format!("relay_outbox WHERE message_id = '{id}'"))
            .await
            > 0
        {
            assert!(
                started.elapsed().as_secs() < 60,
                "the valid token never ended the row"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = server => panic!("the scripted peer stopped"),
        () = run => {}
    }
}

/// Serves B's address as an older peer: a batch (`{"v":1,"messages":..}`)
/// is answered `404` (so the relay sends each document alone), and each
/// document alone is answered `503` after `delay`. `alone` counts how
/// often each id was posted alone.
async fn batchless_slow_peer(
    fed: &Federation,
    addr: std::net::SocketAddr,
    delay: std::time::Duration,
    alone: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
) {
    let answer: Replier = std::sync::Arc::new(move |_head, doc| {
        let alone = alone.clone();
        Box::pin(async move {
            if doc.get("messages").is_some() {
                return ("404 Not Found", "{}".to_owned());
            }
            let id = doc["id"].as_str().unwrap_or_default().to_owned();
            *alone.lock().expect("alone").entry(id).or_default() += 1;
            tokio::time::sleep(delay).await;
            ("503 Service Unavailable", "{}".to_owned())
        })
    });
    replying_as_b(fed, addr, answer).await;
}

/// What a scripted peer answers one request (its head, lower-cased, and
/// its JSON body): a status line and a JSON body.
type Replier = std::sync::Arc<
    dyn Fn(String, Value) -> std::pin::Pin<Box<dyn Future<Output = (&'static str, String)> + Send>>
        + Send
        + Sync,
>;

/// Serves one peer address as B (its gateway certificate), answering each
/// request of each keep-alive connection with what `answer` makes of it.
async fn replying_as_b(fed: &Federation, addr: std::net::SocketAddr, answer: Replier) {
    use tokio::io::AsyncWriteExt;
    let (acceptor, listener) = posing_as_b(fed, addr).await;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, answer) = (acceptor.clone(), answer.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut data = Vec::new();
            while let Some((head, body_at, end)) = read_request(&mut tls, &mut data).await {
                let doc: Value = serde_json::from_slice(&data[body_at..end]).unwrap_or_default();
                data.drain(..end);
                let (status, body) = answer(head, doc).await;
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A's operator suspends or resumes (`action`) the peer RS-NCB.
async fn peer_b(op: &brdo_tools::client::Client, action: &str) {
    let r = op
        .post_json(&format!("/v1/admin/peers/RS-NCB/{action}"), &[], &json!({}))
        .await
        .expect(action);
    assert_eq!(r.status, 200, "{action}: {}", text(&r.body));
}

/// The ids a scripted peer counted more than once.
fn counted_twice(
    counts: &std::sync::Mutex<std::collections::HashMap<String, usize>>,
) -> Vec<String> {
    counts
        .lock()
        .expect("counts")
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Two gateways whose relay (A's) holds a row's claim for 8 s (3 × a 1 s
/// request time + 5 s) and does not try a failed row again during a test.
async fn short_claims() -> Federation {
    Federation::start_with(
        |id, c| {
            if id == "AL-NCB" {
                c.federation.request_timeout_secs = 1;
                c.federation.initial_backoff_ms = 120_000;
                c.federation.max_backoff_secs = 600;
            }
        },
        |_, p| p,
    )
    .await
}

/// A batch the peer refuses as an envelope (an older peer: `404`) is sent
/// again one document at a time — a request each, up to `MAX_BATCH` of
/// them — but the group's claims were checked once, for one request, and
/// the answers are recorded only after the last document went. A slow
/// peer (each document within the request timeout) outlasts the claims:
/// the relay's other loop takes the rows and sends them again while this
/// one is still sending (and an erasure meanwhile would drop a row whose
/// copy already reached the peer as never sent). Each document alone must
/// be covered by its claim, and its answer recorded while it still is.
#[tokio::test]
async fn a_batch_sent_again_one_by_one_keeps_each_documents_claim() {
    let mut fed = short_claims().await;
    let addr = fed.b().addr();
    fed.stop_b().await;
    let a = fed.a();
    let op = a.client("operator-admin");
    peer_b(&op, "suspend").await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(crate::harness::send(a, "AL-CTD", &crate::harness::message()).await);
    }
    let alone = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let server = batchless_slow_peer(
        &fed,
        addr,
        std::time::Duration::from_millis(900),
        alone.clone(),
    );
    let scenario = async {
        peer_b(&op, "resume").await;
        // 12 documents × 0.9 s, well past the 8 s claim.
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let twice = counted_twice(&alone);
            assert!(
                twice.is_empty(),
                "documents sent twice while the first attempt was still running: {twice:?}"
            );
            let pending = a.count("relay_outbox WHERE attempts = 0").await;
            if pending == 0 && started.elapsed().as_secs() >= 14 {
                break;
            }
            assert!(
                started.elapsed().as_secs() < 40,
                "rows never attempted: {pending}"
            );
        }
        assert_eq!(alone.lock().expect("alone").len(), ids.len());
    };
    tokio::select! {
        () = server => panic!("the fake peer stopped"),
        () = scenario => {}
    }
}

/// Reads one HTTP/1.1 request from `tls` into `data` (which may already
/// hold its first bytes, keep-alive): its head, lower-cased, where the head
/// ends and where the body (by `content-length`) ends in `data`; `None`
/// when the connection ends first. For the scripted peers above.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    tls: &mut S,
    data: &mut Vec<u8>,
) -> Option<(String, usize, usize)> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 1 << 16];
    let head_end = loop {
        if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    Some((head, head_end, head_end + length))
}

/// Serves one peer address as a slow but honest gateway would answer
/// notices: each `POST /v1/federation/notices` waits `delay`, then gets
/// B's signed `erased` receipt for the message it names; `sent` counts the
/// notices per message id.
async fn slow_notice_peer(
    fed: &Federation,
    addr: std::net::SocketAddr,
    delay: std::time::Duration,
    sent: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
) {
    let key = std::sync::Arc::new(
        JwsKey::from_pem_file(&fed.b_pki.join("envelope-signing.key")).expect("key"),
    );
    let answer: Replier = std::sync::Arc::new(move |head, doc| {
        let (key, sent) = (key.clone(), sent.clone());
        Box::pin(async move {
            if !head.starts_with("post /v1/federation/notices ") {
                return ("503 Service Unavailable", "{}".to_owned());
            }
            let id = doc["message_id"].as_str().unwrap_or_default().to_owned();
            *sent.lock().expect("sent").entry(id.clone()).or_default() += 1;
            tokio::time::sleep(delay).await;
            let jws = brdo::federation::Receipt {
                v: 1,
                kind: brdo::federation::ReceiptKind::Erased,
                gateway: brdo::domain::PartnerId::parse("RS-NCB").expect("id"),
                to: brdo::domain::PartnerId::parse("AL-NCB").expect("id"),
                message_id: id,
                recipient: None,
                at: "2026-01-01T00:00:00.000Z".into(),
                audit_seq: Some(1),
                tree_size: Some(1),
                violations: Vec::new(),
                notice: None,
            }
            .sign(&key)
            .expect("sign");
            ("201 Created", json!({"receipt": jws}).to_string())
        })
    });
    replying_as_b(fed, addr, answer).await;
}

/// Notices (and receipts) go one after another on the round's claim,
/// with no look at it before each. The claim is sized for that: a lease
/// per single row of the lane (three request times and a margin each), so
/// a lane of notices to a slow peer, each answered just within the request
/// timeout, is never taken by the relay's other loop and sent twice. A
/// round whose claim covered one request, as the batched messages' groups
/// do, would fail this.
#[tokio::test]
async fn notices_sent_one_after_another_keep_each_rows_claim() {
    let mut fed = short_claims().await;
    let a = fed.a();
    let mut ids = Vec::new();
    for _ in 0..12 {
        let mut m = crate::harness::message();
        m["recipients"] = json!(["RS-MOI"]);
        m["label"]["releasable_to"] = json!(["RS-MOI"]);
        ids.push(crate::harness::send(a, "AL-CTD", &m).await);
    }
    for id in &ids {
        crate::fed::wait_status(a, id, "RS-MOI", "relayed").await;
    }
    let addr = fed.b().addr();
    fed.stop_b().await;
    let a = fed.a();
    let op = a.client("operator-admin");
    peer_b(&op, "suspend").await;
    for id in &ids {
        crate::fed::erase_on_a(a, id).await;
    }
    assert_eq!(a.count("relay_outbox WHERE kind = 'notice'").await, 12);
    let sent = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let server = slow_notice_peer(
        &fed,
        addr,
        std::time::Duration::from_millis(900),
        sent.clone(),
    );
    let scenario = async {
        peer_b(&op, "resume").await;
        // 12 notices × 0.9 s, well past the 8 s claim.
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let twice = counted_twice(&sent);
            assert!(twice.is_empty(), "notices sent twice: {twice:?}");
            let left = a.count("relay_outbox WHERE kind = 'notice'").await;
            if left == 0 {
                break;
            }
            assert!(
                started.elapsed().as_secs() < 60,
                "notices still waiting: {left}"
            );
        }
        assert_eq!(sent.lock().expect("sent").len(), ids.len());
    };
    tokio::select! {
        () = server => panic!("the fake peer stopped"),
        () = scenario => {}
    }
}
