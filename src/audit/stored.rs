//! A record as its `audit_log` row holds it: one text column per field
//! (JSON text for lists and objects), then `reduced`, `prev_hash`, `hash`
//! ([`COLUMN_NAMES`](super::fields::COLUMN_NAMES)).
//!
//! Pure: the store runs the SQL, this module says what the columns are and
//! how they read back. The list and object columns are written in
//! canonical form and embedded verbatim when hashing, so any other
//! spelling in the database fails the hash.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::fields::{
    FIELD_COUNT, FIELDS, Field, FieldSource, FieldValue, FieldView, HASH_COLUMN, Kind,
    PREV_HASH_COLUMN, REDUCED_COLUMN,
};
use super::jcs;
use super::record::{AuditRecord, Numbered, RecordDraft};

/// A stored record's fields, borrowed as read: the bulk verification path,
/// which must not allocate per record, and the writer's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFields<'a> {
    seq: u64,
    /// Column text by field index (`seq`'s slot unused).
    columns: [Option<&'a str>; FIELD_COUNT],
}

impl<'a> StoredFields<'a> {
    /// The fields of a row's first [`FIELD_COUNT`] columns, or `None` when
    /// a field that is always present is NULL (a damaged row).
    pub(crate) fn from_columns(seq: u64, columns: &[Option<&'a str>]) -> Option<Self> {
        let columns: [Option<&'a str>; FIELD_COUNT] =
            columns.get(..FIELD_COUNT)?.try_into().ok()?;
        let required =
            |d: &&super::fields::FieldDef| matches!(d.kind, Kind::Text | Kind::Word | Kind::List);
        FIELDS
            .iter()
            .filter(required)
            .all(|d| columns[d.field as usize].is_some())
            .then_some(Self { seq, columns })
    }

    /// The columns the writer stores for `draft` at `seq`, borrowing the
    /// draft and its encoded JSON columns.
    pub fn of(seq: u64, draft: &'a RecordDraft, json: &'a JsonColumns) -> Self {
        let view = Numbered { seq, draft };
        let columns = std::array::from_fn(move |i| match view.get(FIELDS[i].field) {
            FieldValue::Text(s) => Some(s),
            FieldValue::List(_) | FieldValue::Object(_) => json.0[i].as_deref(),
            FieldValue::Seq(_) | FieldValue::Null | FieldValue::Absent | FieldValue::Json(_) => {
                None
            }
        });
        Self { seq, columns }
    }

    /// The position.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The column text of `field` (`None` for NULL, and for `seq`).
    pub fn column(&self, field: Field) -> Option<&'a str> {
        self.columns[field as usize]
    }

    /// Writes the canonical form, byte for byte what
    /// [`RecordDraft::canonical_into`] writes for the same record.
    pub fn canonical_into(&self, out: &mut String) {
        stored_fast(self, out);
    }
}

impl FieldView for StoredFields<'_> {
    fn value(&self, field: Field) -> FieldValue<'_> {
        let col = self.columns[field as usize];
        match (field.def().kind, col) {
            (Kind::Seq, _) => FieldValue::Seq(self.seq),
            (Kind::List | Kind::OptObject, Some(s)) => FieldValue::Json(s),
            (_, Some(s)) => FieldValue::Text(s),
            (Kind::OptText | Kind::OptObject, None) => FieldValue::Absent,
            (_, None) => FieldValue::Null,
        }
    }
}

/// The JSON-valued columns of a record (counterparts, details) as the
/// writer stores them, by field index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonColumns([Option<String>; FIELD_COUNT]);

impl JsonColumns {
    /// Encodes `draft`'s lists (as JSON text) and objects (canonical JSON).
    pub fn of(draft: &RecordDraft) -> Result<Self, serde_json::Error> {
        let view = Numbered { seq: 0, draft };
        let mut out = Self::default();
        for (i, def) in FIELDS.iter().enumerate() {
            out.0[i] = match view.get(def.field) {
                FieldValue::List(l) => Some(serde_json::to_string(l)?),
                FieldValue::Object(m) => Some(jcs::canonicalize(&Value::Object(m.clone()))),
                _ => None,
            };
        }
        Ok(out)
    }
}

