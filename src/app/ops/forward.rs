//! Forwarding a received message onward, as a new message in the
//! original's family. The policy decides under H2 with the originator's
//! permissions; the copy never outlives the original's retention.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::held::{
    json_text, live_content, partner_of, stored_label, stored_personal_data, visible_to,
};
use super::signed::{self, Presented, Signing};
use super::submit::RecipientStatus;
use super::{Caller, OpError};
use crate::app::AppState;
use crate::app::content::{self, Content, message_json};
use crate::app::relay::route::route;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::time::{ms_to_text, to_ms};
use crate::domain::{PartnerId, Purpose};
use crate::policy::decide::Onward;
use crate::policy::{Decision, Transfer, compute_retention, decide};
use crate::store::DeliveryStatus;
use crate::store::SignatureRole;
use crate::store::writes::Submit;
use crate::store::{Expected, MessageRow, SignatureRow, WriteOp};
use crate::store::{Permission, PermissionScope};

/// A forward as the holder asks for it.
#[derive(Debug)]
pub struct Forward {
    /// Who receives the copy.
    pub recipients: BTreeSet<PartnerId>,
    /// Why it is forwarded.
    pub justification: String,
    /// The forwarder's own signature, if any.
    pub signature: Presented,
}

/// What the forwarder is told about the copy.
#[derive(Debug, Clone, Serialize)]
pub struct Forwarded {
    /// The copy's id.
    pub id: String,
    /// The message it copies.
    pub forwarded_from: String,
    /// Who first provided the information.
    pub originator: String,
    /// When the copy was accepted.
    pub accepted_at: String,
    /// When its retention ends (never after the original's).
    pub retain_until: String,
    /// The original's review date.
    pub review_on: String,
    /// Every recipient, queued.
    pub recipients: Vec<RecipientStatus>,
}

/// Forwards message `id` to new recipients.
pub async fn forward(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
    fwd: Forward,
) -> Result<Forwarded, OpError> {
    caller.trail.justification(&fwd.justification);
    let (row, _) = visible_to(app, caller, id).await?;
    caller.counterparts(&fwd.recipients);
    let sealed = live_content(&row)?;
    check_across(&app.policy(), &row, &fwd.recipients)?;
    let (expected, policy) = decide_forward(app, caller, &row, &fwd.recipients).await?;
    let content = content::open(&app.store, &app.master_key, &row.id, sealed).await?;
    let attachments = app.store.message_attachments(&row.id).await?;
    // The originator's signatures travel with the copy; the forwarder may
    // add its own over the original as it received it.
    let mut signatures = app.store.signatures(&row.id).await?;
    let as_received = message_json(&row, &content, &[]);
    let recipient_ids: Vec<String> = fwd.recipients.iter().map(ToString::to_string).collect();
    let signing = Signing {
        presented: &fwd.signature,
        sender: &caller.partner,
        role: SignatureRole::Forwarder,
        attachment_ids: &attachments,
    };
    let own = signed::check(app, caller.trail, signing, |digest_of| {
        crate::signature::forward_statement(
            caller.partner.as_str(),
            &as_received,
            &recipient_ids,
            digest_of,
        )
    })
    .await?;
    signatures.extend(own);
    let personal_data = stored_personal_data(&row)?;
    let now = OffsetDateTime::now_utc();
    // A copy never outlives the original's retention.
    let own = compute_retention(&policy.retention, now, None, &personal_data.subjects, None);
    let retain_until_ms = to_ms(own.retain_until).min(row.retain_until_ms);
    let copy = Copy {
        original: &row,
        content: &content,
        now,
        retain_until_ms,
        attachments,
        signatures,
    };
    commit(app, caller, copy, &fwd.recipients, expected).await
}

/// A message whose originator lives behind a peer gateway cannot be
/// forwarded to a partner behind a peer (SPEC §11): only the originator's
/// gateway may send its information across, and the next gateway would
/// refuse it (`origin_not_behind_peer`). A local originator's message is
/// relayed like a submission.
fn check_across(
    policy: &crate::policy::Policy,
    row: &MessageRow,
    recipients: &BTreeSet<PartnerId>,
) -> Result<(), OpError> {
    let Some(origin_peer) =
        PartnerId::parse(&row.originator).and_then(|o| policy.via(&o).map(|p| p.id.clone()))
    else {
        return Ok(());
    };
    let remote: Vec<String> = recipients
        .iter()
        .filter(|r| policy.via(r).is_some())
        .map(ToString::to_string)
        .collect();
    if remote.is_empty() {
        return Ok(());
    }
    Err(OpError::OriginNotBehindPeer(format!(
        "The originator of the information lives behind gateway {origin_peer}; it cannot be forwarded to {} behind a peer gateway.",
        remote.join(", ")
    )))
}

