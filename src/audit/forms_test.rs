//! Every form of the record agrees, field by field: the typed record, its
//! served JSON, its stored columns, the fast canonical writer and the
//! generic RFC 8785 canonicaliser. A field added to [`FIELDS`] but missed
//! by any form fails here (or does not compile: `Numbered::get` and
//! `RecordDraft::read` name every field).

use serde_json::{Value, json};

use super::canonical::write_canonical;
use super::fields::{COLUMN_COUNT, FIELDS, FieldValue, FieldView, Kind};
use super::jcs;
use super::record::{Action, Actor, AuditRecord, Numbered, Outcome, RecordDraft, Role};
use super::stored::{JsonColumns, StoredFields, record_from_columns};

/// A record with every field set, each to a value no other field has.
fn full() -> AuditRecord {
    let draft = RecordDraft {
        at: "2026-11-21T10:00:00.000Z".into(),
        actor: Actor {
            role: Role::Partner,
            id: Some("AL-CTD".into()),
            officer: Some("insp".into()),
            cert_serial: Some("0a".into()),
        },
        action: Action::Consult,
        message_id: Some("m1".into()),
        counterparts: vec!["RS-MOI".into()],
        outcome: Outcome::Allowed,
        code: Some("c1".into()),
        justification: Some("case".into()),
        request_id: Some("r1".into()),
        node: Some("n1".into()),
        details: json!({"b": [1, "é\n"], "a": 1}).as_object().cloned(),
    };
    draft
        .chain(5, super::GENESIS_HASH)
        .expect("a valid position")
}

/// The record as the writer stores it, then read back as the store does.
fn stored_round_trip(rec: &AuditRecord) -> (AuditRecord, bool) {
    let json = JsonColumns::of(&rec.draft).expect("json");
    let fields = StoredFields::of(rec.seq, &rec.draft, &json);
    let seq = rec.seq.to_string();
    let mut cols: Vec<Option<&str>> = FIELDS
        .iter()
        .map(|d| match d.kind {
            Kind::Seq => Some(seq.as_str()),
            _ => fields.column(d.field),
        })
        .collect();
    cols.extend([Some("0"), Some(&rec.prev_hash), Some(&rec.hash)]);
    assert_eq!(cols.len(), COLUMN_COUNT);
    record_from_columns(&cols).expect("reads back")
}

/// The record's canonical form as each writer writes it: the generic
/// RFC 8785 canonicaliser over the body, the table-driven writer over the
/// typed record and over the stored columns, and the two fast paths.
fn every_canonical(rec: &AuditRecord) -> [String; 5] {
    let json = JsonColumns::of(&rec.draft).expect("json");
    let stored = StoredFields::of(rec.seq, &rec.draft, &json);
    let typed = Numbered {
        seq: rec.seq,
        draft: &rec.draft,
    };
    let write = |f: &dyn Fn(&mut String)| {
        let mut out = String::new();
        f(&mut out);
        out
    };
    [
        jcs::canonicalize(&rec.draft.body(rec.seq)),
        write(&|o| write_canonical(&typed, o)),
        write(&|o| write_canonical(&stored, o)),
        write(&|o| rec.draft.canonical_into(rec.seq, o)),
        write(&|o| stored.canonical_into(o)),
    ]
}

#[test]
fn the_canonical_form_is_unchanged() {
    let rec = full();
    let want = r#"{"action":"consult","actor":{"cert_serial":"0a","id":"AL-CTD","officer":"insp","role":"partner"},"at":"2026-11-21T10:00:00.000Z","code":"c1","counterparts":["RS-MOI"],"details":{"a":1,"b":[1,"é\n"]},"justification":"case","message_id":"m1","node":"n1","outcome":"allowed","request_id":"r1","seq":5}"#;
    let mut fast = String::new();
    rec.draft.canonical_into(rec.seq, &mut fast);
    assert_eq!(fast, want);
    assert_eq!(jcs::canonicalize(&rec.draft.body(rec.seq)), want);
    let json = JsonColumns::of(&rec.draft).expect("json");
    let mut stored = String::new();
    StoredFields::of(rec.seq, &rec.draft, &json).canonical_into(&mut stored);
    assert_eq!(stored, want);
    assert_eq!(every_canonical(&rec), [want; 5].map(str::to_owned));
}

#[test]
fn the_served_form_is_unchanged() {
    let rec = full();
    let want = format!(
        r#"{{"seq":5,"at":"2026-11-21T10:00:00.000Z","actor":{{"role":"partner","id":"AL-CTD","officer":"insp","cert_serial":"0a"}},"action":"consult","message_id":"m1","counterparts":["RS-MOI"],"outcome":"allowed","code":"c1","justification":"case","request_id":"r1","node":"n1","details":{{"b":[1,"é\n"],"a":1}},"prev_hash":"{}","hash":"{}"}}"#,
        rec.prev_hash, rec.hash
    );
    assert_eq!(rec.to_json().to_string(), want);
    assert_eq!(
        rec.to_served(true).to_string(),
        format!(
            r#"{{"seq":5,"prev_hash":"{}","hash":"{}","reduced":true}}"#,
            rec.prev_hash, rec.hash
        )
    );
}

