//! Tests of the federation's store writes (SPEC §11) — `Receive`,
//! `RelayOutcome`, `RecordReceipts` — each on a real SQLite file and on a
//! real PostgreSQL database, in the style of `tests.rs`: exactly once on
//! both sides, statuses that never move backward, and nothing written by
//! a write that is refused.

#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use super::outbox::{ISSUED, RECEIVED};
use super::tests::{Kind, draft, store};
use super::*;
use crate::audit::record::Action;
use crate::crypto::jose::{JwsKey, JwsKeys};
use crate::domain::PartnerId;
use crate::federation::{Receipt, ReceiptKind, ReceiptViolation};
use crate::store::writes;

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
    receive_stores_a_relayed_message_once_with_signed_receipts,
    receive_of_all_refused_stores_receipts_only,
    relay_outcome_records_once_and_removes_its_row,
    record_receipts_move_statuses_forward_only,
    receives_in_one_batch_share_a_signature_and_a_replay_loses,
    claims_through_the_writer_take_each_row_once,
    receives_of_one_batch_share_no_root_across_peers,
    a_batch_that_fails_after_a_receive_keeps_none_of_its_receipts,
    claims_from_two_nodes_and_many_loops_take_each_row_once,
);

const ID: &str = "0190f000-0000-7000-8000-0000000000a1";

/// An envelope key pair from a fresh PKI (kept alive by the directory).
fn envelope() -> (tempfile::TempDir, Arc<JwsKey>, JwsKeys) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    crate::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("init");
    let key = JwsKey::from_pem_file(&pki.join(crate::pki::ENVELOPE_KEY_FILE)).expect("key");
    let public =
        JwsKeys::from_public_pem_file(&pki.join(crate::pki::ENVELOPE_PUB_FILE)).expect("pub");
    (dir, Arc::new(key), public)
}

/// Message `id` to `recipients`, each behind `via` when given.
fn submit(
    id: &str,
    recipients: &[&str],
    via: Option<&str>,
    outbox: Option<&str>,
) -> writes::Submit {
    writes::Submit {
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
        deliveries: recipients
            .iter()
            .map(|r| NewDelivery {
                recipient: (*r).into(),
                via: via.map(str::to_owned),
            })
            .collect(),
        outbox: outbox
            .map(|row| OutboxEntry {
                id: row.into(),
                peer: "RS-NCB".into(),
                kind: OutboxKind::Message,
                message_id: id.into(),
                body: None,
                created_ms: 0,
            })
            .into_iter()
            .collect(),
        data_key: crate::crypto::Sealed {
            master_key_id: "k".into(),
            wrapped_key: vec![9; 60],
        },
        attachments: Vec::new(),
        idempotency: None,
        signatures: Vec::new(),
    }
}

fn pid(s: &str) -> PartnerId {
    PartnerId::parse(s).expect("partner id")
}

fn receive(id: &str, signer: &Arc<JwsKey>, accepted: Option<writes::Submit>) -> writes::Receive {
    writes::Receive {
        peer: pid("AL-NCB"),
        own_id: pid("RS-NCB"),
        message_id: id.into(),
        accepted,
        refused: vec![(
            pid("ME-MOI"),
            vec![ReceiptViolation {
                code: "recipient_not_cleared".into(),
                detail: "d".into(),
            }],
        )],
        deny_audit: None,
        signer: signer.clone(),
        at: ("2026-11-21T10:00:00.000Z".into(), 1_795_255_200_000),
    }
}

async fn receive_stores_a_relayed_message_once_with_signed_receipts(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let (_dir, key, public) = envelope();
    let mut op = receive(ID, &key, Some(submit(ID, &["RS-MOI"], None, None)));
    op.deny_audit = Some(draft(Action::Deny, "r-deny"));
    let (out, rec) = store
        .write(op.clone().into(), draft(Action::Collect, "r1"))
        .await
        .expect("receive");
    let WriteOutput::Receipts(receipts) = out else {
        panic!("receipts expected, got {out:?}");
    };
    assert_eq!(receipts.len(), 2);
    let accepted = Receipt::verify(&receipts[0].jws, &public).expect("verifies");
    assert_eq!(accepted.kind, ReceiptKind::Accepted);
    assert_eq!(accepted.recipient, Some(pid("RS-MOI")));
    assert_eq!(
        accepted.audit_seq,
        Some(rec.seq),
        "names the collect record"
    );
    accepted
        .expect(&pid("RS-NCB"), &pid("AL-NCB"), ID)
        .expect("from RS-NCB to AL-NCB about the message");
    let refused = Receipt::verify(&receipts[1].jws, &public).expect("verifies");
    assert_eq!(refused.kind, ReceiptKind::Refused);
    assert_eq!(refused.violations[0].code, "recipient_not_cleared");
    assert_eq!(refused.audit_seq, None);
    assert!(store.message(ID).await.expect("read").is_some());
    assert_eq!(store.deliveries(ID).await.expect("deliveries").len(), 1);
    let mut kept = store.receipts_of(ID, ISSUED).await.expect("receipts");
    let mut answered = receipts.clone();
    kept.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    answered.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    assert_eq!(kept, answered, "the receipts answered are the ones kept");
    let size = store.audit_size().await.expect("size");
    assert_eq!(size, 2, "collect and deny");
    // The same id again (a retry, or another peer): refused, nothing written.
    let again = store
        .write(op.into(), draft(Action::Collect, "r2"))
        .await
        .expect_err("seen before");
    assert!(matches!(again, StoreError::IdempotencyRace), "{again:?}");
    assert_eq!(store.audit_size().await.expect("size"), size);
    assert_eq!(
        store.receipts_of(ID, ISSUED).await.expect("receipts").len(),
        2
    );
}

