//! The `brdo` binary (SPEC §9): pki, policy check, audit verify, serve.

use std::path::Path;
use std::process::Command;

use sqlx::Executor;

use crate::harness::*;

#[test]
fn pki_init_issue_list_write_the_contract_file_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    let p = pki.to_str().expect("utf8");
    let out = brdo(&[
        "pki",
        "init",
        "--dir",
        p,
        "--host",
        "localhost",
        "--host",
        "127.0.0.1",
        "--host",
        "gw.example",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "ca.crt",
        "ca.key",
        "ca.crl",
        "gateway.crt",
        "gateway.key",
        "audit-signing.key",
        "audit-signing.pub",
        "operator-admin.crt",
        "operator-admin.key",
        "operator-admin.p12",
        "dpo-gateway.crt",
        "dpo-gateway.key",
        "dpo-gateway.p12",
    ] {
        assert!(pki.join(f).exists(), "{f} missing");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(pki.join("ca.key"))
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // A second init refuses to overwrite the CA.
    let out = brdo(&["pki", "init", "--dir", p]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    for (flag, id, stem) in [
        ("--partner", "AL-CTD", "partner-AL-CTD"),
        ("--dpo", "AL-CTD", "dpo-AL-CTD"),
        ("--operator", "ops.jane", "operator-ops.jane"),
    ] {
        let out = brdo(&[
            "pki",
            "issue",
            "--dir",
            p,
            flag,
            id,
            "--days",
            "10",
            "--p12-password",
            "pw",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let serial = text(&out.stdout).trim().to_owned();
        assert!(
            serial.len() >= 2 && serial.chars().all(|c| c.is_ascii_hexdigit()),
            "{serial}"
        );
        for ext in ["crt", "key", "p12"] {
            assert!(pki.join(format!("{stem}.{ext}")).exists(), "{stem}.{ext}");
        }
        let list = text(&brdo(&["pki", "list", "--dir", p]).stdout);
        assert!(
            list.contains(&serial) && list.contains(&format!("urn:brdo:{}:{id}", &flag[2..])),
            "{list}"
        );
    }
    // Bad identities are usage errors.
    let out = brdo(&["pki", "issue", "--dir", p, "--partner", "al-ctd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("al-ctd"));
    let out = brdo(&["pki", "issue", "--dir", p]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "one of the role flags is required"
    );
}

#[test]
fn policy_check_names_line_and_column() {
    let out = brdo(&[
        "policy",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.toml"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("7 partners"));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("policy.toml");
    let policy = brdo_tools::demo_data::POLICY.replacen(
        "clearance = \"EU_RESTRICTED\"",
        "clearance = \"RESTRICTED\"",
        1,
    );
    std::fs::write(&bad, &policy).expect("write");
    let out = brdo(&["policy", "check", bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let line = policy
        .lines()
        .position(|l| l.contains("\"RESTRICTED\""))
        .expect("line")
        + 1;
    assert!(err.contains(&format!("line {line} column 13")), "{err}");
    assert!(
        err.contains("EU_RESTRICTED"),
        "names the allowed values: {err}"
    );

    let out = brdo(&["policy", "check", "/nonexistent/policy.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

async fn tamper(db: &Path, statements: &[&'static str]) {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open");
    // An attacker with file access drops the append-only triggers first.
    pool.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        .await
        .expect("drop");
    pool.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        .await
        .expect("drop");
    for s in statements {
        pool.execute(*s).await.expect("tamper");
    }
    pool.close().await;
}

async fn gateway_with_records() -> (TestGateway, std::path::PathBuf) {
    // Tampering goes through the SQLite file.
    let gw = TestGateway::start_sqlite_with(&Pki::shared().dir, |_| {}).await;
    // Five records: the two start-up records, two submissions, one listing.
    for _ in 0..2 {
        submit_ok(&gw).await;
    }
    let serbia = gw.partner("RS-MOI");
    serbia.get("/v1/inbox", &[]).await.expect("inbox");
    let config = write_config(&gw);
    (gw, config)
}

#[tokio::test]
async fn audit_verify_passes_then_names_the_first_altered_or_removed_record() {
    let (gw, config) = gateway_with_records().await;
    let cfg = config.to_str().expect("utf8").to_owned();
    let out = brdo(&["audit", "verify", "--config", &cfg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("5 records"),
        "{}",
        text(&out.stdout)
    );
    let db = gw.data.join("brdo.db");
    let _files = gw.stop().await;

    tamper(
        &db,
        &["UPDATE audit_log SET outcome = 'denied' WHERE seq = 3"],
    )
    .await;
    let out = brdo(&["audit", "verify", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("record 3"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn audit_verify_detects_a_removed_record() {
    let (gw, config) = gateway_with_records().await;
    let db = gw.data.join("brdo.db");
    let _files = gw.stop().await;
    tamper(&db, &["DELETE FROM audit_log WHERE seq = 2"]).await;
    let out = brdo(&[
        "audit",
        "verify",
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("record 2"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn audit_verify_detects_reordered_records() {
    let (gw, config) = gateway_with_records().await;
    let db = gw.data.join("brdo.db");
    let _files = gw.stop().await;
    // Swap the contents of records 2 and 3, keeping their seq.
    tamper(
        &db,
        &[
            "UPDATE audit_log SET seq = -2 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = -2",
        ],
    )
    .await;
    let out = brdo(&[
        "audit",
        "verify",
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("record 2"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn serve_logs_no_content_and_exits_cleanly_on_sigterm() {
    let gw = TestGateway::start().await;
    let config = write_config(&gw);
    let pki = gw.pki.clone();
    let _files = gw.stop().await;
    // Run the real binary on a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["serve", "--config", config.to_str().expect("utf8")])
        .env("BRDO_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let client =
        brdo_tools::client::Client::from_pki(&pki, "partner-AL-CTD", addr).expect("client");
    let marker = "MARKER-logs-4d1e";
    let mut m = message();
    m["subject"] = serde_json::json!(marker);
    m["body"] = serde_json::json!(marker);
    let mut status = 0;
    for _ in 0..100 {
        if let Ok(r) = client.post_json("/v1/messages", &[OFFICER], &m).await {
            status = r.status;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 201);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logs = text(&out.stderr) + &text(&out.stdout);
    assert!(logs.contains("request done"), "logs were written: {logs}");
    assert!(!logs.contains(marker), "logs carry no message content");
}

#[tokio::test]
async fn serve_refuses_a_broken_policy_with_exit_2() {
    let gw = TestGateway::start().await;
    let config = write_config(&gw);
    let policy = gw.config.policy.file.clone();
    let _files = gw.stop().await;
    let text_policy = brdo_tools::demo_data::POLICY.replacen(
        "third_country = true",
        "third_country = \"yes\"",
        1,
    );
    std::fs::write(&policy, &text_policy).expect("write");
    let line = text_policy
        .lines()
        .position(|l| l.contains("\"yes\""))
        .expect("line")
        + 1;
    let out = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["serve", "--config", config.to_str().expect("utf8")])
        .env("BRDO_SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("line {line} column 17")), "{err}");
}

#[tokio::test]
async fn keys_rotate_rewraps_every_data_key_without_touching_content() {
    let gw = TestGateway::start().await;
    let att = upload(&gw, "AL-CTD", b"attachment bytes".to_vec(), "text/markdown")
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut m = message();
    m["attachments"] = serde_json::json!([att]);
    let id = send(&gw, "AL-CTD", &m).await;
    let config_path = write_config(&gw);
    let (config, pki) = (gw.config.clone(), gw.pki.clone());
    let key_file = config.crypto.master_key_file.clone();
    let old_key = std::fs::read_to_string(&key_file).expect("old key");
    let content_before: Vec<u8> = {
        let pool = gw.db().await;
        let c = sqlx::query_scalar("SELECT content FROM messages WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .expect("c");
        pool.close().await;
        c
    };
    let files = gw.stop().await;

    let out = brdo(&[
        "keys",
        "rotate",
        "--config",
        config_path.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("re-wrapped 2 data key(s)"),
        "{}",
        text(&out.stdout)
    );
    let new_key = std::fs::read_to_string(&key_file).expect("new key");
    assert_ne!(new_key, old_key);
    assert!(!key_file.with_file_name("master.key.new").exists());
    let old_id = brdo::crypto::MasterKey::from_bytes(&hex::decode(old_key.trim()).expect("hex"))
        .expect("key")
        .id()
        .to_owned();
    assert!(
        key_file
            .with_file_name(format!("master.key.retired.{old_id}"))
            .exists(),
        "the replaced key is kept until no data key names it"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let pool = open_db(&config.database.url).await;
    let content_after: Vec<u8> = sqlx::query_scalar("SELECT content FROM messages WHERE id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .expect("c");
    assert_eq!(content_after, content_before, "content untouched");
    let wrapped: Vec<u8> = sqlx::query_scalar("SELECT wrapped_key FROM data_keys WHERE owner = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .expect("k");
    pool.close().await;
    let old = brdo::crypto::MasterKey::from_bytes(&hex::decode(old_key.trim()).expect("hex"))
        .expect("key");
    assert!(
        brdo::crypto::DataKey::unwrap_key(&old, &id, &wrapped).is_err(),
        "the old master key opens nothing"
    );

    let gw = TestGateway::restart(files, config, &pki).await;
    let r = read(&gw, "RS-MOI", &id).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let a = gw
        .partner("RS-MOI")
        .get(
            &format!("/v1/messages/{id}/attachments/{att}"),
            &[OFFICER, JUSTIFICATION],
        )
        .await
        .expect("download");
    assert_eq!(&a.body[..], b"attachment bytes");
    gw.stop().await;
}

#[tokio::test]
async fn serve_refuses_a_master_key_others_can_read() {
    let gw = TestGateway::start().await;
    let config = write_config(&gw);
    let key = gw.config.crypto.master_key_file.clone();
    let _files = gw.stop().await;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["serve", "--config", config.to_str().expect("utf8")])
        .env("BRDO_SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("master key file") && err.contains("mode 644"),
        "{err}"
    );
}

#[tokio::test]
async fn serve_refuses_signing_and_tls_keys_others_can_read() {
    // Its own PKI: the shared one must keep its modes.
    let pki = Pki::create();
    let gw = TestGateway::start_with(&pki.dir, |_| {}).await;
    let config = write_config(&gw);
    let keys = [
        gw.config.audit.signing_key.clone(),
        gw.config.tls.key.clone(),
    ];
    let _files = gw.stop().await;
    use std::os::unix::fs::PermissionsExt;
    for key in keys {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let out = Command::new(env!("CARGO_BIN_EXE_brdo"))
            .args(["serve", "--config", config.to_str().expect("utf8")])
            .env("BRDO_SERVER__LISTEN", "127.0.0.1:0")
            .env("BRDO_SERVER__METRICS_LISTEN", "127.0.0.1:0")
            .output()
            .expect("serve");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(&key.display().to_string()) && err.contains("mode 640"),
            "{err}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// A stopped gateway's files with 8 records (the two start-up records and
/// six submissions) and a checkpoint every 3 (signed at sizes 1, 4 and 7);
/// returns the config, database and guard.
async fn checkpointed_log() -> (std::path::PathBuf, std::path::PathBuf, Files) {
    // Tampering goes through the SQLite file.
    let gw =
        TestGateway::start_sqlite_with(&Pki::shared().dir, |c| c.audit.checkpoint_every = 3).await;
    for _ in 0..6 {
        submit_ok(&gw).await;
    }
    let sizes: Vec<u64> = gw
        .gateway
        .app
        .store
        .checkpoints()
        .await
        .expect("cps")
        .iter()
        .map(|c| c.tree_size)
        .collect();
    assert_eq!(
        sizes,
        [1, 4, 7],
        "one request at a time: one record per batch"
    );
    let config = write_config(&gw);
    let db = gw.data.join("brdo.db");
    let files = gw.stop().await;
    (config, db, files)
}

fn verify(config: &Path) -> std::process::Output {
    brdo(&[
        "audit",
        "verify",
        "--config",
        config.to_str().expect("utf8"),
    ])
}

#[tokio::test]
async fn audit_verify_detects_removed_newest_records_by_their_checkpoint() {
    let (config, db, _files) = checkpointed_log().await;
    assert!(verify(&config).status.success());
    tamper(&db, &["DELETE FROM audit_log WHERE seq > 4"]).await;
    let out = verify(&config);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("record 5") && err.contains("missing"), "{err}");
}

#[tokio::test]
async fn audit_verify_detects_a_rewritten_chain_by_the_checkpoint_root() {
    let (config, db, _files) = checkpointed_log().await;
    // Alter record 5 and recompute every hash after it, as an attacker who
    // knows the algorithm would: the chain is consistent again.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("db");
    pool.execute("DROP TRIGGER audit_log_no_update")
        .await
        .expect("drop");
    let store = brdo::store::Store::open(&brdo::store::StoreOptions {
        url: format!("sqlite://{}", db.display()),
        node: None,
        read_connections: 1,
        checkpoints: brdo::store::CheckpointPolicy::default(),
    })
    .await
    .expect("store");
    let records = store.audit_page(0, 1000).await.expect("records");
    let mut prev = records[3].0.hash.clone();
    for (rec, _) in &records[4..] {
        let mut draft = rec.draft.clone();
        if rec.seq == 5 {
            draft.justification = Some("nothing to see".into());
        }
        let forged = draft.chain(rec.seq, &prev).expect("chain");
        sqlx::query(
            "UPDATE audit_log SET justification = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
        )
        .bind(forged.draft.justification.clone())
        .bind(forged.prev_hash.clone())
        .bind(forged.hash.clone())
        .bind(rec.seq as i64)
        .execute(&pool)
        .await
        .expect("rewrite");
        prev = forged.hash;
    }
    store.close().await;
    pool.close().await;
    let out = verify(&config);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("checkpoint") && err.contains("rewritten"),
        "{err}"
    );
}

#[tokio::test]
async fn audit_verify_detects_an_inserted_record() {
    let (config, db, _files) = checkpointed_log().await;
    tamper(
        &db,
        &[
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3",
            "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1003",
            "INSERT INTO audit_log (seq, at, actor_role, action, counterparts, outcome, reduced, prev_hash, hash) \
             SELECT 3, at, 'partner', 'collect', '[]', 'allowed', 0, hash, hash FROM audit_log WHERE seq = 2",
        ],
    )
    .await;
    let out = verify(&config);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("record 3"),
        "{}",
        text(&out.stderr)
    );
}
