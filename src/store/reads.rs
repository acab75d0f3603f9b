//! Read queries. Each takes a connection from the read pool; none blocks
//! the writer.
//!
//! A bound `LIMIT` is written `LIMIT $n + 0`: SQLite plans an `ORDER BY …
//! LIMIT` with a bare parameter for the value bound, so every execution
//! with another limit re-parsed and re-planned the statement (7 % of the
//! gateway's CPU in the handshake benchmark); an expression keeps one plan.

use sqlx::{AssertSqlSafe, Row};
use time::Date;

use super::Store;
use super::audit_rows::{RECORD_COLUMNS, record_from_row};
use super::convert::to_i64;
use super::error::StoreError;
use super::family::IN_FAMILY;
use super::rows::{
    AttachmentRow, DataKeyRow, DeliveryRow, DueRow, IdempotencyRow, InboxRow, MessageRow,
    PartnerStateRow, Permission, SignatureRow,
};
use crate::audit::AuditRecord;
use crate::crypto::Sealed;
use crate::domain::label::format_date;
use crate::domain::time::ms_to_text;

pub(super) const MESSAGE_COLUMNS: &str = "id, sender, originator, forwarded_from, officer, classification, label, evaluation, \
     purpose, personal_data, case_ref, in_reply_to, content_type, retention_days, attachments, accepted_at, \
     accepted_ms, retain_until_ms, review_on, retention_basis, held, erased_at_ms, content, collect_seq, \
     COALESCE(root_id, id) AS root_id, hold_reason";

/// A recipient's inbox after a cursor: recipient, cursor, limit.
pub(super) const INBOX_SQL: &str = "SELECT d.seq, m.id, m.sender, m.label, m.purpose, m.case_ref, m.accepted_at, \
     m.content, k.master_key_id, k.wrapped_key, d.status \
     FROM deliveries d JOIN messages m ON m.id = d.message_id LEFT JOIN data_keys k ON k.owner = m.id \
     WHERE d.recipient = $1 AND d.seq > $2 ORDER BY d.seq LIMIT $3 + 0";

impl Store {
    /// A message by id.
    pub async fn message(&self, id: &str) -> Result<Option<MessageRow>, StoreError> {
        Ok(sqlx::query_as::<_, MessageRow>(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?)
    }

    /// The wrapped data key sealing a message or an attachment.
    pub(crate) async fn data_key(&self, owner: &str) -> Result<Option<Sealed>, StoreError> {
        let row = sqlx::query("SELECT master_key_id, wrapped_key FROM data_keys WHERE owner = $1")
            .bind(owner.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(Sealed {
                master_key_id: r.try_get(0)?,
                wrapped_key: r.try_get(1)?,
            }),
            None => None,
        })
    }

