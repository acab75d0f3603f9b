//! What an erasure leaves behind (SPEC §4, SECURITY.md "Erasure"): after a
//! message is erased, nothing in the database's files identifies its
//! content — no wrapped data key (in the tables, the SQLite log, or
//! PostgreSQL's dead row versions), no digest of its subject, body or
//! attachments, no signature over them — and no attachment file stays on
//! disk, even when deleting it failed at the erasure or an upload was cut
//! off mid-body.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use brdo::app::sweeper::{SweepOptions, sweep};
use brdo::signature::{self, submission_statement};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::harness::*;

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

/// A signed message from AL-CTD carrying one attachment, as sent.
struct Sent {
    id: String,
    attachment: String,
    /// Byte strings that identify the content or unlock it.
    secrets: Vec<(String, Vec<u8>)>,
}

async fn send_signed_with_attachment(gw: &TestGateway, subject: &str) -> Sent {
    let file = format!("attachment of {subject}").into_bytes();
    let up = upload(gw, "AL-CTD", file.clone(), "application/octet-stream").await;
    assert_eq!(up.status, 201, "{}", text(&up.body));
    let attachment = up.json()["id"].as_str().expect("id").to_owned();
    let file_digest = sha256_hex(&file);
    let mut m = message();
    m["subject"] = json!(subject);
    m["body"] = json!(format!("The body of {subject}."));
    m["attachments"] = json!([attachment]);
    let pki = &gw.pki;
    let key = std::fs::read(pki.join("partner-AL-CTD.key")).expect("key");
    let crt = std::fs::read(pki.join("partner-AL-CTD.crt")).expect("crt");
    let st = submission_statement("AL-CTD", &m, &|_| file_digest.clone()).expect("statement");
    let jws = signature::sign(&key, &crt, &st).expect("sign");
    let r = gw
        .partner("AL-CTD")
        .post_json(
            "/v1/messages",
            &[
                OFFICER,
                ("brdo-signature", &jws),
                (
                    "idempotency-key",
                    &format!("key-{subject}").replace(' ', "-"),
                ),
            ],
            &m,
        )
        .await
        .expect("submit");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let id = r.json()["id"].as_str().expect("id").to_owned();
    // Read once so the delivery, binding and consultation paths ran too.
    assert_eq!(read(gw, "RS-MOI", &id).await.status, 200);

    let db = gw.db().await;
    let mut secrets = vec![
        (
            "subject digest".to_owned(),
            sha256_hex(subject.as_bytes()).into_bytes(),
        ),
        (
            "body digest".to_owned(),
            sha256_hex(m["body"].as_str().expect("body").as_bytes()).into_bytes(),
        ),
        ("attachment digest".to_owned(), file_digest.into_bytes()),
        (
            "signature".to_owned(),
            jws.rsplit('.')
                .next()
                .expect("signature part")
                .as_bytes()
                .to_vec(),
        ),
    ];
    let request_hash: String =
        sqlx::query_scalar("SELECT request_hash FROM idempotency WHERE message_id = $1")
            .bind(id.clone())
            .fetch_one(&db)
            .await
            .expect("the idempotency row");
    secrets.push(("request digest".to_owned(), request_hash.into_bytes()));
    for owner in [&id, &attachment] {
        let wrapped: Vec<u8> =
            sqlx::query_scalar("SELECT wrapped_key FROM data_keys WHERE owner = $1")
                .bind(owner.clone())
                .fetch_one(&db)
                .await
                .expect("a wrapped key before the erasure");
        secrets.push((format!("wrapped key of {owner}"), wrapped));
    }
    db.close().await;
    Sent {
        id,
        attachment,
        secrets,
    }
}

/// Makes `dir` refuse deletes, for the owner and for root alike (root
/// ignores modes, not the immutable attribute).
fn freeze(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    let _ = std::process::Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .status();
}

