//! One audit record and its place in the hash chain.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::jcs;
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

/// Who acted. `role` is `partner`, `dpo`, `operator`, `system`, or
/// `unidentified` for a certificate that names no Brdo identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The role.
    pub role: String,
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
            role: "system".to_owned(),
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
    /// SPEC §5 and the shared vectors define.
    pub fn body(&self, seq: u64) -> Value {
        let mut obj = json!({
            "seq": seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "message_id": self.message_id,
            "counterparts": self.counterparts,
            "outcome": self.outcome,
            "code": self.code,
            "justification": self.justification,
            "request_id": self.request_id,
        });
        if let Value::Object(map) = &mut obj {
            if let Some(node) = &self.node {
                map.insert("node".to_owned(), Value::String(node.clone()));
            }
            if let Some(details) = &self.details {
                map.insert("details".to_owned(), Value::Object(details.clone()));
            }
        }
        obj
    }

    /// Writes the canonical form of [`body`](Self::body) directly, without
    /// building a JSON value: the keys are ASCII, so their RFC 8785 order is
    /// fixed and known. Verification runs this once per record, so it must
    /// be fast; a test checks it against the generic canonicaliser.
    pub fn canonical_into(&self, seq: u64, out: &mut String) {
        use std::fmt::Write as _;
        let opt = |v: &Option<String>, out: &mut String| match v {
            Some(s) => jcs::write_string(s, out),
            None => out.push_str("null"),
        };
        out.push_str("{\"action\":");
        jcs::write_string(self.action.as_str(), out);
        out.push_str(",\"actor\":{\"cert_serial\":");
        opt(&self.actor.cert_serial, out);
        out.push_str(",\"id\":");
        opt(&self.actor.id, out);
        out.push_str(",\"officer\":");
        opt(&self.actor.officer, out);
        out.push_str(",\"role\":");
        jcs::write_string(&self.actor.role, out);
        out.push_str("},\"at\":");
        jcs::write_string(&self.at, out);
        out.push_str(",\"code\":");
        opt(&self.code, out);
        out.push_str(",\"counterparts\":[");
        for (i, c) in self.counterparts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            jcs::write_string(c, out);
        }
        out.push(']');
        if let Some(details) = &self.details {
            out.push_str(",\"details\":");
            jcs::canonicalize_into(&Value::Object(details.clone()), out);
        }
        out.push_str(",\"justification\":");
        opt(&self.justification, out);
        out.push_str(",\"message_id\":");
        opt(&self.message_id, out);
        if let Some(node) = &self.node {
            out.push_str(",\"node\":");
            jcs::write_string(node, out);
        }
        out.push_str(",\"outcome\":");
        jcs::write_string(self.outcome.as_str(), out);
        out.push_str(",\"request_id\":");
        opt(&self.request_id, out);
        let _ = write!(out, ",\"seq\":{seq}}}");
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

    /// Recomputes the hash from the fields; `true` when it matches.
    pub fn hash_matches(&self) -> bool {
        let mut canonical = String::with_capacity(512);
        self.draft.canonical_into(self.seq, &mut canonical);
        let Ok(expected) = decode_hash(&self.hash) else {
            return false;
        };
        chain_digest(&self.prev_hash, &canonical).is_ok_and(|h| h == expected)
    }

    /// Reads a record as served (API, export): the inverse of
    /// [`to_json`](Self::to_json). Returns the record and whether it is
    /// reduced. Unknown or missing fields are errors, so an export with
    /// anything added or dropped cannot verify.
    pub fn from_served(v: &Value) -> Result<(Self, bool), String> {
        let obj = v.as_object().ok_or("a record must be a JSON object")?;
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let opt = |k: &str| -> Result<Option<String>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{k} must be a string or null")),
            }
        };
        let seq = obj
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or("seq must be a whole number")?;
        let prev_hash = text("prev_hash").ok_or("prev_hash is missing")?;
        let hash = text("hash").ok_or("hash is missing")?;
        if obj.get("reduced") == Some(&Value::Bool(true)) {
            if obj.len() != 4 {
                return Err(format!("reduced record {seq} carries fields"));
            }
            let draft = RecordDraft {
                at: String::new(),
                actor: Actor {
                    role: String::new(),
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
            };
            return Ok((
                AuditRecord {
                    seq,
                    draft,
                    prev_hash,
                    hash,
                },
                true,
            ));
        }
        const KNOWN: &[&str] = &[
            "seq",
            "at",
            "actor",
            "action",
            "message_id",
            "counterparts",
            "outcome",
            "code",
            "justification",
            "request_id",
            "node",
            "details",
            "prev_hash",
            "hash",
        ];
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!("record {seq} has an unknown field {k:?}"));
        }
        let actor = obj
            .get("actor")
            .and_then(Value::as_object)
            .ok_or("actor must be an object")?;
        let actor_opt = |k: &str| -> Result<Option<String>, String> {
            match actor.get(k) {
                Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                _ => Err(format!("actor.{k} must be a string or null")),
            }
        };
        if actor.len() != 4 {
            return Err(format!(
                "record {seq}: actor must have exactly role, id, officer, cert_serial"
            ));
        }
        let draft = RecordDraft {
            at: text("at").ok_or("at is missing")?,
            actor: Actor {
                role: actor
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or("actor.role is missing")?
                    .to_owned(),
                id: actor_opt("id")?,
                officer: actor_opt("officer")?,
                cert_serial: actor_opt("cert_serial")?,
            },
            action: text("action")
                .as_deref()
                .and_then(Action::parse)
                .ok_or("action is not known")?,
            message_id: opt("message_id")?,
            counterparts: obj
                .get("counterparts")
                .and_then(Value::as_array)
                .ok_or("counterparts must be a list")?
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_owned)
                        .ok_or("counterparts must be strings")
                })
                .collect::<Result<_, _>>()?,
            outcome: text("outcome")
                .as_deref()
                .and_then(Outcome::parse)
                .ok_or("outcome is not known")?,
            code: opt("code")?,
            justification: opt("justification")?,
            request_id: opt("request_id")?,
            node: match obj.get("node") {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err("node must be a string".into()),
            },
            details: match obj.get("details") {
                None => None,
                Some(Value::Object(m)) => Some(m.clone()),
                Some(_) => return Err("details must be an object".into()),
            },
        };
        Ok((
            AuditRecord {
                seq,
                draft,
                prev_hash,
                hash,
            },
            false,
        ))
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

