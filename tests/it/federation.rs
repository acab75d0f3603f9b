//! Gateways relaying to gateways (SPEC §11): two real gateways, each with
//! its own CA, database, keys and policy, talking mTLS to each other.

use std::time::{Duration, Instant};

use brdo::crypto::jose::{JwsKey, JwsKeys};
use brdo::federation::{Receipt, RelayedAttachment, RelayedMessage};
use serde_json::{Value, json};

use crate::fed::{behind_third_peer, peers, rows, status_of, wait_status, with_third_peer};
use crate::harness::{
    Federation, JUSTIFICATION, OFFICER, assert_problem, message, peer_table, send, text, upload,
};

#[tokio::test]
async fn accepted_relay_end_to_end_with_receipts_back() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &message()).await;
    // EU-ECTC is A's own partner, RS-MOI lives behind B.
    let local = status_of(a, &id, "EU-ECTC").await;
    assert_eq!(local["status"], "queued");
    assert!(local.get("via").is_none(), "{local}");
    let s = wait_status(a, &id, "RS-MOI", "relayed").await;
    assert_eq!(s["via"], "RS-NCB");
    let keys = JwsKeys::from_public_pem_file(&fed.b_pki.join("envelope-signing.pub")).expect("key");
    let r = Receipt::verify(s["receipt"].as_str().expect("receipt"), &keys).expect("verifies");
    assert_eq!(r.kind.as_str(), "accepted");
    assert!(r.audit_seq.is_some() && r.tree_size.is_some());
    assert_eq!(rows(a, "relay_outbox", "1 = 1").await, 0);
    // On B: in RS-MOI's inbox, readable, with the same id; nothing for others.
    assert_eq!(rows(b, "messages", &format!("id = '{id}'")).await, 1);
    assert_eq!(rows(b, "deliveries", "1 = 1").await, 1);
    let inbox = b
        .partner("RS-MOI")
        .get("/v1/inbox", &[OFFICER])
        .await
        .expect("inbox");
    assert_eq!(
        inbox.json()["messages"][0]["id"],
        id.as_str(),
        "{}",
        text(&inbox.body)
    );
    let read = b
        .partner("RS-MOI")
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.status, 200, "{}", text(&read.body));
    assert_eq!(read.json()["body"], "Details follow.");
    assert_eq!(read.json()["from"], "AL-CTD");
    let s = wait_status(a, &id, "RS-MOI", "delivered").await;
    let r = Receipt::verify(s["receipt"].as_str().expect("receipt"), &keys).expect("verifies");
    assert_eq!(r.kind.as_str(), "delivered");
    let ack = b
        .partner("RS-MOI")
        .post_json(&format!("/v1/messages/{id}/ack"), &[OFFICER], &json!({}))
        .await
        .expect("ack");
    assert_eq!(ack.status, 200, "{}", text(&ack.body));
    wait_status(a, &id, "RS-MOI", "acknowledged").await;
    // Each side logged its own part.
    assert_eq!(
        rows(
            a,
            "audit_log",
            &format!("action = 'disclose' AND message_id = '{id}'")
        )
        .await,
        1
    );
    assert_eq!(
        rows(
            b,
            "audit_log",
            &format!("action = 'collect' AND message_id = '{id}' AND actor_role = 'gateway'")
        )
        .await,
        1
    );
    assert_eq!(
        rows(a, "relay_receipts", &format!("message_id = '{id}'")).await,
        3
    );
}

#[tokio::test]
async fn a_refusal_by_the_peers_policy_comes_back_with_its_codes() {
    let fed = Federation::start_with(
        |_, _| {},
        |id, policy| {
            if id == "RS-NCB" {
                policy.replace(
                    "id = \"RS-MOI\"\nname = \"Serbia, Ministry of Interior\"\ncountry = \"RS\"\nclearance = \"EU_RESTRICTED\"",
                    "id = \"RS-MOI\"\nname = \"Serbia, Ministry of Interior\"\ncountry = \"RS\"\nclearance = \"BASIC_PROTECTION\"",
                )
            } else {
                policy
            }
        },
    )
    .await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &message()).await;
    let s = wait_status(a, &id, "RS-MOI", "refused").await;
    let keys = JwsKeys::from_public_pem_file(&fed.b_pki.join("envelope-signing.pub")).expect("key");
    let r = Receipt::verify(s["receipt"].as_str().expect("receipt"), &keys).expect("verifies");
    assert_eq!(r.kind.as_str(), "refused");
    assert!(
        r.violations
            .iter()
            .any(|v| v.code == "recipient_not_cleared"),
        "{r:?}"
    );
    assert_eq!(rows(b, "messages", "1 = 1").await, 0, "nothing stored on B");
    assert_eq!(
        rows(
            b,
            "audit_log",
            &format!("action = 'deny' AND message_id = '{id}'")
        )
        .await,
        1
    );
    assert_eq!(
        rows(
            a,
            "audit_log",
            &format!("action = 'deny' AND message_id = '{id}' AND code = 'recipient_not_cleared'")
        )
        .await,
        1
    );
    assert_eq!(rows(a, "relay_outbox", "1 = 1").await, 0);
}

