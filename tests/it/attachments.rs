//! Attachments (SPEC §7): encrypted, streamed, holder-only, erased with
//! their message.

use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(i as u8 >> 3))
        .collect()
}

async fn download(
    gw: &TestGateway,
    partner: &str,
    msg: &str,
    att: &str,
) -> brdo_tools::client::ClientResponse {
    gw.partner(partner)
        .get(
            &format!("/v1/messages/{msg}/attachments/{att}"),
            &[OFFICER, JUSTIFICATION],
        )
        .await
        .expect("download")
}

async fn message_with(gw: &TestGateway, attachments: &[&str]) -> String {
    let mut m = message();
    m["attachments"] = json!(attachments);
    m["label"] = json!({"classification": "EU_RESTRICTED"});
    send(gw, "AL-CTD", &m).await
}

#[tokio::test]
async fn upload_send_download_by_holders_only() {
    let gw = TestGateway::start().await;
    let data = payload(300_000, 7);
    let r = upload(&gw, "AL-CTD", data.clone(), "application/pdf").await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let v = r.json();
    let att = v["id"].as_str().expect("id").to_owned();
    assert_eq!(v["size"], 300_000);
    assert_eq!(
        v["sha256"],
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &data))
    );
    assert_eq!(gw.audit_of(&r).await["action"], "upload");

    let id = message_with(&gw, &[&att]).await;
    let got = download(&gw, "RS-MOI", &id, &att).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert!(got.body == data, "same bytes back");
    let rec = gw.audit_of(&got).await;
    assert_eq!(
        (
            rec["action"].as_str(),
            rec["details"]["attachment_id"].as_str()
        ),
        (Some("consult"), Some(att.as_str()))
    );
    assert_eq!(
        read(&gw, "RS-MOI", &id).await.json()["attachments"],
        json!([att])
    );

    // Not a holder, not this message's attachment, unknown id: all 404.
    assert_problem(&download(&gw, "BA-SIPA", &id, &att).await, 404, "not_found");
    let other = submit_ok(&gw).await;
    assert_problem(
        &download(&gw, "RS-MOI", &other, &att).await,
        404,
        "not_found",
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_problem(
        &download(&gw, "RS-MOI", &id, &unknown).await,
        404,
        "not_found",
    );
    let r = gw
        .partner("RS-MOI")
        .get(&format!("/v1/messages/{id}/attachments/{att}"), &[OFFICER])
        .await
        .expect("r");
    assert_problem(&r, 400, "justification_required");

    // Forwards carry the attachments.
    let f = post(
        &gw,
        "RS-MOI",
        &format!("/v1/messages/{id}/forward"),
        &json!({"recipients": ["ME-MOI"], "justification": "JIT"}),
    )
    .await;
    assert_eq!(f.status, 201, "{}", text(&f.body));
    let copy = f.json()["id"].as_str().expect("id").to_owned();
    assert!(download(&gw, "ME-MOI", &copy, &att).await.body == data);
    gw.stop().await;
}

#[tokio::test]
async fn attachments_must_be_the_senders_own() {
    let gw = TestGateway::start().await;
    let theirs = upload(&gw, "RS-MOI", b"serbian file".to_vec(), "text/markdown")
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut m = message();
    m["attachments"] = json!([theirs, uuid::Uuid::now_v7().to_string()]);
    let p = assert_problem(&submit(&gw, "AL-CTD", &m).await, 400, "invalid_message");
    let fields: Vec<_> = p["errors"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("attachments[0]"), json!("attachments[1]")]);
    assert_eq!(gw.count("messages").await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn oversize_and_truncated_uploads_store_nothing() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.max_attachment_bytes = 100_000
    })
    .await;
    let r = upload(
        &gw,
        "AL-CTD",
        payload(100_001, 3),
        "application/octet-stream",
    )
    .await;
    assert_problem(&r, 413, "payload_too_large");
    // Chunked, without Content-Length, is cut off at the limit too.
    let r = gw
        .partner_h2("AL-CTD")
        .request(
            hyper::Method::POST,
            "/v1/attachments",
            &[OFFICER, ("content-type", "application/octet-stream")],
            Some(payload(150_000, 3)),
        )
        .await
        .expect("h2 upload");
    assert_problem(&r, 413, "payload_too_large");

    // A client that announces 90 000 bytes, sends 20 000 and hangs up.
    let before = gw.audit_size().await;
    let cfg = brdo_tools::client::tls_config(
        &gw.pki.join("partner-AL-CTD.crt"),
        &gw.pki.join("partner-AL-CTD.key"),
        &gw.pki.join("ca.crt"),
        brdo_tools::client::Protocol::Http1,
    )
    .expect("tls");
    let tcp = tokio::net::TcpStream::connect(gw.addr())
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("tls");
    let head = "POST /v1/attachments HTTP/1.1\r\nhost: localhost\r\nbrdo-officer: insp.hoxha\r\ncontent-type: application/pdf\r\ncontent-length: 90000\r\n\r\n";
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(&payload(20_000, 5)).await.expect("part");
    tls.flush().await.expect("flush");
    tls.shutdown().await.expect("close");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tls.read_to_end(&mut sink),
    )
    .await;
    for _ in 0..50 {
        if gw.audit_size().await > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rec = gw.audit_record(before + 1).await;
    assert_eq!(
        (rec["action"].as_str(), rec["outcome"].as_str()),
        (Some("upload"), Some("failed"))
    );
    assert_eq!(rec["code"], "upload_incomplete");
    assert_eq!(gw.count("attachments").await, 0);
    let files = std::fs::read_dir(gw.data.join("blobs"))
        .expect("blobs")
        .count();
    assert_eq!(files, 0, "no partial blob left");
    gw.stop().await;
}

