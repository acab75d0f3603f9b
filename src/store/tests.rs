//! Store tests on a real SQLite file.

use std::sync::Arc;

use sqlx::Executor;

use super::*;
use crate::audit::record::{Action, Actor, Outcome, format_at};
use crate::audit::verify::ChainVerifier;

pub(crate) async fn sqlite_store(dir: &std::path::Path) -> Store {
    Store::open(&StoreOptions {
        url: format!("sqlite://{}", dir.join("brdo.db").display()),
        node: Some("test-node".into()),
        read_connections: 2,
    })
    .await
    .expect("open store")
}

pub(crate) fn draft(action: Action, request: &str) -> RecordDraft {
    RecordDraft {
        at: format_at(time::OffsetDateTime::now_utc()),
        actor: Actor {
            role: "partner".into(),
            id: Some("AL-CTD".into()),
            officer: Some("insp.hoxha".into()),
            cert_serial: Some("0a".into()),
        },
        action,
        message_id: None,
        counterparts: vec!["RS-MOI".into()],
        outcome: Outcome::Allowed,
        code: None,
        justification: None,
        request_id: Some(request.into()),
        node: None,
        details: None,
    }
}

async fn verify_all(store: &Store) -> u64 {
    let mut v = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.audit_page(after, 100).await.expect("page");
        let Some((last, _)) = page.last() else { break };
        after = last.seq;
        for (rec, reduced) in &page {
            v.push(rec, *reduced).expect("chain intact");
        }
    }
    v.count()
}

#[tokio::test]
async fn concurrent_writers_build_one_gapless_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(sqlite_store(dir.path()).await);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.append_audit(draft(Action::List, &format!("r{i}"))).await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("join").expect("append").seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    assert_eq!(verify_all(&store).await, 200);
    assert_eq!(store.audit_size().await.expect("size"), 200);
    let rec = store.audit_record(7).await.expect("read").expect("exists");
    assert_eq!(rec.draft.node.as_deref(), Some("test-node"));
    // Stamped in chain order.
    let page = store.audit_page(0, 500).await.expect("page");
    assert!(page.windows(2).all(|w| w[0].0.draft.at <= w[1].0.draft.at));
}

#[tokio::test]
async fn audit_log_refuses_update_and_delete_but_allows_reduction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(dir.path()).await;
    for i in 0..3 {
        store
            .append_audit(draft(Action::Consult, &format!("r{i}")))
            .await
            .expect("append");
    }
    let pool = store.pool();
    let e = pool
        .execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 2")
        .await
        .expect_err("update refused");
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = pool
        .execute("DELETE FROM audit_log WHERE seq = 3")
        .await
        .expect_err("delete refused");
    assert!(e.to_string().contains("append-only"), "{e}");
    // Changing the hash while reducing is refused too.
    assert!(
        pool.execute(
            "UPDATE audit_log SET reduced = 1, hash = 'x', at = NULL, actor_role = NULL, actor_id = NULL, \
             actor_officer = NULL, actor_cert_serial = NULL, action = NULL, message_id = NULL, counterparts = NULL, \
             outcome = NULL, code = NULL, justification = NULL, request_id = NULL, node = NULL, details = NULL WHERE seq = 1"
        )
        .await
        .is_err()
    );
    pool.execute(
        "UPDATE audit_log SET reduced = 1, at = NULL, actor_role = NULL, actor_id = NULL, actor_officer = NULL, \
         actor_cert_serial = NULL, action = NULL, message_id = NULL, counterparts = NULL, outcome = NULL, code = NULL, \
         justification = NULL, request_id = NULL, node = NULL, details = NULL WHERE seq = 1",
    )
    .await
    .expect("reduction allowed");
    assert_eq!(verify_all(&store).await, 3);
}

#[tokio::test]
async fn idempotency_key_is_taken_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(dir.path()).await;
    let submit = |id: &str| WriteOp::Submit {
        message: Box::new(MessageRow {
            id: id.into(),
            sender: "AL-CTD".into(),
            originator: "AL-CTD".into(),
            forwarded_from: None,
            officer: "o".into(),
            classification: 1,
            label: "{}".into(),
            evaluation: "{}".into(),
            purpose: "prevention".into(),
            personal_data: "{}".into(),
            case_ref: None,
            in_reply_to: None,
            content_type: "text/plain".into(),
            retention_days: None,
            attachments: "[]".into(),
            accepted_at: "2026-11-21T10:00:00.000Z".into(),
            accepted_ms: 0,
            retain_until_ms: 1,
            review_on: "2029-11-21".into(),
            retention_basis: "{}".into(),
            held: 0,
            erased_at_ms: None,
            content: Some(vec![1, 2, 3]),
            collect_seq: 0,
            root_id: id.into(),
            hold_reason: None,
        }),
        deliveries: vec![NewDelivery {
            recipient: "RS-MOI".into(),
        }],
        data_key: ("k".into(), vec![9; 60]),
        attachments: Vec::new(),
        idempotency: Some(("AL-CTD".into(), "key-1".into(), "h".into(), "{}".into())),
    };
    let (first, second) = tokio::join!(
        store.write(submit("m1"), draft(Action::Collect, "a")),
        store.write(submit("m2"), draft(Action::Collect, "b"))
    );
    let oks = [first.is_ok(), second.is_ok()];
    assert_eq!(oks.iter().filter(|ok| **ok).count(), 1, "exactly one wins");
    let loser = if first.is_ok() { second } else { first };
    assert!(matches!(loser, Err(StoreError::IdempotencyRace)));
    // The loser left nothing behind: one message, one audit record.
    assert_eq!(store.audit_size().await.expect("size"), 1);
    let winner = store
        .idempotency("AL-CTD", "key-1")
        .await
        .expect("read")
        .expect("row");
    assert!(
        store
            .message(&winner.message_id)
            .await
            .expect("read")
            .is_some()
    );
    let inbox = store.inbox("RS-MOI", 0, 10).await.expect("inbox");
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        inbox[0].seq, 1,
        "the delivery cursor is the collect record's seq"
    );
}

#[tokio::test]
async fn unsupported_urls_are_named() {
    let e = Store::open(&StoreOptions {
        url: "mysql://x".into(),
        node: None,
        read_connections: 1,
    })
    .await
    .expect_err("refused");
    assert!(e.to_string().contains("mysql://x"));
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_sync() {
    use sqlx::Row;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(dir.path()).await;
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .expect("pragma")
        .try_get(0)
        .expect("text");
    assert_eq!(mode, "wal");
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .expect("pragma")
        .try_get(0)
        .expect("int");
    assert_eq!(sync, 2, "FULL: a commit is on disk before the 201");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .expect("pragma")
        .try_get(0)
        .expect("int");
    assert_eq!(fk, 1);
}
