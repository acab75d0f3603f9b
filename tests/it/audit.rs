//! The audit log at the API (SPEC §5): one record per request, chained,
//! no content, and fail-closed.

use serde_json::json;
use sqlx::Executor;

use crate::harness::*;

#[tokio::test]
async fn exactly_one_record_per_request_whatever_the_outcome() {
    let gw = TestGateway::start().await;
    // The start-up records (configuration, CRL in force) come first.
    let base = gw.audit_size().await;
    let id = submit_ok(&gw).await;
    assert_eq!(gw.audit_size().await, base + 1);
    let serbia = gw.partner("RS-MOI");
    let path = format!("/v1/messages/{id}");
    let mut bad = message();
    bad["purpose"] = json!("nope");
    let mut denied = message();
    denied["recipients"] = json!(["XK-CTD"]);
    denied["label"]["releasable_to"] = serde_json::Value::Null;

    let requests: Vec<(&str, brdo_tools::client::ClientResponse)> = vec![
        ("inbox", serbia.get("/v1/inbox", &[]).await.expect("r")),
        (
            "read",
            serbia
                .get(&path, &[OFFICER, JUSTIFICATION])
                .await
                .expect("r"),
        ),
        (
            "read again",
            serbia
                .get(&path, &[OFFICER, JUSTIFICATION])
                .await
                .expect("r"),
        ),
        (
            "read without officer",
            serbia.get(&path, &[JUSTIFICATION]).await.expect("r"),
        ),
        ("invalid", submit(&gw, "AL-CTD", &bad).await),
        ("denied", submit(&gw, "AL-CTD", &denied).await),
        (
            "not found",
            serbia
                .get(
                    &format!("/v1/messages/{}", uuid::Uuid::now_v7()),
                    &[OFFICER, JUSTIFICATION],
                )
                .await
                .expect("r"),
        ),
        (
            "forbidden role",
            gw.client("dpo-gateway")
                .get("/v1/inbox", &[])
                .await
                .expect("r"),
        ),
        (
            "no identity",
            gw.client("no-uri").get("/v1/inbox", &[]).await.expect("r"),
        ),
        (
            "ack",
            serbia
                .request(
                    hyper::Method::POST,
                    &format!("{path}/ack"),
                    &[OFFICER, ("content-type", "application/json")],
                    None,
                )
                .await
                .expect("r"),
        ),
        (
            "status",
            gw.partner("AL-CTD")
                .get(&format!("{path}/status"), &[])
                .await
                .expect("r"),
        ),
        (
            "unknown route",
            serbia.get("/v2/whatever", &[]).await.expect("r"),
        ),
    ];
    for (i, (name, resp)) in requests.iter().enumerate() {
        let expected = base + 2 + i as u64;
        // Partners never see the gateway-wide sequence (SPEC §5); the
        // gateway DPO (refused another role's endpoint) does.
        let seq = resp.header("brdo-audit-seq");
        if *name == "forbidden role" {
            assert_eq!(seq, Some(expected.to_string().as_str()), "{name}");
        } else {
            assert_eq!(seq, None, "{name}");
        }
        assert!(resp.header("brdo-request-id").is_some(), "{name}");
        let rec = gw.audit_record(expected).await;
        assert_eq!(
            rec["request_id"].as_str(),
            resp.header("brdo-request-id"),
            "{name}"
        );
    }
    assert_eq!(gw.audit_size().await, base + 1 + requests.len() as u64);
    gw.stop().await;
}

#[tokio::test]
async fn records_are_chained_and_carry_no_content() {
    let gw = TestGateway::start().await;
    let marker = "MARKER-7f3a9c-plaintext";
    let mut m = message();
    m["subject"] = json!(format!("subject {marker}"));
    m["body"] = json!(format!("body {marker}"));
    m["personal_data"]["special_categories"] = json!(["biometric"]);
    m["personal_data"]["special_categories_basis"] = json!(format!("basis {marker}"));
    m["recipients"] = json!(["EU-ECTC"]);
    m["label"]["releasable_to"] = json!(["EU-ECTC"]);
    let r = submit(&gw, "AL-CTD", &m).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let ectc = gw.partner("EU-ECTC");
    let read = ectc
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.json()["subject"], format!("subject {marker}"));
    assert_eq!(
        read.json()["personal_data"]["special_categories_basis"],
        format!("basis {marker}")
    );
    ectc.get("/v1/inbox", &[]).await.expect("inbox");
    // Invalid input echoing the marker is not echoed back.
    let mut bad = m.clone();
    bad["purpose"] = json!(marker);
    let r = submit(&gw, "AL-CTD", &bad).await;
    assert!(
        !String::from_utf8_lossy(&r.body).contains(marker),
        "problem bodies carry no content"
    );

    let n = gw.audit_size().await;
    let mut prev = "0".repeat(64);
    for seq in 1..=n {
        let rec = gw.audit_record(seq).await;
        assert!(
            !rec.to_string().contains(marker),
            "record {seq} holds content"
        );
        assert_eq!(rec["prev_hash"], prev.as_str());
        prev = rec["hash"].as_str().expect("hash").to_owned();
    }
    // Content is encrypted at rest: the marker is nowhere in the data files.
    for entry in std::fs::read_dir(&gw.data).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            continue; // attachments: see tests/it/attachments.rs
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds plaintext",
            path.display()
        );
    }
    gw.stop().await;
}

pub(crate) async fn block_audit_writes(gw: &TestGateway, block: bool) {
    let pool = gw.db().await;
    let statements: &[&str] = match (gw.db_kind(), block) {
        (DbKind::Sqlite, true) => &[
            "CREATE TRIGGER test_block_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'simulated audit store failure'); END",
        ],
        (DbKind::Sqlite, false) => &["DROP TRIGGER test_block_audit"],
        (DbKind::Postgres, true) => &[
            "CREATE FUNCTION test_block_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated audit store failure'; END $$",
            "CREATE TRIGGER test_block_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_block_audit()",
        ],
        (DbKind::Postgres, false) => &[
            "DROP TRIGGER test_block_audit ON audit_log",
            "DROP FUNCTION test_block_audit()",
        ],
    };
    for sql in statements {
        pool.execute(*sql).await.expect("trigger");
    }
    pool.close().await;
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_nothing_is_stored_or_disclosed() {
    let gw = TestGateway::start().await;
    let base = gw.audit_size().await;
    let id = submit_ok(&gw).await;
    block_audit_writes(&gw, true).await;

    let r = submit(&gw, "AL-CTD", &message()).await;
    assert_problem(&r, 503, "audit_unavailable");
    assert_eq!(
        gw.count("messages").await,
        1,
        "the refused message was not stored"
    );

    let serbia = gw.partner("RS-MOI");
    let read = serbia
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_problem(&read, 503, "audit_unavailable");
    assert!(
        !String::from_utf8_lossy(&read.body).contains("Details follow"),
        "nothing disclosed"
    );
    let inbox = serbia.get("/v1/inbox", &[]).await.expect("inbox");
    assert_problem(&inbox, 503, "audit_unavailable");
    assert!(!String::from_utf8_lossy(&inbox.body).contains("Travel"));
    let s = gw
        .partner("AL-CTD")
        .get(&format!("/v1/messages/{id}/status"), &[])
        .await
        .expect("status")
        .json();
    assert_eq!(s["code"], "audit_unavailable");

    block_audit_writes(&gw, false).await;
    let read = serbia
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.status, 200, "served again once the log is writable");
    assert_eq!(gw.audit_size().await, base + 2);
    gw.stop().await;
}