/// A stored record's fields, borrowed as read: the bulk verification path,
/// which must not allocate per record. `counterparts` and `details` are the
/// stored JSON texts, which the writer stores in canonical form; they are
/// embedded verbatim, so any other spelling in the database fails the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFields<'a> {
    /// Position in the log.
    pub seq: u64,
    /// Time.
    pub at: &'a str,
    /// Actor role.
    pub role: &'a str,
    /// Actor id.
    pub id: Option<&'a str>,
    /// Officer.
    pub officer: Option<&'a str>,
    /// Certificate serial.
    pub cert_serial: Option<&'a str>,
    /// Action.
    pub action: &'a str,
    /// Message id.
    pub message_id: Option<&'a str>,
    /// Counterparts, as stored (a JSON array).
    pub counterparts: &'a str,
    /// Outcome.
    pub outcome: &'a str,
    /// Code.
    pub code: Option<&'a str>,
    /// Justification.
    pub justification: Option<&'a str>,
    /// Request id.
    pub request_id: Option<&'a str>,
    /// Node.
    pub node: Option<&'a str>,
    /// Details, as stored (canonical JSON object), if any.
    pub details: Option<&'a str>,
}

impl StoredFields<'_> {
    /// Writes the canonical form, byte for byte what
    /// [`RecordDraft::canonical_into`] writes for the same record.
    pub fn canonical_into(&self, out: &mut String) {
        use std::fmt::Write as _;
        let opt = |v: Option<&str>, out: &mut String| match v {
            Some(s) => jcs::write_string(s, out),
            None => out.push_str("null"),
        };
        out.push_str("{\"action\":");
        jcs::write_string(self.action, out);
        out.push_str(",\"actor\":{\"cert_serial\":");
        opt(self.cert_serial, out);
        out.push_str(",\"id\":");
        opt(self.id, out);
        out.push_str(",\"officer\":");
        opt(self.officer, out);
        out.push_str(",\"role\":");
        jcs::write_string(self.role, out);
        out.push_str("},\"at\":");
        jcs::write_string(self.at, out);
        out.push_str(",\"code\":");
        opt(self.code, out);
        out.push_str(",\"counterparts\":");
        out.push_str(self.counterparts);
        if let Some(details) = self.details {
            out.push_str(",\"details\":");
            out.push_str(details);
        }
        out.push_str(",\"justification\":");
        opt(self.justification, out);
        out.push_str(",\"message_id\":");
        opt(self.message_id, out);
        if let Some(node) = self.node {
            out.push_str(",\"node\":");
            jcs::write_string(node, out);
        }
        out.push_str(",\"outcome\":");
        jcs::write_string(self.outcome, out);
        out.push_str(",\"request_id\":");
        opt(self.request_id, out);
        let _ = write!(out, ",\"seq\":{}}}", self.seq);
    }
}

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
pub fn chain_digest(prev_hash: &str, canonical: &str) -> Result<[u8; 32], ChainError> {
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

#[cfg(test)]
mod tests {

    use super::*;

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
        role: String,
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
                actor: Actor { role: s(1).unwrap_or_default(), id: s(2), officer: s(3), cert_serial: s(4) },
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
            let counterparts_col = serde_json::to_string(&draft.counterparts).expect("json");
            let details_col = draft.details.as_ref().map(|m| jcs::canonicalize(&Value::Object(m.clone())));
            let view = StoredFields {
                seq,
                at: &draft.at,
                role: &draft.actor.role,
                id: draft.actor.id.as_deref(),
                officer: draft.actor.officer.as_deref(),
                cert_serial: draft.actor.cert_serial.as_deref(),
                action: draft.action.as_str(),
                message_id: draft.message_id.as_deref(),
                counterparts: &counterparts_col,
                outcome: draft.outcome.as_str(),
                code: draft.code.as_deref(),
                justification: draft.justification.as_deref(),
                request_id: draft.request_id.as_deref(),
                node: draft.node.as_deref(),
                details: details_col.as_deref(),
            };
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
