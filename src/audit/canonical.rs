//! The canonical (RFC 8785) form of a record's body, written straight from
//! any [`FieldView`] without building a JSON value.
//!
//! Verification runs this once per record, so it must be fast: the key
//! order is [`CANONICAL_ORDER`], fixed at compile time, and stored JSON
//! columns (already canonical) are embedded verbatim. Tests check it
//! against the generic canonicaliser over the served body.

use std::fmt::Write as _;

use serde_json::Value;

use super::fields::{CANONICAL_ORDER, FIELDS, FieldValue, FieldView};
use super::jcs;

/// Writes `"key":`; keys need no escaping (a test in `fields` checks).
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
pub fn write_canonical(view: &(impl FieldView + ?Sized), out: &mut String) {
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
