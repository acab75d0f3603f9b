//! Store tests, each on a real SQLite file and on a real PostgreSQL
//! database (see [`super::test_db`]).

// A test reads top to bottom as one script: test code is exempt from the length limit.
#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use sqlx::Executor;

use super::test_db::PgTestDb;
use super::*;
use crate::audit::record::{Action, Actor, Outcome, format_at};
use crate::audit::verify::ChainVerifier;
use crate::store::writes;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

/// Where a test's database lives; dropped (deleted) after the test.
pub(crate) enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres(PgTestDb),
}

impl TestDb {
    /// A fresh database, `None` when PostgreSQL tests are skipped.
    pub(crate) async fn create(kind: Kind) -> Option<TestDb> {
        Some(match kind {
            Kind::Sqlite => TestDb::Sqlite(owner_only_tempdir()),
            Kind::Postgres => TestDb::Postgres(PgTestDb::create().await?),
        })
    }

    pub(crate) fn url(&self) -> String {
        match self {
            TestDb::Sqlite(dir) => format!("sqlite://{}", dir.path().join("brdo.db").display()),
            TestDb::Postgres(db) => db.url.clone(),
        }
    }

    pub(crate) async fn open(&self, node: &str, checkpoints: CheckpointPolicy) -> Store {
        Store::open(&StoreOptions {
            url: self.url(),
            node: Some(node.into()),
            read_connections: 2,
            checkpoints,
        })
        .await
        .expect("open store")
    }
}

/// A fresh store of `kind` (with the database kept alive beside it).
pub(crate) async fn store(kind: Kind) -> Option<(Store, TestDb)> {
    let db = TestDb::create(kind).await?;
    let store = db.open("test-node", CheckpointPolicy::default()).await;
    Some((store, db))
}

/// Runs a test body once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Kind::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Kind::Postgres).await
                }
            }
        )*
    };
}

on_both_backends!(
    concurrent_writers_build_one_gapless_chain,
    audit_log_refuses_update_and_delete_but_allows_reduction,
    idempotency_key_is_taken_once,
    a_batch_writes_its_submits_before_other_writes,
    database_proofs_match_the_in_memory_tree_and_checkpoints_verify,
    two_nodes_share_one_chain_and_one_tree,
    nodes_starting_together_migrate_once,
    one_sweeper_at_a_time,
    checked_writes_see_the_family_as_it_is_at_commit,
    unknown_stored_words_read_as_corrupt,
    writes_spell_stored_text_as_before,
    an_origins_hold_and_this_gateways_own_are_lifted_apart,
);

/// On a holder, the hold an origin's notice sets and this gateway's own
/// hold are two holds (SPEC §11): lifting either leaves the message held
/// while the other stands, and `held` is what every erasure checks.
async fn an_origins_hold_and_this_gateways_own_are_lifted_apart(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let d = |r: &str| draft(Action::Alter, r);
    store
        .write(submit_op("m1", None), d("m1"))
        .await
        .expect("m1");
    let hold = |held: bool, by_origin: bool| {
        WriteOp::from(writes::SetHold {
            root_id: "m1".into(),
            held,
            reason: held.then(|| if by_origin { "origin" } else { "local" }.into()),
            notice: None,
            by_origin,
        })
    };
    let held = || async { store.message("m1").await.expect("read").expect("m1").held };
    for (first, second) in [(true, false), (false, true)] {
        store.write(hold(true, first), d("a")).await.expect("hold");
        store.write(hold(true, second), d("b")).await.expect("hold");
        store.write(hold(false, first), d("c")).await.expect("lift");
        assert!(
            held().await,
            "the other hold stands (first by origin: {first})"
        );
        store
            .write(hold(false, second), d("d"))
            .await
            .expect("lift");
        assert!(!held().await, "both lifted (first by origin: {first})");
    }
}

