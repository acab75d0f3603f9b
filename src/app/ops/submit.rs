//! Submitting a labelled message: the policy decides, the content is
//! sealed, the message and its deliveries are written with the request's
//! audit record, and the recipients' inboxes are woken.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::held::{holder_of, json_text};
use super::signed::{self, Presented, Signing};
use super::{Caller, OpError};
use crate::app::AppState;
use crate::app::content::{self, Content};
use crate::app::relay::route::route;
use crate::audit::jcs;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::label::format_date;
use crate::domain::time::to_ms;
use crate::domain::{FieldError, NewMessage, PartnerId};
use crate::policy::{Decision, Retention, Transfer, compute_retention, decide};
use crate::store::SignatureRole;
use crate::store::json_columns::{evaluation_text, label_text, personal_data_text};
use crate::store::writes::Submit;
use crate::store::{DeliveryStatus, IdempotencyKey};
use crate::store::{IdempotencyRow, MessageRow, StoreError, WriteOp};

/// A submission as the partner sent it. The document stays whole: its
/// RFC 8785 form is what an idempotency key and a sender signature are
/// over, and a replayed key is answered before the document is judged.
#[derive(Debug)]
pub struct Submission {
    /// The message document.
    pub document: Value,
    /// The client's idempotency key, if any (already checked for shape).
    pub idempotency_key: Option<String>,
    /// The sender's signature, if any.
    pub signature: Presented,
}

/// A recipient and its delivery status.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientStatus {
    /// The recipient.
    pub partner: PartnerId,
    /// Its delivery status.
    pub status: DeliveryStatus,
}

/// What a partner is told about an accepted message.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// The new message's id.
    pub id: String,
    /// When it was accepted.
    pub accepted_at: String,
    /// When its retention ends.
    pub retain_until: String,
    /// When it is next reviewed.
    pub review_on: String,
    /// Every recipient, queued.
    pub recipients: Vec<RecipientStatus>,
}

impl Accepted {
    /// The answer as JSON text, as the idempotency record keeps it.
    pub(crate) fn to_json_text(&self) -> String {
        serde_json::to_value(self)
            .unwrap_or(Value::Null)
            .to_string()
    }
}

/// The outcome of a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The message's id.
    pub id: String,
    /// The answer (JSON text): the new one, or the first one on a replay.
    pub answer: String,
    /// Whether this repeats an earlier submission with the same key.
    pub replayed: bool,
}

/// Submits a message for every recipient it names.
pub async fn submit(
    app: &AppState,
    caller: &Caller<'_>,
    sub: Submission,
) -> Result<Submitted, OpError> {
    let sender = &caller.partner;
    let request_hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        jcs::canonicalize(&sub.document).as_bytes(),
    ));
    if let Some(k) = &sub.idempotency_key
        && let Some(row) = app.store.idempotency(sender.as_str(), k).await?
    {
        return replay(caller, &row, &request_hash);
    }
    let now = OffsetDateTime::now_utc();
    let msg =
        NewMessage::parse(&sub.document, now.date()).map_err(|e| OpError::Invalid(e.into_vec()))?;
    caller.counterparts(&msg.recipients);
    let policy = app.policy();
    let decision = decide(
        &policy,
        app.settings.accreditation,
        &app.suspended(),
        &Transfer {
            sender,
            recipients: &msg.recipients,
            label: &msg.label,
            purpose: msg.purpose,
            personal_data: &msg.personal_data,
            onward: None,
        },
    );
    if let Decision::Deny(violations) = decision {
        app.metrics
            .message_denied(violations.iter().map(|v| v.code.as_str()));
        return Err(OpError::PolicyRefused(violations));
    }
    check_references(app, sender, &msg).await?;
    let attachment_ids: Vec<String> = msg.attachments.iter().map(ToString::to_string).collect();
    let signing = Signing {
        presented: &sub.signature,
        sender,
        role: SignatureRole::Originator,
        attachment_ids: &attachment_ids,
    };
    let signature = signed::check(app, caller.trail, signing, |digest_of| {
        crate::signature::submission_statement(sender.as_str(), &sub.document, digest_of)
    })
    .await?;
    let retention = compute_retention(
        &policy.retention,
        now,
        msg.retention_days,
        &msg.personal_data.subjects,
        msg.label.review_on,
    );
    let new = NewSubmission {
        msg: &msg,
        now,
        retention: &retention,
        attachment_ids,
        signature: signature.into_iter().collect(),
        key: sub.idempotency_key,
        request_hash,
    };
    commit(app, caller, new).await
}

/// A decided submission, ready to be written.
struct NewSubmission<'a> {
    msg: &'a NewMessage,
    now: OffsetDateTime,
    retention: &'a Retention,
    attachment_ids: Vec<String>,
    signature: Vec<crate::store::SignatureRow>,
    key: Option<String>,
    request_hash: String,
}

