//! A lifecycle notice from a peer gateway (`POST /v1/federation/notices`,
//! SPEC §11): the originator's decision about a family this gateway may
//! hold. Parsed strictly; only the gateway the family's originator lives
//! behind may send it (`origin_not_behind_peer`). This gateway applies it
//! under its own rules — erasure at once (refused `409 legal_hold` while
//! its own hold stands), the hold set or lifted, the raised label in
//! place of its copy's (even where a local holder is no longer cleared:
//! the raise is stricter, and the record says so), the permission
//! recorded for its own H2/H1 checks — with one audit record, and answers
//! a signed receipt naming that record. A family it does not hold (or no
//! longer holds) answers the same receipt; a repeated notice changes
//! nothing more.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::erase::delete_blobs;
use super::held::stored_label;
use super::raise_label::{holder_violations, raise_errors};
use super::{OpError, Trail};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::PartnerId;
use crate::domain::time::to_ms;
use crate::federation::{Notice, NoticeScope, Receipt, ReceiptKind};
use crate::policy::Policy;
use crate::store::writes::{
    ApplyNotice, Erase, Grant, NoticeChange, RaiseLabel, SetHold, WriteOutput,
};
use crate::store::{MessageRow, PermissionScope, WriteOp};

/// Applies `doc` from `peer`; the answer's JSON (`{"receipt": JWS}`).
pub async fn apply(
    app: &AppState,
    peer: &PartnerId,
    trail: &dyn Trail,
    doc: &Value,
) -> Result<Value, OpError> {
    let signer = app.receipt_signer().ok_or(OpError::Internal)?;
    if app.store.peer_suspended(peer.as_str()).await? {
        return Err(OpError::PeerSuspended(peer.to_string()));
    }
    let now = OffsetDateTime::now_utc();
    let notice = Notice::parse(doc, now.date()).map_err(|e| OpError::Invalid(e.into_vec()))?;
    let id = notice.message_id().to_owned();
    trail.message(&id);
    trail.detail("peer", json!(peer.as_str()));
    trail.detail("notice", json!(notice.kind()));
    let row = app.store.message(&id).await?;
    if let Some(row) = &row {
        check_family_origin(app, peer, row).await?;
    }
    let at_ms = to_ms(now);
    let change = match row.filter(|r| r.erased_at_ms.is_none()) {
        Some(row) => change(app, trail, &notice, &row, peer, at_ms).await?,
        None => {
            trail.detail("held_here", json!(false));
            NoticeChange::Nothing
        }
    };
    let erase = matches!(notice, Notice::Erase { .. });
    let receipt = Receipt {
        v: 1,
        kind: if erase {
            ReceiptKind::Erased
        } else {
            ReceiptKind::Applied
        },
        gateway: signer.own.clone(),
        to: peer.clone(),
        message_id: id,
        recipient: None,
        at: format_at(now),
        audit_seq: None,
        tree_size: None,
        violations: Vec::new(),
        notice: (!erase).then(|| notice.kind().to_owned()),
    };
    let action = match notice {
        Notice::Erase { .. } => Action::Erase,
        Notice::Grant { .. } => Action::Grant,
        _ => Action::Alter,
    };
    let op = WriteOp::from(ApplyNotice {
        change,
        receipt,
        signer,
        peer: peer.to_string(),
        at_ms,
    });
    let (out, rec) = app
        .store
        .write(op, trail.draft(action, Outcome::Allowed))
        .await?;
    trail.audited(rec.seq);
    delete_blobs(&app.blobs, &out).await;
    app.metrics.relay_received(peer.as_str(), "notice");
    match out {
        WriteOutput::Notice { receipt, .. } => Ok(json!({ "receipt": receipt.jws })),
        _ => Err(OpError::Internal),
    }
}

/// The family's originator must live behind the calling peer: only its
/// gateway decides about the information.
fn check_origin(policy: &Policy, peer: &PartnerId, row: &MessageRow) -> Result<(), OpError> {
    let behind = PartnerId::parse(&row.originator)
        .and_then(|o| policy.partner(&o).and_then(|p| p.via.clone()))
        .is_some_and(|v| &v == peer);
    if behind {
        Ok(())
    } else {
        Err(OpError::OriginNotBehindPeer(format!(
            "The originator of the information does not live behind gateway {peer}."
        )))
    }
}

