//! A record as served to DPOs (`GET /v1/audit`, the JSON Lines export) and
//! read back from an export by `brdo audit verify --export`.
//!
//! Reading back is strict: unknown or missing fields are errors, so an
//! export with anything added or dropped cannot verify.

use serde_json::{Map, Value, json};

use super::fields::{FIELDS, Field, FieldSource, Kind};
use super::record::{AuditRecord, RecordDraft};

impl AuditRecord {
    /// The record as served: its body plus `prev_hash` and `hash`.
    pub fn to_json(&self) -> Value {
        let mut v = self.draft.body(self.seq);
        if let Value::Object(map) = &mut v {
            map.insert(
                "prev_hash".to_owned(),
                Value::String(self.prev_hash.clone()),
            );
            map.insert("hash".to_owned(), Value::String(self.hash.clone()));
        }
        v
    }

    /// The record as served: in full, or when `reduced` only its place in
    /// the chain.
    pub(crate) fn to_served(&self, reduced: bool) -> Value {
        if reduced {
            json!({"seq": self.seq, "prev_hash": self.prev_hash, "hash": self.hash, "reduced": true})
        } else {
            self.to_json()
        }
    }

    /// Reads a record as served (API, export): the inverse of
    /// [`to_served`](Self::to_served). Returns the record and whether it is
    /// reduced.
    pub fn from_served(v: &Value) -> Result<(Self, bool), String> {
        let obj = v.as_object().ok_or("a record must be a JSON object")?;
        let seq = obj
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or("seq must be a whole number")?;
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let prev_hash = text("prev_hash").ok_or("prev_hash is missing")?;
        let hash = text("hash").ok_or("hash is missing")?;
        let reduced = obj.get("reduced") == Some(&Value::Bool(true));
        let draft = if reduced {
            if obj.len() != 4 {
                return Err(format!("reduced record {seq} carries fields"));
            }
            RecordDraft::reduced()
        } else {
            check_shape(obj, seq)?;
            RecordDraft::read(&mut Served { obj })?
        };
        let rec = AuditRecord {
            seq,
            draft,
            prev_hash,
            hash,
        };
        Ok((rec, reduced))
    }
}

/// Refuses keys no field has, and a group that is not an object holding
/// exactly its members.
fn check_shape(obj: &Map<String, Value>, seq: u64) -> Result<(), String> {
    let known =
        |k: &str| k == "prev_hash" || k == "hash" || FIELDS.iter().any(|d| d.top_key() == k);
    if let Some(k) = obj.keys().find(|k| !known(k)) {
        return Err(format!("record {seq} has an unknown field {k:?}"));
    }
    let mut groups: Vec<&str> = FIELDS.iter().filter_map(|d| d.group).collect();
    groups.dedup();
    for g in groups {
        let members: Vec<&str> = FIELDS
            .iter()
            .filter(|d| d.group == Some(g))
            .map(|d| d.key)
            .collect();
        let group = obj
            .get(g)
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{g} must be an object"))?;
        if group.len() != members.len() {
            return Err(format!(
                "record {seq}: {g} must have exactly {}",
                members.join(", ")
            ));
        }
    }
    Ok(())
}

/// A served record's object, read field by field.
struct Served<'a> {
    obj: &'a Map<String, Value>,
}

impl Served<'_> {
    /// The field's value (`None` when its key is missing) and its name in
    /// messages (`actor.role`).
    fn get(&self, field: Field) -> (Option<&Value>, String) {
        let def = field.def();
        match def.group {
            None => (self.obj.get(def.key), def.key.to_owned()),
            Some(g) => (
                self.obj
                    .get(g)
                    .and_then(Value::as_object)
                    .and_then(|m| m.get(def.key)),
                format!("{g}.{}", def.key),
            ),
        }
    }
}

impl FieldSource for Served<'_> {
    type Error = String;

    fn text(&mut self, field: Field) -> Result<String, String> {
        match self.get(field) {
            (Some(Value::String(s)), _) => Ok(s.clone()),
            (_, name) => Err(format!("{name} is missing")),
        }
    }

    fn word<T>(&mut self, field: Field, parse: fn(&str) -> Option<T>) -> Result<T, String> {
        let (v, name) = self.get(field);
        v.and_then(Value::as_str)
            .and_then(parse)
            .ok_or_else(|| format!("{name} is not known"))
    }

    fn opt_text(&mut self, field: Field) -> Result<Option<String>, String> {
        let in_group = field.def().group.is_some();
        match (field.def().kind, self.get(field)) {
            (_, (Some(Value::String(s)), _)) => Ok(Some(s.clone())),
            // An extension is left out when unset; never `null`.
            (Kind::OptText, (None, _)) => Ok(None),
            (Kind::OptText, (Some(_), name)) => Err(format!("{name} must be a string")),
            // A group's members are all present (checked with the group).
            (_, (None, _)) if !in_group => Ok(None),
            (_, (Some(Value::Null), _)) => Ok(None),
            (_, (_, name)) => Err(format!("{name} must be a string or null")),
        }
    }

    fn list(&mut self, field: Field) -> Result<Vec<String>, String> {
        let (v, name) = self.get(field);
        v.and_then(Value::as_array)
            .ok_or_else(|| format!("{name} must be a list"))?
            .iter()
            .map(|c| {
                c.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{name} must be strings"))
            })
            .collect()
    }

    fn object(&mut self, field: Field) -> Result<Option<Map<String, Value>>, String> {
        match self.get(field) {
            (None, _) => Ok(None),
            (Some(Value::Object(m)), _) => Ok(Some(m.clone())),
            (Some(_), name) => Err(format!("{name} must be an object")),
        }
    }
}
