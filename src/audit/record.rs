//! One audit record and its place in the hash chain.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use super::canonical::value;
use super::fields::{FIELDS, Field, FieldSource, FieldValue, FieldView};
use super::jcs;
pub use super::role::Role;
pub use super::stored::StoredFields;
use crate::domain::string_enum;

/// `prev_hash` of the first record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

string_enum! {
    /// What happened, in the vocabulary of LED Art. 25 plus the gateway's own
    /// operations. Stored as text; the DPO API filters on it.
    pub enum Action {
        /// A message was accepted.
        Collect = "collect",
        /// A message was made available onward (forward).
        Disclose = "disclose",
        /// Content was read.
        Consult = "consult",
        /// A label, review decision or hold changed.
        Alter = "alter",
        /// Content was erased.
        Erase = "erase",
        /// A request was refused (identity, role, policy or need-to-know).
        Deny = "deny",
        /// A recipient acknowledged a message.
        Acknowledge = "acknowledge",
        /// An originator granted a permission.
        Grant = "grant",
        /// A recipient recorded judicial use.
        JudicialUse = "judicial_use",
        /// A DPO queried the audit log.
        AuditQuery = "audit_query",
        /// A DPO exported the audit log.
        AuditExport = "audit_export",
        /// An operator suspended a partner.
        PartnerSuspend = "partner_suspend",
        /// An operator resumed a partner.
        PartnerResume = "partner_resume",
        /// A certificate was issued.
        CertIssue = "cert_issue",
        /// A certificate was revoked.
        CertRevoke = "cert_revoke",
        /// Policy, certificates and CRL were reloaded.
        ConfigReload = "config_reload",
        /// A partner listed its inbox (headers, including subjects, were shown).
        List = "list",
        /// An originator read its message's delivery status.
        Status = "status",
        /// A partner uploaded an attachment.
        Upload = "upload",
        /// An operator or DPO read gateway state (partners, certificates,
        /// checkpoints, proofs), or any caller read the API description.
        Inspect = "inspect",
        /// A request that matched no operation (unknown route or method).
        Request = "request",
        /// A CRL was put in force (at start or on a change: serials added
        /// and removed), or refused as expired or older than the one in force.
        CrlUpdate = "crl_update",
        /// The gateway started: the effective configuration's digest and
        /// the settings weaker than their safe defaults.
        ConfigStart = "config_start",
    }
}

string_enum! {
    /// How the request or action ended.
    pub enum Outcome {
        /// Done.
        Allowed = "allowed",
        /// Refused by identity, role, policy or need-to-know.
        Denied = "denied",
        /// Not done: bad input or an internal failure.
        Failed = "failed",
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The role: `partner`, `dpo`, `operator`, `system`, or `unidentified`
    /// for a certificate that names no Brdo identity.
    pub role: Role,
    /// Partner id, operator name, `gateway` for the gateway DPO, or the
    /// system task's name.
    pub id: Option<String>,
    /// The person acting (`Brdo-Officer`), when given.
    pub officer: Option<String>,
    /// Serial of the client certificate (lowercase hex).
    pub cert_serial: Option<String>,
}

impl Actor {
    /// A system task (retention sweeper, checkpointer).
    pub fn system(task: &str) -> Self {
        Self {
            role: Role::System,
            id: Some(task.to_owned()),
            officer: None,
            cert_serial: None,
        }
    }
}

/// A record before it has a place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDraft {
    /// When (RFC 3339, UTC, milliseconds, `Z`).
    pub at: String,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: Action,
    /// The message concerned.
    pub message_id: Option<String>,
    /// The other partners concerned (recipients, sender, …).
    pub counterparts: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The error or violation code, when not allowed.
    pub code: Option<String>,
    /// Why (`Brdo-Justification`), when given.
    pub justification: Option<String>,
    /// The request it belongs to; `None` for system actions.
    pub request_id: Option<String>,
    /// The gateway node that wrote it, in multi-node deployments.
    pub node: Option<String>,
    /// Further structured facts (violations, listed message ids, the
    /// retention rule applied). Never message content.
    pub details: Option<Map<String, Value>>,
}