async fn receive_of_all_refused_stores_receipts_only(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let (_dir, key, public) = envelope();
    let op = receive(ID, &key, None);
    let (out, _) = store
        .write(op.clone().into(), draft(Action::Deny, "r1"))
        .await
        .expect("receive");
    let WriteOutput::Receipts(receipts) = out else {
        panic!("receipts expected, got {out:?}");
    };
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        Receipt::verify(&receipts[0].jws, &public)
            .expect("verifies")
            .kind,
        ReceiptKind::Refused
    );
    assert!(
        store.message(ID).await.expect("read").is_none(),
        "nothing stored"
    );
    // Refused once is refused for good: the id is taken by its receipts.
    let again = store
        .write(
            receive(ID, &key, Some(submit(ID, &["RS-MOI"], None, None))).into(),
            draft(Action::Collect, "r2"),
        )
        .await
        .expect_err("seen before");
    assert!(matches!(again, StoreError::IdempotencyRace), "{again:?}");
    assert!(store.message(ID).await.expect("read").is_none());
    assert_eq!(store.audit_size().await.expect("size"), 1);
}

/// A receipt row received from RS-NCB.
fn received(kind: &str, at_ms: i64) -> ReceiptRow {
    ReceiptRow {
        message_id: ID.into(),
        recipient: "RS-MOI".into(),
        peer: "RS-NCB".into(),
        direction: RECEIVED,
        kind: kind.into(),
        jws: format!("jws-{kind}"),
        at_ms,
    }
}

async fn status(store: &Store, recipient: &str) -> DeliveryStatus {
    store
        .deliveries(ID)
        .await
        .expect("deliveries")
        .into_iter()
        .find(|d| d.recipient == recipient)
        .expect("delivery")
        .status
}

async fn relay_outcome_records_once_and_removes_its_row(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let row = "0190f000-0000-7000-8000-0000000000b1";
    store
        .write(
            submit(ID, &["RS-MOI", "ME-MOI"], Some("RS-NCB"), Some(row)).into(),
            draft(Action::Collect, "r0"),
        )
        .await
        .expect("submit");
    assert_eq!(store.outbox_of("RS-NCB").await.expect("outbox").len(), 1);
    let outcome = writes::RelayOutcome {
        outbox_id: row.into(),
        message_id: ID.into(),
        statuses: vec![
            ("RS-MOI".into(), DeliveryStatus::Relayed),
            ("ME-MOI".into(), DeliveryStatus::Refused),
        ],
        receipts: vec![received("accepted", 5)],
        more_audit: vec![draft(Action::Deny, "r1-deny")],
        at_ms: 5,
    };
    store
        .write(outcome.clone().into(), draft(Action::Disclose, "r1"))
        .await
        .expect("outcome");
    assert_eq!(status(&store, "RS-MOI").await, DeliveryStatus::Relayed);
    assert_eq!(status(&store, "ME-MOI").await, DeliveryStatus::Refused);
    assert!(store.outbox_of("RS-NCB").await.expect("outbox").is_empty());
    assert_eq!(
        store
            .receipts_of(ID, RECEIVED)
            .await
            .expect("receipts")
            .len(),
        1
    );
    let size = store.audit_size().await.expect("size");
    assert_eq!(size, 3, "submit, disclose, deny");
    // Recorded already (by this node or another): refused, nothing written.
    let again = store
        .write(outcome.into(), draft(Action::Disclose, "r2"))
        .await
        .expect_err("row gone");
    assert!(matches!(again, StoreError::NotFound), "{again:?}");
    assert_eq!(store.audit_size().await.expect("size"), size);
}