#[tokio::test]
async fn a_peer_down_then_up_gets_everything_exactly_once() {
    let mut fed = Federation::start().await;
    fed.stop_b().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(send(fed.a(), "AL-CTD", &message()).await);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        status_of(fed.a(), &ids[0], "RS-MOI").await["status"],
        "queued"
    );
    let p = peers(fed.a()).await;
    assert_eq!(p["id"], "RS-NCB");
    assert_eq!(p["queue_depth"], 3, "{p}");
    assert_eq!(p["reachable"], false, "{p}");
    assert!(
        p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{p}"
    );
    // A peer down is no reason to take this gateway out of service, and
    // its queue shows in the metrics, per peer.
    let metrics = fed.a().gateway.metrics_addr;
    assert_eq!(crate::harness::plain_get(metrics, "/readyz").await.0, 200);
    let (_, m) = crate::harness::plain_get(metrics, "/metrics").await;
    assert!(
        m.lines()
            .any(|l| l == "brdo_relay_queue_depth{peer=\"RS-NCB\"} 3"),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("brdo_relay_oldest_queued_seconds{peer=\"RS-NCB\"} ")),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("brdo_relay_sent_total{peer=\"RS-NCB\",outcome=\"failed")),
        "{m}"
    );
    fed.start_b().await;
    for id in &ids {
        wait_status(fed.a(), id, "RS-MOI", "relayed").await;
    }
    let b = fed.b();
    assert_eq!(rows(b, "messages", "1 = 1").await, 3);
    for id in &ids {
        assert_eq!(
            rows(b, "deliveries", &format!("message_id = '{id}'")).await,
            1
        );
    }
    assert_eq!(rows(fed.a(), "relay_outbox", "1 = 1").await, 0);
    assert_eq!(peers(fed.a()).await["reachable"], true);
}

/// A document as A's relay would send it, bound with A's envelope key.
fn bound_document(fed: &Federation, sender: &str, recipients: &[&str]) -> RelayedMessage {
    let mut doc = RelayedMessage {
        v: 1,
        id: uuid::Uuid::now_v7().to_string(),
        originator: sender.into(),
        sender: sender.into(),
        officer: "insp.hoxha".into(),
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
        forwarded_from: None,
        family: String::new(),
        accepted_at: "2026-01-01T00:00:00.000Z".into(),
        retain_until: "2099-01-01T00:00:00.000Z".into(),
        review_on: "2098-01-01".into(),
        attachments: Vec::new(),
        binding: String::new(),
        signatures: Vec::new(),
    };
    doc.family = doc.id.clone();
    let key = JwsKey::from_pem_file(&fed.a_pki.join("envelope-signing.key")).expect("key");
    doc.binding = brdo::binding::sign(&key, &doc.binding_view(), |_| String::new()).expect("sign");
    doc
}

#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn hostile_documents_are_refused_audited_and_store_nothing() {
    let fed = Federation::start_with(
        |_, _| {},
        |id, policy| {
            if id != "RS-NCB" {
                return policy;
            }
            // A third peer, XK-NCB, with XK-CTD behind it (not A).
            with_third_peer(id, policy)
        },
    )
    .await;
    // The third peer's table names the shared test PKI's files; it never runs.
    let b = fed.b();
    let client = fed.a_as_gateway_to_b();
    let post = |doc: Value| crate::fed::post_doc(&client, "/v1/federation/messages", doc);
    // A good one goes through (the table's baseline).
    let good = bound_document(&fed, "AL-CTD", &["RS-MOI"]);
    let r = post(serde_json::to_value(&good).expect("json")).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    assert_eq!(r.json()["receipts"][0]["kind"], "accepted");
    // The same id again answers the same receipts and stores nothing new.
    let again = post(serde_json::to_value(&good).expect("json")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), r.json());
    assert_eq!(b.audit_of(&again).await["details"]["replayed"], true);
    assert_eq!(rows(b, "messages", "1 = 1").await, 1);
    let mut tampered = bound_document(&fed, "AL-CTD", &["RS-MOI"]);
    tampered.body = "Changed on the way".into();
    let mut unknown =
        serde_json::to_value(bound_document(&fed, "AL-CTD", &["RS-MOI"])).expect("json");
    unknown["colour"] = json!("red");
    let mut forged =
        serde_json::to_value(bound_document(&fed, "AL-CTD", &["RS-MOI"])).expect("json");
    forged["signatures"] = json!([{"partner": "AL-CTD", "role": "originator",
        "jws": "eyJhbGciOiJFUzI1NiJ9..c2ln", "statement": {"sender": "AL-CTD"}}]);
    let mut wrong_family =
        serde_json::to_value(bound_document(&fed, "AL-CTD", &["RS-MOI"])).expect("json");
    wrong_family["family"] = json!(uuid::Uuid::now_v7().to_string());
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "sender behind another peer",
            serde_json::to_value(bound_document(&fed, "XK-CTD", &["RS-MOI"])).expect("json"),
            403,
            "origin_not_behind_peer",
        ),
        (
            "sender local to B",
            serde_json::to_value(bound_document(&fed, "ME-MOI", &["RS-MOI"])).expect("json"),
            403,
            "origin_not_behind_peer",
        ),
        (
            "recipient not B's",
            serde_json::to_value(bound_document(&fed, "AL-CTD", &["EU-ECTC"])).expect("json"),
            403,
            "recipient_not_local",
        ),
        (
            "tampered body",
            serde_json::to_value(&tampered).expect("json"),
            403,
            "binding_invalid",
        ),
        ("unknown member", unknown, 400, "invalid_message"),
        ("forged signature", forged, 400, "invalid_signature"),
        (
            "an original in another family",
            wrong_family,
            400,
            "invalid_message",
        ),
    ];
    for (what, doc, status, code) in cases {
        let r = post(doc).await;
        let p = assert_problem(&r, status, code);
        match what {
            "unknown member" => assert_eq!(p["errors"][0]["field"], "colour", "{what}: {p}"),
            "an original in another family" => {
                assert_eq!(p["errors"][0]["field"], "family", "{what}: {p}");
            }
            _ => {}
        }
        let rec = b.audit_of(&r).await;
        assert_eq!(rec["code"], code, "{what}: {rec}");
        assert_eq!(rec["actor"]["role"], "gateway", "{what}: {rec}");
    }
    assert_eq!(rows(b, "messages", "1 = 1").await, 1, "nothing more stored");
    // A partner certificate may not call the federation endpoints.
    let r = b
        .partner("RS-MOI")
        .post_json("/v1/federation/messages", &[], &json!({}))
        .await
        .expect("post");
    assert_problem(&r, 403, "forbidden_role");
}

