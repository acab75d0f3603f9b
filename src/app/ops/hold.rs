//! Setting and lifting a legal hold on a family: the originator or the
//! gateway's DPO may do it; a held family is never erased.

use serde::Serialize;
use serde_json::json;

use super::held::{require_originator, visible_to};
use super::{Caller, OpError, Trail};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome};
use crate::federation::Notice;
use crate::store::writes::SetHold;
use crate::store::{Expected, MessageRow, WriteOp};

/// Who sets or lifts a hold.
pub enum HoldBy<'a> {
    /// The originator, through a partner connection.
    Originator(Caller<'a>),
    /// The gateway's DPO, who may hold any message.
    Dpo(&'a dyn Trail),
}

impl HoldBy<'_> {
    fn trail(&self) -> &dyn Trail {
        match self {
            HoldBy::Originator(c) => c.trail,
            HoldBy::Dpo(t) => *t,
        }
    }
}

/// The hold a family is now under.
#[derive(Debug, Clone, Serialize)]
pub struct HoldState {
    /// The family (its root message).
    pub id: String,
    /// Whether it is held.
    pub held: bool,
    /// Why, when held.
    pub reason: Option<String>,
}

/// Sets a hold (with a reason) or lifts it (`None`) on the family of
/// message `id`.
pub async fn hold(
    app: &AppState,
    by: &HoldBy<'_>,
    id: &str,
    reason: Option<String>,
) -> Result<HoldState, OpError> {
    let row = target(app, by, id).await?;
    if row.erased_at_ms.is_some() {
        return Err(OpError::Erased);
    }
    let trail = by.trail();
    let held = reason.is_some();
    if let Some(r) = &reason {
        trail.justification(r);
    }
    trail.detail("hold", json!(held));
    trail.counterparts(vec![row.originator.clone()]);
    let set = WriteOp::from(SetHold {
        root_id: row.root_id.clone(),
        held,
        reason: reason.clone(),
        by_origin: false,
        notice: app.notice(match &reason {
            Some(r) => Notice::Hold {
                message_id: row.root_id.clone(),
                reason: r.clone(),
            },
            None => Notice::LiftHold {
                message_id: row.root_id.clone(),
            },
        }),
    });
    // A hold on a family erased meanwhile would answer for nothing held.
    let op = set.checked(Expected::live(&row.id, &row.root_id));
    let (_, rec) = app
        .store
        .write(op, trail.draft(Action::Alter, Outcome::Allowed))
        .await?;
    trail.audited(rec.seq);
    app.wake_relay();
    Ok(HoldState {
        id: row.root_id,
        held,
        reason,
    })
}

/// The message a hold applies to: the originator may act on what it
/// provided (other holders get `NotOriginator`, others `NotFound`); the
/// DPO on any message.
async fn target(app: &AppState, by: &HoldBy<'_>, id: &str) -> Result<MessageRow, OpError> {
    match by {
        HoldBy::Originator(caller) => {
            let (row, _) = visible_to(app, caller, id).await?;
            require_originator(&row, &caller.partner)?;
            Ok(row)
        }
        HoldBy::Dpo(trail) => {
            let id = uuid::Uuid::try_parse(id)
                .map_err(|_| OpError::NotFound)?
                .to_string();
            trail.message(&id);
            app.store.message(&id).await?.ok_or(OpError::NotFound)
        }
    }
}
