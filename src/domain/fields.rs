//! Field-by-field reading of untrusted JSON, collecting every error.
//!
//! Partner systems need to see *all* that is wrong with a message in one
//! answer, not the first serde error: an integrator fixing a rejected message
//! one field per round trip would lose hours. So documents are first parsed
//! into a `serde_json::Value` and then walked here, each reader recording a
//! [`FieldError`] and returning `None` instead of stopping.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

/// One thing wrong with one field, as reported in the `errors` array of a
/// problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Path to the field, e.g. `label.classification` or `recipients[1]`.
    pub field: String,
    /// What is wrong, in one sentence a developer can act on.
    pub message: String,
}

/// Every field error found in one document, in document order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records that `field` is wrong because of `message`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, for the problem document.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// The errors, borrowed.
    pub(crate) fn as_slice(&self) -> &[FieldError] {
        &self.0
    }
}

/// Joins a parent path and a key into a field path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Names JSON value kinds the way an integrator reads them in an error.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being read; remembers which keys were consumed so unknown
/// keys can be reported by [`Obj::finish`].
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    known: BTreeSet<&'static str>,
}

impl<'a> Obj<'a> {
    /// Starts reading `value` at `path`; records an error and returns `None`
    /// if it is not an object.
    pub fn new(value: &'a Value, path: &str, errs: &mut FieldErrors) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self {
                map,
                path: path.to_owned(),
                known: BTreeSet::new(),
            }),
            other => {
                let field = if path.is_empty() { "(body)" } else { path };
                errs.push(field, format!("must be an object, not {}", kind(other)));
                None
            }
        }
    }

    /// The path of a member of this object.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// A member that may be absent or null (both mean "not given").
    pub fn optional(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.insert(key);
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// A member that must be present and not null.
    pub fn required(&mut self, key: &'static str, errs: &mut FieldErrors) -> Option<&'a Value> {
        let v = self.optional(key);
        if v.is_none() {
            errs.push(self.path_of(key), "is required");
        }
        v
    }

    /// A required string member.
    pub(crate) fn required_str(
        &mut self,
        key: &'static str,
        errs: &mut FieldErrors,
    ) -> Option<&'a str> {
        let v = self.required(key, errs)?;
        as_str(v, &self.path_of(key), errs)
    }

    /// An optional string member.
    pub(crate) fn optional_str(
        &mut self,
        key: &'static str,
        errs: &mut FieldErrors,
    ) -> Option<&'a str> {
        let v = self.optional(key)?;
        as_str(v, &self.path_of(key), errs)
    }

    /// Reports every member that no reader asked for: unknown fields are an
    /// error, so a misspelt optional field never silently does nothing.
    pub fn finish(self, errs: &mut FieldErrors) {
        // Sorted, so the report does not depend on whether serde_json keeps
        // document order (a feature other crates may switch on).
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.known.contains(k.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            // The key is the client's choice (it may be a person's name):
            // the problem document echoes a bounded, sanitised prefix and
            // the audit record none of it (`api::audit_safe`).
            errs.push(
                join(&self.path, &super::text::echo(key)),
                "is not a known field",
            );
        }
    }
}

/// Reads a string, recording an error for any other kind.
pub fn as_str<'a>(value: &'a Value, path: &str, errs: &mut FieldErrors) -> Option<&'a str> {
    match value {
        Value::String(s) => Some(s),
        other => {
            errs.push(path, format!("must be a string, not {}", kind(other)));
            None
        }
    }
}

/// Reads an array, recording an error for any other kind.
pub fn as_array<'a>(value: &'a Value, path: &str, errs: &mut FieldErrors) -> Option<&'a [Value]> {
    match value {
        Value::Array(items) => Some(items),
        other => {
            errs.push(path, format!("must be an array, not {}", kind(other)));
            None
        }
    }
}

/// Reads a boolean, recording an error for any other kind.
pub fn as_bool(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        other => {
            errs.push(path, format!("must be a boolean, not {}", kind(other)));
            None
        }
    }
}

/// Reads a whole number within `min..=max`.
pub(crate) fn as_int_in(
    value: &Value,
    path: &str,
    min: u64,
    max: u64,
    errs: &mut FieldErrors,
) -> Option<u64> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(_) => {
            errs.push(path, format!("must be between {min} and {max}"));
            None
        }
        None => {
            errs.push(
                path,
                format!(
                    "must be a whole number between {min} and {max}, not {}",
                    kind(value)
                ),
            );
            None
        }
    }
}