#[test]
fn every_form_reads_back_every_field() {
    let rec = full();
    assert_eq!(stored_round_trip(&rec), (rec.clone(), false));
    assert_eq!(
        AuditRecord::from_served(&rec.to_json()),
        Ok((rec.clone(), false))
    );
    let reduced = AuditRecord::from_served(&rec.to_served(true)).expect("reduced");
    assert!(reduced.1);
    assert_eq!(reduced.0.draft, RecordDraft::reduced());
}

/// Changing any one field changes every form, and each form still agrees
/// with the generic canonicaliser: no form drops or swaps a field.
#[test]
fn each_field_reaches_every_form() {
    let base = full();
    let view = Numbered {
        seq: base.seq,
        draft: &base.draft,
    };
    for def in FIELDS {
        assert!(
            view.value(def.field) != FieldValue::Absent,
            "{def:?} is set in the full record"
        );
        let mut d = base.draft.clone();
        let mut seq = base.seq;
        match def.field {
            super::fields::Field::Seq => seq += 1,
            f => alter(&mut d, f),
        }
        let changed = d.chain(seq, super::GENESIS_HASH).expect("chain");
        assert_ne!(changed.hash, base.hash, "{def:?}");
        let forms = every_canonical(&changed);
        assert!(forms.iter().all(|f| *f == forms[0]), "{def:?}: {forms:#?}");
        assert_ne!(forms, every_canonical(&base), "{def:?}");
        assert_eq!(stored_round_trip(&changed), (changed.clone(), false));
        assert_eq!(
            AuditRecord::from_served(&changed.to_json()),
            Ok((changed.clone(), false)),
            "{def:?}"
        );
        assert_ne!(changed.to_json(), base.to_json(), "{def:?}");
    }
}

/// Gives `field` another value (or unsets it).
fn alter(d: &mut RecordDraft, field: super::fields::Field) {
    use super::fields::Field as F;
    let other = |v: &mut Option<String>| *v = v.as_ref().map_or(Some("x".into()), |_| None);
    match field {
        F::Seq => {}
        F::At => d.at.push('!'),
        F::ActorRole => d.actor.role = Role::Other("auditor".into()),
        F::ActorId => other(&mut d.actor.id),
        F::ActorOfficer => other(&mut d.actor.officer),
        F::ActorCertSerial => other(&mut d.actor.cert_serial),
        F::Action => d.action = Action::Erase,
        F::MessageId => other(&mut d.message_id),
        F::Counterparts => d.counterparts.push("XK-CTD".into()),
        F::Outcome => d.outcome = Outcome::Failed,
        F::Code => other(&mut d.code),
        F::Justification => other(&mut d.justification),
        F::RequestId => other(&mut d.request_id),
        F::Node => other(&mut d.node),
        F::Details => d.details = None,
    }
}

#[test]
fn unknown_roles_in_old_logs_still_verify() {
    let mut rec = full();
    rec.draft.actor.role = Role::Other("auditor".into());
    let rec = rec
        .draft
        .chain(rec.seq, super::GENESIS_HASH)
        .expect("chain");
    let (back, _) = stored_round_trip(&rec);
    assert_eq!(back.draft.actor.role.as_str(), "auditor");
    assert!(back.hash_matches());
    let (served, _) = AuditRecord::from_served(&rec.to_json()).expect("served");
    assert!(served.hash_matches());
}

#[test]
fn actions_and_outcomes_are_written_as_before() {
    let words = |all: Vec<Value>| -> Vec<String> {
        all.iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let actions: Vec<Value> = Action::ALL
        .iter()
        .map(|a| serde_json::to_value(a).expect("json"))
        .collect();
    assert_eq!(
        words(actions),
        [
            "collect",
            "disclose",
            "consult",
            "alter",
            "erase",
            "deny",
            "acknowledge",
            "grant",
            "judicial_use",
            "audit_query",
            "audit_export",
            "partner_suspend",
            "partner_resume",
            "cert_issue",
            "cert_revoke",
            "config_reload",
            "list",
            "status",
            "upload",
            "inspect",
            "request",
            "crl_update",
            "config_start",
        ]
    );
    let outcomes: Vec<Value> = Outcome::ALL
        .iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect();
    assert_eq!(words(outcomes), ["allowed", "denied", "failed"]);
}