/// A row that does not read back as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// Not even the position reads.
    #[error("audit record without a seq")]
    NoSeq,
    /// A column is missing or unreadable.
    #[error("audit record {seq}: {what}")]
    Damaged {
        /// Its position.
        seq: u64,
        /// What is wrong.
        what: String,
    },
}

/// Rebuilds a record from a whole row's columns as text (in
/// [`COLUMN_NAMES`](super::fields::COLUMN_NAMES) order, however they were
/// read). A reduced record comes back with empty fields and `true`; its
/// hash is then only checked for linkage.
pub(crate) fn record_from_columns(f: &[Option<&str>]) -> Result<(AuditRecord, bool), RowError> {
    let seq: u64 = f
        .get(Field::Seq as usize)
        .copied()
        .flatten()
        .and_then(|s| s.parse().ok())
        .ok_or(RowError::NoSeq)?;
    let corrupt = |what: &str| RowError::Damaged {
        seq,
        what: what.to_owned(),
    };
    if f.len() != super::fields::COLUMN_COUNT {
        return Err(corrupt("wrong number of columns"));
    }
    let reduced = f[REDUCED_COLUMN] != Some("0");
    let prev_hash = f[PREV_HASH_COLUMN].ok_or_else(|| corrupt("no prev_hash"))?;
    let hash = f[HASH_COLUMN].ok_or_else(|| corrupt("no hash"))?;
    let draft = if reduced {
        RecordDraft::reduced()
    } else {
        RecordDraft::read(&mut Columns { seq, f })?
    };
    let rec = AuditRecord {
        seq,
        draft,
        prev_hash: prev_hash.to_owned(),
        hash: hash.to_owned(),
    };
    Ok((rec, reduced))
}

/// A row's columns, read field by field.
struct Columns<'a, 'b> {
    seq: u64,
    f: &'b [Option<&'a str>],
}

impl Columns<'_, '_> {
    fn col(&self, field: Field) -> Option<&str> {
        self.f[field as usize]
    }

    fn err(&self, what: String) -> RowError {
        RowError::Damaged {
            seq: self.seq,
            what,
        }
    }
}

impl FieldSource for Columns<'_, '_> {
    type Error = RowError;

    fn text(&mut self, field: Field) -> Result<String, RowError> {
        self.col(field)
            .map(str::to_owned)
            .ok_or_else(|| self.err(format!("no {}", field.def().noun)))
    }

    fn word<T>(&mut self, field: Field, parse: fn(&str) -> Option<T>) -> Result<T, RowError> {
        self.col(field)
            .and_then(parse)
            .ok_or_else(|| self.err(format!("unknown {}", field.def().noun)))
    }

    fn opt_text(&mut self, field: Field) -> Result<Option<String>, RowError> {
        Ok(self.col(field).map(str::to_owned))
    }

    fn list(&mut self, field: Field) -> Result<Vec<String>, RowError> {
        let noun = field.def().noun;
        let text = self
            .col(field)
            .ok_or_else(|| self.err(format!("no {noun}")))?;
        serde_json::from_str(text).map_err(|_| self.err(format!("{noun} is not a list")))
    }

    fn object(&mut self, field: Field) -> Result<Option<Map<String, Value>>, RowError> {
        match self.col(field) {
            None => Ok(None),
            Some(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Ok(Some(m)),
                _ => Err(self.err(format!("{} is not a JSON object", field.def().noun))),
            },
        }
    }
}

/// The stored columns' canonical form, hand-written like `record::typed_fast`
/// (the bulk verifier's path) and checked the same way.
fn stored_fast(f: &StoredFields<'_>, out: &mut String) {
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
