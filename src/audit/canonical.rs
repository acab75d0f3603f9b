//! The canonical (RFC 8785) form of a record's body, written straight from
//! any [`FieldView`] without building a JSON value.
//!
//! The reference writer (tests only) follows the compile-time canonical
//! order of the field table for any form. Verification writes one canonical form per record, so the
//! typed record and the stored columns also have hand-written writers
//! (`typed_fast`, `stored_fast`), which `forms_test` proves equal to it
//! and to the generic RFC 8785 canonicaliser, field by field.

use std::fmt::Write as _;

use serde_json::Value;

#[cfg(test)]
use super::fields::{CANONICAL_ORDER, FIELDS, FieldView};
use super::fields::{Field, FieldValue};
use super::jcs;
use super::record::RecordDraft;
use super::stored::StoredFields;

/// Writes `"key":`; keys need no escaping (a test in `fields` checks).
#[cfg(test)]
fn key(k: &str, out: &mut String) {
    out.push('"');
    out.push_str(k);
    out.push_str("\":");
}

fn value(v: FieldValue<'_>, out: &mut String) {
    match v {
        FieldValue::Seq(n) => {
            let _ = write!(out, "{n}");
        }
        FieldValue::Text(s) => jcs::write_string(s, out),
        FieldValue::Null | FieldValue::Absent => out.push_str("null"),
        FieldValue::List(items) => {
            out.push('[');
            for (i, c) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                jcs::write_string(c, out);
            }
            out.push(']');
        }
        FieldValue::Object(m) => jcs::canonicalize_into(&Value::Object(m.clone()), out),
        FieldValue::Json(s) => out.push_str(s),
    }
}

/// Appends the canonical form of the record `view` shows to `out`.
#[cfg(test)]
pub(crate) fn write_canonical(view: &(impl FieldView + ?Sized), out: &mut String) {
    // The group (`actor`) whose object is open, if any.
    let mut open: Option<&str> = None;
    let mut first = true;
    out.push('{');
    for &i in &CANONICAL_ORDER {
        let def = &FIELDS[i];
        let v = view.value(def.field);
        if v == FieldValue::Absent {
            continue;
        }
        if open.is_some() && open != def.group {
            out.push('}');
            open = None;
        }
        // A comma before every member but the first of its object.
        if !first {
            out.push(',');
        }
        first = false;
        if let Some(g) = def.group
            && open != Some(g)
        {
            key(g, out);
            out.push('{');
            open = Some(g);
        }
        key(def.key, out);
        value(v, out);
    }
    if open.is_some() {
        out.push('}');
    }
    out.push('}');
}

/// The typed record's canonical form, hand-written in [`CANONICAL_ORDER`]:
/// measured about a quarter faster than [`write_canonical`], and the
/// verifier runs it once per record. `forms_test` checks it against the
/// generic writer and the RFC 8785 canonicaliser for every field, so a
/// field added to [`FIELDS`] but not here fails there.
pub(super) fn typed_fast(seq: u64, d: &RecordDraft, out: &mut String) {
    let opt = |v: &Option<String>, out: &mut String| match v {
        Some(s) => jcs::write_string(s, out),
        None => out.push_str("null"),
    };
    out.push_str("{\"action\":");
    jcs::write_string(d.action.as_str(), out);
    out.push_str(",\"actor\":{\"cert_serial\":");
    opt(&d.actor.cert_serial, out);
    out.push_str(",\"id\":");
    opt(&d.actor.id, out);
    out.push_str(",\"officer\":");
    opt(&d.actor.officer, out);
    out.push_str(",\"role\":");
    jcs::write_string(d.actor.role.as_str(), out);
    out.push_str("},\"at\":");
    jcs::write_string(&d.at, out);
    out.push_str(",\"code\":");
    opt(&d.code, out);
    out.push_str(",\"counterparts\":");
    value(FieldValue::List(&d.counterparts), out);
    if let Some(details) = &d.details {
        out.push_str(",\"details\":");
        value(FieldValue::Object(details), out);
    }
    out.push_str(",\"justification\":");
    opt(&d.justification, out);
    out.push_str(",\"message_id\":");
    opt(&d.message_id, out);
    if let Some(node) = &d.node {
        out.push_str(",\"node\":");
        jcs::write_string(node, out);
    }
    out.push_str(",\"outcome\":");
    jcs::write_string(d.outcome.as_str(), out);
    out.push_str(",\"request_id\":");
    opt(&d.request_id, out);
    let _ = write!(out, ",\"seq\":{seq}}}");
}

/// The stored columns' canonical form, hand-written like [`typed_fast`]
/// (the bulk verifier's path) and checked the same way.
pub(super) fn stored_fast(f: &StoredFields<'_>, out: &mut String) {
    let opt = |field: Field, out: &mut String| match f.column(field) {
        Some(s) => jcs::write_string(s, out),
        None => out.push_str("null"),
    };
    let text = |field: Field, out: &mut String| {
        jcs::write_string(f.column(field).unwrap_or_default(), out);
    };
    out.push_str("{\"action\":");
    text(Field::Action, out);
    out.push_str(",\"actor\":{\"cert_serial\":");
    opt(Field::ActorCertSerial, out);
    out.push_str(",\"id\":");
    opt(Field::ActorId, out);
    out.push_str(",\"officer\":");
    opt(Field::ActorOfficer, out);
    out.push_str(",\"role\":");
    text(Field::ActorRole, out);
    out.push_str("},\"at\":");
    text(Field::At, out);
    out.push_str(",\"code\":");
    opt(Field::Code, out);
    out.push_str(",\"counterparts\":");
    out.push_str(f.column(Field::Counterparts).unwrap_or_default());
    if let Some(details) = f.column(Field::Details) {
        out.push_str(",\"details\":");
        out.push_str(details);
    }
    out.push_str(",\"justification\":");
    opt(Field::Justification, out);
    out.push_str(",\"message_id\":");
    opt(Field::MessageId, out);
    if let Some(node) = f.column(Field::Node) {
        out.push_str(",\"node\":");
        jcs::write_string(node, out);
    }
    out.push_str(",\"outcome\":");
    text(Field::Outcome, out);
    out.push_str(",\"request_id\":");
    opt(Field::RequestId, out);
    let _ = write!(out, ",\"seq\":{}}}", f.seq());
}
