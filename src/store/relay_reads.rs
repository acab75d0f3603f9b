//! What the relay reads to send several messages to one peer, in one
//! query per table instead of four per message: on SQLite each read is a
//! round trip through the read pool, and per-message reads held a lane of
//! 16 messages to about 100 ms (BENCHMARKS.md, *Relay*).

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, FromRow, Row};

use super::Store;
use super::error::StoreError;
use super::reads::MESSAGE_COLUMNS;
use super::rows::{MessageRow, SignatureRow};
use crate::crypto::Sealed;

/// One message as the relay needs it to build its document for a peer.
#[derive(Debug, Clone)]
pub struct RelaySource {
    /// The stored message.
    pub message: MessageRow,
    /// Its wrapped data key (`None`: erased since, or damaged).
    pub key: Option<Sealed>,
    /// Its recipients behind the peer, by name.
    pub recipients: Vec<String>,
    /// Its sender signatures, in order.
    pub signatures: Vec<SignatureRow>,
}

/// `$first, …` for `n` bound values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The messages `ids` with what relaying them to `peer` needs; a
    /// message no longer stored is absent from the map.
    pub async fn relay_sources(
        &self,
        ids: &[String],
        peer: &str,
    ) -> Result<HashMap<String, RelaySource>, StoreError> {
        let mut out: HashMap<String, RelaySource> = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let list = placeholders(1, ids.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS}, k.master_key_id AS key_id, k.wrapped_key AS key_wrapped \
             FROM messages m LEFT JOIN data_keys k ON k.owner = m.id WHERE m.id IN ({list})"
        )));
        for id in ids {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(self.pool()).await? {
            let message = MessageRow::from_row(&row)?;
            let key_id: Option<String> = row.try_get("key_id")?;
            let wrapped: Option<Vec<u8>> = row.try_get("key_wrapped")?;
            let key = key_id
                .zip(wrapped)
                .map(|(master_key_id, wrapped_key)| Sealed {
                    master_key_id,
                    wrapped_key,
                });
            out.insert(
                message.id.clone(),
                RelaySource {
                    message,
                    key,
                    recipients: Vec::new(),
                    signatures: Vec::new(),
                },
            );
        }
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT message_id, recipient FROM deliveries WHERE via = $1 AND message_id IN ({}) \
             ORDER BY message_id, recipient",
            placeholders(2, ids.len())
        )))
        .bind(peer.to_owned());
        for id in ids {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(self.pool()).await? {
            let id: String = row.try_get(0)?;
            if let Some(s) = out.get_mut(&id) {
                s.recipients.push(row.try_get(1)?);
            }
        }
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT message_id, partner, role, jws, statement FROM message_signatures \
             WHERE message_id IN ({list}) ORDER BY message_id, position"
        )));
        for id in ids {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(self.pool()).await? {
            let id: String = row.try_get(0)?;
            if let Some(s) = out.get_mut(&id) {
                s.signatures.push(SignatureRow::from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// Which of `ids` this gateway already knows: a message it stores, or
    /// one it has issued receipts for (a copy since erased). A relayed
    /// document with an unknown id needs no replay lookup.
    pub async fn known_messages(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        if ids.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT id FROM messages WHERE id IN ({}) UNION \
             SELECT message_id FROM relay_receipts WHERE direction = $1 AND message_id IN ({})",
            placeholders(2, ids.len()),
            placeholders(2, ids.len())
        )))
        .bind(super::outbox::ISSUED.to_owned());
        for id in ids {
            q = q.bind(id.clone());
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }
}