#[tokio::test]
async fn tampered_ciphertext_is_a_clear_error_never_garbage() {
    let gw = TestGateway::start().await;
    let data = payload(200_000, 11);
    let att = upload(&gw, "AL-CTD", data, "application/pdf").await.json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let id = message_with(&gw, &[&att]).await;
    // Flip one byte of the attachment's first chunk.
    let blob = gw.data.join("blobs").join(&att);
    let mut bytes = std::fs::read(&blob).expect("blob");
    bytes[100] ^= 0x40;
    std::fs::write(&blob, &bytes).expect("write");
    let r = download(&gw, "RS-MOI", &id, &att).await;
    assert_problem(&r, 500, "content_integrity");
    // Flip one byte of the message's sealed content in the database.
    let pool = gw.db().await;
    let mut content: Vec<u8> = sqlx::query_scalar("SELECT content FROM messages WHERE id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .expect("content");
    content[20] ^= 1;
    sqlx::query("UPDATE messages SET content = $1 WHERE id = $2")
        .bind(content)
        .bind(&id)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;
    let r = read(&gw, "RS-MOI", &id).await;
    let p = assert_problem(&r, 500, "content_integrity");
    assert!(!text(&r.body).contains("Details follow"));
    assert_eq!(gw.audit_of(&r).await["outcome"], "failed");
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("nothing was returned")
    );
    gw.stop().await;
}

#[tokio::test]
async fn plaintext_markers_are_nowhere_under_the_data_directory() {
    let gw = TestGateway::start().await;
    let marker = b"ATTACHMENT-MARKER-9b2c71";
    let mut data = payload(150_000, 13);
    data.extend_from_slice(marker);
    data.extend_from_slice(&payload(1000, 2));
    let att = upload(&gw, "AL-CTD", data, "application/pdf").await.json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut m = message();
    m["subject"] = json!("SUBJECT-MARKER-9b2c71");
    m["body"] = json!("BODY-MARKER-9b2c71");
    m["attachments"] = json!([att]);
    let id = send(&gw, "AL-CTD", &m).await;
    assert_eq!(download(&gw, "RS-MOI", &id, &att).await.status, 200);
    let mut stack = vec![gw.data.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).expect("read");
            for needle in [&marker[..], b"SUBJECT-MARKER-9b2c71", b"BODY-MARKER-9b2c71"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds plaintext",
                    p.display()
                );
            }
        }
    }
    match gw.db_kind() {
        DbKind::Sqlite => assert!(
            files >= 4,
            "database, WAL, key and blob were all searched ({files} files)"
        ),
        DbKind::Postgres => {
            assert!(files >= 2, "key and blob were searched ({files} files)");
            // Every row of every table, as text (BYTEA as hex).
            let pool = gw.db().await;
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            assert!(tables.len() >= 5, "{tables:?}");
            let mut id_seen = false;
            for t in &tables {
                let dump: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT string_agg(t::text, ' ') FROM {t} t"
                )))
                .fetch_one(&pool)
                .await
                .expect("dump");
                let dump = dump.unwrap_or_default().to_lowercase();
                id_seen |= dump.contains(&id.to_lowercase());
                for needle in [&marker[..], b"SUBJECT-MARKER-9b2c71", b"BODY-MARKER-9b2c71"] {
                    let plain = String::from_utf8_lossy(needle).to_lowercase();
                    assert!(!dump.contains(&plain), "table {t} holds plaintext");
                    assert!(
                        !dump.contains(&hex::encode(needle)),
                        "table {t} holds plaintext"
                    );
                }
            }
            assert!(id_seen, "the dump shows what is stored (the message id)");
            pool.close().await;
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn erasure_and_orphan_removal_delete_attachment_content() {
    let gw = TestGateway::start().await;
    let att = upload(&gw, "AL-CTD", payload(10_000, 5), "text/markdown")
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let orphan = upload(&gw, "AL-CTD", payload(10_000, 9), "text/markdown")
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let id = message_with(&gw, &[&att]).await;
    let blobs = gw.data.join("blobs");
    assert!(blobs.join(&att).exists() && blobs.join(&orphan).exists());
    let r = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{id}/review"),
        &json!({"decision": "erase", "reason": "done"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(!blobs.join(&att).exists(), "erased with its message");
    assert_problem(&download(&gw, "RS-MOI", &id, &att).await, 410, "erased");
    assert!(blobs.join(&orphan).exists(), "not yet 24 hours old");

    let config = write_config(&gw);
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::hours(25))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let out = brdo(&[
        "retention",
        "run",
        "--config",
        config.to_str().expect("utf8"),
        "--as-of",
        &tomorrow,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !blobs.join(&orphan).exists(),
        "unreferenced upload removed after 24 hours"
    );
    assert_eq!(gw.count("data_keys").await, 0);
    let n = gw.audit_size().await;
    let last = gw.audit_record(n).await;
    assert_eq!(last["details"]["rule"], "unreferenced_upload_24h");
    gw.stop().await;
}
