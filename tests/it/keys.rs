//! Operator mistakes and faults around the master key and the data files
//! (issue 19): real `brdo serve` and `brdo keys` processes on real files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use brdo::crypto::MasterKey;
use brdo_tools::client::Client;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::harness::*;

fn keys(cmd: &str, config: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["keys", cmd, "--config", config.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    brdo(&args)
}

/// `brdo serve` on `config` expected to refuse at once; its output.
fn serve_refused(config: &Path) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["serve", "--config", config.to_str().expect("utf8")])
        .env("BRDO_SERVER__LISTEN", "127.0.0.1:0")
        .env("BRDO_SERVER__METRICS_LISTEN", "127.0.0.1:0")
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    out
}

fn key_id(path: &Path) -> String {
    MasterKey::load(path).expect("key").id().to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Sends `n` messages AL-CTD → RS-MOI with distinct subjects; their ids.
async fn send_many(gw: &TestGateway, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut m = message();
        m["subject"] = json!(format!("key test {i}"));
        ids.push(send(gw, "AL-CTD", &m).await);
    }
    ids
}

/// RS-MOI's whole inbox: (id, subject, error) per entry.
async fn inbox_of(client: &Client) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let r = client
            .get(&format!("/v1/inbox?after={after}&limit=500"), &[])
            .await
            .expect("inbox");
        assert_eq!(r.status, 200, "{}", text(&r.body));
        let page = r.json();
        let messages = page["messages"].as_array().expect("messages").clone();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push((
                m["id"].as_str().expect("id").to_owned(),
                m["subject"].as_str().map(str::to_owned),
                m["error"].as_str().map(str::to_owned),
            ));
        }
        after = page["next"].as_str().expect("next").to_owned();
    }
}

/// Asserts every message in `ids` opens for RS-MOI, in the inbox and read
/// one by one.
async fn all_open(gw: &TestGateway, ids: &[String]) {
    let inbox = inbox_of(&gw.partner("RS-MOI")).await;
    for id in ids {
        let entry = inbox.iter().find(|e| &e.0 == id).expect("listed");
        assert!(entry.1.is_some() && entry.2.is_none(), "{entry:?}");
        let r = read(gw, "RS-MOI", id).await;
        assert_eq!(r.status, 200, "{}", text(&r.body));
    }
}