/// The text columns the writes fill are spelt as before the writes took
/// instants in unix ms and words as enums (`format_at`, the literal status
/// and scope words, flags as 0/1), so old rows and new rows read alike on
/// both backends.
async fn writes_spell_stored_text_as_before(kind: Kind) {
    use sqlx::Row;
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    // 2026-11-21T10:00:00.007Z
    let at_ms = 1_795_255_200_007;
    let at = "2026-11-21T10:00:00.007Z";
    let ops: Vec<WriteOp> = vec![
        submit_op("m1", None),
        writes::MarkDelivered {
            message_id: "m1".into(),
            recipient: "RS-MOI".into(),
            at_ms,
            receipt: None,
        }
        .into(),
        writes::Grant {
            root_id: "m1".into(),
            partner: "ME-MOI".into(),
            scope: PermissionScope::JudicialUse,
            at_ms,
            officer: "o".into(),
            notice: None,
        }
        .into(),
        writes::JudicialUse {
            message_id: "m1".into(),
            partner: "RS-MOI".into(),
            at_ms,
            reference: None,
        }
        .into(),
        writes::SetPartnerState {
            partner: "ME-MOI".into(),
            suspended: true,
            at_ms,
        }
        .into(),
        writes::SetHold {
            by_origin: false,
            root_id: "m1".into(),
            held: true,
            reason: Some("case".into()),
            notice: None,
        }
        .into(),
    ];
    for (i, op) in ops.into_iter().enumerate() {
        store
            .write(op, draft(Action::Alter, &format!("w{i}")))
            .await
            .expect("write");
    }
    let row = |sql: &'static str| sqlx::query(sql).fetch_one(store.pool());
    let d = row("SELECT status, updated_at FROM deliveries WHERE message_id = 'm1'")
        .await
        .expect("row");
    assert_eq!(d.get::<String, _>(0), "delivered");
    assert_eq!(d.get::<String, _>(1), at);
    let p = row("SELECT scope, granted_at FROM permissions WHERE root_id = 'm1'")
        .await
        .expect("row");
    assert_eq!(p.get::<String, _>(0), "judicial_use");
    assert_eq!(p.get::<String, _>(1), at);
    let j = row("SELECT recorded_at FROM judicial_uses WHERE message_id = 'm1'")
        .await
        .expect("row");
    assert_eq!(j.get::<String, _>(0), at);
    let s = row("SELECT suspended, updated_at FROM partner_state WHERE partner = 'ME-MOI'")
        .await
        .expect("row");
    assert_eq!(s.get::<i64, _>(0), 1);
    assert_eq!(s.get::<String, _>(1), at);
    let m = row("SELECT held, hold_reason FROM messages WHERE id = 'm1'")
        .await
        .expect("row");
    assert_eq!(m.get::<i64, _>(0), 1);
    assert_eq!(m.get::<String, _>(1), "case");
    let ack = WriteOp::from(writes::Acknowledge {
        message_id: "m1".into(),
        recipient: "RS-MOI".into(),
        at_ms: at_ms + 1,
        receipt: None,
    });
    let (out, _) = store
        .write(ack, draft(Action::Acknowledge, "ack"))
        .await
        .expect("ack");
    let WriteOutput::Delivery(answered) = out else {
        panic!("{out:?}");
    };
    let d = row("SELECT status, updated_at FROM deliveries WHERE message_id = 'm1'")
        .await
        .expect("row");
    assert_eq!(d.get::<String, _>(0), "acknowledged");
    assert_eq!(d.get::<String, _>(1), "2026-11-21T10:00:00.008Z");
    assert_eq!(answered.updated_at, "2026-11-21T10:00:00.008Z");
}

