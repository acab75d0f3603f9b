//! What a route performs, as the gate needs it: the action it audits as,
//! the roles that may call it and the body it accepts. Apart from the
//! route table (which also names each handler), so that the request
//! context and the gate can speak of an operation without importing the
//! handlers.

use crate::audit::Action;
use crate::tls::Identity;

/// Roles, as a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// Partner systems.
    pub const PARTNER: Roles = Roles(1);
    /// A partner's DPO.
    pub const PARTNER_DPO: Roles = Roles(2);
    /// The gateway's DPO.
    pub const GATEWAY_DPO: Roles = Roles(4);
    /// Any DPO.
    pub const DPO: Roles = Roles(2 | 4);
    /// Operators.
    pub const OPERATOR: Roles = Roles(8);
    /// Peer gateways (federation endpoints only).
    pub const GATEWAY: Roles = Roles(16);
    /// Every authenticated identity but peer gateways: the API description.
    pub const ANY: Roles = Roles(15);
    /// Nobody: what a (method, path) the table does not name resolves to,
    /// so that even a gate that forgot to refuse it would refuse it by role.
    pub const NONE: Roles = Roles(0);

    /// Union.
    pub const fn or(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    /// The role names in the set, for the API description.
    pub fn names(self) -> Vec<&'static str> {
        [
            (1, "partner"),
            (2, "partner DPO"),
            (4, "gateway DPO"),
            (8, "operator"),
            (16, "gateway"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }

    pub(crate) fn contains(self, identity: &Identity) -> bool {
        let bit = match identity {
            Identity::Partner(_) => 1,
            Identity::PartnerDpo(_) => 2,
            Identity::GatewayDpo => 4,
            Identity::Operator(_) => 8,
            Identity::Gateway(_) => 16,
        };
        self.0 & bit != 0
    }
}

/// The request body a route takes, by media type.
///
/// A page on another site can make a browser send a cross-site request
/// without asking first (no CORS preflight) only with a form's media types
/// (`application/x-www-form-urlencoded`, `multipart/form-data`,
/// `text/plain`) or none. Requiring a type outside that set on every
/// state-changing call means such a request never reaches a handler, even
/// if the browser omits `Origin` and `Sec-Fetch-Site`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// A read (`GET`): the gate does not look at the body's type.
    Nothing,
    /// `Content-Type: application/json`, required even when the body is
    /// empty.
    Json,
    /// A raw upload: any declared media type except the three a form can
    /// send.
    Raw,
}

/// What a route does, for authorisation and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The audit action of a successful call.
    pub action: Action,
    /// Who may call it.
    pub roles: Roles,
    /// The path template (for metrics and traces; never a concrete path).
    pub route: &'static str,
    /// The body's media type the gate requires.
    pub accepts: Accepts,
}

impl Operation {
    /// Whether `identity` may call it.
    pub fn allows(&self, identity: &Identity) -> bool {
        self.roles.contains(identity)
    }
}