#[tokio::test]
async fn keys_rotate_is_refused_while_a_gateway_runs_and_nothing_sealed_meanwhile_is_lost() {
    let gw = TestGateway::start().await;
    let before = send(&gw, "AL-CTD", &message()).await;
    let config_path = write_config(&gw);
    let (config, pki) = (gw.config.clone(), gw.pki.clone());
    let key_file = config.crypto.master_key_file.clone();
    let old_id = key_id(&key_file);
    let files = gw.stop().await;

    let mut server = ServeProcess::start(&config_path, &pki, &[]).await;
    let out = keys("rotate", &config_path, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("a gateway is running on this master key"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(key_id(&key_file), old_id, "the key file is untouched");
    assert!(!key_file.with_file_name("master.key.new").exists());
    // The running gateway keeps sealing under the key that is still there.
    let client = Client::from_pki(&pki, "partner-AL-CTD", server.addr).expect("client");
    let r = client
        .post_json("/v1/messages", &[OFFICER], &message())
        .await
        .expect("submit");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let during = r.json()["id"].as_str().expect("id").to_owned();
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).await.success());

    let out = keys("rotate", &config_path, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(key_id(&key_file), old_id);
    let retired = key_file.with_file_name(format!("master.key.retired.{old_id}"));
    assert!(retired.exists(), "the replaced key is kept");
    assert_eq!(mode(&retired), 0o600);

    let gw = TestGateway::restart(files, config, &pki).await;
    all_open(&gw, &[before, during]).await;
    gw.stop().await;
}

#[tokio::test]
async fn serve_is_refused_while_a_rotation_holds_the_master_key() {
    let gw = TestGateway::start().await;
    let config_path = write_config(&gw);
    let key_file = gw.config.crypto.master_key_file.clone();
    let _files = gw.stop().await;
    // A child process another test is spawning at this instant may hold a
    // copy of the stopped gateway's lock descriptor until it execs.
    let mut rotation = None;
    for _ in 0..100 {
        if let Ok(l) = brdo::crypto::KeyLock::exclusive(&key_file) {
            rotation = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rotation = rotation.expect("the stopped gateway's lock is released");
    let out = serve_refused(&config_path);
    let err = text(&out.stderr);
    assert!(err.contains("a master key rotation is running"), "{err}");
    drop(rotation);
}

#[tokio::test]
async fn rotation_killed_midway_loses_nothing_and_the_rerun_completes_it() {
    let gw = TestGateway::start().await;
    let mut ids = send_many(&gw, 40).await;
    let config_path = write_config(&gw);
    let (config, pki) = (gw.config.clone(), gw.pki.clone());
    let key_file = config.crypto.master_key_file.clone();
    let old_id = key_id(&key_file);
    let files = gw.stop().await;

    // One data key per transaction, killed once some but not all moved.
    let mut child = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["keys", "rotate", "--batch", "1", "--config"])
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn rotate");
    let pool = open_db(&config.database.url).await;
    let mut caught_midway = false;
    for _ in 0..20_000 {
        let moved: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE master_key_id <> $1")
                .bind(&old_id)
                .fetch_one(&pool)
                .await
                .expect("count");
        if moved > 0 {
            caught_midway = moved < 40;
            break;
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    pool.close().await;
    let pending = key_file.with_file_name("master.key.new");
    if caught_midway {
        assert_eq!(key_id(&key_file), old_id, "not replaced before the end");
        assert!(
            pending.exists(),
            "the new key is on disk before any row names it"
        );
    }

    // A gateway started now opens rows under either key, and seals anew.
    let gw = TestGateway::restart(files, config.clone(), &pki).await;
    all_open(&gw, &ids).await;
    ids.push(send(&gw, "AL-CTD", &message()).await);
    let files = gw.stop().await;

    let pending_id = pending.exists().then(|| key_id(&pending));
    let out = keys("rotate", &config_path, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!pending.exists());
    if let Some(id) = pending_id {
        assert_eq!(
            key_id(&key_file),
            id,
            "the rerun finishes with the same key"
        );
    }
    let pool = open_db(&config.database.url).await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE master_key_id <> $1")
        .bind(key_id(&key_file))
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    assert_eq!(left, 0);

    let gw = TestGateway::restart(files, config, &pki).await;
    all_open(&gw, &ids).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_missing_or_foreign_master_key_is_refused_never_replaced() {
    let gw = TestGateway::start().await;
    send(&gw, "AL-CTD", &message()).await;
    let config_path = write_config(&gw);
    let pki = gw.pki.clone();
    let key_file = gw.config.crypto.master_key_file.clone();
    let old_id = key_id(&key_file);
    let _files = gw.stop().await;

    // Moved away (a failed mount, a key not copied to this node).
    let aside = key_file.with_file_name("elsewhere.key");
    std::fs::rename(&key_file, &aside).expect("move");
    let err = text(&serve_refused(&config_path).stderr);
    assert!(
        err.contains("does not exist") && err.contains("brdo keys init"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!key_file.exists(), "no key was made");

    // A fresh key where the old one was: the database names another key.
    let out = keys("init", &config_path, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&key_file), 0o600);
    let err = text(&serve_refused(&config_path).stderr);
    assert!(
        err.contains("data keys wrapped under master key") && err.contains(&old_id),
        "{err}"
    );
    // init never replaces a key.
    let fresh = std::fs::read(&key_file).expect("read");
    let out = keys("init", &config_path, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&key_file).expect("read"), fresh);

    // The right key back: the gateway starts.
    std::fs::rename(&aside, &key_file).expect("restore");
    let server = ServeProcess::start(&config_path, &pki, &[]).await;
    drop(server);
}

#[tokio::test]
async fn database_files_are_owner_only_on_disk_and_open_ones_are_refused() {
    let gw = TestGateway::start_sqlite_with(&Pki::shared().dir, |_| {}).await;
    send(&gw, "AL-CTD", &message()).await;
    let data = gw.data.clone();
    let db = data.join("brdo.db");
    assert_eq!(mode(&data), 0o700);
    for f in ["brdo.db", "brdo.db-wal", "brdo.db-shm"] {
        let p = data.join(f);
        assert!(p.exists(), "{f}");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    let config_path = write_config(&gw);
    let _files = gw.stop().await;

    chmod(&db, 0o644);
    let err = text(&serve_refused(&config_path).stderr);
    assert!(
        err.contains("brdo.db has mode 644") && err.contains("chmod 600"),
        "{err}"
    );
    chmod(&db, 0o600);
    chmod(&data, 0o755);
    let err = text(&serve_refused(&config_path).stderr);
    assert!(
        err.contains("mode 755") && err.contains("chmod 700"),
        "{err}"
    );
    chmod(&data, 0o700);
}

#[tokio::test]
async fn an_unopenable_message_is_reported_per_item_and_audited_not_breaking_the_inbox() {
    let gw = TestGateway::start().await;
    let ids = send_many(&gw, 3).await;
    let pool = gw.db().await;
    sqlx::query("UPDATE data_keys SET wrapped_key = $1 WHERE owner = $2")
        .bind(vec![0u8; 60])
        .bind(&ids[1])
        .execute(&pool)
        .await
        .expect("damage a key");
    pool.close().await;

    let inbox = inbox_of(&gw.partner("RS-MOI")).await;
    assert_eq!(inbox.len(), 3);
    for (n, (id, subject, error)) in inbox.iter().enumerate() {
        assert_eq!(id, &ids[n]);
        if n == 1 {
            assert_eq!(subject, &None);
            assert_eq!(error.as_deref(), Some("content_integrity"));
        } else {
            assert_eq!(subject.as_deref(), Some(format!("key test {n}").as_str()));
            assert_eq!(error, &None);
        }
    }
    // The DPO finds it by outcome and message.
    let r = gw
        .client("dpo-gateway")
        .get(
            &format!("/v1/audit?code=content_integrity&message={}", ids[1]),
            &[],
        )
        .await
        .expect("audit");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let records = r.json()["records"].as_array().expect("records").clone();
    assert!(
        records
            .iter()
            .any(|rec| rec["code"] == "content_integrity" && rec["action"] == "consult"),
        "{records:?}"
    );
    let (_, m) = plain_get(gw.gateway.metrics_addr, "/metrics").await;
    assert!(
        m.lines().any(|l| l == "brdo_content_unreadable_total 1"),
        "{m}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn readiness_probes_cut_off_mid_check_never_leave_the_write_lock_held() {
    let gw = TestGateway::start().await;
    let metrics = gw.gateway.metrics_addr;
    let mut writers = Vec::new();
    for w in 0..3 {
        let client = gw.partner("AL-CTD");
        writers.push(tokio::spawn(async move {
            for i in 0..15 {
                let mut m = message();
                m["subject"] = json!(format!("writer {w}-{i}"));
                let r = client
                    .post_json("/v1/messages", &[OFFICER], &m)
                    .await
                    .expect("submit");
                assert_eq!(r.status, 201, "{}", text(&r.body));
            }
        }));
    }
    let mut probes = Vec::new();
    for p in 0..40u64 {
        probes.push(tokio::spawn(async move {
            for i in 0..5u64 {
                let Ok(mut s) = tokio::net::TcpStream::connect(metrics).await else {
                    continue;
                };
                let _ = s
                    .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await;
                // Hang up 1-5 ms into the check.
                tokio::time::sleep(Duration::from_millis(1 + (p * 7 + i * 3) % 5)).await;
                drop(s);
            }
        }));
    }
    for t in probes {
        t.await.expect("probe task");
    }
    for t in writers {
        t.await.expect("writer task");
    }
    // Every pooled connection is usable for a write lock, and writes go on.
    for _ in 0..12 {
        assert!(plain_get(metrics, "/readyz").await.0 == 200);
    }
    let id = send(&gw, "AL-CTD", &message()).await;
    assert_eq!(read(&gw, "RS-MOI", &id).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn on_postgres_a_rotation_is_refused_while_a_node_on_another_host_runs() {
    let gw = TestGateway::start_on(DbKind::Postgres, &Pki::shared().dir, |_| {}).await;
    send(&gw, "AL-CTD", &message()).await;
    // Another host's copy of the key: the lock file beside it is not the
    // running node's, so only the database's lock can refuse.
    let other = tempfile::tempdir().expect("tempdir");
    let copy = other.path().join("master.key");
    std::fs::copy(&gw.config.crypto.master_key_file, &copy).expect("copy key");
    chmod(&copy, 0o600);
    let config = write_config(&gw);
    let toml = std::fs::read_to_string(&config).expect("config");
    let toml = toml.replace(
        &gw.config.crypto.master_key_file.display().to_string(),
        &copy.display().to_string(),
    );
    let other_config = other.path().join("gateway.toml");
    std::fs::write(&other_config, toml).expect("write config");

    let out = keys("rotate", &other_config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("a gateway node is running on this database"),
        "{err}"
    );
    assert!(!other.path().join("master.key.new").exists());

    let _files = gw.stop().await;
    let out = keys("rotate", &other_config, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