#[tokio::test]
async fn a_receipt_signed_by_the_wrong_key_is_refused_and_changes_nothing() {
    let fed = Federation::start_with(
        |_, _| {},
        |id, policy| {
            if id == "AL-NCB" {
                // A believes B's envelope key is A's own: B's receipts fail.
                policy.replace("b-pki/envelope-signing.pub", "a-pki/envelope-signing.pub")
            } else {
                policy
            }
        },
    )
    .await;
    let a = fed.a();
    let id = send(a, "AL-CTD", &message()).await;
    let started = Instant::now();
    loop {
        let p = peers(a).await;
        if p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("bad answer"))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = status_of(a, &id, "RS-MOI").await;
    assert_eq!(s["status"], "queued", "{s}");
    assert_eq!(s["receipt"], Value::Null);
    assert_eq!(rows(a, "relay_receipts", "1 = 1").await, 0);
    assert_eq!(rows(a, "relay_outbox", "1 = 1").await, 1, "the row waits");
}

#[tokio::test]
async fn a_message_not_relayed_in_time_becomes_undeliverable() {
    let mut fed = Federation::start_with(
        |id, c| {
            if id == "AL-NCB" {
                c.federation.give_up_after_secs = Some(1);
            }
        },
        |_, p| p,
    )
    .await;
    fed.stop_b().await;
    let a = fed.a();
    let id = send(a, "AL-CTD", &message()).await;
    wait_status(a, &id, "RS-MOI", "undeliverable").await;
    assert_eq!(status_of(a, &id, "EU-ECTC").await["status"], "queued");
    assert_eq!(rows(a, "relay_outbox", "1 = 1").await, 0);
    assert_eq!(
        rows(
            a,
            "audit_log",
            &format!("code = 'undeliverable' AND message_id = '{id}'")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn suspending_a_peer_stops_relaying_until_it_is_resumed() {
    let fed = Federation::start().await;
    let a = fed.a();
    let op = a.client("operator-admin");
    let r = op
        .post_json(
            "/v1/admin/peers/RS-NCB/suspend",
            &[],
            &json!({"reason": "drill"}),
        )
        .await
        .expect("suspend");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(a.audit_of(&r).await["action"], "partner_suspend");
    let unknown = op
        .post_json("/v1/admin/peers/XX-NCB/suspend", &[], &json!({}))
        .await
        .expect("suspend");
    assert_problem(&unknown, 404, "not_found");
    let id = send(a, "AL-CTD", &message()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status_of(a, &id, "RS-MOI").await["status"], "queued");
    let p = peers(a).await;
    assert_eq!(p["suspended"], true);
    assert_eq!(p["queue_depth"], 1);
    let r = op
        .post_json("/v1/admin/peers/RS-NCB/resume", &[], &json!({}))
        .await
        .expect("resume");
    assert_eq!(r.status, 200);
    wait_status(a, &id, "RS-MOI", "relayed").await;
    // B suspends A: A's relay is refused with peer_suspended and waits.
    let b = fed.b();
    let r = b
        .client("operator-admin")
        .post_json("/v1/admin/peers/AL-NCB/suspend", &[], &json!({}))
        .await
        .expect("suspend");
    assert_eq!(r.status, 200);
    let doc = bound_document(&fed, "AL-CTD", &["RS-MOI"]);
    let r = fed
        .a_as_gateway_to_b()
        .post_json(
            "/v1/federation/messages",
            &[],
            &serde_json::to_value(&doc).expect("json"),
        )
        .await
        .expect("post");
    assert_problem(&r, 403, "peer_suspended");
}

/// A policy with peers needs this gateway's own id, no peer may carry it,
/// and every peer's envelope key must be readable: otherwise the gateway
/// does not start (and a reload is refused), rather than failing every
/// receipt later.
#[tokio::test]
async fn a_policy_with_peers_that_do_not_fit_the_gateway_is_refused_at_start() {
    let pki = &crate::harness::Pki::shared().dir;
    let keep = tempfile::tempdir().expect("tempdir");
    let cases: [(Option<&str>, &str, std::path::PathBuf, &str); 3] = [
        (
            None,
            "RS-NCB",
            pki.join("envelope-signing.pub"),
            "[federation] id is not set",
        ),
        (
            Some("RS-NCB"),
            "RS-NCB",
            pki.join("envelope-signing.pub"),
            "own [federation] id",
        ),
        (
            Some("AL-NCB"),
            "RS-NCB",
            keep.path().join("missing.pub"),
            "envelope_key of peer RS-NCB",
        ),
    ];
    for (i, (own, peer, key, expected)) in cases.into_iter().enumerate() {
        let data = keep.path().join(format!("case{i}"));
        std::fs::create_dir_all(&data).expect("dir");
        let mut config = crate::harness::test_config(pki, &data);
        config.federation.id = own.and_then(brdo::domain::PartnerId::parse);
        let text = crate::harness::federated_policy(
            &["RS-MOI"],
            peer,
            &peer_table(peer, 1, &pki.join("ca.crt"), &key),
        );
        std::fs::write(&config.policy.file, text).expect("policy");
        brdo::crypto::MasterKey::create(&config.crypto.master_key_file).expect("master key");
        match brdo::gateway::Gateway::start(&config).await {
            Ok(_) => panic!("case {i}: started"),
            Err(e) => assert!(e.to_string().contains(expected), "case {i}: {e}"),
        }
    }
}

/// The relay speaks only to the peer it means: a server whose certificate
/// comes from the peer's CA but names another gateway (here the real B,
/// `RS-NCB`, listed on A as `XK-NCB`) is refused in the handshake, and
/// nothing reaches it.
#[tokio::test]
async fn the_relay_refuses_a_server_that_is_not_the_peer_it_means() {
    let fed = Federation::start_with(
        |_, _| {},
        |id, policy| {
            if id != "AL-NCB" {
                return policy;
            }
            // B's own [[peer]] table on A, copied under another id.
            let table = policy[policy.find("[[peer]]").expect("peer table")..].to_owned();
            let impostor = table.replace("id = \"RS-NCB\"", "id = \"XK-NCB\"");
            let mut text =
                policy.replace("id = \"XK-CTD\"\n", "id = \"XK-CTD\"\nvia = \"XK-NCB\"\n");
            text.push('\n');
            text.push_str(&impostor);
            text
        },
    )
    .await;
    let a = fed.a();
    let before = rows(fed.b(), "messages", "1 = 1").await;
    let mut doc = message();
    doc["recipients"] = json!(["XK-CTD"]);
    doc["label"] = json!({"classification": "BASIC_PROTECTION"});
    let id = send(a, "AL-CTD", &doc).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let r = a
            .client("operator-admin")
            .get("/v1/admin/peers", &[])
            .await
            .expect("peers");
        let list = r.json()["peers"].as_array().cloned().unwrap_or_default();
        let xk = list
            .into_iter()
            .find(|p| p["id"] == "XK-NCB")
            .expect("XK-NCB listed");
        if !xk["last_error"].is_null() || Instant::now() > deadline {
            break xk;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state["reachable"], false, "{state}");
    assert!(
        state["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("gateway") || e.contains("certificate")),
        "{state}"
    );
    assert_eq!(status_of(a, &id, "XK-CTD").await["status"], "queued");
    assert_eq!(rows(fed.b(), "messages", "1 = 1").await, before);
}

/// Receipts go back to the gateway that relayed the message, not to
/// whichever peer the policy names for its sender later: after B's
/// operator moves AL-CTD behind another peer, RS-MOI's read of a message A
/// relayed still confirms it to A, and nothing about it goes elsewhere.
#[tokio::test]
async fn receipts_go_to_the_gateway_that_relayed_the_message() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &message()).await;
    wait_status(a, &id, "RS-MOI", "relayed").await;
    let file = b.config.policy.file.clone();
    let policy = std::fs::read_to_string(&file).expect("policy");
    std::fs::write(&file, behind_third_peer(&policy, "AL-CTD")).expect("policy");
    let reload = b
        .client("operator-admin")
        .post_json("/v1/admin/reload", &[], &json!({}))
        .await
        .expect("reload");
    assert_eq!(reload.status, 200, "{}", text(&reload.body));
    let read = b
        .partner("RS-MOI")
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.status, 200, "{}", text(&read.body));
    wait_status(a, &id, "RS-MOI", "delivered").await;
    assert_eq!(rows(b, "relay_outbox", "peer = 'XK-NCB'").await, 0);
}

#[tokio::test]
async fn an_attachment_travels_and_opens_byte_identical_on_the_peer() {
    // Far beyond the JSON body limit: the bytes must stream, not inline.
    let fed = Federation::start_with(|_, c| c.server.max_body_bytes = 64 * 1024, |_, p| p).await;
    let (a, b) = (fed.a(), fed.b());
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(7) % 251) as u8)
        .collect();
    let up = upload(a, "AL-CTD", bytes.clone(), "application/pdf").await;
    assert_eq!(up.status, 201, "{}", text(&up.body));
    let att = up.json()["id"].as_str().expect("id").to_owned();
    let mut msg = message();
    msg["attachments"] = json!([att]);
    let id = send(a, "AL-CTD", &msg).await;
    wait_status(a, &id, "RS-MOI", "relayed").await;
    let read = b
        .partner("RS-MOI")
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.status, 200, "{}", text(&read.body));
    let listed = read.json()["attachments"].clone();
    let on_b = listed[0].as_str().expect("an attachment on B").to_owned();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let got = b
        .partner("RS-MOI")
        .get(
            &format!("/v1/messages/{id}/attachments/{on_b}"),
            &[OFFICER, JUSTIFICATION],
        )
        .await
        .expect("download");
    assert_eq!(got.status, 200, "{}", text(&got.body));
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert!(got.body.as_ref() == bytes.as_slice(), "byte-identical");
    assert_eq!(
        rows(
            b,
            "attachments",
            &format!("owner = 'urn:brdo:gateway:AL-NCB' AND id = '{on_b}'")
        )
        .await,
        1
    );
    // The upload was audited on B as the peer's.
    assert_eq!(
        rows(
            b,
            "audit_log",
            "action = 'upload' AND actor_role = 'gateway'"
        )
        .await,
        1
    );
}

