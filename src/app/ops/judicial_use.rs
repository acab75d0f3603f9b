//! A recipient records use of the information in judicial proceedings;
//! under H1 only with the originator's permission.

use serde::Serialize;
use time::OffsetDateTime;

use super::held::{stored_label, visible_to};
use super::{Caller, OpError};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::PartnerId;
use crate::domain::label::HandlingCode;
use crate::domain::time::to_ms;
use crate::policy::{Violation, ViolationCode};
use crate::store::writes::JudicialUse;
use crate::store::{Expected, WriteOp};
use crate::store::{Permission, PermissionScope};

/// A judicial use recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    /// The message.
    pub id: String,
    /// The recipient that uses it.
    pub partner: PartnerId,
    /// When.
    pub recorded_at: String,
    /// The proceedings' reference, if given.
    pub reference: Option<String>,
}

/// Records judicial use of message `id` by the calling recipient.
pub async fn judicial_use(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
    reference: Option<String>,
) -> Result<Recorded, OpError> {
    let me = &caller.partner;
    let (row, deliveries) = visible_to(app, caller, id).await?;
    if !deliveries.iter().any(|d| d.recipient == me.as_str()) {
        return Err(OpError::NotFound);
    }
    caller.counterparts([row.originator.clone()]);
    if row.erased_at_ms.is_some() {
        return Err(OpError::Erased);
    }
    let label = stored_label(&row)?;
    let h1 = label.has(HandlingCode::H1);
    if h1 {
        let permitted = app
            .store
            .permissions(&row.root_id)
            .await?
            .iter()
            .any(|p| p.partner == me.as_str() && p.scope == PermissionScope::JudicialUse);
        if !permitted {
            return Err(OpError::PolicyRefused(vec![Violation {
                recipient: Some(me.clone()),
                code: ViolationCode::HandlingCodeH1,
                detail: format!(
                    "H1: {} has not permitted use of this information in judicial proceedings",
                    row.originator
                ),
            }]));
        }
    }
    let now = OffsetDateTime::now_utc();
    let at = format_at(now);
    let use_op = WriteOp::from(JudicialUse {
        message_id: row.id.clone(),
        partner: me.to_string(),
        at_ms: to_ms(now),
        reference: reference.clone(),
    });
    let mut expected = Expected::live(&row.id, &row.root_id).with_label(&row.label);
    if h1 {
        expected = expected.with_permissions(vec![Permission {
            partner: me.to_string(),
            scope: PermissionScope::JudicialUse,
        }]);
    }
    let op = use_op.checked(expected);
    let draft = caller.trail.draft(Action::JudicialUse, Outcome::Allowed);
    let (_, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    Ok(Recorded {
        id: row.id,
        partner: me.clone(),
        recorded_at: at,
        reference,
    })
}