impl RecordDraft {
    /// A record of the gateway's own doing (start, the TLS watch, a key
    /// rotation): no caller, no message, allowed, stamped now. One
    /// constructor so each such writer names only what differs.
    pub fn system(task: &str, action: Action, details: Map<String, Value>) -> Self {
        Self {
            at: format_at(time::OffsetDateTime::now_utc()),
            actor: Actor::system(task),
            action,
            message_id: None,
            counterparts: Vec::new(),
            outcome: Outcome::Allowed,
            code: None,
            justification: None,
            request_id: None,
            node: None,
            details: Some(details),
        }
    }
}

/// A draft at a position: the record's fields as the typed value holds
/// them, for the forms derived from [`FIELDS`].
#[derive(Debug, Clone, Copy)]
pub struct Numbered<'a> {
    /// Position in the log.
    pub seq: u64,
    /// The fields.
    pub draft: &'a RecordDraft,
}

impl<'a> Numbered<'a> {
    /// The value of `field`, borrowed from the draft. The match is
    /// exhaustive, so a field added to [`FIELDS`] cannot be forgotten here.
    pub fn get(&self, field: Field) -> FieldValue<'a> {
        fn opt(v: &Option<String>) -> FieldValue<'_> {
            v.as_deref().map_or(FieldValue::Null, FieldValue::Text)
        }
        let d = self.draft;
        match field {
            Field::Seq => FieldValue::Seq(self.seq),
            Field::At => FieldValue::Text(&d.at),
            Field::ActorRole => FieldValue::Text(d.actor.role.as_str()),
            Field::ActorId => opt(&d.actor.id),
            Field::ActorOfficer => opt(&d.actor.officer),
            Field::ActorCertSerial => opt(&d.actor.cert_serial),
            Field::Action => FieldValue::Text(d.action.as_str()),
            Field::MessageId => opt(&d.message_id),
            Field::Counterparts => FieldValue::List(&d.counterparts),
            Field::Outcome => FieldValue::Text(d.outcome.as_str()),
            Field::Code => opt(&d.code),
            Field::Justification => opt(&d.justification),
            Field::RequestId => opt(&d.request_id),
            Field::Node => d
                .node
                .as_deref()
                .map_or(FieldValue::Absent, FieldValue::Text),
            Field::Details => d
                .details
                .as_ref()
                .map_or(FieldValue::Absent, FieldValue::Object),
        }
    }
}

impl FieldView for Numbered<'_> {
    fn value(&self, field: Field) -> FieldValue<'_> {
        self.get(field)
    }
}

/// A record in the chain, as stored and as served to DPOs.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// The record's fields.
    pub draft: RecordDraft,
    /// Hash of the previous record (hex), or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// SHA-256(prev_hash bytes ‖ canonical form), hex.
    pub hash: String,
}

impl RecordDraft {
    /// The record as a JSON object without `hash` and `prev_hash`: exactly
    /// what is canonicalised and hashed. Optional extensions (`node`,
    /// `details`) appear only when set, so records without them hash as
    /// SPEC §5 and the shared vectors define. Keys in [`FIELDS`] order.
    pub fn body(&self, seq: u64) -> Value {
        let view = Numbered { seq, draft: self };
        let mut map = Map::new();
        for def in FIELDS {
            let Some(v) = view.value(def.field).to_json() else {
                continue;
            };
            match def.group {
                None => {
                    map.insert(def.key.to_owned(), v);
                }
                Some(g) => {
                    let group = map
                        .entry(g.to_owned())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(members) = group {
                        members.insert(def.key.to_owned(), v);
                    }
                }
            }
        }
        Value::Object(map)
    }

    /// Writes the canonical form of [`body`](Self::body) directly, without
    /// building a JSON value (the hand-written fast path, proven equal to
    /// [`canonical::write_canonical`] by `forms_test`).
    pub fn canonical_into(&self, seq: u64, out: &mut String) {
        typed_fast(seq, self, out);
    }

