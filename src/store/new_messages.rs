//! A write batch's new messages, held until one multi-row `INSERT` per
//! table.
//!
//! Every SQL statement the writer runs is a round trip to the database
//! connection's worker thread, and with one message costing three of them
//! (message, data key, deliveries) those round trips bounded the gateway's
//! submit rate (BENCHMARKS.md). A batch's submits are therefore collected
//! here and written together before the batch commits, or before any other
//! kind of write in the same batch, so that no write ever meets a table
//! missing rows the batch already promised. An idempotency key is checked
//! against the keys held here as well as the table, so two submits with one
//! key in one batch still end as one message and one replay.

use sqlx::AnyConnection;

use super::StoreError;
use super::rows::{MessageRow, NewDelivery, SignatureRow};
use super::writer::to_i64;

/// Messages per `INSERT` (26 parameters each). sqlx's SQLite binding finds
/// each parameter by name, which grows faster than linearly with the
/// statement's parameter count, so statements stay near 200 parameters.
const MESSAGES_PER_INSERT: usize = 8;
/// Rows per `INSERT` for the narrow tables (at most 6 parameters each).
const ROWS_PER_INSERT: usize = 32;

/// One accepted submit, borrowed from its job until the batch is written.
pub(super) struct NewMessage<'a> {
    /// The message row.
    pub message: &'a MessageRow,
    /// Audit seq of its collect record (the inbox order of its deliveries).
    pub seq: u64,
    /// Its deliveries.
    pub deliveries: &'a [NewDelivery],
    /// Its wrapped data key: (master key id, wrapped bytes).
    pub data_key: &'a (String, Vec<u8>),
    /// Attachment ids it carries.
    pub attachments: &'a [String],
    /// Sender signatures, in order.
    pub signatures: &'a [SignatureRow],
    /// Idempotency key: (partner, key, request hash, response).
    pub idempotency: Option<&'a (String, String, String, String)>,
}

/// The submits of one batch not yet written.
#[derive(Default)]
pub(super) struct NewMessages<'a> {
    held: Vec<NewMessage<'a>>,
}

impl<'a> NewMessages<'a> {
    /// Holds a submit until [`NewMessages::write`].
    pub fn push(&mut self, m: NewMessage<'a>) {
        self.held.push(m);
    }

    /// Whether a held submit already uses this partner's idempotency key.
    pub fn holds_key(&self, partner: &str, key: &str) -> bool {
        self.held.iter().any(|m| {
            m.idempotency
                .is_some_and(|(p, k, _, _)| p == partner && k == key)
        })
    }

    /// Writes every held submit (messages before the rows that refer to
    /// them) and forgets them.
    pub async fn write(&mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        insert_messages(conn, &held).await?;

        let keys: Vec<_> = held
            .iter()
            .map(|m| (m.message.id.as_str(), m.data_key))
            .collect();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                "data_keys (owner, master_key_id, wrapped_key)",
                chunk.len(),
                3,
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (owner, (key_id, wrapped)) in chunk {
                q = q
                    .bind(*owner)
                    .bind(key_id.as_str())
                    .bind(wrapped.as_slice());
            }
            q.execute(&mut *conn).await?;
        }