    /// Every delivery of a message, by recipient.
    pub async fn deliveries(&self, message_id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as::<_, DeliveryRow>(
            "SELECT message_id, recipient, seq, status, updated_at, via FROM deliveries WHERE message_id = $1 ORDER BY recipient",
        )
        .bind(message_id.to_owned())
        .fetch_all(self.pool())
        .await?)
    }

    /// A partner's inbox after cursor `after`, oldest first.
    pub async fn inbox(
        &self,
        recipient: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<InboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, InboxRow>(INBOX_SQL)
            .bind(recipient.to_owned())
            .bind(to_i64(after)?)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?)
    }

    /// A partner's stored idempotency key.
    pub async fn idempotency(
        &self,
        partner: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        Ok(sqlx::query_as::<_, IdempotencyRow>(
            "SELECT request_hash, message_id, response FROM idempotency WHERE partner = $1 AND key = $2",
        )
        .bind(partner.to_owned())
        .bind(key.to_owned())
        .fetch_optional(self.pool())
        .await?)
    }

    /// Operator-controlled partner states.
    pub(crate) async fn partner_states(&self) -> Result<Vec<PartnerStateRow>, StoreError> {
        Ok(sqlx::query_as::<_, PartnerStateRow>(
            "SELECT partner, suspended, updated_at FROM partner_state ORDER BY partner",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The partners suspended now: read at start and, on PostgreSQL, again
    /// whenever another node suspends or resumes one.
    pub(crate) async fn suspended_partners(
        &self,
    ) -> Result<std::collections::BTreeSet<crate::domain::PartnerId>, StoreError> {
        Ok(self
            .partner_states()
            .await?
            .into_iter()
            .filter(|s| s.suspended)
            .filter_map(|s| crate::domain::PartnerId::parse(&s.partner))
            .collect())
    }

    /// Up to `limit` records with seq > `after`, in order, each with its
    /// `reduced` flag: the pages `audit verify` walks.
    pub async fn audit_page(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(AuditRecord, bool)>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2 + 0"
        )))
        .bind(to_i64(after)?)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// One record by seq.
    pub async fn audit_record(&self, seq: u64) -> Result<Option<AuditRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM audit_log WHERE seq = $1"
        )))
        .bind(to_i64(seq)?)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(|r| record_from_row(r).map(|(rec, _)| rec))
            .transpose()
    }

    /// Number of records (the highest seq).
    pub async fn audit_size(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = sqlx::query("SELECT MAX(seq) FROM audit_log")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// Every message of a forwarding family (the original and its copies).
    pub async fn family(&self, root_id: &str) -> Result<Vec<MessageRow>, StoreError> {
        Ok(sqlx::query_as::<_, MessageRow>(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {IN_FAMILY} ORDER BY accepted_ms"
        )))
        .bind(root_id.to_owned())
        .fetch_all(self.pool())
        .await?)
    }

    /// Recipients of every message of a family: everyone who holds a copy.
    pub(crate) async fn family_recipients(&self, root_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT DISTINCT recipient FROM deliveries \
             WHERE message_id IN (SELECT id FROM messages WHERE {IN_FAMILY}) ORDER BY recipient"
        )))
        .bind(root_id.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Permissions granted on a family, by partner and scope.
    pub async fn permissions(&self, root_id: &str) -> Result<Vec<Permission>, StoreError> {
        let rows = sqlx::query(
            "SELECT partner, scope FROM permissions WHERE root_id = $1 ORDER BY partner, scope",
        )
        .bind(root_id.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Permission {
                    partner: r.try_get(0)?,
                    scope: r.try_get(1)?,
                })
            })
            .collect()
    }

    /// An attachment by id.
    pub async fn attachment(&self, id: &str) -> Result<Option<AttachmentRow>, StoreError> {
        Ok(sqlx::query_as::<_, AttachmentRow>(
            "SELECT id, owner, content_type, size, sha256, created_ms, erased_at_ms FROM attachments WHERE id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?)
    }

    /// A message's sender signatures, in order.
    pub async fn signatures(&self, message_id: &str) -> Result<Vec<SignatureRow>, StoreError> {
        Ok(sqlx::query_as::<_, SignatureRow>(
            "SELECT partner, role, jws, statement FROM message_signatures WHERE message_id = $1 ORDER BY position",
        )
        .bind(message_id.to_owned())
        .fetch_all(self.pool())
        .await?)
    }

    /// Attachment ids a message carries.
    pub(crate) async fn message_attachments(
        &self,
        message_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT attachment_id FROM message_attachments WHERE message_id = $1 ORDER BY attachment_id",
        )
        .bind(message_id.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Messages whose retention ended at or before `as_of_ms`, not held,
    /// not yet erased, oldest deadline first.
    pub(crate) async fn due_for_erasure(
        &self,
        as_of_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueRow>, StoreError> {
        Ok(sqlx::query_as::<_, DueRow>(
            "SELECT id, retain_until_ms, retention_basis FROM messages \
             WHERE erased_at_ms IS NULL AND held = 0 AND retain_until_ms <= $1 ORDER BY retain_until_ms, id LIMIT $2 + 0",
        )
        .bind(as_of_ms)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// Uploads created before `cutoff_ms` that no message references.
    pub(crate) async fn orphan_attachments(
        &self,
        cutoff_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id FROM attachments a WHERE a.erased_at_ms IS NULL AND a.created_ms <= $1 \
             AND NOT EXISTS (SELECT 1 FROM message_attachments ma WHERE ma.attachment_id = a.id) \
             ORDER BY a.created_ms LIMIT $2 + 0",
        )
        .bind(cutoff_ms)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Every attachment id with whether it was erased, for sweeping
    /// attachment files no attachment needs.
    pub(crate) async fn attachment_states(
        &self,
    ) -> Result<std::collections::HashMap<String, bool>, StoreError> {
        let rows = sqlx::query("SELECT id, erased_at_ms FROM attachments")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let erased: Option<i64> = r.try_get(1)?;
                Ok((r.try_get(0)?, erased.is_some()))
            })
            .collect()
    }

    /// A partner's own (sent) messages due for review by `review_by` or
    /// for erasure by `erase_by_ms`.
    pub(crate) async fn review_due(
        &self,
        sender: &str,
        review_by: Date,
        erase_by_ms: i64,
        limit: u32,
    ) -> Result<Vec<MessageRow>, StoreError> {
        Ok(sqlx::query_as::<_, MessageRow>(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender = $1 AND erased_at_ms IS NULL \
             AND (review_on <= $2 OR retain_until_ms <= $3) ORDER BY review_on, retain_until_ms, id LIMIT $4 + 0"
        )))
        .bind(sender.to_owned())
        .bind(format_date(review_by))
        .bind(erase_by_ms)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// Up to `limit` data keys wrapped under `master_key_id`, for rotation.
    pub async fn data_keys_under(
        &self,
        master_key_id: &str,
        limit: u32,
    ) -> Result<Vec<DataKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT owner, wrapped_key FROM data_keys WHERE master_key_id = $1 ORDER BY owner LIMIT $2 + 0",
        )
        .bind(master_key_id.to_owned())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DataKeyRow {
                    owner: r.try_get(0)?,
                    key: Sealed {
                        master_key_id: master_key_id.to_owned(),
                        wrapped_key: r.try_get(1)?,
                    },
                })
            })
            .collect()
    }

    /// Number of data keys not wrapped under `master_key_id`.
    pub async fn data_keys_not_under(&self, master_key_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM data_keys WHERE master_key_id <> $1")
                .bind(master_key_id.to_owned())
                .fetch_one(self.pool())
                .await?
                .try_get(0)?,
        )
    }

    /// The distinct master key ids that stored data keys name: a gateway
    /// refuses to start when one of them is not in its key ring.
    pub(crate) async fn data_key_master_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT master_key_id FROM data_keys ORDER BY 1")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Number of data keys wrapped under `master_key_id`: a retired master
    /// key is kept while this is not zero.
    pub async fn data_keys_count_under(&self, master_key_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM data_keys WHERE master_key_id = $1")
                .bind(master_key_id.to_owned())
                .fetch_one(self.pool())
                .await?
                .try_get(0)?,
        )
    }

    /// The last record stamped before `before_ms`, if any: times are
    /// stamped in chain order, so these records are a prefix.
    pub(crate) async fn audit_seq_before(&self, before_ms: i64) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query(
            "SELECT seq FROM audit_log WHERE at < $1 ORDER BY at DESC, seq DESC LIMIT 1",
        )
        .bind(ms_to_text(before_ms))
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => u64::try_from(r.try_get::<i64, _>(0)?).ok(),
            None => None,
        })
    }

    /// The first record not yet reduced.
    pub(crate) async fn audit_first_kept(&self) -> Result<Option<u64>, StoreError> {
        let n: Option<i64> = sqlx::query("SELECT MIN(seq) FROM audit_log WHERE reduced = 0")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        Ok(n.and_then(|n| u64::try_from(n).ok()))
    }
}
