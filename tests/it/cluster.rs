//! Several gateway nodes on one PostgreSQL database: in-process pairs for
//! the shared behaviour, and two `brdo serve` processes for the failure of
//! one. Skipped (with a note) when `BRDO_TEST_POSTGRES_URL=skip`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brdo_tools::client::Client;
use serde_json::{Value, json};

use crate::harness::*;

/// Starts node "node-a" on a fresh PostgreSQL database, or `None` when
/// PostgreSQL is switched off for this run.
async fn first_node() -> Option<TestGateway> {
    if std::env::var("BRDO_TEST_POSTGRES_URL").as_deref() == Ok("skip") {
        eprintln!("BRDO_TEST_POSTGRES_URL=skip: multi-node test not run");
        return None;
    }
    Some(
        TestGateway::start_on(DbKind::Postgres, &Pki::shared().dir, |c| {
            c.server.node = Some("node-a".into());
        })
        .await,
    )
}

#[tokio::test]
async fn a_long_poll_on_one_node_wakes_when_another_accepts() {
    let Some(a) = first_node().await else { return };
    let b = a.another_node("node-b").await;
    // Warm both nodes' connections so the timing below is the wake alone.
    assert_eq!(
        b.partner("RS-MOI")
            .get("/v1/inbox", &[])
            .await
            .expect("inbox")
            .status,
        200
    );
    let poller = b.partner("RS-MOI");
    let poll = tokio::spawn(async move {
        let r = poller.get("/v1/inbox?wait=30", &[]).await.expect("poll");
        (r, Instant::now())
    });
    // Let the poll reach its wait on node B.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = send(&a, "AL-CTD", &message()).await;
    let sent = Instant::now();
    let (r, woke) = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the long poll ended")
        .expect("join");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["messages"][0]["id"], json!(id));
    let waited = woke.saturating_duration_since(sent);
    assert!(
        waited < Duration::from_secs(1),
        "node B answered {waited:?} after node A accepted"
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn records_from_both_nodes_form_one_chain_and_name_their_node() {
    let Some(a) = first_node().await else { return };
    let b = a.another_node("node-b").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = if i % 2 == 0 {
            a.partner("AL-CTD")
        } else {
            b.partner("AL-CTD")
        };
        tasks.push(tokio::spawn(async move {
            client
                .post_json("/v1/messages", &[OFFICER], &message())
                .await
                .expect("submit")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").status, 201);
    }
    let size = a.audit_size().await;
    let mut nodes = BTreeSet::new();
    for seq in 1..=size {
        let rec = a.audit_record(seq).await;
        assert_eq!(rec["seq"], json!(seq), "one gapless sequence");
        if rec["action"] == "collect" {
            nodes.insert(
                rec["node"]
                    .as_str()
                    .expect("collect names its node")
                    .to_owned(),
            );
        }
    }
    assert_eq!(
        nodes,
        BTreeSet::from(["node-a".to_owned(), "node-b".to_owned()])
    );
    // The whole chain and its checkpoints verify, as an auditor would run it.
    b.stop().await;
    let config = write_config(&a);
    let out = brdo(&[
        "audit",
        "verify",
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    a.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_holds_across_nodes() {
    let Some(a) = first_node().await else { return };
    let b = a.another_node("node-b").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = if i % 2 == 0 {
            a.partner("AL-CTD")
        } else {
            b.partner("AL-CTD")
        };
        tasks.push(tokio::spawn(async move {
            client
                .post_json(
                    "/v1/messages",
                    &[OFFICER, ("idempotency-key", "two-nodes")],
                    &message(),
                )
                .await
                .expect("submit")
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        let r = t.await.expect("join");
        assert_eq!(r.status, 201, "{}", text(&r.body));
        ids.insert(r.json()["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(
        ids.len(),
        1,
        "one message for one key, whichever node took it"
    );
    assert_eq!(a.count("messages").await, 1);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_suspension_on_one_node_cuts_the_partner_off_on_the_other() {
    let Some(a) = first_node().await else { return };
    let b = a.another_node("node-b").await;
    let serbia_b = b.partner("RS-MOI");
    assert_eq!(
        serbia_b.get("/v1/inbox", &[]).await.expect("inbox").status,
        200
    );
    let poller = b.partner("RS-MOI");
    let poll = tokio::spawn(async move { poller.get("/v1/inbox?wait=30", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = a
        .client("operator-admin")
        .post_json(
            "/v1/admin/partners/RS-MOI/suspend",
            &[],
            &json!({"reason": "Key compromise suspected"}),
        )
        .await
        .expect("suspend");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let cut = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("node B closed the partner's open long poll")
        .expect("join");
    assert!(cut.is_err(), "the long poll on node B was cut off: {cut:?}");
    let refused = b
        .partner("RS-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("request");
    assert_problem(&refused, 403, "partner_suspended");
    b.stop().await;
    a.stop().await;
}

fn partner_on(node: &ServeProcess, pki: &std::path::Path, partner: &str) -> Client {
    Client::from_pki(pki, &format!("partner-{partner}"), node.addr).expect("client")
}

#[tokio::test]
async fn when_one_node_is_killed_the_other_serves_and_nothing_acknowledged_is_lost() {
    let Some(gw) = first_node().await else { return };
    let config = write_config(&gw);
    let pki = gw.pki.clone();
    let files = gw.stop().await;
    let mut one = ServeProcess::start(&config, &pki, &[("BRDO_SERVER__NODE", "node-1")]).await;
    let two = ServeProcess::start(&config, &pki, &[("BRDO_SERVER__NODE", "node-2")]).await;

    // Four clients, two per node, each submitting until told to stop; each
    // keeps the ids it got a 201 for.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let node = if i % 2 == 0 { &one } else { &two };
        let client = partner_on(node, &pki, "AL-CTD");
        let (acked, stop) = (acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u32;
            let mut failed = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client
                    .post_json("/v1/messages", &[OFFICER], &message())
                    .await
                {
                    Ok(r) if r.status == 201 => {
                        let id = r.json()["id"].as_str().expect("id").to_owned();
                        acked.lock().expect("lock").push(id);
                        sent += 1;
                    }
                    // The killed node's clients see refused connections.
                    _ => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (sent, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked.lock().expect("lock").len();
    one.signal("KILL");
    one.wait_exit(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut per_client = Vec::new();
    for t in tasks {
        per_client.push(t.await.expect("join"));
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(before_kill > 0, "load ran before the kill");
    // Node 2's clients kept getting 201s after node 1 died.
    assert!(
        per_client[1].0 > 0 && per_client[3].0 > 0,
        "node 2 kept serving: {per_client:?}"
    );
    let after_kill_on_two = partner_on(&two, &pki, "AL-CTD")
        .post_json("/v1/messages", &[OFFICER], &message())
        .await
        .expect("submit on the surviving node");
    assert_eq!(after_kill_on_two.status, 201);

    // Every acknowledged message is there, whole, read through node 2.
    let serbia = partner_on(&two, &pki, "RS-MOI");
    for id in &acked {
        let r = serbia
            .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
            .await
            .expect("read");
        assert_eq!(r.status, 200, "acknowledged message {id} is readable");
        let m: Value = r.json();
        assert_eq!(m["subject"], message()["subject"]);
    }
    // Nothing half-written: every stored message has its deliveries.
    let pool = open_db(&gw_url(&config)).await;
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(orphans, 0);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(
        stored as usize > acked.len(),
        "the acknowledged ones and the last"
    );
    pool.close().await;
    drop(two);
    let out = brdo(&[
        "audit",
        "verify",
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    drop(files);
}

/// The database URL written into a CLI config file.
fn gw_url(config: &std::path::Path) -> String {
    let text = std::fs::read_to_string(config).expect("config");
    let line = text
        .lines()
        .find(|l| l.starts_with("url = "))
        .expect("url line");
    line.trim_start_matches("url = ")
        .trim_matches('"')
        .to_owned()
}