/// Seals, writes with the audit record, and wakes the recipients; a key
/// another request stored first is answered as a replay of it.
async fn commit(
    app: &AppState,
    caller: &Caller<'_>,
    new: NewSubmission<'_>,
) -> Result<Submitted, OpError> {
    let id = uuid::Uuid::now_v7().to_string();
    caller.trail.message(&id);
    let msg = new.msg;
    let (sealed, wrapped) = content::seal(&app.master_key, &id, &Content::of(msg))?;
    let accepted = Accepted {
        id: id.clone(),
        accepted_at: format_at(new.now),
        retain_until: format_at(new.retention.retain_until),
        review_on: format_date(new.retention.review_on),
        recipients: msg
            .recipients
            .iter()
            .map(|r| RecipientStatus {
                partner: r.clone(),
                status: DeliveryStatus::Queued,
            })
            .collect(),
    };
    let answer = accepted.to_json_text();
    let row = message_row(caller, msg, &accepted, new.now, new.retention, sealed);
    let sender = caller.partner.to_string();
    let (deliveries, outbox) = route(&app.policy(), &id, &msg.recipients, to_ms(new.now));
    let relayed = !outbox.is_empty();
    let op = WriteOp::from(Submit {
        message: Box::new(row),
        deliveries,
        outbox,
        data_key: wrapped,
        attachments: new.attachment_ids,
        signatures: new.signature,
        idempotency: new.key.clone().map(|k| IdempotencyKey {
            partner: sender.clone(),
            key: k,
            request_hash: new.request_hash.clone(),
            response: answer.clone(),
        }),
    });
    let draft = caller.trail.draft(Action::Collect, Outcome::Allowed);
    match app.store.write(op, draft).await {
        Ok((_, rec)) => caller.trail.audited(rec.seq),
        Err(StoreError::IdempotencyRace) => {
            let k = new.key.unwrap_or_default();
            let row = app
                .store
                .idempotency(&sender, &k)
                .await?
                .ok_or(OpError::Internal)?;
            return replay(caller, &row, &new.request_hash);
        }
        Err(e) => return Err(e.into()),
    }
    app.metrics.message_accepted();
    for r in &msg.recipients {
        app.inbox.notify(r);
    }
    // Only a copy for a peer gives the relay work: waking it for every
    // submit cost one outbox query per message on gateways with peers.
    if relayed {
        app.wake_relay();
    }
    Ok(Submitted {
        id,
        answer,
        replayed: false,
    })
}

/// The stored row of a new message.
fn message_row(
    caller: &Caller<'_>,
    msg: &NewMessage,
    accepted: &Accepted,
    now: OffsetDateTime,
    retention: &Retention,
    sealed: Vec<u8>,
) -> MessageRow {
    MessageRow {
        id: accepted.id.clone(),
        sender: caller.partner.to_string(),
        originator: caller.partner.to_string(),
        forwarded_from: None,
        officer: caller.officer.clone(),
        classification: msg.label.classification.rank(),
        label: label_text(&msg.label),
        evaluation: evaluation_text(&msg.evaluation),
        purpose: msg.purpose.as_str().to_owned(),
        personal_data: personal_data_text(&msg.personal_data),
        case_ref: msg.case_ref.clone(),
        in_reply_to: msg.in_reply_to.map(|u| u.to_string()),
        content_type: msg.content_type.clone(),
        retention_days: msg.retention_days.map(i64::from),
        attachments: json_text(&msg.attachments),
        accepted_at: accepted.accepted_at.clone(),
        accepted_ms: to_ms(now),
        retain_until_ms: to_ms(retention.retain_until),
        review_on: accepted.review_on.clone(),
        retention_basis: json_text(&retention.basis),
        held: false,
        erased_at_ms: None,
        content: Some(sealed),
        collect_seq: 0,
        root_id: accepted.id.clone(),
        hold_reason: None,
    }
}

/// Answers a repeated idempotency key: the first answer for the same
/// document, `IdempotencyConflict` for another.
fn replay(
    caller: &Caller<'_>,
    row: &IdempotencyRow,
    request_hash: &str,
) -> Result<Submitted, OpError> {
    caller.trail.message(&row.message_id);
    if row.request_hash != request_hash {
        return Err(OpError::IdempotencyConflict);
    }
    caller.trail.detail("idempotent_replay", Value::Bool(true));
    Ok(Submitted {
        id: row.message_id.clone(),
        answer: row.response.clone(),
        replayed: true,
    })
}

/// `in_reply_to` must name a message the sender holds; attachments must
/// have been uploaded by the sender. Both answer like a missing id when
/// they are not visible, so nothing leaks.
async fn check_references(
    app: &AppState,
    sender: &PartnerId,
    msg: &NewMessage,
) -> Result<(), OpError> {
    let mut errors = Vec::new();
    if let Some(reply) = msg.in_reply_to {
        let visible = match app.store.message(&reply.to_string()).await? {
            Some(row) => holder_of(app, &row, sender).await?,
            None => false,
        };
        if !visible {
            errors.push(FieldError {
                field: "in_reply_to".into(),
                message: "names no message the sender holds".into(),
            });
        }
    }
    for (i, a) in msg.attachments.iter().enumerate() {
        let usable = app
            .store
            .attachment(&a.to_string())
            .await?
            .is_some_and(|row| row.owner == sender.as_str() && row.erased_at_ms.is_none());
        if !usable {
            errors.push(FieldError {
                field: format!("attachments[{i}]"),
                message: format!("{a} is not an attachment uploaded by the sender"),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(OpError::Invalid(errors))
    }
}
