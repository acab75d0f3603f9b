//! The canonical (RFC 8785) form of a record's body, written straight from
//! any [`FieldView`] without building a JSON value.
//!
//! The reference writer (tests only) follows the compile-time canonical
//! order of the field table for any form. Verification writes one
//! canonical form per record, so the typed record (`record::typed_fast`)
//! and the stored columns (`stored::stored_fast`) also have hand-written
//! writers beside their types, which `forms_test` proves equal to it and
//! to the generic RFC 8785 canonicaliser, field by field.

use std::fmt::Write as _;

use serde_json::Value;

use super::fields::FieldValue;
#[cfg(test)]
use super::fields::{CANONICAL_ORDER, FIELDS, FieldView};
use super::jcs;

/// Writes `"key":`; keys need no escaping (a test in `fields` checks).
#[cfg(test)]
fn key(k: &str, out: &mut String) {
    out.push('"');
    out.push_str(k);
    out.push_str("\":");
}

pub(super) fn value(v: FieldValue<'_>, out: &mut String) {
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
