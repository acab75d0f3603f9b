//! Rows as stored. Plain data: the API layer converts to and from domain
//! types, so the store needs no knowledge of labels or policy. Closed sets
//! of words read as their enums (`vocab`) and flags as `bool`, so a caller
//! never compares stored text or integers.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::convert::int_to_flag;
use super::vocab::{DeliveryStatus, PermissionScope, SignatureRole};
use crate::crypto::Sealed;

/// A message row. `content` is sealed; `None` once erased.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    /// UUIDv7.
    pub id: String,
    /// Who submitted it.
    pub sender: String,
    /// Who first provided the information.
    pub originator: String,
    /// For a forward: the message it copies.
    pub forwarded_from: Option<String>,
    /// The sender's officer.
    pub officer: String,
    /// Classification rank.
    pub classification: i64,
    /// Label JSON.
    pub label: String,
    /// Evaluation JSON.
    pub evaluation: String,
    /// Purpose wire name.
    pub purpose: String,
    /// Personal data JSON (without the sealed basis).
    pub personal_data: String,
    /// Case reference.
    pub case_ref: Option<String>,
    /// The message this answers.
    pub in_reply_to: Option<String>,
    /// MIME type of the body.
    pub content_type: String,
    /// Retention the sender asked for.
    pub retention_days: Option<i64>,
    /// JSON array of attachment ids.
    pub attachments: String,
    /// RFC 3339.
    pub accepted_at: String,
    /// Unix milliseconds.
    pub accepted_ms: i64,
    /// Unix milliseconds.
    pub retain_until_ms: i64,
    /// `YYYY-MM-DD`.
    pub review_on: String,
    /// JSON of the retention basis.
    pub retention_basis: String,
    /// While a legal hold is set.
    pub held: bool,
    /// When erased, unix milliseconds.
    pub erased_at_ms: Option<i64>,
    /// Sealed subject, body and basis.
    pub content: Option<Vec<u8>>,
    /// Audit seq of the collect record.
    pub collect_seq: i64,
    /// The originator's message this one copies (its own id for an original).
    pub root_id: String,
    /// Why a legal hold is set, while it is.
    pub hold_reason: Option<String>,
}

/// An uploaded attachment.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttachmentRow {
    /// UUIDv7.
    pub id: String,
    /// The uploading partner.
    pub owner: String,
    /// The Content-Type it was uploaded with.
    pub content_type: String,
    /// Plaintext size in bytes.
    pub size: i64,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    /// Upload time, unix milliseconds.
    pub created_ms: i64,
    /// When erased, unix milliseconds.
    pub erased_at_ms: Option<i64>,
}

/// A message whose retention has run out, as the sweeper sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueRow {
    /// The message.
    pub id: String,
    /// Unix milliseconds.
    pub retain_until_ms: i64,
    /// JSON of the rule that set it.
    pub retention_basis: String,
}

/// A recipient's delivery of a message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    /// The message.
    pub message_id: String,
    /// The recipient.
    pub recipient: String,
    /// Inbox order.
    pub seq: i64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// RFC 3339.
    pub updated_at: String,
    /// The peer gateway a remote recipient lives behind (SPEC §11).
    pub via: Option<String>,
}

/// A delivery to create with a new message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The recipient.
    pub recipient: String,
    /// The peer gateway it lives behind, when remote: its copy waits in the
    /// outbox for that peer.
    pub via: Option<String>,
}

/// One inbox entry: the delivery joined with its message's headers.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InboxRow {
    /// Inbox order (the cursor).
    pub seq: i64,
    /// The message.
    pub id: String,
    /// Who sent it.
    pub sender: String,
    /// Label JSON.
    pub label: String,
    /// Purpose wire name.
    pub purpose: String,
    /// Case reference.
    pub case_ref: Option<String>,
    /// When accepted (RFC 3339).
    pub accepted_at: String,
    /// Sealed content, `None` once erased.
    pub content: Option<Vec<u8>>,
    /// Id of the master key wrapping the data key, `None` once erased.
    pub master_key_id: Option<String>,
    /// The wrapped data key, `None` once erased.
    pub wrapped_key: Option<Vec<u8>>,
    /// Delivery status.
    pub status: DeliveryStatus,
}

/// A stored idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdempotencyRow {
    /// Hash of the canonical request body.
    pub request_hash: String,
    /// The message created.
    pub message_id: String,
    /// The first answer's JSON.
    pub response: String,
}

/// Operator-controlled state of a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerStateRow {
    /// The partner.
    pub partner: String,
    /// Whether it is suspended.
    pub suspended: bool,
    /// RFC 3339.
    pub updated_at: String,
}

/// A sender signature kept with a message (see `crate::signature`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignatureRow {
    /// The signing partner.
    pub partner: String,
    /// Whose signature it is.
    pub role: SignatureRole,
    /// The detached compact JWS as sent.
    pub jws: String,
    /// The signed statement, RFC 8785 JSON.
    pub statement: String,
}

/// A data key with the message or attachment it seals: what `keys rotate`
/// reads under the old master key and writes back under the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyRow {
    /// What the key seals (a message or an attachment id).
    pub owner: String,
    /// The wrapped key.
    pub key: Sealed,
}

/// An idempotency key to record with a new message, so a repeated request
/// is answered with the first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The partner whose key it is.
    pub partner: String,
    /// The key as the partner sent it.
    pub key: String,
    /// Hash of the canonical request body.
    pub request_hash: String,
    /// The answer's JSON.
    pub response: String,
}

/// A permission an originator granted on a family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// To whom.
    pub partner: String,
    /// What it permits.
    pub scope: PermissionScope,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for MessageRow {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            sender: r.try_get("sender")?,
            originator: r.try_get("originator")?,
            forwarded_from: r.try_get("forwarded_from")?,
            officer: r.try_get("officer")?,
            classification: r.try_get("classification")?,
            label: r.try_get("label")?,
            evaluation: r.try_get("evaluation")?,
            purpose: r.try_get("purpose")?,
            personal_data: r.try_get("personal_data")?,
            case_ref: r.try_get("case_ref")?,
            in_reply_to: r.try_get("in_reply_to")?,
            content_type: r.try_get("content_type")?,
            retention_days: r.try_get("retention_days")?,
            attachments: r.try_get("attachments")?,
            accepted_at: r.try_get("accepted_at")?,
            accepted_ms: r.try_get("accepted_ms")?,
            retain_until_ms: r.try_get("retain_until_ms")?,
            review_on: r.try_get("review_on")?,
            retention_basis: r.try_get("retention_basis")?,
            held: int_to_flag(r.try_get("held")?),
            erased_at_ms: r.try_get("erased_at_ms")?,
            content: r.try_get("content")?,
            collect_seq: r.try_get("collect_seq")?,
            root_id: r.try_get("root_id")?,
            hold_reason: r.try_get("hold_reason")?,
        })
    }
}

impl<'r> sqlx::FromRow<'r, AnyRow> for PartnerStateRow {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            partner: r.try_get("partner")?,
            suspended: int_to_flag(r.try_get("suspended")?),
            updated_at: r.try_get("updated_at")?,
        })
    }
}