fn thaw(dir: &Path) {
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(dir)
        .status();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod back");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every SQLite file of the gateway (database, log, shared memory).
fn sqlite_files(data: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data).expect("data dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("brdo.db") {
            out.push((name, std::fs::read(e.path()).expect("read db file")));
        }
    }
    assert!(out.iter().any(|(n, _)| n == "brdo.db"));
    out
}

/// Every raw page of the tables that held the secrets (PostgreSQL):
/// live rows, dead row versions and free space alike.
async fn postgres_pages(gw: &TestGateway) -> Vec<(String, Vec<u8>)> {
    let db = gw.db().await;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pageinspect")
        .execute(&db)
        .await
        .expect("pageinspect (the test server's superuser installs it)");
    let mut tables: Vec<String> = Vec::new();
    for table in [
        "data_keys",
        "message_signatures",
        "attachments",
        "idempotency",
        "messages",
        "audit_log",
    ] {
        tables.push(table.to_owned());
        // Long values live in the table's TOAST table.
        let toast: Option<String> = sqlx::query_scalar(
            "SELECT CASE WHEN reltoastrelid = 0 THEN NULL ELSE reltoastrelid::regclass::text END \
             FROM pg_class WHERE relname = $1 AND relkind = 'r'",
        )
        .bind(table.to_owned())
        .fetch_one(&db)
        .await
        .expect("toast relation");
        tables.extend(toast);
    }
    let mut out = Vec::new();
    for table in &tables {
        let blocks: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT pg_relation_size('{table}') / current_setting('block_size')::bigint"
        )))
        .fetch_one(&db)
        .await
        .expect("relation size");
        for b in 0..blocks {
            let page: Vec<u8> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT get_raw_page('{table}', {b}::int)"
            )))
            .fetch_one(&db)
            .await
            .expect("raw page");
            out.push((format!("{table} block {b}"), page));
        }
    }
    db.close().await;
    out
}