/// A status or scope outside its closed set (a hand-edited database)
/// reads as corrupt data, from the read pool and inside the writer, and
/// the refused write appends nothing.
async fn unknown_stored_words_read_as_corrupt(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    store
        .write(submit_op("m1", None), draft(Action::Collect, "m1"))
        .await
        .expect("m1");
    store
        .pool()
        .execute("UPDATE deliveries SET status = 'lost' WHERE message_id = 'm1'")
        .await
        .expect("edit status");
    store
        .pool()
        .execute(
            "INSERT INTO permissions (root_id, partner, scope, granted_at, officer) \
             VALUES ('m1', 'ME-MOI', 'sharing', '2026-11-21T10:00:00.000Z', 'o')",
        )
        .await
        .expect("edit scope");
    let r = store.deliveries("m1").await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    let r = store.permissions("m1").await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    let ack = WriteOp::from(writes::Acknowledge {
        message_id: "m1".into(),
        recipient: "RS-MOI".into(),
        at_ms: 0,
        receipt: None,
    });
    let r = store.write(ack, draft(Action::Acknowledge, "ack")).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    assert_eq!(verify_all(&store).await, 1);
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

async fn concurrent_writers_build_one_gapless_chain(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let store = Arc::new(store);
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

async fn audit_log_refuses_update_and_delete_but_allows_reduction(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
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

async fn idempotency_key_is_taken_once(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let submit = |id: &str| submit_op(id, Some("key-1"));
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
        checkpoints: CheckpointPolicy::default(),
    })
    .await
    .expect_err("refused");
    assert!(e.to_string().contains("mysql://x"));
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_sync() {
    use sqlx::Row;
    let Some((store, _db)) = store(Kind::Sqlite).await else {
        return;
    };
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

/// A one-recipient submit of message `id`, with an idempotency key if given.
fn submit_op(id: &str, key: Option<&str>) -> WriteOp {
    WriteOp::from(writes::Submit {
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
            held: false,
            erased_at_ms: None,
            content: Some(vec![1, 2, 3]),
            collect_seq: 0,
            root_id: id.into(),
            hold_reason: None,
        }),
        deliveries: vec![NewDelivery {
            recipient: "RS-MOI".into(),
            via: None,
        }],
        outbox: Vec::new(),
        data_key: crate::crypto::Sealed {
            master_key_id: "k".into(),
            wrapped_key: vec![9; 60],
        },
        attachments: Vec::new(),
        idempotency: key.map(|k| IdempotencyKey {
            partner: "AL-CTD".into(),
            key: k.into(),
            request_hash: "h".into(),
            response: "{}".into(),
        }),
        signatures: Vec::new(),
    })
}

/// A forward `id` of the family `root`.
fn forward_op(id: &str, root: &str) -> WriteOp {
    let mut op = submit_op(id, None);
    if let WriteOp::Submit(s) = &mut op {
        s.message.forwarded_from = Some(root.into());
        s.message.root_id = root.into();
    }
    op
}

fn checked(expected: Expected, op: WriteOp) -> WriteOp {
    op.checked(expected)
}

/// A lifecycle write is refused, with nothing written, when what it was
/// decided on (label, hold, members, permissions, not erased) changed
/// before its commit; a family erasure takes the family as it is then.
async fn checked_writes_see_the_family_as_it_is_at_commit(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let d = |r: &str| draft(Action::Alter, r);
    store
        .write(submit_op("m1", None), d("m1"))
        .await
        .expect("m1");
    let raised_label = crate::domain::Label::from_stored(
        &serde_json::json!({"classification": "EU_CONFIDENTIAL"}),
    )
    .expect("label");
    let raised_text = json_columns::label_text(&raised_label);
    let raised = raised_text.as_str();
    let raise = |family: Vec<String>| {
        checked(
            Expected::live("m1", "m1")
                .with_label("{}")
                .with_family(family),
            WriteOp::from(writes::RaiseLabel {
                root_id: "m1".into(),
                label: raised_label.clone(),
                notice: None,
            }),
        )
    };
    store
        .write(raise(vec!["m1".into()]), d("raise"))
        .await
        .expect("raise");
    // A forward decided on the label before the raise.
    let stale = Expected::live("m1", "m1").with_label("{}").with_held(false);
    let r = store
        .write(checked(stale, forward_op("f1", "m1")), d("f1"))
        .await;
    assert!(matches!(r, Err(StoreError::FamilyChanged)), "{r:?}");
    assert!(store.message("f1").await.expect("read").is_none());
    let current = Expected::live("m1", "m1")
        .with_label(raised)
        .with_held(false);
    store
        .write(checked(current.clone(), forward_op("f2", "m1")), d("f2"))
        .await
        .expect("a forward decided on the current state");
    // A raise decided before f2 existed.
    let r = store.write(raise(vec!["m1".into()]), d("raise2")).await;
    assert!(matches!(r, Err(StoreError::FamilyChanged)), "{r:?}");
    // A hold set meanwhile.
    let hold = |held: bool| {
        WriteOp::from(writes::SetHold {
            by_origin: false,
            root_id: "m1".into(),
            held,
            reason: held.then(|| "case".into()),
            notice: None,
        })
    };
    store.write(hold(true), d("hold")).await.expect("hold");
    let r = store
        .write(checked(current.clone(), forward_op("f3", "m1")), d("f3"))
        .await;
    assert!(matches!(r, Err(StoreError::FamilyChanged)), "{r:?}");
    store.write(hold(false), d("lift")).await.expect("lift");
    // A permission relied on must be granted at commit.
    let needs = current.clone().with_permissions(vec![Permission {
        partner: "ME-MOI".into(),
        scope: PermissionScope::Forward,
    }]);
    let r = store
        .write(checked(needs.clone(), WriteOp::AuditOnly), d("p"))
        .await;
    assert!(matches!(r, Err(StoreError::FamilyChanged)), "{r:?}");
    let grant = WriteOp::from(writes::Grant {
        root_id: "m1".into(),
        partner: "ME-MOI".into(),
        scope: PermissionScope::Forward,
        // 2026-11-21T10:00:00.000Z
        at_ms: 1_795_255_200_000,
        officer: "o".into(),
        notice: None,
    });
    store.write(grant, d("grant")).await.expect("grant");
    store
        .write(checked(needs, WriteOp::AuditOnly), d("p2"))
        .await
        .expect("granted now");
    // An erasure decided when only m1 existed takes f2 too.
    let erase = WriteOp::from(writes::Erase {
        message_ids: vec!["m1".into()],
        family_of: Some("m1".into()),
        at_ms: 5,
        notice: None,
        receipts: None,
    });
    let (out, _) = store.write(erase, d("erase")).await.expect("erase");
    let WriteOutput::Erased { mut messages, .. } = out else {
        panic!("{out:?}");
    };
    messages.sort();
    assert_eq!(messages, ["f2", "m1"]);
    for id in ["m1", "f2"] {
        let m = store.message(id).await.expect("read").expect("tombstone");
        assert!(m.erased_at_ms.is_some() && m.content.is_none(), "{id}");
        assert!(store.data_key(id).await.expect("read").is_none(), "{id}");
    }
    let r = store
        .write(
            checked(Expected::live("f2", "m1"), WriteOp::AuditOnly),
            d("read"),
        )
        .await;
    assert!(matches!(r, Err(StoreError::AlreadyErased)), "{r:?}");
    // Refused writes appended nothing: m1, raise, f2, hold, lift, grant, p2, erase.
    assert_eq!(verify_all(&store).await, 8);
}

/// Submits wait in the batch for one multi-row INSERT per table; any other
/// write in the same batch must still find them written (here: a hold on a
/// message submitted just before it, and a message after the hold).
async fn a_batch_writes_its_submits_before_other_writes(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let hold = WriteOp::from(writes::SetHold {
        by_origin: false,
        root_id: "m1".into(),
        held: true,
        reason: Some("case".into()),
        notice: None,
    });
    let (a, b, c) = tokio::join!(
        store.write(submit_op("m1", None), draft(Action::Collect, "a")),
        store.write(hold, draft(Action::Collect, "b")),
        store.write(submit_op("m2", Some("key-2")), draft(Action::Collect, "c")),
    );
    for r in [a, b, c] {
        r.expect("write");
    }
    let m1 = store.message("m1").await.expect("read").expect("m1");
    assert!(m1.held, "the hold saw the message of its own batch");
    assert_eq!(m1.collect_seq, 1);
    let m2 = store.message("m2").await.expect("read").expect("m2");
    assert_eq!(m2.collect_seq, 3);
    assert_eq!(store.deliveries("m2").await.expect("read").len(), 1);
    let key = store.idempotency("AL-CTD", "key-2").await.expect("read");
    assert_eq!(key.map(|k| k.message_id).as_deref(), Some("m2"));
    assert_eq!(store.inbox("RS-MOI", 0, 10).await.expect("inbox").len(), 2);
    assert_eq!(verify_all(&store).await, 3);
}

async fn database_proofs_match_the_in_memory_tree_and_checkpoints_verify(kind: Kind) {
    use crate::audit::merkle::{self, SliceSource};
    use crate::crypto::jose::{CheckpointSigner, CheckpointVerifier};

    let Some(db) = TestDb::create(kind).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    crate::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("pki");
    let signer = CheckpointSigner::from_pem_file(&pki.join("audit-signing.key")).expect("signer");
    let store = Arc::new(
        db.open(
            "test-node",
            CheckpointPolicy {
                signer: Some(Arc::new(signer)),
                every: 25,
                interval: std::time::Duration::from_secs(3600),
            },
        )
        .await,
    );
    let mut tasks = Vec::new();
    for i in 0..300 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.append_audit(draft(Action::List, &format!("r{i}"))).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("append");
    }
    let page = store.audit_page(0, 1000).await.expect("page");
    let leaves: Vec<merkle::Hash> = page
        .iter()
        .map(|(r, _)| merkle::leaf_hash(&r.hash_bytes().expect("hash")))
        .collect();
    for size in [1u64, 2, 3, 15, 16, 17, 31, 255, 256, 257, 299, 300] {
        let want = merkle::root(&mut SliceSource(&leaves), size).expect("root");
        assert_eq!(
            store.range_root(0, size).await.expect("root"),
            want,
            "root at {size}"
        );
        for index in [0, size / 3, size / 2, size - 1] {
            let got = store.inclusion_proof(index, size).await.expect("proof");
            let expected =
                merkle::inclusion_proof(&mut SliceSource(&leaves), index, size).expect("proof");
            assert_eq!(got, expected, "inclusion {index} of {size}");
            merkle::verify_inclusion(&leaves[index as usize], index, size, &got, &want)
                .expect("verifies");
        }
        for old in [1, size / 2, size - 1, size] {
            if old == 0 {
                continue;
            }
            let got = store.consistency_proof(old, size).await.expect("proof");
            let expected =
                merkle::consistency_proof(&mut SliceSource(&leaves), old, size).expect("proof");
            assert_eq!(got, expected, "consistency {old}..{size}");
            let old_root = merkle::root(&mut SliceSource(&leaves), old).expect("root");
            merkle::verify_consistency(old, size, &old_root, &want, &got).expect("verifies");
        }
    }
    assert!(
        store.inclusion_proof(300, 300).await.is_err(),
        "index beyond the tree"
    );

    let verifier =
        CheckpointVerifier::from_public_pem_file(&pki.join("audit-signing.pub")).expect("verifier");
    let checkpoints = store.checkpoints().await.expect("checkpoints");
    // Signed at the end of the first write batch that brings 25 or more new
    // records (group commit batches up to 256 jobs).
    assert!(!checkpoints.is_empty());
    assert!(300 - checkpoints.last().expect("one").tree_size < 25 + 256);
    for cp in &checkpoints {
        let signed = verifier.verify(&cp.jws).expect("signature");
        assert_eq!(
            (signed.tree_size, &signed.root_hash),
            (cp.tree_size, &cp.root_hash)
        );
        let want = merkle::root(&mut SliceSource(&leaves), cp.tree_size).expect("root");
        assert_eq!(cp.root_hash, hex::encode(want));
    }
    assert!(
        checkpoints
            .windows(2)
            .all(|w| w[1].tree_size - w[0].tree_size >= 25)
    );
}