/// A document with one attachment whose binding states `bound` as its
/// digest, naming the upload `upload` with the stated `sha256`.
fn document_with_attachment(fed: &Federation, upload: &str, sha256: &str, bound: &str) -> Value {
    let mut doc = bound_document(fed, "AL-CTD", &["RS-MOI"]);
    let att = uuid::Uuid::now_v7().to_string();
    doc.attachments = vec![RelayedAttachment {
        id: att.clone(),
        content_type: "application/pdf".into(),
        sha256: sha256.into(),
        upload: upload.into(),
    }];
    let key = JwsKey::from_pem_file(&fed.a_pki.join("envelope-signing.key")).expect("key");
    doc.binding =
        brdo::binding::sign(&key, &doc.binding_view(), |_| bound.to_owned()).expect("sign");
    serde_json::to_value(&doc).expect("json")
}

#[tokio::test]
async fn relayed_attachments_must_be_the_peers_uploads_of_the_bound_content() {
    let fed = Federation::start().await;
    let b = fed.b();
    let client = fed.a_as_gateway_to_b();
    let put = |bytes: &'static [u8]| {
        let client = &client;
        async move {
            let r = client
                .request(
                    hyper::Method::POST,
                    "/v1/federation/attachments",
                    &[("content-type", "application/pdf")],
                    Some(bytes.to_vec()),
                )
                .await
                .expect("upload");
            assert_eq!(r.status, 201, "{}", text(&r.body));
            let v = r.json();
            (
                v["id"].as_str().expect("id").to_owned(),
                v["sha256"].as_str().expect("sha").to_owned(),
            )
        }
    };
    let (good, good_sha) = put(b"the bound content").await;
    let (bad, bad_sha) = put(b"content swapped on the way").await;
    // A partner's own upload on B is no upload of the peer's.
    let theirs = upload(
        b,
        "RS-MOI",
        b"the bound content".to_vec(),
        "application/pdf",
    )
    .await;
    let theirs = theirs.json()["id"].as_str().expect("id").to_owned();
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "other bytes uploaded",
            document_with_attachment(&fed, &bad, &bad_sha, &good_sha),
            403,
            "binding_invalid",
        ),
        (
            "digest not the upload's",
            document_with_attachment(&fed, &bad, &good_sha, &good_sha),
            403,
            "binding_invalid",
        ),
        (
            "a partner's upload",
            document_with_attachment(&fed, &theirs, &good_sha, &good_sha),
            400,
            "invalid_message",
        ),
        (
            "no such upload",
            document_with_attachment(
                &fed,
                &uuid::Uuid::now_v7().to_string(),
                &good_sha,
                &good_sha,
            ),
            400,
            "invalid_message",
        ),
    ];
    for (what, doc, status, code) in cases {
        let r = client
            .post_json("/v1/federation/messages", &[], &doc)
            .await
            .expect("post");
        let p = assert_problem(&r, status, code);
        if status == 400 {
            assert_eq!(
                p["errors"][0]["field"], "attachments[0].upload",
                "{what}: {p}"
            );
        }
        assert_eq!(b.audit_of(&r).await["code"], code, "{what}");
    }
    assert_eq!(rows(b, "messages", "1 = 1").await, 0, "nothing stored");
    let ok = client
        .post_json(
            "/v1/federation/messages",
            &[],
            &document_with_attachment(&fed, &good, &good_sha, &good_sha),
        )
        .await
        .expect("post");
    assert_eq!(ok.status, 201, "{}", text(&ok.body));
    assert_eq!(ok.json()["receipts"][0]["kind"], "accepted");
    assert_eq!(
        rows(
            b,
            "message_attachments",
            &format!("attachment_id = '{good}'")
        )
        .await,
        1
    );
}