async fn assert_no_traces(gw: &TestGateway, sent: &Sent, how: &str) {
    if gw.db_kind() == DbKind::Postgres {
        // A transaction of another test's database, running while the
        // sweep rewrote the tables, kept the rows it might see; the purge
        // rewrites again until no erasure is younger than every running
        // transaction, and then has nothing left to do (`false`).
        let store = &gw.gateway.app.store;
        let mut rounds = 0;
        while store.purge_erased().await.expect("purge") {
            rounds += 1;
            assert!(rounds < 200, "the purge never completed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let files = match gw.db_kind() {
        DbKind::Sqlite => sqlite_files(&gw.data),
        DbKind::Postgres => postgres_pages(gw).await,
    };
    for (what, needle) in &sent.secrets {
        for (file, bytes) in &files {
            assert!(
                !contains(bytes, needle),
                "after an erasure by {how}, {file} still holds the {what}"
            );
        }
    }
    let blob = gw.config.storage.blob_dir.join(&sent.attachment);
    assert!(!blob.exists(), "the attachment file outlived the erasure");
    assert_problem(&read(gw, "RS-MOI", &sent.id).await, 410, "erased");
}

/// Whether the secrets are there before: the search must be able to fail.
async fn assert_traces_found(gw: &TestGateway, sent: &Sent) {
    if gw.db_kind() == DbKind::Sqlite {
        let files = sqlite_files(&gw.data);
        let (what, key) = sent.secrets.last().expect("a key");
        assert!(
            files.iter().any(|(_, b)| contains(b, key)),
            "the search finds the {what} while the message is live"
        );
    } else {
        let pages = postgres_pages(gw).await;
        let (what, key) = sent.secrets.last().expect("a key");
        assert!(
            pages.iter().any(|(_, b)| contains(b, key)),
            "the search finds the {what} while the message is live"
        );
    }
}

#[tokio::test]
async fn an_erasure_by_review_leaves_no_key_digest_or_signature() {
    let gw = TestGateway::start().await;
    let sent = send_signed_with_attachment(&gw, "Meeting at the old bridge").await;
    let other = send_signed_with_attachment(&gw, "Another matter entirely").await;
    assert_traces_found(&gw, &sent).await;
    let r = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{}/review", sent.id),
        &json!({"decision": "erase", "reason": "No longer needed"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    if gw.db_kind() == DbKind::Postgres {
        // PostgreSQL's dead row versions go at the sweeper's vacuum.
        let opts = SweepOptions {
            as_of: OffsetDateTime::now_utc(),
            dry_run: false,
            audit_retention_days: 3650,
        };
        let app = &gw.gateway.app;
        sweep(&app.store, &app.blobs, &opts).await.expect("sweep");
    }
    assert_no_traces(&gw, &sent, "review").await;
    // The other message is untouched and still readable.
    assert_eq!(read(&gw, "RS-MOI", &other.id).await.status, 200);
}

#[tokio::test]
async fn an_erasure_by_the_sweeper_leaves_no_key_digest_or_signature() {
    let gw = TestGateway::start().await;
    let sent = send_signed_with_attachment(&gw, "Short").await;
    assert_traces_found(&gw, &sent).await;
    let opts = SweepOptions {
        as_of: OffsetDateTime::now_utc() + Duration::days(400),
        dry_run: false,
        audit_retention_days: 3650,
    };
    let app = &gw.gateway.app;
    let report = sweep(&app.store, &app.blobs, &opts).await.expect("sweep");
    assert!(report.erased.contains(&sent.id), "{report:?}");
    assert_no_traces(&gw, &sent, "the retention sweeper").await;
}

/// An attachment file that could not be deleted at its erasure (its
/// directory was not writable) is removed by the next sweep.
#[tokio::test]
async fn a_failed_attachment_delete_is_retried_by_the_next_sweep() {
    let gw = TestGateway::start().await;
    let sent = send_signed_with_attachment(&gw, "Kept file").await;
    let dir = gw.config.storage.blob_dir.clone();
    let blob = dir.join(&sent.attachment);
    assert!(blob.exists());
    freeze(&dir);
    let r = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{}/review", sent.id),
        &json!({"decision": "erase", "reason": "No longer needed"}),
    )
    .await;
    thaw(&dir);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(
        blob.exists(),
        "the delete failed at the erasure (else this test proves nothing)"
    );
    let opts = SweepOptions {
        as_of: OffsetDateTime::now_utc(),
        dry_run: false,
        audit_retention_days: 3650,
    };
    let app = &gw.gateway.app;
    sweep(&app.store, &app.blobs, &opts).await.expect("sweep");
    assert!(
        !blob.exists(),
        "the next sweep removed the erased attachment's file"
    );
}

/// A file of an erased attachment left by a gateway that stopped goes when
/// the gateway starts again; a live attachment's file stays.
#[tokio::test]
async fn stray_attachment_files_are_removed_at_start() {
    let gw = TestGateway::start_sqlite_with(&Pki::shared().dir, |_| {}).await;
    let sent = send_signed_with_attachment(&gw, "Stray").await;
    let live = send_signed_with_attachment(&gw, "Live").await;
    let dir = gw.config.storage.blob_dir.clone();
    freeze(&dir);
    let r = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{}/review", sent.id),
        &json!({"decision": "erase", "reason": "No longer needed"}),
    )
    .await;
    thaw(&dir);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(dir.join(&sent.attachment).exists());
    let (config, pki) = (gw.config.clone(), gw.pki.clone());
    let files = gw.stop().await;
    let gw = TestGateway::restart(files, config, &pki).await;
    assert!(
        !dir.join(&sent.attachment).exists(),
        "the erased attachment's file went at start"
    );
    assert!(dir.join(&live.attachment).exists(), "a live file stays");
    assert_eq!(read(&gw, "RS-MOI", &live.id).await.status, 200);
}

/// An HTTP/2 upload whose stream the client resets mid-body leaves no
/// file and no row: the request's future is dropped, not ended.
#[tokio::test]
async fn an_upload_reset_mid_body_leaves_nothing() {
    let gw = TestGateway::start().await;
    let before = gw.count("attachments").await;
    let tls = brdo_tools::client::tls_config(
        &gw.pki.join("partner-AL-CTD.crt"),
        &gw.pki.join("partner-AL-CTD.key"),
        &gw.pki.join("ca.crt"),
        brdo_tools::client::Protocol::Http2,
    )
    .expect("TLS config");
    let tcp = tokio::net::TcpStream::connect(gw.addr())
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let io = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("TLS");
    let (h2c, conn) = h2::client::handshake(io).await.expect("h2 handshake");
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut h2c = h2c.ready().await.expect("ready");
    let req = hyper::Request::post("https://localhost/v1/attachments")
        .header("brdo-officer", OFFICER.1)
        .header("content-type", "application/pdf")
        .header("content-length", "1000000")
        .body(())
        .expect("request");
    let (resp, mut stream) = h2c.send_request(req, false).expect("send");
    stream.reserve_capacity(200_000);
    stream
        .send_data(bytes::Bytes::from(vec![7u8; 200_000]), false)
        .expect("first part of the body");
    // Let the gateway start writing the upload file.
    let dir = gw.config.storage.blob_dir.clone();
    let mut seen = false;
    for _ in 0..200 {
        seen = std::fs::read_dir(&dir)
            .expect("blob dir")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(".upload-"));
        if seen {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen, "the gateway began the upload");
    stream.send_reset(h2::Reason::CANCEL);
    drop(resp);
    // The reset reaches the gateway; its request future is dropped.
    let mut left: Vec<String> = Vec::new();
    for _ in 0..200 {
        left = std::fs::read_dir(&dir)
            .expect("blob dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(left.is_empty(), "files left by the reset upload: {left:?}");
    assert_eq!(gw.count("attachments").await, before, "no row");
    driver.abort();
}

/// A Content-Type is the client's text: its parameters often carry the
/// file's name (`application/pdf; name="…"`), which identifies the content
/// as well as the content does. An erasure must not leave it behind in the
/// attachment's tombstone or the message's row.
#[tokio::test]
async fn an_erasure_leaves_no_content_type_naming_the_content() {
    let gw = TestGateway::start_sqlite_with(&Pki::shared().dir, |_| {}).await;
    let file_name = "Qerim-Vokshi-passport-scan";
    let body_name = "Qerim-Vokshi-interview-notes";
    let up = upload(
        &gw,
        "AL-CTD",
        b"%PDF-1.7 scan".to_vec(),
        &format!("application/pdf; name=\"{file_name}.pdf\""),
    )
    .await;
    assert_eq!(up.status, 201, "{}", text(&up.body));
    let attachment = up.json()["id"].as_str().expect("id").to_owned();
    let mut m = message();
    m["attachments"] = json!([attachment]);
    m["content_type"] = json!(format!("text/plain; name=\"{body_name}.txt\""));
    let r = submit(&gw, "AL-CTD", &m).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let id = r.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(read(&gw, "RS-MOI", &id).await.status, 200);

    // The search can fail: both names are in the files while the message lives.
    let before = sqlite_files(&gw.data);
    for name in [file_name, body_name] {
        assert!(
            before.iter().any(|(_, b)| contains(b, name.as_bytes())),
            "{name} is stored while the message is live"
        );
    }
    let r = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{id}/review"),
        &json!({"decision": "erase", "reason": "No longer needed"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    for (file, bytes) in sqlite_files(&gw.data) {
        for name in [file_name, body_name] {
            assert!(
                !contains(&bytes, name.as_bytes()),
                "after the erasure {file} still holds the Content-Type naming {name}"
            );
        }
    }
    assert_problem(&read(&gw, "RS-MOI", &id).await, 410, "erased");
    gw.stop().await;
}
