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
use crate::store::{Expected, WriteOp};

/// What a permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Passing the information on (H2).
    Forward,
    /// Using it in judicial proceedings (H1).
    JudicialUse,
}

impl Scope {
    /// Parses the stored and wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "forward" => Some(Self::Forward),
            "judicial_use" => Some(Self::JudicialUse),
            _ => None,
        }
    }

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::JudicialUse => "judicial_use",
        }
    }
}

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
    let at = format_at(OffsetDateTime::now_utc());
    let grant = WriteOp::Grant {
        root_id: row.root_id.clone(),
        partner: partner.to_string(),
        scope: scope.as_str().to_owned(),
        at: at.clone(),
        officer: caller.officer.clone(),
    };
    let op = WriteOp::Checked {
        expected: Expected::live(&row.id, &row.root_id),
        op: Box::new(grant),
    };
    let draft = caller.trail.draft(Action::Grant, Outcome::Allowed);
    let (_, rec) = app.store.write(op, draft).await?;
    caller.trail.audited(rec.seq);
    Ok(Granted {
        id: row.root_id,
        partner,
        scope,
        granted_at: at,
    })
}