    /// Reads a record's fields from one of its forms, each by its kind.
    /// Fields are read in [`FIELDS`] order, so a form reports the first
    /// bad field in column order.
    pub fn read<S: FieldSource>(src: &mut S) -> Result<Self, S::Error> {
        Ok(RecordDraft {
            at: src.text(Field::At)?,
            actor: Actor {
                role: Role::from_word(src.text(Field::ActorRole)?),
                id: src.opt_text(Field::ActorId)?,
                officer: src.opt_text(Field::ActorOfficer)?,
                cert_serial: src.opt_text(Field::ActorCertSerial)?,
            },
            action: src.word(Field::Action, Action::parse)?,
            message_id: src.opt_text(Field::MessageId)?,
            counterparts: src.list(Field::Counterparts)?,
            outcome: src.word(Field::Outcome, Outcome::parse)?,
            code: src.opt_text(Field::Code)?,
            justification: src.opt_text(Field::Justification)?,
            request_id: src.opt_text(Field::RequestId)?,
            node: src.opt_text(Field::Node)?,
            details: src.object(Field::Details)?,
        })
    }

    /// The fields of a reduced record (dropped at the end of audit
    /// retention): empty, never served or hashed.
    pub fn reduced() -> Self {
        RecordDraft {
            at: String::new(),
            actor: Actor {
                role: Role::Other(String::new()),
                id: None,
                officer: None,
                cert_serial: None,
            },
            action: Action::Request,
            message_id: None,
            counterparts: Vec::new(),
            outcome: Outcome::Allowed,
            code: None,
            justification: None,
            request_id: None,
            node: None,
            details: None,
        }
    }

    /// Places the draft after `prev_hash` at `seq`, computing its hash.
    /// Refuses a `seq` above [`MAX_SEQ`], which canonical JSON could not
    /// tell from its neighbours.
    pub fn chain(self, seq: u64, prev_hash: &str) -> Result<AuditRecord, ChainError> {
        if seq > MAX_SEQ {
            return Err(ChainError(format!(
                "sequence number {seq} is beyond the largest exact JSON integer"
            )));
        }
        let mut canonical = String::with_capacity(512);
        self.canonical_into(seq, &mut canonical);
        let hash = chain_hash(prev_hash, &canonical)?;
        Ok(AuditRecord {
            seq,
            draft: self,
            prev_hash: prev_hash.to_owned(),
            hash,
        })
    }
}

impl AuditRecord {
    /// Recomputes the hash from the fields; `true` when it matches.
    pub fn hash_matches(&self) -> bool {
        let mut canonical = String::with_capacity(512);
        self.draft.canonical_into(self.seq, &mut canonical);
        let Ok(expected) = decode_hash(&self.hash) else {
            return false;
        };
        chain_digest(&self.prev_hash, &canonical).is_ok_and(|h| h == expected)
    }

    /// The record's hash as the 32 bytes that are its Merkle leaf data.
    pub fn hash_bytes(&self) -> Result<[u8; 32], ChainError> {
        decode_hash(&self.hash)
    }
}

/// The largest `seq` a record may have: RFC 8785 writes numbers as IEEE
/// doubles, so integers above 2^53 would share a canonical form with their
/// neighbours and two records could hash alike (found by fuzzing).
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// A record that cannot be placed in the chain: a malformed hash or an
/// out-of-range sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot chain the record: {0}")]
pub struct ChainError(pub String);

/// Decodes a hash written as 64 lower-case hex digits (the only spelling the
/// log uses, so two spellings of one hash cannot both verify).
pub fn decode_hash(hex_hash: &str) -> Result<[u8; 32], ChainError> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = hex_hash.as_bytes();
    let bad = || {
        ChainError(format!(
            "{hex_hash:?} is not a SHA-256 hash in lower-case hex"
        ))
    };
    if bytes.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = (nibble(pair[0]).ok_or_else(bad)? << 4) | nibble(pair[1]).ok_or_else(bad)?;
    }
    Ok(out)
}