        let mut deliveries = Vec::new();
        for m in &held {
            let seq = to_i64(m.seq)?;
            for d in m.deliveries {
                deliveries.push((m.message, d.recipient.as_str(), seq));
            }
        }
        for chunk in deliveries.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                "deliveries (message_id, recipient, seq, status, updated_at)",
                chunk.len(),
                5,
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (m, recipient, seq) in chunk {
                q = q
                    .bind(m.id.as_str())
                    .bind(*recipient)
                    .bind(*seq)
                    .bind("queued")
                    .bind(m.accepted_at.as_str());
            }
            q.execute(&mut *conn).await?;
        }

        let mut signatures = Vec::new();
        for m in &held {
            for (i, s) in m.signatures.iter().enumerate() {
                signatures.push((m.message.id.as_str(), to_i64(i as u64)?, s));
            }
        }
        for chunk in signatures.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                "message_signatures (message_id, position, partner, role, jws, statement)",
                chunk.len(),
                6,
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, position, s) in chunk {
                q = q
                    .bind(*id)
                    .bind(*position)
                    .bind(s.partner.as_str())
                    .bind(s.role.as_str())
                    .bind(s.jws.as_str())
                    .bind(s.statement.as_str());
            }
            q.execute(&mut *conn).await?;
        }

        let links: Vec<(&str, &str)> = held
            .iter()
            .flat_map(|m| {
                m.attachments
                    .iter()
                    .map(|a| (m.message.id.as_str(), a.as_str()))
            })
            .collect();
        for chunk in links.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                "message_attachments (message_id, attachment_id)",
                chunk.len(),
                2,
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, attachment) in chunk {
                q = q.bind(*id).bind(*attachment);
            }
            q.execute(&mut *conn).await?;
        }

        let keys: Vec<_> = held
            .iter()
            .filter_map(|m| m.idempotency.map(|k| (m.message, k)))
            .collect();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                "idempotency (partner, key, request_hash, message_id, response, created_ms)",
                chunk.len(),
                6,
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (m, (partner, key, hash, response)) in chunk {
                q = q
                    .bind(partner.as_str())
                    .bind(key.as_str())
                    .bind(hash.as_str())
                    .bind(m.id.as_str())
                    .bind(response.as_str())
                    .bind(m.accepted_ms);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

async fn insert_messages(
    conn: &mut AnyConnection,
    held: &[NewMessage<'_>],
) -> Result<(), StoreError> {
    for chunk in held.chunks(MESSAGES_PER_INSERT) {
        let sql = insert_sql(
            "messages (id, sender, originator, forwarded_from, officer, classification, label, evaluation, \
             purpose, personal_data, case_ref, in_reply_to, content_type, retention_days, attachments, accepted_at, \
             accepted_ms, retain_until_ms, review_on, retention_basis, held, erased_at_ms, content, collect_seq, \
             root_id, hold_reason)",
            chunk.len(),
            26,
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for n in chunk {
            let m = n.message;
            q = q
                .bind(m.id.as_str())
                .bind(m.sender.as_str())
                .bind(m.originator.as_str())
                .bind(m.forwarded_from.as_deref())
                .bind(m.officer.as_str())
                .bind(m.classification)
                .bind(m.label.as_str())
                .bind(m.evaluation.as_str())
                .bind(m.purpose.as_str())
                .bind(m.personal_data.as_str())
                .bind(m.case_ref.as_deref())
                .bind(m.in_reply_to.as_deref())
                .bind(m.content_type.as_str())
                .bind(m.retention_days)
                .bind(m.attachments.as_str())
                .bind(m.accepted_at.as_str())
                .bind(m.accepted_ms)
                .bind(m.retain_until_ms)
                .bind(m.review_on.as_str())
                .bind(m.retention_basis.as_str())
                .bind(m.held)
                .bind(m.erased_at_ms)
                .bind(m.content.as_deref())
                .bind(to_i64(n.seq)?)
                .bind(m.root_id.as_str())
                .bind(m.hold_reason.as_deref());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `INSERT INTO {table} VALUES ($1, …), (…), …` for `rows` rows of
/// `per_row` parameters. `table` is always a constant of the store, never
/// input.
pub(super) fn insert_sql(table: &str, rows: usize, per_row: usize) -> String {
    let mut sql = format!("INSERT INTO {table} VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for k in 1..=per_row {
            if k > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * per_row + k).to_string());
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::insert_sql;

    #[test]
    fn placeholders_number_rows_after_each_other() {
        assert_eq!(
            insert_sql("t (a, b)", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(insert_sql("t (a)", 1, 1), "INSERT INTO t (a) VALUES ($1)");
    }
}