/// Two stores on one database stand for two gateway nodes: their writers
/// interleave batches, yet the chain is one gapless sequence, each record
/// names its node, and the Merkle tree and checkpoints cover all of it.
async fn two_nodes_share_one_chain_and_one_tree(kind: Kind) {
    use crate::audit::merkle::{self, SliceSource};
    use crate::crypto::jose::CheckpointSigner;

    let Some(db) = TestDb::create(kind).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    crate::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("pki");
    let policy = || CheckpointPolicy {
        signer: Some(Arc::new(
            CheckpointSigner::from_pem_file(&pki.join("audit-signing.key")).expect("signer"),
        )),
        every: 20,
        interval: std::time::Duration::from_secs(3600),
    };
    let a = Arc::new(db.open("node-a", policy()).await);
    let b = Arc::new(db.open("node-b", policy()).await);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.append_audit(draft(Action::List, &format!("r{i}"))).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("append");
    }
    assert_eq!(verify_all(&a).await, 300);
    let page = b.audit_page(0, 1000).await.expect("page");
    let nodes: std::collections::BTreeMap<String, usize> =
        page.iter().fold(Default::default(), |mut m, (r, _)| {
            *m.entry(r.draft.node.clone().unwrap_or_default())
                .or_default() += 1;
            m
        });
    assert_eq!(nodes.get("node-a"), Some(&150));
    assert_eq!(nodes.get("node-b"), Some(&150));
    let leaves: Vec<merkle::Hash> = page
        .iter()
        .map(|(r, _)| merkle::leaf_hash(&r.hash_bytes().expect("hash")))
        .collect();
    let want = merkle::root(&mut SliceSource(&leaves), 300).expect("root");
    assert_eq!(a.range_root(0, 300).await.expect("root"), want);
    assert_eq!(b.range_root(0, 300).await.expect("root"), want);
    let checkpoints = a.checkpoints().await.expect("checkpoints");
    assert!(!checkpoints.is_empty());
    for w in checkpoints.windows(2) {
        assert!(w[0].tree_size < w[1].tree_size, "one strict sequence");
    }
    for cp in &checkpoints {
        let root = merkle::root(&mut SliceSource(&leaves), cp.tree_size).expect("root");
        assert_eq!(cp.root_hash, hex::encode(root));
    }
}

