//! The originator raises the label of the information and every copy of
//! it; a label is never lowered, and every current holder must still be
//! allowed to hold it.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use super::held::{require_originator, stored_label, visible_to};
use super::{Caller, OpError};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome};
use crate::domain::label::Label;
use crate::domain::{Classification, FieldError, PartnerId};
use crate::federation::Notice;
use crate::policy::{Violation, ViolationCode};
use crate::store::writes::RaiseLabel;
use crate::store::{Expected, WriteOp};

/// The label now in force over a family.
#[derive(Debug, Clone, Serialize)]
pub struct Raised {
    /// The family (its root message).
    pub id: String,
    /// The label.
    pub label: Label,
    /// Its display marking.
    pub marking: &'static str,
}

/// Raises the label of the family of message `id` to `new`.
pub async fn raise_label(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
    mut new: Label,
) -> Result<Raised, OpError> {
    let (row, _) = visible_to(app, caller, id).await?;
    require_originator(&row, &caller.partner)?;
    if row.erased_at_ms.is_some() {
        return Err(OpError::Erased);
    }
    let old = stored_label(&row)?;
    let not_raised = raise_errors(&old, &new);
    if !not_raised.is_empty() {
        return Err(OpError::LabelNotRaised(not_raised));
    }
    if new.review_on.is_none() {
        new.review_on = old.review_on;
    }
    let family = app.store.family(&row.root_id).await?;
    let mut holders: BTreeSet<PartnerId> = app
        .store
        .family_recipients(&row.root_id)
        .await?
        .iter()
        .filter_map(|p| PartnerId::parse(p))
        .collect();
    holders.extend(family.iter().filter_map(|m| PartnerId::parse(&m.sender)));
    holders.remove(&caller.partner);
    caller.counterparts(&holders);
    let violations = holder_violations(app, &new, &caller.partner, &holders);
    if !violations.is_empty() {
        return Err(OpError::PolicyRefused(violations));
    }
    caller.trail.detail(
        "label",
        json!({"from": old.classification, "to": new.classification, "handling_codes": new.handling_codes}),
    );
    caller.trail.detail(
        "message_ids",
        json!(family.iter().map(|m| &m.id).collect::<Vec<_>>()),
    );
    let raise = WriteOp::from(RaiseLabel {
        root_id: row.root_id.clone(),
        label: new.clone(),
        notice: app.notice(Notice::Label {
            message_id: row.root_id.clone(),
            label: new.clone(),
        }),
    });
    // The holders were checked against the family read here; a forward
    // committed since may have added one the new label excludes.
    let op = raise.checked(
        Expected::live(&row.id, &row.root_id)
            .with_label(&row.label)
            .with_family(family.iter().map(|m| m.id.clone()).collect()),
    );
    let draft = caller.trail.draft(Action::Alter, Outcome::Allowed);
    let (_, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    app.wake_relay();
    let marking = new.classification.marking();
    Ok(Raised {
        id: row.root_id,
        label: new,
        marking,
    })
}

/// Why `new` is not a raise of `old`, field by field (empty when it is).
pub(crate) fn raise_errors(old: &Label, new: &Label) -> Vec<FieldError> {
    let mut e = Vec::new();
    let mut push = |field: &str, message: String| {
        e.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if new.classification < old.classification {
        push(
            "classification",
            format!(
                "cannot be lowered from {} to {}",
                old.classification, new.classification
            ),
        );
    }
    let dropped: Vec<_> = old
        .handling_codes
        .difference(&new.handling_codes)
        .map(|c| c.as_str())
        .collect();
    if !dropped.is_empty() {
        push(
            "handling_codes",
            format!("cannot drop {}", dropped.join(", ")),
        );
    }
    if let (Some(old_text), Some(new_text)) = (&old.h3_text, &new.h3_text)
        && !new_text.contains(old_text.as_str())
    {
        push(
            "h3_text",
            "must keep the existing restriction text (it may add to it)".into(),
        );
    }
    match (&old.releasable_to, &new.releasable_to) {
        (Some(_), None) => push("releasable_to", "cannot be removed once set".into()),
        (Some(o), Some(n)) if !n.is_subset(o) => {
            let added: Vec<_> = n.difference(o).map(|p| p.as_str()).collect();
            push("releasable_to", format!("cannot add {}", added.join(", ")));
        }
        _ => {}
    }
    if new.review_on.is_some() && new.review_on != old.review_on {
        push(
            "review_on",
            "cannot be changed here; record a review decision instead".into(),
        );
    }
    e
}

/// Checks that every current holder may hold the information under `new`.
pub(crate) fn holder_violations(
    app: &AppState,
    new: &Label,
    originator: &PartnerId,
    holders: &BTreeSet<PartnerId>,
) -> Vec<Violation> {
    let policy = app.policy();
    let mut v = Vec::new();
    let level = new.classification;
    if level > app.settings.accreditation {
        v.push(Violation {
            recipient: None,
            code: ViolationCode::ClassificationExceedsAccreditation,
            detail: format!(
                "{level} is above the gateway's accredited maximum {}",
                app.settings.accreditation
            ),
        });
    }
    let clearance = |p: &PartnerId| {
        policy
            .partner(p)
            .map_or(Classification::BasicProtection, |x| x.clearance)
    };
    if level > clearance(originator) {
        v.push(Violation {
            recipient: None,
            code: ViolationCode::SenderNotCleared,
            detail: format!(
                "{level} is above {originator}'s clearance {}",
                clearance(originator)
            ),
        });
    }
    for h in holders {
        if level > clearance(h) {
            v.push(Violation {
                recipient: Some(h.clone()),
                code: ViolationCode::RecipientNotCleared,
                detail: format!(
                    "{h} holds the information and is cleared only to {}",
                    clearance(h)
                ),
            });
        }
        if !new.releasable_to_partner(h) {
            v.push(Violation {
                recipient: Some(h.clone()),
                code: ViolationCode::NotReleasable,
                detail: format!(
                    "{h} already holds the information and would not be in releasable_to"
                ),
            });
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use time::macros::date;

    use super::*;
    use crate::domain::fields::FieldErrors;

    fn label(v: Value) -> Label {
        let mut errs = FieldErrors::default();
        Label::parse(&v, "", date!(2026 - 01 - 01), &mut errs).expect("label")
    }

    #[test]
    fn raises_and_lowerings() {
        let old = label(json!({
            "classification": "EU_RESTRICTED", "handling_codes": ["H2", "H3"], "h3_text": "No border police.",
            "releasable_to": ["RS-MOI", "EU-ECTC"]
        }));
        let up = label(json!({
            "classification": "EU_CONFIDENTIAL", "handling_codes": ["H1", "H2", "H3"],
            "h3_text": "No border police. No customs.", "releasable_to": ["EU-ECTC"]
        }));
        assert!(raise_errors(&old, &up).is_empty());
        assert!(raise_errors(&old, &old).is_empty(), "no change is allowed");
        let down = label(
            json!({"classification": "BASIC_PROTECTION", "handling_codes": ["H3"], "h3_text": "x"}),
        );
        let fields: Vec<_> = raise_errors(&old, &down)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "classification",
                "handling_codes",
                "h3_text",
                "releasable_to"
            ]
        );
        let wider = label(json!({
            "classification": "EU_RESTRICTED", "handling_codes": ["H2", "H3"], "h3_text": "No border police.",
            "releasable_to": ["RS-MOI", "EU-ECTC", "XK-CTD"]
        }));
        assert_eq!(raise_errors(&old, &wider)[0].message, "cannot add XK-CTD");
    }
}