/// Asks the policy whether the caller may pass the message to
/// `recipients`; returns what must still hold at commit.
async fn decide_forward(
    app: &AppState,
    caller: &Caller<'_>,
    row: &MessageRow,
    recipients: &BTreeSet<PartnerId>,
) -> Result<(Expected, std::sync::Arc<crate::policy::Policy>), OpError> {
    let label = stored_label(row)?;
    let personal_data = stored_personal_data(row)?;
    let purpose = Purpose::parse(&row.purpose).ok_or(OpError::Internal)?;
    let originator = partner_of(&row.originator)?;
    let forward_permitted: BTreeSet<PartnerId> = app
        .store
        .permissions(&row.root_id)
        .await?
        .into_iter()
        .filter(|p| p.scope == PermissionScope::Forward)
        .filter_map(|p| PartnerId::parse(&p.partner))
        .collect();
    // The copy takes the label and hold read here, and the decision rests
    // on them and the permissions: all must still hold at commit.
    let expected = Expected::live(&row.id, &row.root_id)
        .with_label(&row.label)
        .with_held(row.held)
        .with_permissions(
            forward_permitted
                .iter()
                .map(|p| Permission {
                    partner: p.to_string(),
                    scope: PermissionScope::Forward,
                })
                .collect(),
        );
    let policy = app.policy();
    let forwarder = &caller.partner;
    let decision = decide(
        &policy,
        app.settings.accreditation,
        &app.suspended(),
        &Transfer {
            sender: forwarder,
            recipients,
            label: &label,
            purpose,
            personal_data: &personal_data,
            onward: (*forwarder != originator).then_some(Onward {
                originator: &originator,
                forward_permitted: &forward_permitted,
            }),
        },
    );
    if let Decision::Deny(v) = decision {
        app.metrics
            .message_denied(v.iter().map(|v| v.code.as_str()));
        return Err(OpError::PolicyRefused(v));
    }
    Ok((expected, policy))
}

/// The copy a forward writes.
struct Copy<'a> {
    original: &'a MessageRow,
    content: &'a Content,
    now: OffsetDateTime,
    retain_until_ms: i64,
    attachments: Vec<String>,
    signatures: Vec<SignatureRow>,
}

/// Seals and writes the copy with the audit record, and wakes the
/// recipients.
async fn commit(
    app: &AppState,
    caller: &Caller<'_>,
    copy: Copy<'_>,
    recipients: &BTreeSet<PartnerId>,
    expected: Expected,
) -> Result<Forwarded, OpError> {
    let row = copy.original;
    let new_id = uuid::Uuid::now_v7().to_string();
    let (sealed, wrapped) = content::seal(&app.master_key, &new_id, copy.content)?;
    let accepted_at = format_at(copy.now);
    let message = MessageRow {
        id: new_id.clone(),
        sender: caller.partner.to_string(),
        forwarded_from: Some(row.id.clone()),
        officer: caller.officer.clone(),
        accepted_at: accepted_at.clone(),
        accepted_ms: to_ms(copy.now),
        retain_until_ms: copy.retain_until_ms,
        retention_basis: json_text(&json!({"kind": "original", "message": row.root_id})),
        held: row.held,
        erased_at_ms: None,
        content: Some(sealed),
        collect_seq: 0,
        ..row.clone()
    };
    caller.trail.detail("message_ids", json!([new_id]));
    caller.trail.detail("forward_id", json!(new_id));
    let (deliveries, outbox) = route(&app.policy(), &new_id, recipients, to_ms(copy.now));
    let submit = WriteOp::from(Submit {
        message: Box::new(message),
        deliveries,
        outbox,
        data_key: wrapped,
        attachments: copy.attachments,
        idempotency: None,
        signatures: copy.signatures,
    });
    let op = submit.checked(expected);
    let draft = caller.trail.draft(Action::Disclose, Outcome::Allowed);
    let (_, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    app.metrics.message_accepted();
    for r in recipients {
        app.inbox.notify(r);
    }
    app.wake_relay();
    Ok(Forwarded {
        id: new_id,
        forwarded_from: row.id.clone(),
        originator: row.originator.clone(),
        accepted_at,
        retain_until: ms_to_text(copy.retain_until_ms),
        review_on: row.review_on.clone(),
        recipients: recipients
            .iter()
            .map(|r| RecipientStatus {
                partner: r.clone(),
                status: DeliveryStatus::Queued,
            })
            .collect(),
    })
}
