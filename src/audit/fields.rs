//! The audit record's fields, named once.
//!
//! Every form of a record follows from [`FIELDS`]: the body that is
//! canonicalised and hashed ([`super::canonical`]), the JSON served to DPOs
//! and read back from exports ([`super::served`]), and the stored columns
//! and their reading back ([`super::stored`]). Adding a field here (and to
//! [`super::record::RecordDraft`], which the exhaustive matches in
//! `record.rs` then demand) is the whole change: no form keeps its own list
//! of keys.

use serde_json::{Map, Value};

/// How a field is written and read in every form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The record's position: a JSON integer, an INTEGER column.
    Seq,
    /// Text that is always present.
    Text,
    /// Text from a closed vocabulary (action, outcome): unknown words are
    /// refused when read back.
    Word,
    /// Text or `null`; the key is always present in the body.
    Nullable,
    /// A list of strings; stored as JSON text.
    List,
    /// An extension string: the key is left out when unset, so records
    /// without it hash as SPEC §5 and the shared vectors define.
    OptText,
    /// An extension JSON object, left out when unset; stored as its
    /// canonical JSON text.
    OptObject,
}

/// One field of the record: where it lives in the body and in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// Which field.
    pub field: Field,
    /// Its JSON key (within `group` when it has one).
    pub key: &'static str,
    /// The JSON object it sits in (`actor`), or `None` at the top level.
    pub group: Option<&'static str>,
    /// Its column in `audit_log`.
    pub column: &'static str,
    /// How it is written and read.
    pub kind: Kind,
    /// What a damaged row lacks, in the store's error ("no time").
    pub noun: &'static str,
}

impl FieldDef {
    /// The key an object holding every field would sort it under: its
    /// group's key, or its own.
    pub const fn top_key(&self) -> &'static str {
        match self.group {
            Some(g) => g,
            None => self.key,
        }
    }
}

/// Defines [`Field`], [`FIELDS`], [`COLUMN_NAMES`] and [`STORED_COLUMNS`]
/// from one list, in column order (which is also the served key order).
macro_rules! record_fields {
    ( $( $(#[$doc:meta])* $variant:ident = $key:literal $(in $group:literal)?,
         column $column:literal, $kind:ident, $noun:literal; )+ ) => {
        /// A field of the audit record, in column order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field { $( $(#[$doc])* $variant ),+ }

        /// Every field, in column order; `FIELDS[f as usize].field == f`.
        pub const FIELDS: &[FieldDef] = &[ $( FieldDef {
            field: Field::$variant,
            key: $key,
            group: record_fields!(@group $($group)?),
            column: $column,
            kind: Kind::$kind,
            noun: $noun,
        } ),+ ];

        /// Every column of an `audit_log` row, fields then chain columns:
        /// the CSV export's header and the bulk reader's packing.
        pub const COLUMN_NAMES: &[&str] = &[ $( $column, )+ "reduced", "prev_hash", "hash" ];

        /// [`COLUMN_NAMES`] as an SQL column list.
        pub const STORED_COLUMNS: &str = concat!( $( $column, ", ", )+ "reduced, prev_hash, hash" );
    };
    (@group) => { None };
    (@group $g:literal) => { Some($g) };
}

record_fields! {
    /// Position in the log, from 1.
    Seq = "seq", column "seq", Seq, "seq";
    /// When (RFC 3339, UTC, milliseconds, `Z`).
    At = "at", column "at", Text, "time";
    /// The actor's role.
    ActorRole = "role" in "actor", column "actor_role", Text, "actor role";
    /// Partner id, operator name, `gateway` or the system task.
    ActorId = "id" in "actor", column "actor_id", Nullable, "actor id";
    /// The person acting.
    ActorOfficer = "officer" in "actor", column "actor_officer", Nullable, "officer";
    /// The client certificate's serial.
    ActorCertSerial = "cert_serial" in "actor", column "actor_cert_serial", Nullable, "certificate serial";
    /// What happened.
    Action = "action", column "action", Word, "action";
    /// The message concerned.
    MessageId = "message_id", column "message_id", Nullable, "message id";
    /// The other partners concerned.
    Counterparts = "counterparts", column "counterparts", List, "counterparts";
    /// How it ended.
    Outcome = "outcome", column "outcome", Word, "outcome";
    /// The error or violation code.
    Code = "code", column "code", Nullable, "code";
    /// Why, when given.
    Justification = "justification", column "justification", Nullable, "justification";
    /// The request it belongs to.
    RequestId = "request_id", column "request_id", Nullable, "request id";
    /// The gateway node that wrote it.
    Node = "node", column "node", OptText, "node";
    /// Further structured facts.
    Details = "details", column "details", OptObject, "details";
}

/// Number of fields (the chain columns follow them in a row).
pub(crate) const FIELD_COUNT: usize = FIELDS.len();
/// Index of the `reduced` column in a row.
pub(crate) const REDUCED_COLUMN: usize = FIELD_COUNT;
/// Index of the `prev_hash` column in a row.
pub(crate) const PREV_HASH_COLUMN: usize = FIELD_COUNT + 1;
/// Index of the `hash` column in a row.
pub(crate) const HASH_COLUMN: usize = FIELD_COUNT + 2;
/// Number of columns of an `audit_log` row.
pub(crate) const COLUMN_COUNT: usize = COLUMN_NAMES.len();

impl Field {
    /// The field's definition.
    pub const fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }
}

