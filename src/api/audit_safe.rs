//! What of a refused request may enter the permanent audit log.
//!
//! Audit records are append-only and hash-chained: whatever lands in one
//! can never be erased, and the log's retention is years. A client chooses
//! JSON keys, parameter names and header values freely, so a key such as
//! `"Ahmet-Rexhepi-born-1987"` would put a person's name beyond erasure,
//! and an 8 KiB key would make an 8 KiB record. Records therefore name
//! only fields the API itself defines (every property and parameter of
//! the OpenAPI description, which is generated from the code); anything
//! else becomes [`UNKNOWN_FIELD`]. Every string a handler notes is capped.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value;

use crate::domain::FieldError;
use crate::domain::text::cap;

/// The name an audit record gives a field the API does not define.
pub(crate) const UNKNOWN_FIELD: &str = "(unknown field)";
/// Most field names one record lists; a body with a million unknown keys
/// still makes one small record.
pub(crate) const MAX_FIELDS: usize = 64;
/// Longest certificate subject a record keeps.
pub(crate) const MAX_SUBJECT_CHARS: usize = 256;
/// Longest string (in characters) a record's `details` keep.
pub(crate) const MAX_DETAIL_CHARS: usize = 1000;

/// Field names the gateway reports that are not properties or parameters
/// in the API description: the body as a whole, request headers it reads,
/// and the configuration parts a refused reload names.
const EXTRA_NAMES: &[&str] = &["(body)", "Content-Type", "tls", "policy", "crl"];

/// The committed API description (`openapi.json`), which a test holds equal
/// to the one the code generates; read as a file so that the gate's audit
/// bounds do not import the whole HTTP layer.
const API_DESCRIPTION: &str = include_str!("../../openapi.json");

fn vocabulary() -> &'static BTreeSet<String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: BTreeSet<String> = EXTRA_NAMES.iter().map(|s| (*s).to_owned()).collect();
        if let Ok(doc) = serde_json::from_str::<Value>(API_DESCRIPTION) {
            collect(&doc, &mut names);
        }
        names
    })
}

/// Every property name and parameter name in the API description.
fn collect(v: &Value, names: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "properties"
                    && let Value::Object(props) = x
                {
                    names.extend(props.keys().cloned());
                }
                if k == "parameters"
                    && let Value::Array(params) = x
                {
                    names.extend(
                        params
                            .iter()
                            .filter_map(|p| p.get("name").and_then(Value::as_str))
                            .map(str::to_owned),
                    );
                }
                collect(x, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect(x, names)),
        _ => {}
    }
}

/// One segment of a field path without its indexes (`recipients[3]` →
/// `recipients`), if the indexes are plain numbers.
fn segment_name(seg: &str) -> Option<&str> {
    let (name, mut rest) = seg.split_once('[').map_or((seg, ""), |(n, r)| (n, r));
    if !rest.is_empty() {
        rest = rest.strip_suffix(']')?;
        if !rest
            .split("][")
            .all(|i| !i.is_empty() && i.len() <= 6 && i.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
    }
    Some(name)
}

/// A field path as an audit record may hold it: the known part of the
/// path, then [`UNKNOWN_FIELD`] from the first segment the API does not
/// define (`label.colour` → `label.(unknown field)`).
pub(crate) fn field_name(path: &str) -> String {
    let known = vocabulary();
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('.') {
        match segment_name(seg) {
            Some(name) if known.contains(name) && seg.len() <= 64 => out.push(seg),
            _ => {
                out.push(UNKNOWN_FIELD);
                break;
            }
        }
    }
    out.join(".")
}

/// The field names of a refusal for its audit record: known names only,
/// each once, at most [`MAX_FIELDS`] (then how many more there were).
pub(crate) fn field_names(errors: &[FieldError]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut more = 0usize;
    for e in errors {
        let name = field_name(&e.field);
        if out.contains(&name) {
            continue;
        }
        if out.len() < MAX_FIELDS {
            out.push(name);
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push(format!("({more} more)"));
    }
    out
}

/// A detail value with every string cut to [`MAX_DETAIL_CHARS`]: a bound
/// on what any note can add to a record, whatever a handler passes.
pub fn bounded(v: Value) -> Value {
    match v {
        Value::String(s) if s.chars().nth(MAX_DETAIL_CHARS).is_some() => {
            Value::String(cap(&s, MAX_DETAIL_CHARS))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(bounded).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, x)| (cap(&k, 64), bounded(x)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fe(field: &str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            message: String::new(),
        }
    }

    #[test]
    fn known_paths_are_kept() {
        for p in [
            "label.classification",
            "recipients[1]",
            "personal_data.special_categories_basis",
            "(body)",
            "after",
            "Idempotency-Key",
            "attachments[0]",
        ] {
            assert_eq!(field_name(p), p);
        }
    }

    #[test]
    fn client_chosen_names_are_replaced() {
        assert_eq!(field_name("Ahmet-Rexhepi-born-1987"), UNKNOWN_FIELD);
        assert_eq!(field_name("label.colour"), "label.(unknown field)");
        assert_eq!(field_name("recipients[x]"), UNKNOWN_FIELD);
        assert_eq!(field_name(&"k".repeat(8192)), UNKNOWN_FIELD);
        assert_eq!(field_name("subject[1][2"), UNKNOWN_FIELD);
    }

    #[test]
    fn field_lists_are_deduplicated_and_bounded() {
        let many: Vec<FieldError> = (0..10_000).map(|i| fe(&format!("key{i}"))).collect();
        assert_eq!(field_names(&many), [UNKNOWN_FIELD]);
        let known: Vec<FieldError> = (0..100).map(|i| fe(&format!("recipients[{i}]"))).collect();
        let names = field_names(&known);
        assert_eq!(names.len(), MAX_FIELDS + 1);
        assert_eq!(names[MAX_FIELDS], "(36 more)");
    }

    #[test]
    fn detail_strings_are_capped() {
        let v = bounded(serde_json::json!({"a": ["x".repeat(5000)], "b": 1}));
        assert_eq!(
            v["a"][0].as_str().map(|s| s.chars().count()),
            Some(MAX_DETAIL_CHARS)
        );
        assert_eq!(v["b"], 1);
    }
}