async fn record_receipts_move_statuses_forward_only(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    store
        .write(
            submit(ID, &["RS-MOI"], Some("RS-NCB"), None).into(),
            draft(Action::Collect, "r0"),
        )
        .await
        .expect("submit");
    let record = |kind: &str, status: DeliveryStatus, at_ms: i64| writes::RecordReceipts {
        receipts: vec![received(kind, at_ms)],
        statuses: vec![(ID.into(), "RS-MOI".into(), status)],
        at_ms,
    };
    for (step, (kind, s, want)) in [
        (
            "delivered",
            DeliveryStatus::Delivered,
            DeliveryStatus::Delivered,
        ),
        // Seen before: harmless.
        (
            "delivered",
            DeliveryStatus::Delivered,
            DeliveryStatus::Delivered,
        ),
        (
            "acknowledged",
            DeliveryStatus::Acknowledged,
            DeliveryStatus::Acknowledged,
        ),
        // Late and lower: never backward.
        (
            "accepted",
            DeliveryStatus::Relayed,
            DeliveryStatus::Acknowledged,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .write(
                record(kind, s, 10 + step as i64).into(),
                draft(Action::Acknowledge, &format!("r{step}")),
            )
            .await
            .expect("record");
        assert_eq!(status(&store, "RS-MOI").await, want, "step {step}");
    }
    let kept: Vec<String> = store
        .receipts_of(ID, RECEIVED)
        .await
        .expect("receipts")
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kept.len(), 3, "one row per kind: {kept:?}");
}