/// Nodes started at the same moment on an empty database: the migrator's
/// lock makes one of them create the schema and the others find it.
/// (SQLite serves one node; its migrator takes no lock.)
async fn nodes_starting_together_migrate_once(kind: Kind) {
    if matches!(kind, Kind::Sqlite) {
        return;
    }
    let Some(db) = TestDb::create(kind).await else {
        return;
    };
    let db = Arc::new(db);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let s = db
                .open(&format!("node-{i}"), CheckpointPolicy::default())
                .await;
            s.append_audit(draft(Action::List, &format!("r{i}")))
                .await
                .expect("append");
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let s = db.open("check", CheckpointPolicy::default()).await;
    assert_eq!(verify_all(&s).await, 4);
}

/// Only one node sweeps retention at a time; a node that goes away
/// (its connection closes) does not keep the others from sweeping.
async fn one_sweeper_at_a_time(kind: Kind) {
    let Some((a, db)) = store(kind).await else {
        return;
    };
    let b = db.open("node-b", CheckpointPolicy::default()).await;
    let held = a.try_sweep_lock().await.expect("lock").expect("granted");
    let second = b.try_sweep_lock().await.expect("lock");
    match kind {
        // One node: nobody else to exclude.
        Kind::Sqlite => assert!(second.is_some()),
        Kind::Postgres => {
            assert!(second.is_none(), "node B may not sweep while A does");
            held.release().await;
            let again = b.try_sweep_lock().await.expect("lock").expect("B's turn");
            // Dropped without release, as when a node dies: the server
            // frees the lock once the connection is closed.
            drop(again);
            let mut granted = None;
            for _ in 0..50 {
                granted = a.try_sweep_lock().await.expect("lock");
                if granted.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(granted.is_some(), "a dead holder's lock is released");
        }
    }
}

/// A temporary directory only its owner may open, as the store requires
/// of a database's directory.
pub(crate) fn owner_only_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    owner_only(dir.path(), 0o700);
    dir
}

