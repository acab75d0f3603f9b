//! The document a message travels in from one gateway to another
//! (`POST /v1/federation/messages`, SPEC §11), and the two views of it
//! each side computes: the submission the receiving gateway validates
//! like any other, and the delivered form the origin's label binding is
//! over.
//!
//! Parsing is strict: a member the contract does not define is refused by
//! name, so a peer cannot smuggle anything past the receiving gateway.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::FieldError;

/// Every member of a relayed message, in the contract's order.
pub const MEMBERS: &[&str] = &[
    "v",
    "id",
    "originator",
    "sender",
    "officer",
    "recipients",
    "subject",
    "body",
    "content_type",
    "label",
    "evaluation",
    "purpose",
    "personal_data",
    "case_ref",
    "in_reply_to",
    "forwarded_from",
    "family",
    "accepted_at",
    "retain_until",
    "review_on",
    "attachments",
    "binding",
    "signatures",
];

/// An attachment of a relayed message. Its bytes travel before the
/// document, streamed to `POST /v1/federation/attachments` (the body limit
/// of a JSON document is far below an attachment's), and the document names
/// the upload the receiving gateway answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayedAttachment {
    /// Its id at the origin (the one the label binding names).
    pub id: String,
    /// Its media type as uploaded.
    pub content_type: String,
    /// SHA-256 of its bytes, hex (the binding's digest for `id`).
    pub sha256: String,
    /// The id the receiving gateway answered for the uploaded bytes.
    pub upload: String,
}

/// The most relayed documents one request may carry (`{"v": 1,
/// "messages": [...]}`, SPEC §11): the sending relay packs at most this
/// many, the receiving gateway refuses more.
pub const MAX_BATCH: usize = 64;

/// A message as one gateway relays it to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayedMessage {
    /// Format version, 1.
    pub v: u32,
    /// The message id (the same on both gateways: the key of exactly-once).
    pub id: String,
    /// Who first provided the information.
    pub originator: String,
    /// Who sent this message (the forwarder, for a forward).
    pub sender: String,
    /// The sender's acting officer.
    pub officer: String,
    /// The recipients behind the receiving gateway (only those).
    pub recipients: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
    /// The body's media type.
    pub content_type: String,
    /// The security label (§2).
    pub label: Value,
    /// The evaluation.
    pub evaluation: Value,
    /// The purpose.
    pub purpose: String,
    /// Personal-data facts, with the special-categories basis.
    pub personal_data: Value,
    /// Case reference.
    pub case_ref: Option<String>,
    /// The message it answers (an id at the origin; informative only).
    pub in_reply_to: Option<String>,
    /// For a forward: the message it forwards (an id at the origin);
    /// `None` for an original.
    pub forwarded_from: Option<String>,
    /// The id of its family's original (its own id for an original), the
    /// key lifecycle notices name, so the receiving gateway finds its copy.
    pub family: String,
    /// When the origin accepted it (RFC 3339).
    pub accepted_at: String,
    /// When its retention ends at the origin (RFC 3339).
    pub retain_until: String,
    /// Its review date at the origin (`YYYY-MM-DD`).
    pub review_on: String,
    /// Attachments, each naming the upload of its bytes.
    pub attachments: Vec<RelayedAttachment>,
    /// The origin's label binding (compact JWS by its envelope key) over
    /// [`RelayedMessage::binding_view`].
    pub binding: String,
    /// The sender signatures the origin holds (as delivered, §3).
    pub signatures: Vec<Value>,
}

impl RelayedMessage {
    /// Parses a received document strictly: every member the contract
    /// does not define, and every missing one, is named.
    pub fn parse(doc: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(obj) = doc.as_object() else {
            return Err(vec![FieldError {
                field: "(body)".into(),
                message: "must be a JSON object".into(),
            }]);
        };
        let mut errors: Vec<FieldError> = obj
            .keys()
            .filter(|k| !MEMBERS.contains(&k.as_str()))
            .map(|k| FieldError {
                field: k.clone(),
                message: "is not a member of a relayed message".into(),
            })
            .collect();
        errors.extend(
            MEMBERS
                .iter()
                .filter(|m| !obj.contains_key(**m))
                .map(|m| FieldError {
                    field: (*m).to_owned(),
                    message: "is required".into(),
                }),
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        let parsed: Self = serde_json::from_value(doc.clone()).map_err(|e| {
            vec![FieldError {
                field: "(body)".into(),
                message: format!("not a relayed message: {e}"),
            }]
        })?;
        if parsed.v != 1 {
            return Err(vec![FieldError {
                field: "v".into(),
                message: "must be 1".into(),
            }]);
        }
        Ok(parsed)
    }

    /// The document as a partner would have submitted it, for the
    /// receiving gateway's own validation (labels, evaluation, purpose,
    /// personal data, limits).
    pub fn submission_view(&self) -> Value {
        json!({
            "recipients": self.recipients,
            "subject": self.subject,
            "body": self.body,
            "content_type": self.content_type,
            "label": self.label,
            "evaluation": self.evaluation,
            "purpose": self.purpose,
            "personal_data": self.personal_data,
            "case_ref": self.case_ref,
            "attachments": self.attachment_ids(),
        })
    }

    /// The delivered form the label binding covers (`crate::binding`):
    /// sender as `from`, the originator, these recipients, label,
    /// evaluation, purpose, acceptance time and the content's digests.
    pub fn binding_view(&self) -> Value {
        json!({
            "id": self.id,
            "from": self.sender,
            "originator": self.originator,
            "recipients": self.recipients,
            "subject": self.subject,
            "body": self.body,
            "label": self.label,
            "evaluation": self.evaluation,
            "purpose": self.purpose,
            "accepted_at": self.accepted_at,
            "attachments": self.attachment_ids(),
        })
    }

    /// The attachment ids, in order.
    pub fn attachment_ids(&self) -> Vec<String> {
        self.attachments.iter().map(|a| a.id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "v": 1, "id": "0190f000-0000-7000-8000-000000000001",
            "originator": "AL-CTD", "sender": "AL-CTD", "officer": "o",
            "recipients": ["RS-MOI"], "subject": "s", "body": "b",
            "content_type": "text/plain", "label": {"classification": "BASIC_PROTECTION"},
            "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
            "purpose": "investigation", "personal_data": {"subjects": []},
            "case_ref": null, "in_reply_to": null, "forwarded_from": null,
            "family": "0190f000-0000-7000-8000-000000000001",
            "accepted_at": "2026-01-01T00:00:00.000Z", "retain_until": "2027-01-01T00:00:00.000Z",
            "review_on": "2026-12-01", "attachments": [], "binding": "x", "signatures": []
        })
    }

    #[test]
    fn unknown_and_missing_members_are_named() {
        assert!(RelayedMessage::parse(&sample()).is_ok());
        let mut doc = sample();
        doc["colour"] = json!("red");
        if let Some(o) = doc.as_object_mut() {
            o.remove("binding");
        }
        let fields: Vec<String> = RelayedMessage::parse(&doc)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["colour", "binding"]);
        let mut doc = sample();
        doc["v"] = json!(2);
        assert_eq!(RelayedMessage::parse(&doc).unwrap_err()[0].field, "v");
    }
}
