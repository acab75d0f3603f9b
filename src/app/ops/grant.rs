//! The originator grants a partner a permission over the whole family:
//! to forward it (H2) or to use it in judicial proceedings (H1).

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::held::{require_originator, visible_to};
use super::{Caller, OpError};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome, format_at};
use crate::domain::PartnerId;
use crate::domain::time::to_ms;
use crate::federation::{Notice, NoticeScope};
use crate::store::writes::Grant;
use crate::store::{Expected, WriteOp};

/// What a permission allows: forwarding (H2) or judicial use (H1), spelt
/// on the wire as in the store.
pub use crate::store::PermissionScope as Scope;

/// A permission granted.
#[derive(Debug, Clone, Serialize)]
pub struct Granted {
    /// The family (its root message).
    pub id: String,
    /// Who may now act.
    pub partner: PartnerId,
    /// What it may do.
    pub scope: Scope,
    /// When.
    pub granted_at: String,
}

/// Grants `partner` the permission `scope` over the family of message `id`.
pub async fn grant(
    app: &AppState,
    caller: &Caller<'_>,
    id: &str,
    partner: PartnerId,
    scope: Scope,
) -> Result<Granted, OpError> {
    let (row, _) = visible_to(app, caller, id).await?;
    caller.counterparts([partner.to_string()]);
    caller.trail.detail("scope", json!(scope.as_str()));
    require_originator(&row, &caller.partner)?;
    let now = OffsetDateTime::now_utc();
    let at = format_at(now);
    let grant = WriteOp::from(Grant {
        root_id: row.root_id.clone(),
        partner: partner.to_string(),
        scope,
        at_ms: to_ms(now),
        officer: caller.officer.clone(),
        notice: app.notice(Notice::Grant {
            message_id: row.root_id.clone(),
            partner: partner.clone(),
            scope: match scope {
                Scope::Forward => NoticeScope::Forward,
                Scope::JudicialUse => NoticeScope::JudicialUse,
            },
        }),
    });
    let op = grant.checked(Expected::live(&row.id, &row.root_id));
    let draft = caller.trail.draft(Action::Grant, Outcome::Allowed);
    let (_, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    app.wake_relay();
    Ok(Granted {
        id: row.root_id,
        partner,
        scope,
        granted_at: at,
    })
}