/// Reads a free-text field through the one rule for free text
/// ([`super::text::free_text`]: no invisible, control, bidi, private-use or
/// unassigned code points; NFC; `min..=max` characters), recording an error
/// naming `path`. Returns the NFC text to store.
pub fn text(
    s: &str,
    path: &str,
    min: usize,
    max: usize,
    allow_newlines: bool,
    errs: &mut FieldErrors,
) -> Option<String> {
    match super::text::free_text(s, min, max, allow_newlines) {
        Ok(t) => Some(t),
        Err(e) => {
            errs.push(path, e.to_string());
            None
        }
    }
}

/// Reads an array of enum values, reporting bad and duplicate items by index.
pub(crate) fn enum_set<T: Ord + Copy>(
    value: &Value,
    path: &str,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
    errs: &mut FieldErrors,
) -> Option<BTreeSet<T>> {
    let items = as_array(value, path, errs)?;
    let mut out = BTreeSet::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match as_str(item, &p, errs) {
            Some(s) => match parse(s) {
                Some(v) => {
                    if !out.insert(v) {
                        errs.push(p, format!("{s} is listed twice"));
                        ok = false;
                    }
                }
                None => {
                    errs.push(p, format!("must be one of {allowed}"));
                    ok = false;
                }
            },
            None => ok = false,
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_and_missing_fields_are_all_reported() {
        let v = json!({"a": "x", "zz": 1, "yy": 2});
        let mut errs = FieldErrors::default();
        let mut o = Obj::new(&v, "doc", &mut errs).expect("object");
        assert_eq!(o.required_str("a", &mut errs), Some("x"));
        assert_eq!(o.required_str("b", &mut errs), None);
        o.finish(&mut errs);
        let fields: Vec<_> = errs.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["doc.b", "doc.yy", "doc.zz"]);
    }

    #[test]
    fn null_counts_as_absent() {
        let v = json!({"a": null});
        let mut errs = FieldErrors::default();
        let mut o = Obj::new(&v, "", &mut errs).expect("object");
        assert!(o.optional("a").is_none());
        assert!(o.required("a", &mut errs).is_none());
        assert_eq!(errs.as_slice()[0].field, "a");
    }

    #[test]
    fn text_limits_and_control_characters() {
        let mut errs = FieldErrors::default();
        assert!(text("abc", "f", 1, 3, false, &mut errs).is_some());
        assert!(text("abcd", "f", 1, 3, false, &mut errs).is_none());
        assert!(text("", "f", 1, 3, false, &mut errs).is_none());
        assert!(text("a\u{0}", "f", 1, 3, false, &mut errs).is_none());
        assert!(text("a\u{202E}", "f", 1, 3, false, &mut errs).is_none());
        assert!(text("a\nb", "f", 1, 3, true, &mut errs).is_some());
        assert_eq!(errs.as_slice().len(), 4);
        assert_eq!(errs.as_slice()[1].message, "must not be empty");
        assert_eq!(
            text("e\u{301}", "f", 1, 1, false, &mut errs).as_deref(),
            Some("\u{e9}")
        );
    }

    #[test]
    fn enum_sets_report_bad_and_duplicate_items() {
        let v = json!(["a", "b", "a", "q", 3]);
        let mut errs = FieldErrors::default();
        let parse = |s: &str| match s {
            "a" => Some(1),
            "b" => Some(2),
            _ => None,
        };
        assert!(enum_set(&v, "s", parse, "a, b", &mut errs).is_none());
        let fields: Vec<_> = errs.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["s[2]", "s[3]", "s[4]"]);
    }

    #[test]
    fn integers_are_range_checked() {
        let mut errs = FieldErrors::default();
        assert_eq!(as_int_in(&json!(5), "n", 1, 10, &mut errs), Some(5));
        assert_eq!(as_int_in(&json!(0), "n", 1, 10, &mut errs), None);
        assert_eq!(as_int_in(&json!(2.5), "n", 1, 10, &mut errs), None);
        assert_eq!(as_int_in(&json!(-1), "n", 1, 10, &mut errs), None);
        assert_eq!(errs.as_slice().len(), 3);
    }
}