fn owner_only(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A store on a SQLite file at `path`, for tests that look at the file
/// (its directory and, if it exists already, the file made owner-only
/// first, as the store requires).
async fn sqlite_store_at(path: &std::path::Path) -> Store {
    if let Some(dir) = path.parent() {
        owner_only(dir, 0o700);
    }
    if path.exists() {
        owner_only(path, 0o600);
    }
    Store::open(&StoreOptions {
        url: format!("sqlite://{}", path.display()),
        node: None,
        read_connections: 2,
        checkpoints: CheckpointPolicy::default(),
    })
    .await
    .expect("open")
}

/// The inbox query keeps one plan whatever limit it is given (a bare bound
/// `LIMIT` made SQLite re-prepare it on every execution).
#[tokio::test]
async fn the_inbox_query_is_not_prepared_again_for_each_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("inbox.db");
    drop(sqlite_store_at(&path).await);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let mut stmt = conn.prepare(super::reads::INBOX_SQL).expect("prepare");
    for limit in [1i64, 10, 100, 7] {
        let rows = stmt
            .query_map(rusqlite::params!["RS-MOI", 0i64, limit], |_| Ok(()))
            .expect("query")
            .count();
        assert_eq!(rows, 0);
    }
    assert_eq!(
        stmt.get_status(rusqlite::StatementStatus::RePrepare),
        0,
        "a new limit must not re-prepare the statement"
    );
}