/// Adjusts B's policy or configuration for one permanent-refusal case.
type PolicyChange = fn(String) -> String;

#[tokio::test]
async fn a_permanent_refusal_by_the_peer_ends_the_row_as_refused() {
    // B's policy puts AL-CTD behind another peer; B's envelope key for A is
    // the wrong one; B takes no body as large as the document.
    let cases: [(&str, PolicyChange, usize, &str); 3] = [
        (
            "origin behind another peer",
            |p| behind_third_peer(&p, "AL-CTD"),
            1 << 20,
            "origin_not_behind_peer",
        ),
        (
            "binding by a key B does not hold for A",
            |p| p.replace("a-pki/envelope-signing.pub", "b-pki/envelope-signing.pub"),
            1 << 20,
            "binding_invalid",
        ),
        ("document too large for B", |p| p, 256, "payload_too_large"),
    ];
    for (what, change, body_limit, code) in cases {
        let fed = Federation::start_with(
            move |id, c| {
                if id == "RS-NCB" {
                    c.server.max_body_bytes = body_limit;
                }
            },
            move |id, p| if id == "RS-NCB" { change(p) } else { p },
        )
        .await;
        let a = fed.a();
        let id = send(a, "AL-CTD", &message()).await;
        let s = wait_status(a, &id, "RS-MOI", "refused").await;
        assert_eq!(s["receipt"], Value::Null, "{what}: no receipt was signed");
        assert_eq!(s["via"], "RS-NCB", "{what}");
        assert_eq!(
            rows(a, "relay_outbox", "1 = 1").await,
            0,
            "{what}: row dropped"
        );
        assert_eq!(rows(a, "relay_receipts", "1 = 1").await, 0, "{what}");
        assert_eq!(
            rows(
                a,
                "audit_log",
                &format!("action = 'deny' AND message_id = '{id}' AND code = '{code}'")
            )
            .await,
            1,
            "{what}"
        );
        assert_eq!(rows(fed.b(), "messages", "1 = 1").await, 0, "{what}");
        assert_eq!(
            status_of(a, &id, "EU-ECTC").await["status"],
            "queued",
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_suspension_by_the_peer_is_an_outage_the_relay_waits_out() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let op = b.client("operator-admin");
    let r = op
        .post_json("/v1/admin/peers/AL-NCB/suspend", &[], &json!({}))
        .await
        .expect("suspend");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let id = send(a, "AL-CTD", &message()).await;
    let started = Instant::now();
    loop {
        let p = peers(a).await;
        if p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("403 peer_suspended"))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(a, &id, "RS-MOI").await["status"], "queued");
    assert_eq!(rows(a, "relay_outbox", "1 = 1").await, 1, "the row waits");
    let r = op
        .post_json("/v1/admin/peers/AL-NCB/resume", &[], &json!({}))
        .await
        .expect("resume");
    assert_eq!(r.status, 200);
    wait_status(a, &id, "RS-MOI", "relayed").await;
}

/// AL-CTD's signature (A's PKI) over `msg`.
fn signed_by_al_ctd(fed: &Federation, msg: &Value) -> String {
    let key = std::fs::read(fed.a_pki.join("partner-AL-CTD.key")).expect("key");
    let crt = std::fs::read(fed.a_pki.join("partner-AL-CTD.crt")).expect("crt");
    let st = brdo::signature::submission_statement("AL-CTD", msg, &|_| String::new())
        .expect("statement");
    brdo::signature::sign(&key, &crt, &st).expect("sign")
}

/// Reads `id` as RS-MOI on B.
async fn read_on_b(fed: &Federation, id: &str) -> Value {
    let r = fed
        .b()
        .partner("RS-MOI")
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    r.json()
}

#[tokio::test]
async fn signatures_and_a_forwards_provenance_travel_to_the_peer() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let a_ca = std::fs::read(fed.a_pki.join("ca.crt")).expect("A's CA");
    // A signed message straight to RS-MOI behind B.
    let mut direct = message();
    direct["recipients"] = json!(["RS-MOI"]);
    let sig = signed_by_al_ctd(&fed, &direct);
    let r = a
        .partner("AL-CTD")
        .post_json(
            "/v1/messages",
            &[OFFICER, ("brdo-signature", &sig)],
            &direct,
        )
        .await
        .expect("submit");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let id = r.json()["id"].as_str().expect("id").to_owned();
    wait_status(a, &id, "RS-MOI", "relayed").await;
    let doc = read_on_b(&fed, &id).await;
    let sigs = doc["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), 1, "{doc}");
    assert_eq!(sigs[0]["jws"], json!(sig));
    assert_eq!(sigs[0]["role"], "originator");
    assert_eq!(
        brdo::signature::verify_entry(&sigs[0], &doc, &a_ca).expect("verifies with A's CA"),
        "AL-CTD"
    );
    // A signed original to EU-ECTC (A's own), forwarded by EU-ECTC to RS-MOI.
    let mut original = message();
    original["recipients"] = json!(["EU-ECTC"]);
    original["label"] = json!({"classification": "EU_RESTRICTED", "handling_codes": []});
    let sig = signed_by_al_ctd(&fed, &original);
    let r = a
        .partner("AL-CTD")
        .post_json(
            "/v1/messages",
            &[OFFICER, ("brdo-signature", &sig)],
            &original,
        )
        .await
        .expect("submit");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let original_id = r.json()["id"].as_str().expect("id").to_owned();
    let r = a
        .partner("EU-ECTC")
        .post_json(
            &format!("/v1/messages/{original_id}/forward"),
            &[OFFICER],
            &json!({"recipients": ["RS-MOI"], "justification": "Joint investigation team request"}),
        )
        .await
        .expect("forward");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let copy = r.json()["id"].as_str().expect("id").to_owned();
    let s = a
        .partner("EU-ECTC")
        .get(&format!("/v1/messages/{copy}/status"), &[])
        .await
        .expect("status");
    assert_eq!(s.status, 200, "{}", text(&s.body));
    let started = Instant::now();
    while rows(b, "messages", &format!("id = '{copy}'")).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            peers(a).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc = read_on_b(&fed, &copy).await;
    assert_eq!(doc["from"], "EU-ECTC", "{doc}");
    assert_eq!(doc["originator"], "AL-CTD", "{doc}");
    assert_eq!(doc["forwarded_from"], original_id.as_str(), "{doc}");
    let sigs = doc["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), 1, "{doc}");
    assert_eq!(
        brdo::signature::verify_entry(&sigs[0], &doc, &a_ca).expect("verifies with A's CA"),
        "AL-CTD"
    );
    // The copy is in the family of the original's id on B, as on A.
    assert_eq!(
        rows(
            b,
            "messages",
            &format!("id = '{copy}' AND root_id = '{original_id}'")
        )
        .await,
        1
    );
}

/// A batch (SPEC §11, *Batches*) is judged document by document exactly
/// as if each had come alone: its own status and code, its own audit
/// record (all under the batch's request id), nothing stored for the
/// refused ones, and a replay answering its first receipts.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn a_batch_is_judged_document_by_document() {
    let fed = Federation::start_with(|_, _| {}, with_third_peer).await;
    let b = fed.b();
    let client = fed.a_as_gateway_to_b();
    let post = |doc: Value| crate::fed::post_doc(&client, "/v1/federation/messages", doc);
    let json_of = |d: &RelayedMessage| serde_json::to_value(d).expect("json");
    let first = bound_document(&fed, "AL-CTD", &["RS-MOI"]);
    let alone = post(json_of(&first)).await;
    assert_eq!(alone.status, 201, "{}", text(&alone.body));
    let good = bound_document(&fed, "AL-CTD", &["RS-MOI"]);
    let mut tampered = bound_document(&fed, "AL-CTD", &["RS-MOI"]);
    tampered.body = "Changed on the way".into();
    let foreign = bound_document(&fed, "XK-CTD", &["RS-MOI"]);
    let not_local = bound_document(&fed, "AL-CTD", &["EU-ECTC"]);
    let mut unknown = json_of(&bound_document(&fed, "AL-CTD", &["RS-MOI"]));
    unknown["colour"] = json!("red");
    // (document, status, code) in the batch's order.
    let table: Vec<(Value, u16, Option<&str>)> = vec![
        (json_of(&good), 201, None),
        (json_of(&tampered), 403, Some("binding_invalid")),
        (json_of(&foreign), 403, Some("origin_not_behind_peer")),
        (json_of(&not_local), 403, Some("recipient_not_local")),
        (unknown, 400, Some("invalid_message")),
        (json!({"id": 7}), 400, Some("invalid_message")),
        (json_of(&first), 201, None),
    ];
    let docs: Vec<Value> = table.iter().map(|(d, _, _)| d.clone()).collect();
    let r = post(json!({"v": 1, "messages": docs})).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let answer = r.json();
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), table.len(), "{answer}");
    let keys = JwsKeys::from_public_pem_file(&fed.b_pki.join("envelope-signing.pub")).expect("key");
    for (i, ((doc, status, code), got)) in table.iter().zip(results).enumerate() {
        assert_eq!(got["status"], *status, "{i}: {got}");
        // The id is echoed when it is a string, never another value.
        let echoed = if doc["id"].is_string() {
            doc["id"].clone()
        } else {
            Value::Null
        };
        assert_eq!(got["id"], echoed, "{i}: {got}");
        match code {
            None => {
                let jws = got["receipts"][0]["jws"].as_str().expect("receipt");
                let receipt = Receipt::verify(jws, &keys).expect("verifies");
                assert_eq!(receipt.kind.as_str(), "accepted", "{i}");
            }
            Some(code) => {
                assert_eq!(got["problem"]["code"], *code, "{i}: {got}");
                assert!(got.get("receipts").is_none(), "{i}: {got}");
            }
        }
    }
    assert_eq!(
        results[6]["receipts"],
        alone.json()["receipts"],
        "a replay answers the first receipts"
    );
    assert_eq!(
        results[4]["problem"]["errors"][0]["field"], "colour",
        "{}",
        results[4]
    );
    // One record per document, under the batch's request id, with the
    // document's own outcome.
    let request = r.header("brdo-request-id").expect("request id").to_owned();
    let mine = format!("request_id = '{request}'");
    assert_eq!(rows(b, "audit_log", &mine).await, 7);
    for (id, action, code) in [
        (good.id.as_str(), "collect", None),
        (tampered.id.as_str(), "deny", Some("binding_invalid")),
        (foreign.id.as_str(), "deny", Some("origin_not_behind_peer")),
        (first.id.as_str(), "collect", None),
    ] {
        let code_is = code.map_or("code IS NULL".to_owned(), |c| format!("code = '{c}'"));
        assert_eq!(
            rows(
                b,
                "audit_log",
                &format!("{mine} AND message_id = '{id}' AND action = '{action}' AND {code_is}")
            )
            .await,
            1,
            "{id} {action}"
        );
    }
    // Stored: the first document and the good one, nothing else.
    assert_eq!(rows(b, "messages", "1 = 1").await, 2);
    // The envelope itself is strict, and refused as a whole.
    let one = json_of(&bound_document(&fed, "AL-CTD", &["RS-MOI"]));
    let cases = [
        (json!({"v": 1, "messages": []}), "messages"),
        (
            json!({"v": 1, "messages": vec![one.clone(); 65]}),
            "messages",
        ),
        (json!({"v": 2, "messages": [one.clone()]}), "v"),
        (
            json!({"v": 1, "messages": [one.clone()], "more": 1}),
            "more",
        ),
        (json!({"v": 1, "messages": {"0": one}}), "messages"),
    ];
    for (doc, field) in cases {
        let r = post(doc).await;
        let p = assert_problem(&r, 400, "invalid_message");
        assert_eq!(p["errors"][0]["field"], field, "{p}");
        assert_eq!(b.audit_of(&r).await["code"], "invalid_message");
    }
    assert_eq!(rows(b, "messages", "1 = 1").await, 2, "nothing more stored");
}

