//! A write batch's new messages, held until one multi-row `INSERT` per
//! table.
//!
//! Every statement the writer runs costs its own parse, bind and step, on
//! PostgreSQL a network round trip, and (with sqlx's SQLite driver, before
//! the writer moved to its own thread) a hand-off to another thread; with
//! one message costing three of them (message, data key, deliveries) they
//! bounded the submit rate (BENCHMARKS.md). A batch's submits are collected
//! here and written together before the batch commits, or before any other
//! kind of write in the same batch, so that no write ever meets a table
//! missing rows the batch already promised. An idempotency key is checked
//! against the keys held here as well as the table, so two submits with one
//! key in one batch still end as one message and one replay.

use super::convert::{flag_to_int, to_i64};
use super::error::StoreError;
use super::rows::{IdempotencyKey, MessageRow, NewDelivery, SignatureRow};
use super::vocab::DeliveryStatus;
use super::write_conn::{Arg, WriteConn};
use crate::crypto::Sealed;

/// Messages per `INSERT` (26 parameters each): about 200 parameters a
/// statement, like the audit records' chunks.
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
    /// Its wrapped data key.
    pub data_key: &'a Sealed,
    /// Attachment ids it carries.
    pub attachments: &'a [String],
    /// Sender signatures, in order.
    pub signatures: &'a [SignatureRow],
    /// Idempotency key to record.
    pub idempotency: Option<&'a IdempotencyKey>,
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
    pub(crate) fn holds_key(&self, partner: &str, key: &str) -> bool {
        self.held.iter().any(|m| {
            m.idempotency
                .is_some_and(|k| k.partner == partner && k.key == key)
        })
    }

    /// Writes every held submit (messages before the rows that refer to
    /// them) and forgets them.
    pub async fn write(&mut self, conn: &mut WriteConn) -> Result<(), StoreError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        let mut rows = Rows::with_capacity(held.len());
        for n in &held {
            rows.add(n)?;
        }
        rows.insert(conn).await
    }
}

/// The held submits' rows as `INSERT` arguments, table by table.
struct Rows<'h> {
    messages: Vec<[Arg<'h>; 26]>,
    keys: Vec<[Arg<'h>; 3]>,
    deliveries: Vec<[Arg<'h>; 6]>,
    signatures: Vec<[Arg<'h>; 6]>,
    links: Vec<[Arg<'h>; 2]>,
    idempotency: Vec<[Arg<'h>; 6]>,
}

impl<'h> Rows<'h> {
    /// Room for `n` submits' messages and data keys.
    fn with_capacity(n: usize) -> Self {
        Self {
            messages: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            deliveries: Vec::new(),
            signatures: Vec::new(),
            links: Vec::new(),
            idempotency: Vec::new(),
        }
    }

    /// Adds one submit's rows to every table it has rows in.
    fn add(&mut self, n: &NewMessage<'h>) -> Result<(), StoreError> {
        let m = n.message;
        let seq = to_i64(n.seq)?;
        self.messages.push(message_args(m, seq));
        self.keys.push([
            m.id.as_str().into(),
            n.data_key.master_key_id.as_str().into(),
            n.data_key.wrapped_key.as_slice().into(),
        ]);
        for d in n.deliveries {
            self.deliveries.push([
                m.id.as_str().into(),
                d.recipient.as_str().into(),
                seq.into(),
                DeliveryStatus::Queued.as_str().into(),
                m.accepted_at.as_str().into(),
                d.via.as_deref().into(),
            ]);
        }
        for (i, s) in n.signatures.iter().enumerate() {
            self.signatures.push([
                m.id.as_str().into(),
                to_i64(i as u64)?.into(),
                s.partner.as_str().into(),
                s.role.as_str().into(),
                s.jws.as_str().into(),
                s.statement.as_str().into(),
            ]);
        }
        for a in n.attachments {
            self.links.push([m.id.as_str().into(), a.as_str().into()]);
        }
        if let Some(k) = n.idempotency {
            self.idempotency.push([
                k.partner.as_str().into(),
                k.key.as_str().into(),
                k.request_hash.as_str().into(),
                m.id.as_str().into(),
                k.response.as_str().into(),
                m.accepted_ms.into(),
            ]);
        }
        Ok(())
    }

    /// One multi-row `INSERT` per table and chunk, messages first.
    async fn insert(&self, conn: &mut WriteConn) -> Result<(), StoreError> {
        conn.insert_rows(MESSAGES, &self.messages, MESSAGES_PER_INSERT, "")
            .await?;
        conn.insert_rows(
            "data_keys (owner, master_key_id, wrapped_key)",
            &self.keys,
            ROWS_PER_INSERT,
            "",
        )
        .await?;
        conn.insert_rows(
            "deliveries (message_id, recipient, seq, status, updated_at, via)",
            &self.deliveries,
            ROWS_PER_INSERT,
            "",
        )
        .await?;
        conn.insert_rows(
            "message_signatures (message_id, position, partner, role, jws, statement)",
            &self.signatures,
            ROWS_PER_INSERT,
            "",
        )
        .await?;
        conn.insert_rows(
            "message_attachments (message_id, attachment_id)",
            &self.links,
            ROWS_PER_INSERT,
            "",
        )
        .await?;
        conn.insert_rows(
            "idempotency (partner, key, request_hash, message_id, response, created_ms)",
            &self.idempotency,
            ROWS_PER_INSERT,
            "",
        )
        .await
    }
}

/// The `messages` table and its columns, in [`message_args`]' order.
const MESSAGES: &str = "messages (id, sender, originator, forwarded_from, officer, classification, label, \
    evaluation, purpose, personal_data, case_ref, in_reply_to, content_type, retention_days, attachments, \
    accepted_at, accepted_ms, retain_until_ms, review_on, retention_basis, held, erased_at_ms, content, \
    collect_seq, root_id, hold_reason)";

fn message_args(m: &MessageRow, collect_seq: i64) -> [Arg<'_>; 26] {
    [
        m.id.as_str().into(),
        m.sender.as_str().into(),
        m.originator.as_str().into(),
        m.forwarded_from.as_deref().into(),
        m.officer.as_str().into(),
        m.classification.into(),
        m.label.as_str().into(),
        m.evaluation.as_str().into(),
        m.purpose.as_str().into(),
        m.personal_data.as_str().into(),
        m.case_ref.as_deref().into(),
        m.in_reply_to.as_deref().into(),
        m.content_type.as_str().into(),
        m.retention_days.into(),
        m.attachments.as_str().into(),
        m.accepted_at.as_str().into(),
        m.accepted_ms.into(),
        m.retain_until_ms.into(),
        m.review_on.as_str().into(),
        m.retention_basis.as_str().into(),
        flag_to_int(m.held).into(),
        m.erased_at_ms.into(),
        m.content.as_deref().into(),
        collect_seq.into(),
        m.root_id.as_str().into(),
        m.hold_reason.as_deref().into(),
    ]
}