/// Frames in the WAL, as a passive checkpoint reports them.
async fn wal_frames(store: &Store) -> i64 {
    use sqlx::Row;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(store.pool())
        .await
        .expect("checkpoint");
    row.try_get::<i64, _>(1).expect("log frames")
}

/// Once the log holds more than the limit, the writer catches the
/// checkpoint up between batches and the log starts afresh; a log that
/// did is not treated as long again, however large the file it was
/// written over. (A quiet test cannot show the growth itself, which needs
/// a writer that never pauses: here a reader's snapshot keeps the log from
/// being reset. BENCHMARKS.md has the file's size under load.)
#[tokio::test]
async fn a_large_wal_is_restarted() {
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("wal.db");
    let store = sqlite_store_at(&db).await;
    let write = |s: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(WriteOp::AuditOnly, draft(Action::List, s))
                .await
                .expect("write");
        }
    };
    write("first").await;

    // A reader on an older snapshot keeps the log, and writes go on.
    let reader = rusqlite::Connection::open(&db).expect("reader");
    reader.execute_batch("BEGIN").expect("begin");
    let seen: i64 = reader
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .expect("read");
    assert_eq!(seen, 1);
    for _ in 0..200 {
        write("beside the reader").await;
    }
    let before = wal_frames(&store).await;
    assert!(before > 200, "one frame or more per commit: {before}");
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(store.pool())
        .await
        .expect("page size");
    let limit = u64::try_from(before * (page + 24) / 2).expect("limit");
    let flag = AtomicBool::new(false);
    assert!(
        super::checkpoint_once(store.pool(), limit, &flag)
            .await
            .expect("checkpoint")
    );
    assert!(flag.load(std::sync::atomic::Ordering::Relaxed));
    write("reader").await;
    write("reader").await;
    assert!(wal_frames(&store).await > before, "kept for the reader");
    reader.execute_batch("COMMIT").expect("end");
    drop(reader);

    // Once a checkpoint has caught up (here the test's own; under load
    // the writer's), the next batch writes the log from its start.
    let wal = super::backend::wal_file(&db);
    let size = std::fs::metadata(&wal).expect("wal").len();
    wal_frames(&store).await;
    write("after").await;
    write("after").await;
    let after = wal_frames(&store).await;
    assert!(after < 20, "restarted: {after} frames (was {before})");
    assert_eq!(verify_all(&store).await, 205);

    // The file keeps its size, but the log it holds is short now.
    assert!(std::fs::metadata(&wal).expect("wal").len() >= size);
    assert!(
        !super::checkpoint_once(store.pool(), limit, &flag)
            .await
            .expect("checkpoint"),
        "long again although the log holds {} frames",
        wal_frames(&store).await
    );
    assert!(!flag.load(std::sync::atomic::Ordering::Relaxed));
}