/// Receives from two peers, replays of the same ids and other writes,
/// all at once (so that they meet in the writer's batches): each id is
/// stored once, each winner is answered exactly the receipts kept, each
/// replay is `IdempotencyRace`; and a receipt answered to one peer never
/// shares its batch's root with a receipt for another peer (the Merkle
/// path and `size` of a peer's receipt would otherwise tell it about the
/// gateway's traffic with the others, SPEC §11 *Batch signatures*).
async fn receives_of_one_batch_share_no_root_across_peers(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let (_dir, key, public) = envelope();
    let peers = ["AL-NCB", "ME-NCB"];
    let id = |i: usize| format!("0190f000-0000-7000-8000-{i:012x}");
    let mut writes = Vec::new();
    for i in 0..48usize {
        let peer = peers[i % 2];
        for _ in 0..2 {
            // The same id twice: one is stored, the other is a replay.
            let mut op = receive(&id(i), &key, Some(submit(&id(i), &["RS-MOI"], None, None)));
            op.peer = pid(peer);
            op.deny_audit = Some(draft(Action::Deny, "deny"));
            let store = store.clone();
            writes.push(tokio::spawn(async move {
                let r = store.write(op.into(), draft(Action::Collect, "c")).await;
                (i, peer, r)
            }));
        }
        if i % 7 == 0 {
            let store = store.clone();
            let op: WriteOp = writes::SetPartnerState {
                partner: "ME-MOI".into(),
                suspended: i % 2 == 0,
                at_ms: 1,
            }
            .into();
            writes.push(tokio::spawn(async move {
                let r = store.write(op, draft(Action::Alter, "p")).await;
                (usize::MAX, "", r)
            }));
        }
    }
    let mut won = std::collections::HashMap::new();
    let mut roots: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for w in writes {
        let (i, peer, r) = w.await.expect("task");
        if i == usize::MAX {
            r.expect("partner state");
            continue;
        }
        match r {
            Ok((WriteOutput::Receipts(receipts), _)) => {
                assert!(
                    won.insert(i, receipts.clone()).is_none(),
                    "{i} stored twice"
                );
                assert_eq!(receipts.len(), 2, "{i}: accepted and refused");
                for r in &receipts {
                    assert_eq!(r.peer, peer);
                    let verified = Receipt::verify(&r.jws, &public).expect("verifies");
                    verified
                        .expect(&pid("RS-NCB"), &pid(peer), &id(i))
                        .expect("this peer's, this message's");
                    if let Some((root, _)) = r.jws.split_once('~') {
                        let first = roots.entry(root.to_owned()).or_insert(peer);
                        assert_eq!(*first, peer, "a root shared by two peers' receipts");
                    }
                }
            }
            Err(StoreError::IdempotencyRace) => {}
            other => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(won.len(), 48, "each id stored once");
    for (i, answered) in won {
        let mut kept = store.receipts_of(&id(i), ISSUED).await.expect("receipts");
        let mut answered = answered;
        kept.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        answered.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        assert_eq!(
            kept, answered,
            "{i}: the receipts answered are the ones kept"
        );
    }
}

/// A receive whose batch then fails (a later write fails after its audit
/// record: every job of the batch fails closed) keeps nothing — no
/// message, no receipt — and its answer is the failure, never receipts;
/// a receive whose batch commits is answered exactly the receipts kept.
async fn a_batch_that_fails_after_a_receive_keeps_none_of_its_receipts(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let (_dir, key, _public) = envelope();
    // An outbox row "dup": a submit queuing it again fails after its
    // audit record (the row's key is taken).
    store
        .write(
            submit(
                "0190f000-0000-7000-8000-0000000000d0",
                &["AL-CTD"],
                Some("AL-NCB"),
                Some("dup"),
            )
            .into(),
            draft(Action::Collect, "s0"),
        )
        .await
        .expect("first submit");
    let id = |i: usize| format!("0190f000-0000-7000-8000-{i:012x}");
    let mut tasks = Vec::new();
    for i in 1..=24usize {
        let op = receive(&id(i), &key, Some(submit(&id(i), &["RS-MOI"], None, None)));
        let store2 = store.clone();
        tasks.push(tokio::spawn(async move {
            (
                Some(i),
                store2.write(op.into(), draft(Action::Collect, "r")).await,
            )
        }));
        let failing = submit(&id(100 + i), &["AL-CTD"], Some("AL-NCB"), Some("dup"));
        let store2 = store.clone();
        tasks.push(tokio::spawn(async move {
            (
                None,
                store2
                    .write(failing.into(), draft(Action::Collect, "f"))
                    .await,
            )
        }));
    }
    for t in tasks {
        let (i, r) = t.await.expect("task");
        let Some(i) = i else {
            assert!(r.is_err(), "the duplicate outbox row is refused");
            continue;
        };
        let kept = store.receipts_of(&id(i), ISSUED).await.expect("receipts");
        let stored = store.message(&id(i)).await.expect("read").is_some();
        match r {
            Ok((WriteOutput::Receipts(answered), _)) => {
                assert_eq!(answered.len(), 2, "{i}");
                assert!(answered.iter().all(|r| !r.jws.is_empty()), "{i}: signed");
                let mut kept = kept;
                let mut answered = answered;
                kept.sort_by(|a, b| a.recipient.cmp(&b.recipient));
                answered.sort_by(|a, b| a.recipient.cmp(&b.recipient));
                assert_eq!(kept, answered, "{i}");
                assert!(stored, "{i}");
            }
            Err(e) => {
                assert!(
                    kept.is_empty(),
                    "{i}: receipts of a failed receive kept ({e})"
                );
                assert!(!stored, "{i}: a failed receive's message kept");
            }
            other => panic!("{i}: {other:?}"),
        }
    }
}

/// Claims through the writers of two nodes on one database, several at
/// once on each, racing drops of rows: each row is claimed by exactly one
/// of them (a dropped row by at most one), and none after its claim until
/// the claim runs out.
async fn claims_from_two_nodes_and_many_loops_take_each_row_once(kind: Kind) {
    let Some(db) = super::tests::TestDb::create(kind).await else {
        return;
    };
    let a = Arc::new(
        db.open("node-a", super::merkle_rows::CheckpointPolicy::default())
            .await,
    );
    let b = Arc::new(
        db.open("node-b", super::merkle_rows::CheckpointPolicy::default())
            .await,
    );
    let id = |i: usize| format!("0190f000-0000-7000-8000-{i:012x}");
    let row = |i: usize| format!("row-{i}");
    for i in 0..40 {
        a.write(
            submit(&id(i), &["RS-MOI"], Some("RS-NCB"), Some(&row(i))).into(),
            draft(Action::Collect, "s"),
        )
        .await
        .expect("submit");
    }
    let ids: Vec<String> = (0..40).map(row).collect();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let s = if n % 2 == 0 { a.clone() } else { b.clone() };
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_outbox(&ids, 1_000, 1_000_000).await.expect("claim")
        }));
    }
    for i in (0..40).step_by(5) {
        let s = if i % 2 == 0 { b.clone() } else { a.clone() };
        let r = row(i);
        tasks.push(tokio::spawn(async move {
            s.outbox_drop(&r).await.expect("drop");
            Vec::new()
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        for claimed in t.await.expect("task") {
            assert!(seen.insert(claimed.clone()), "{claimed} claimed twice");
        }
    }
    for (i, r) in ids.iter().enumerate() {
        assert!(i % 5 == 0 || seen.contains(r), "{r} never claimed");
    }
    // Claimed until 1 000 000: nobody takes them again before.
    assert!(
        a.claim_outbox(&ids, 999_999, 2_000_000)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        b.claim_outbox(&ids, 999_999, 2_000_000)
            .await
            .expect("claim")
            .is_empty()
    );
    let again = b
        .claim_outbox(&ids, 1_000_001, 2_000_000)
        .await
        .expect("claim");
    assert_eq!(
        again.len(),
        32,
        "the rows not dropped, once their claim ran out"
    );
}

/// Receives written together (one writer batch, as a relay batch's
/// documents are) each get their own receipts, all verifying alone and
/// kept as answered; the receipts of one batch share one signature over
/// their root (SPEC §11, *Batch signatures*); the same id twice among
/// them is stored once, the other write refused as a replay.
async fn receives_in_one_batch_share_a_signature_and_a_replay_loses(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let (_dir, key, public) = envelope();
    let ids: Vec<String> = (0..8)
        .map(|i| format!("0190f000-0000-7000-8000-0000000001{i:02}"))
        .collect();
    let mut all: Vec<String> = ids.clone();
    all.push(ids[3].clone());
    let writes = all.iter().enumerate().map(|(i, id)| {
        let op = receive(id, &key, Some(submit(id, &["RS-MOI"], None, None)));
        store.write(op.into(), draft(Action::Collect, &format!("r{i}")))
    });
    let results = futures_util::future::join_all(writes).await;
    let (ok, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 8, "each id once");
    assert_eq!(refused.len(), 1);
    assert!(
        matches!(refused[0], Err(StoreError::IdempotencyRace)),
        "{:?}",
        refused[0]
    );
    let mut roots = std::collections::HashSet::new();
    for (out, rec) in ok.into_iter().flatten() {
        let WriteOutput::Receipts(receipts) = out else {
            panic!("receipts expected, got {out:?}");
        };
        assert_eq!(receipts.len(), 2, "accepted and refused");
        let id = receipts[0].message_id.clone();
        for r in &receipts {
            let stated = Receipt::verify(&r.jws, &public).expect("verifies alone");
            stated
                .expect(&pid("RS-NCB"), &pid("AL-NCB"), &id)
                .expect("about its own message");
            if stated.kind == ReceiptKind::Accepted {
                assert_eq!(stated.audit_seq, Some(rec.seq), "its own record");
            }
            roots.insert(r.jws.split('~').next().map(str::to_owned));
        }
        let mut kept = store.receipts_of(&id, ISSUED).await.expect("receipts");
        let mut answered = receipts.clone();
        kept.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        answered.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        assert_eq!(kept, answered, "the receipts answered are the ones kept");
    }
    assert!(
        roots.len() < 16,
        "16 receipts, one signature each: {}",
        roots.len()
    );
    assert_eq!(store.audit_size().await.expect("size"), 8);
}

/// The relay's claims go through the writer: each due row is claimed by
/// one of two racing claims, a claimed row by no third claim until its
/// claim runs out, and then again.
async fn claims_through_the_writer_take_each_row_once(kind: Kind) {
    let Some((store, _db)) = store(kind).await else {
        return;
    };
    let mut rows = Vec::new();
    for i in 0..6 {
        let id = format!("0190f000-0000-7000-8000-0000000002{i:02}");
        let row = format!("0190f000-0000-7000-8000-0000000003{i:02}");
        store
            .write(
                submit(&id, &["RS-MOI"], Some("RS-NCB"), Some(&row)).into(),
                draft(Action::Collect, &format!("r{i}")),
            )
            .await
            .expect("submit");
        rows.push(row);
    }
    let due = store.outbox_due("RS-NCB", 10, 100).await.expect("due");
    assert_eq!(due.len(), 6);
    let (a, b) = tokio::join!(
        store.claim_outbox(&rows, 10, 1_000),
        store.claim_outbox(&rows, 10, 1_000)
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    let mut both: Vec<String> = a.iter().chain(&b).cloned().collect();
    both.sort();
    let mut want = rows.clone();
    want.sort();
    assert_eq!(both, want, "every row claimed exactly once");
    assert!(
        store
            .claim_outbox(&rows, 999, 2_000)
            .await
            .expect("claim")
            .is_empty(),
        "held until 1 000"
    );
    assert_eq!(
        store
            .claim_outbox(&rows, 1_001, 2_000)
            .await
            .expect("claim")
            .len(),
        6,
        "free again once the claim ran out"
    );
    assert!(
        store
            .claim_outbox(&[], 1, 2)
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        store.audit_size().await.expect("size"),
        6,
        "a claim writes no audit record"
    );
}