/// Rows that were waiting go out together: several documents in one
/// request, each recorded on both sides as if sent alone.
#[tokio::test]
async fn waiting_messages_travel_in_batches() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let op = a.client("operator-admin");
    let r = op
        .post_json("/v1/admin/peers/RS-NCB/suspend", &[], &json!({}))
        .await
        .expect("suspend");
    assert_eq!(r.status, 200);
    let mut m = message();
    m["recipients"] = json!(["RS-MOI"]);
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(send(a, "AL-CTD", &m).await);
    }
    let r = op
        .post_json("/v1/admin/peers/RS-NCB/resume", &[], &json!({}))
        .await
        .expect("resume");
    assert_eq!(r.status, 200);
    for id in &ids {
        wait_status(a, id, "RS-MOI", "relayed").await;
    }
    assert_eq!(rows(b, "messages", "1 = 1").await, 40);
    assert_eq!(rows(b, "audit_log", "action = 'collect'").await, 40);
    // Forty rows over sixteen lanes: some requests carried several.
    let shared = rows(
        b,
        "(SELECT request_id FROM audit_log WHERE action = 'collect' \
         GROUP BY request_id HAVING COUNT(*) > 1) AS batched",
        "1 = 1",
    )
    .await;
    assert!(shared > 0, "no request carried more than one document");
    assert_eq!(rows(a, "relay_outbox", "1 = 1").await, 0);
    assert_eq!(
        rows(
            a,
            "audit_log",
            "action = 'disclose' AND outcome = 'allowed'"
        )
        .await,
        40
    );
}