/// A database made before migration 0005 keeps every row when the store
/// opens it: the tables that moved to WITHOUT ROWID hold what they held,
/// and a forwarding family is still found, now by index.
#[tokio::test]
async fn the_fewer_pages_migration_keeps_every_row() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("old.db");

    // The schema as migrations 0001–0004 left it, through sqlx's migrator
    // so that the store sees them as applied.
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).expect("mkdir");
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&all).expect("migrations") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.as_str() < "0005" {
            std::fs::copy(entry.path(), old.join(&name)).expect("copy");
        }
    }
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .expect("pool");
    sqlx::migrate::Migrator::new(old)
        .await
        .expect("migrator")
        .run(&pool)
        .await
        .expect("old migrations");
    let message = |id: &str, root: &str| {
        format!(
            "INSERT INTO messages (id, sender, originator, officer, classification, label, \
             evaluation, purpose, personal_data, content_type, attachments, accepted_at, \
             accepted_ms, retain_until_ms, review_on, retention_basis, content, collect_seq, root_id) \
             VALUES ('{id}', 'RS-MUP', 'RS-MUP', 'o', 0, '{{}}', '{{}}', 'p', '{{}}', 'text/plain', \
             '[]', '2026-01-01T00:00:00Z', 1, 2, '2026-02-01', '{{}}', x'00', 1, '{root}')"
        )
    };
    for sql in [
        message("m1", "m1"),
        message("m2", "m1"),
        message("m3", "m3"),
        "INSERT INTO deliveries VALUES ('m1', 'ME-UP', 1, 'queued', 't'), \
         ('m2', 'AL-ASP', 2, 'delivered', 't'), ('m3', 'ME-UP', 3, 'queued', 't')"
            .to_owned(),
        "INSERT INTO data_keys VALUES ('m1', 'k1', x'01'), ('m2', 'k1', x'02'), ('m3', 'k2', x'03')"
            .to_owned(),
        "INSERT INTO audit_parties VALUES ('RS-MUP', 1), ('ME-UP', 1), ('RS-MUP', 2)".to_owned(),
        "INSERT INTO audit_messages VALUES ('m1', 1), ('m2', 2)".to_owned(),
        "INSERT INTO merkle_nodes VALUES (4, 0, x'aa'), (4, 1, x'bb')".to_owned(),
    ] {
        pool.execute(sqlx::AssertSqlSafe(sql)).await.expect("old rows");
    }
    pool.close().await;

    let store = sqlite_store_at(&path).await;
    let family: Vec<String> = store
        .family("m1")
        .await
        .expect("family")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(family, ["m1", "m2"]);
    assert_eq!(
        store.family_recipients("m1").await.expect("recipients"),
        ["AL-ASP", "ME-UP"]
    );

    let conn = rusqlite::Connection::open(&path).expect("open");
    let rows = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).expect("prepare");
        stmt.query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    };
    assert_eq!(
        rows("SELECT message_id || recipient || seq || status FROM deliveries ORDER BY seq"),
        ["m1ME-UP1queued", "m2AL-ASP2delivered", "m3ME-UP3queued"]
    );
    assert_eq!(
        rows("SELECT recipient FROM deliveries WHERE recipient = 'ME-UP' ORDER BY seq"),
        ["ME-UP", "ME-UP"]
    );
    assert_eq!(
        rows("SELECT owner || master_key_id || hex(wrapped_key) FROM data_keys ORDER BY owner"),
        ["m1k101", "m2k102", "m3k203"]
    );
    assert_eq!(
        rows("SELECT partner || seq FROM audit_parties ORDER BY seq, partner"),
        ["ME-UP1", "RS-MUP1", "RS-MUP2"]
    );
    assert_eq!(
        rows("SELECT message_id || seq FROM audit_messages ORDER BY seq"),
        ["m11", "m22"]
    );
    assert_eq!(
        rows("SELECT level || idx || hex(hash) FROM merkle_nodes ORDER BY idx"),
        ["40AA", "41BB"]
    );
    for table in [
        "data_keys",
        "deliveries",
        "audit_parties",
        "audit_messages",
        "merkle_nodes",
    ] {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .expect("schema");
        assert!(sql.ends_with("WITHOUT ROWID"), "{table}: {sql}");
    }
    let mut explain = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE {}",
            super::family::IN_FAMILY.replace("$1", "'m1'")
        ))
        .expect("explain");
    let plan: Vec<String> = explain
        .query_map([], |r| r.get::<_, String>("detail"))
        .expect("plan")
        .map(|r| r.expect("step"))
        .collect();
    assert!(
        plan.iter().all(|step| !step.starts_with("SCAN")),
        "a family is found by index: {plan:?}"
    );
}