/// The notice acts on the whole family, and a relayed forward names its
/// family itself: the family's original decides when this gateway holds
/// it (its originator must live behind the peer, as must the named
/// copy's); without it, every member's originator must.
async fn check_family_origin(
    app: &AppState,
    peer: &PartnerId,
    row: &MessageRow,
) -> Result<(), OpError> {
    let policy = app.policy();
    check_origin(&policy, peer, row)?;
    if row.root_id == row.id {
        return Ok(());
    }
    if let Some(root) = app.store.message(&row.root_id).await? {
        return check_origin(&policy, peer, &root);
    }
    for member in app.store.family(&row.root_id).await? {
        check_origin(&policy, peer, &member)?;
    }
    Ok(())
}

/// What `notice` changes in the family of `row` (which holds content).
async fn change(
    app: &AppState,
    trail: &dyn Trail,
    notice: &Notice,
    row: &MessageRow,
    peer: &PartnerId,
    at_ms: i64,
) -> Result<NoticeChange, OpError> {
    let root = row.root_id.clone();
    Ok(match notice {
        Notice::Erase { reason, .. } => {
            trail.justification(reason);
            let family = app.store.family(&root).await?;
            let ids: Vec<String> = family.into_iter().map(|m| m.id).collect();
            // The writer replaces these with the family as it is at commit.
            trail.detail("message_ids", json!(ids));
            trail.detail("rule", json!({"kind": "notice", "peer": peer.as_str()}));
            NoticeChange::Erase(Erase {
                message_ids: ids,
                family_of: Some(root),
                at_ms,
                notice: None,
                receipts: None,
            })
        }
        Notice::Hold { reason, .. } => {
            trail.justification(reason);
            trail.detail("hold", json!(true));
            NoticeChange::Hold(SetHold {
                root_id: root,
                held: true,
                reason: Some(reason.clone()),
                notice: None,
                by_origin: true,
            })
        }
        Notice::LiftHold { .. } => {
            trail.detail("hold", json!(false));
            NoticeChange::Hold(SetHold {
                root_id: root,
                held: false,
                reason: None,
                notice: None,
                by_origin: true,
            })
        }
        Notice::Label { label, .. } => label_change(app, trail, row, label.clone()).await?,
        Notice::Grant { partner, scope, .. } => {
            trail.counterparts(vec![partner.to_string()]);
            trail.detail("scope", json!(scope.as_str()));
            NoticeChange::Grant(Grant {
                root_id: root,
                partner: partner.to_string(),
                scope: match scope {
                    NoticeScope::Forward => PermissionScope::Forward,
                    NoticeScope::JudicialUse => PermissionScope::JudicialUse,
                },
                at_ms,
                officer: format!("gateway:{peer}"),
                notice: None,
            })
        }
    })
}

/// A label raise: refused `label_not_raised` if it lowers this gateway's
/// copy in any point; applied even where a local holder is no longer
/// cleared for it (the raise is the stricter rule), which the record lists.
async fn label_change(
    app: &AppState,
    trail: &dyn Trail,
    row: &MessageRow,
    mut new: crate::domain::Label,
) -> Result<NoticeChange, OpError> {
    let old = stored_label(row)?;
    let not_raised = raise_errors(&old, &new);
    if !not_raised.is_empty() {
        return Err(OpError::LabelNotRaised(not_raised));
    }
    if new.review_on.is_none() {
        new.review_on = old.review_on;
    }
    let mut holders: BTreeSet<PartnerId> = app
        .store
        .family_recipients(&row.root_id)
        .await?
        .iter()
        .filter_map(|p| PartnerId::parse(p))
        .collect();
    let originator = PartnerId::parse(&row.originator).ok_or(OpError::Internal)?;
    holders.remove(&originator);
    trail.counterparts(holders.iter().map(ToString::to_string).collect());
    trail.detail(
        "label",
        json!({"from": old.classification, "to": new.classification, "handling_codes": new.handling_codes}),
    );
    let uncleared: Vec<Value> = holder_violations(app, &new, &originator, &holders)
        .into_iter()
        .map(|v| json!({"partner": v.recipient.map(|p| p.to_string()), "code": v.code.as_str()}))
        .collect();
    if !uncleared.is_empty() {
        trail.detail("uncleared", Value::Array(uncleared));
    }
    Ok(NoticeChange::Label(RaiseLabel {
        root_id: row.root_id.clone(),
        label: new,
        notice: None,
    }))
}