/// SHA-256(prev_hash bytes ‖ canonical UTF-8), raw.
pub(crate) fn chain_digest(prev_hash: &str, canonical: &str) -> Result<[u8; 32], ChainError> {
    let prev = decode_hash(prev_hash)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&prev);
    ctx.update(canonical.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// SHA-256(prev_hash bytes ‖ canonical UTF-8), hex (SPEC §5 "Integrity").
pub fn chain_hash(prev_hash: &str, canonical: &str) -> Result<String, ChainError> {
    chain_digest(prev_hash, canonical).map(hex::encode)
}

pub use crate::domain::time::format_at;

/// The typed record's canonical form, hand-written in canonical order:
/// measured about a quarter faster than the reference writer, and the
/// verifier runs it once per record. `forms_test` checks it against the
/// generic writer and the RFC 8785 canonicaliser for every field, so a
/// field added to the field table but not here fails there.
fn typed_fast(seq: u64, d: &RecordDraft, out: &mut String) {
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

#[cfg(test)]
mod tests {

    use super::*;

    use crate::audit::jcs;
    use crate::audit::stored::JsonColumns;
    use crate::audit::vectors_dir;

    /// Reads a vector record into a draft, field by field, as the store would.
    fn draft_from(v: &Value) -> RecordDraft {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        RecordDraft {
            at: s("at").expect("at"),
            actor: serde_json::from_value::<ActorIn>(v["actor"].clone())
                .expect("actor")
                .into(),
            action: Action::parse(v["action"].as_str().expect("action")).expect("known action"),
            message_id: s("message_id"),
            counterparts: serde_json::from_value(v["counterparts"].clone()).expect("counterparts"),
            outcome: Outcome::parse(v["outcome"].as_str().expect("outcome"))
                .expect("known outcome"),
            code: s("code"),
            justification: s("justification"),
            request_id: s("request_id"),
            node: None,
            details: None,
        }
    }

    #[derive(serde::Deserialize)]
    struct ActorIn {
        role: Role,
        id: Option<String>,
        officer: Option<String>,
        cert_serial: Option<String>,
    }

    impl From<ActorIn> for Actor {
        fn from(a: ActorIn) -> Self {
            Actor {
                role: a.role,
                id: a.id,
                officer: a.officer,
                cert_serial: a.cert_serial,
            }
        }
    }

    #[test]
    fn shared_chain_vectors() {
        let path = vectors_dir().join("audit/chain.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text).expect("json");
        let chain = doc["chain"].as_array().expect("chain");
        assert_eq!(chain.len(), 4);
        let mut prev = GENESIS_HASH.to_owned();
        for entry in chain {
            let rec = &entry["record"];
            let seq = rec["seq"].as_u64().expect("seq");
            let draft = draft_from(rec);
            assert_eq!(
                jcs::canonicalize(&draft.body(seq)),
                entry["canonical"].as_str().expect("canonical")
            );
            assert_eq!(rec["prev_hash"].as_str(), Some(prev.as_str()));
            let chained = draft.chain(seq, &prev).expect("chain");
            assert_eq!(
                chained.hash,
                rec["hash"].as_str().expect("hash"),
                "seq {seq}"
            );
            assert!(chained.hash_matches());
            assert_eq!(&chained.to_json(), rec);
            prev = chained.hash;
        }
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let draft = RecordDraft {
            at: "2026-11-21T10:15:02.113Z".into(),
            actor: Actor::system("retention"),
            action: Action::Erase,
            message_id: Some("m".into()),
            counterparts: vec!["RS-MOI".into()],
            outcome: Outcome::Allowed,
            code: None,
            justification: None,
            request_id: None,
            node: None,
            details: None,
        };
        let base = draft.clone().chain(7, GENESIS_HASH).expect("chain");
        let mut other = draft.clone();
        other.counterparts.push("AL-CTD".into());
        assert_ne!(other.chain(7, GENESIS_HASH).expect("chain").hash, base.hash);
        let mut other = draft.clone();
        other.node = Some("n1".into());
        assert_ne!(other.chain(7, GENESIS_HASH).expect("chain").hash, base.hash);
        assert_ne!(
            draft.clone().chain(8, GENESIS_HASH).expect("chain").hash,
            base.hash
        );
        let mut tampered = base.clone();
        tampered.draft.outcome = Outcome::Denied;
        assert!(!tampered.hash_matches());
        assert!(draft.chain(1, "zz").is_err());
    }

    proptest::proptest! {
        #[test]
        fn fast_canonical_form_equals_rfc8785(
            seq in 0u64..(1 << 53),
            strs in proptest::collection::vec(proptest::option::of("\\PC{0,12}|[\"\\\\\u{0}-\u{1f}é😂]{0,4}"), 9),
            counterparts in proptest::collection::vec("[A-Z-]{2,8}", 0..4),
            action in 0usize..Action::ALL.len(),
            outcome in 0usize..Outcome::ALL.len(),
            with_details in proptest::bool::ANY,
        ) {
            let s = |i: usize| strs[i].clone();
            let draft = RecordDraft {
                at: s(0).unwrap_or_default(),
                actor: Actor { role: s(1).unwrap_or_default().into(), id: s(2), officer: s(3), cert_serial: s(4) },
                action: Action::ALL[action],
                message_id: s(5),
                counterparts,
                outcome: Outcome::ALL[outcome],
                code: s(6),
                justification: s(7),
                request_id: s(8),
                node: s(2),
                details: with_details.then(|| serde_json::json!({"b": [1, 2.5, "x"], "a": {"z": null}}).as_object().cloned().unwrap_or_default()),
            };
            let mut fast = String::new();
            draft.canonical_into(seq, &mut fast);
            proptest::prop_assert_eq!(fast, jcs::canonicalize(&draft.body(seq)));
        }
    }

    proptest::proptest! {
        #[test]
        fn stored_columns_canonicalise_like_the_typed_record(
            seq in 1u64..(1 << 53),
            texts in proptest::collection::vec(proptest::option::of("\\PC{0,10}|[\\t\\n\"\\\\é😂]{0,3}"), 6),
            counterparts in proptest::collection::vec("[A-Z-]{2,8}|\\PC{0,4}", 0..3),
            with_details in proptest::bool::ANY,
        ) {
            let t = |i: usize| texts[i].clone();
            let draft = RecordDraft {
                at: "2026-11-21T10:00:00.000Z".into(),
                actor: Actor { role: "partner".into(), id: t(0), officer: t(1), cert_serial: t(2) },
                action: Action::Consult,
                message_id: t(3),
                counterparts: counterparts.clone(),
                outcome: Outcome::Denied,
                code: t(4),
                justification: t(5),
                request_id: t(0),
                node: t(1),
                details: with_details.then(|| serde_json::json!({"z": [1, "é\n"], "a": null}).as_object().cloned().unwrap_or_default()),
            };
            // The columns exactly as the writer stores them.
            let json = JsonColumns::of(&draft).expect("json");
            let view = StoredFields::of(seq, &draft, &json);
            let (mut a, mut b) = (String::new(), String::new());
            view.canonical_into(&mut a);
            draft.canonical_into(seq, &mut b);
            proptest::prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn seq_beyond_exact_json_integers_is_refused() {
        // Regression from fuzz/regressions/audit_record/seq-above-2pow53:
        // 28539402212868096 and its successor canonicalise identically.
        let draft = RecordDraft {
            at: "2026-11-21T10:15:02.113Z".into(),
            actor: Actor::system("retention"),
            action: Action::Erase,
            message_id: None,
            counterparts: vec![],
            outcome: Outcome::Allowed,
            code: None,
            justification: None,
            request_id: None,
            node: None,
            details: None,
        };
        assert_eq!(
            jcs::canonicalize(&draft.body(28_539_402_212_868_096)),
            jcs::canonicalize(&draft.body(28_539_402_212_868_097))
        );
        assert!(
            draft
                .clone()
                .chain(28_539_402_212_868_096, GENESIS_HASH)
                .is_err()
        );
        assert!(draft.clone().chain(MAX_SEQ + 1, GENESIS_HASH).is_err());
        assert!(draft.chain(MAX_SEQ, GENESIS_HASH).is_ok());
    }

    #[test]
    fn hashes_have_one_spelling() {
        assert!(decode_hash(&"AB".repeat(32)).is_err());
        assert!(decode_hash(&"ab".repeat(32)).is_ok());
        assert!(decode_hash(GENESIS_HASH).is_ok());
        assert!(decode_hash(&"ab".repeat(31)).is_err());
    }

    #[test]
    fn at_format() {
        let t = time::macros::datetime!(2026-11-21 10:15:02.113456 +01:00);
        assert_eq!(format_at(t), "2026-11-21T09:15:02.113Z");
    }
}
