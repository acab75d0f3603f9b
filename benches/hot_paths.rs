//! Micro-benchmarks of the pure functions on every submit: message
//! validation, the policy decision, the audit record's canonical form and
//! chained hash, and the Merkle append. `cargo bench --bench hot_paths`.
//!
//! Each is measured with criterion (statistics over many samples, so a
//! noisy shared machine shows as wide intervals rather than wrong means).
//! Nothing here asserts a time.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::Path;

use brdo::audit::merkle::{CompactRange, leaf_hash};
use brdo::audit::record::{Action, Actor, GENESIS_HASH, Outcome, RecordDraft};
use brdo::domain::message::NewMessage;
use brdo::domain::{Classification, PartnerId};
use brdo::policy::{Decision, Policy, Transfer, decide};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

/// The message `brdo bench` submits: 1 KiB body, two recipients, personal
/// data, a label with handling codes.
fn message() -> Value {
    let body: String = "Benchmark report text. "
        .chars()
        .cycle()
        .take(1024)
        .collect();
    json!({
        "recipients": ["RS-MOI", "EU-ECTC"],
        "subject": "Travel of a returning foreign terrorist fighter",
        "body": body,
        "content_type": "text/plain",
        "label": {
            "classification": "EU_RESTRICTED",
            "handling_codes": ["H0", "H2", "H3"],
            "h3_text": "Not to be shared with border police units.",
            "releasable_to": ["RS-MOI", "EU-ECTC"]
        },
        "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
        "purpose": "investigation",
        "personal_data": {"subjects": ["suspect"], "special_categories": [], "minors": false},
        "case_ref": "AL-2026-0042",
        "retention_days": 365
    })
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

fn validation(c: &mut Criterion) {
    let v = message();
    let today = today();
    c.bench_function("message_validation", |b| {
        b.iter(|| NewMessage::parse(black_box(&v), today))
    });
}

fn policy_decision(c: &mut Criterion) {
    let policy = Policy::parse(brdo_tools::demo_data::POLICY, Path::new("policy.toml"))
        .expect("demo policy");
    let msg = NewMessage::parse(&message(), today()).expect("valid message");
    let sender = PartnerId::parse("AL-CTD").expect("id");
    let suspended = BTreeSet::new();
    let t = Transfer {
        sender: &sender,
        recipients: &msg.recipients,
        label: &msg.label,
        purpose: msg.purpose,
        personal_data: &msg.personal_data,
        onward: None,
    };
    assert!(
        matches!(
            decide(&policy, Classification::EuConfidential, &suspended, &t),
            Decision::Allow
        ),
        "the benchmark message must be allowed"
    );
    c.bench_function("policy_decision", |b| {
        b.iter(|| {
            decide(
                black_box(&policy),
                Classification::EuConfidential,
                &suspended,
                black_box(&t),
            )
        })
    });
}

/// A submit's audit record, as the request gate writes it.
fn draft() -> RecordDraft {
    let mut details = Map::new();
    details.insert("recipients".into(), json!(["EU-ECTC", "RS-MOI"]));
    details.insert("classification".into(), json!("EU_RESTRICTED"));
    RecordDraft {
        at: "2026-11-21T08:30:00.123Z".into(),
        actor: Actor {
            role: "partner".into(),
            id: Some("AL-CTD".into()),
            officer: Some("insp.hoxha".into()),
            cert_serial: Some("5f3a9c0e1d2b4a6f".into()),
        },
        action: Action::Collect,
        message_id: Some("019a4f2e-8c1b-7d3a-9e0f-123456789abc".into()),
        counterparts: vec!["EU-ECTC".into(), "RS-MOI".into()],
        outcome: Outcome::Allowed,
        code: None,
        justification: None,
        request_id: Some("019a4f2e-8c1b-7d3a-9e0f-cba987654321".into()),
        node: None,
        details: Some(details),
    }
}

fn audit_hash(c: &mut Criterion) {
    let d = draft();
    let prev = GENESIS_HASH;
    c.bench_function("audit_canonical_and_hash", |b| {
        b.iter(|| black_box(d.clone()).chain(1234, prev))
    });
    let mut out = String::with_capacity(1024);
    c.bench_function("audit_canonical_only", |b| {
        b.iter(|| {
            out.clear();
            black_box(&d).canonical_into(1234, &mut out);
        })
    });
}

fn merkle_append(c: &mut Criterion) {
    let leaves: Vec<_> = (0u32..1024).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut range = CompactRange::new();
    let mut i = 0usize;
    c.bench_function("merkle_append", |b| {
        b.iter(|| {
            i = (i + 1) % leaves.len();
            range.append(black_box(&leaves[i]))
        })
    });
    c.bench_function("merkle_append_and_root", |b| {
        b.iter(|| {
            i = (i + 1) % leaves.len();
            let _ = range.append(black_box(&leaves[i]));
            range.root()
        })
    });
}

criterion_group!(
    benches,
    validation,
    policy_decision,
    audit_hash,
    merkle_append
);
criterion_main!(benches);