/// Whether `a` sorts before `b` as RFC 8785 orders keys. Keys are ASCII
/// (a test checks), where UTF-16 code-unit order is byte order.
#[cfg(test)]
const fn key_before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// Whether `a` comes before `b` in the canonical body: by top-level key,
/// then within a group by key.
#[cfg(test)]
const fn canonical_before(a: &FieldDef, b: &FieldDef) -> bool {
    let (ta, tb) = (a.top_key(), b.top_key());
    if key_before(ta, tb) {
        return true;
    }
    if key_before(tb, ta) {
        return false;
    }
    key_before(a.key, b.key)
}

/// Indexes into [`FIELDS`] in canonical (RFC 8785) order, computed at
/// compile time for the table-driven reference writer the tests hold the
/// hand-written fast writers to.
#[cfg(test)]
pub(crate) const CANONICAL_ORDER: [usize; FIELD_COUNT] = {
    let mut order = [0usize; FIELD_COUNT];
    let mut i = 0;
    while i < FIELD_COUNT {
        order[i] = i;
        i += 1;
    }
    // Insertion sort: fifteen entries, once, at compile time.
    let mut i = 1;
    while i < FIELD_COUNT {
        let mut j = i;
        while j > 0 && canonical_before(&FIELDS[order[j]], &FIELDS[order[j - 1]]) {
            let t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    order
};

/// One field's value, borrowed from whichever form holds the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// The position.
    Seq(u64),
    /// A string.
    Text(&'a str),
    /// `null` (a nullable field without a value).
    Null,
    /// Not there at all (an unset extension: its key is left out).
    Absent,
    /// A list of strings.
    List(&'a [String]),
    /// A JSON object.
    Object(&'a Map<String, Value>),
    /// JSON text as stored, already canonical, embedded verbatim.
    Json(&'a str),
}

impl FieldValue<'_> {
    /// The value as a JSON value (`None` when absent). Stored JSON text is
    /// parsed; an unparsable one becomes `null`.
    pub fn to_json(self) -> Option<Value> {
        Some(match self {
            FieldValue::Seq(n) => Value::from(n),
            FieldValue::Text(s) => Value::String(s.to_owned()),
            FieldValue::Null => Value::Null,
            FieldValue::Absent => return None,
            FieldValue::List(l) => Value::Array(l.iter().cloned().map(Value::String).collect()),
            FieldValue::Object(m) => Value::Object(m.clone()),
            FieldValue::Json(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        })
    }
}

/// A form of a record that can show each field: the typed record and the
/// stored columns.
pub trait FieldView {
    /// The value of `field`.
    fn value(&self, field: Field) -> FieldValue<'_>;
}

/// A form of a record that each field can be read from (served JSON,
/// stored columns). Each method reads one field of the matching kind and
/// applies that form's rules for it.
pub trait FieldSource {
    /// Why a field cannot be read.
    type Error;
    /// A [`Kind::Text`] field.
    fn text(&mut self, field: Field) -> Result<String, Self::Error>;
    /// A [`Kind::Word`] field, parsed by `parse`.
    fn word<T>(&mut self, field: Field, parse: fn(&str) -> Option<T>) -> Result<T, Self::Error>;
    /// A [`Kind::Nullable`] or [`Kind::OptText`] field.
    fn opt_text(&mut self, field: Field) -> Result<Option<String>, Self::Error>;
    /// A [`Kind::List`] field.
    fn list(&mut self, field: Field) -> Result<Vec<String>, Self::Error>;
    /// A [`Kind::OptObject`] field.
    fn object(&mut self, field: Field) -> Result<Option<Map<String, Value>>, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_indexed_by_their_variant() {
        for (i, def) in FIELDS.iter().enumerate() {
            assert_eq!(def.field as usize, i, "{def:?}");
            assert_eq!(def.field.def(), def);
            assert_eq!(COLUMN_NAMES[i], def.column);
        }
        assert_eq!(STORED_COLUMNS, COLUMN_NAMES.join(", "));
        assert_eq!(COLUMN_COUNT, FIELD_COUNT + 3);
    }

    #[test]
    fn keys_need_no_escaping_and_sort_as_utf16() {
        for def in FIELDS {
            for k in [def.key, def.top_key()] {
                assert!(
                    k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{k}"
                );
            }
        }
        let sorted: Vec<(&str, &str)> = CANONICAL_ORDER
            .iter()
            .map(|&i| (FIELDS[i].top_key(), FIELDS[i].key))
            .collect();
        let mut want = sorted.clone();
        want.sort_by(|a, b| {
            let utf16 = |s: &str| s.encode_utf16().collect::<Vec<_>>();
            (utf16(a.0), utf16(a.1)).cmp(&(utf16(b.0), utf16(b.1)))
        });
        assert_eq!(sorted, want);
        let mut seen = CANONICAL_ORDER.to_vec();
        seen.sort_unstable();
        assert_eq!(seen, (0..FIELD_COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn groups_are_contiguous_and_extensions_are_top_level() {
        // The served form builds a group's object at its first member, and
        // an absent extension must not be the only member of a group.
        for (i, def) in FIELDS.iter().enumerate() {
            if let Some(g) = def.group {
                let first = FIELDS.iter().position(|d| d.group == Some(g));
                let last = FIELDS.iter().rposition(|d| d.group == Some(g));
                assert!(first <= Some(i) && Some(i) <= last);
                assert!(
                    FIELDS[first.unwrap_or(0)..=last.unwrap_or(0)]
                        .iter()
                        .all(|d| d.group == Some(g))
                );
                assert!(!matches!(def.kind, Kind::OptText | Kind::OptObject));
            }
        }
    }
}
