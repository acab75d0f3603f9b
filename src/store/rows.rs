//! Rows as stored. Plain data: the API layer converts to and from domain
//! types, so the store needs no knowledge of labels or policy.

/// A message row. `content` is sealed; `None` once erased.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
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
    /// 1 while a legal hold is set.
    pub held: i64,
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
    /// `queued`, `delivered` or `acknowledged`.
    pub status: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A delivery to create with a new message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The recipient.
    pub recipient: String,
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
    pub status: String,
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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PartnerStateRow {
    /// The partner.
    pub partner: String,
    /// 1 when suspended.
    pub suspended: i64,
    /// RFC 3339.
    pub updated_at: String,
}

/// A sender signature kept with a message (see `crate::signature`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignatureRow {
    /// The signing partner.
    pub partner: String,
    /// `originator` or `forwarder`.
    pub role: String,
    /// The detached compact JWS as sent.
    pub jws: String,
    /// The signed statement, RFC 8785 JSON.
    pub statement: String,
}