/// A peer whose body limit is smaller than the batch refuses the batch
/// as a whole (`413`): the relay then sends each document alone, and no
/// message is taken for refused.
#[tokio::test]
async fn a_batch_too_large_for_the_peer_goes_one_by_one() {
    let fed = Federation::start_with(
        |id, c| {
            if id == "RS-NCB" {
                c.server.max_body_bytes = 6 * 1024;
            }
        },
        |_, p| p,
    )
    .await;
    let (a, b) = (fed.a(), fed.b());
    let op = a.client("operator-admin");
    op.post_json("/v1/admin/peers/RS-NCB/suspend", &[], &json!({}))
        .await
        .expect("suspend");
    let mut m = message();
    m["recipients"] = json!(["RS-MOI"]);
    m["body"] = json!("x".repeat(2000));
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(send(a, "AL-CTD", &m).await);
    }
    op.post_json("/v1/admin/peers/RS-NCB/resume", &[], &json!({}))
        .await
        .expect("resume");
    for id in &ids {
        wait_status(a, id, "RS-MOI", "relayed").await;
    }
    assert_eq!(rows(b, "messages", "1 = 1").await, 24);
    // Whole batches were refused, no document.
    assert!(rows(b, "audit_log", "code = 'payload_too_large'").await > 0);
    assert_eq!(rows(b, "audit_log", "action = 'deny'").await, 0);
    assert_eq!(rows(a, "audit_log", "action = 'deny'").await, 0);
}
