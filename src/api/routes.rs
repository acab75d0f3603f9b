//! The route table: every endpoint, the action it audits as, and the roles
//! that may call it.
//!
//! The router is built from this table, so an endpoint cannot exist
//! without a declared role set: authorisation is checked once, in the
//! gate, not remembered in each handler.

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};

use super::{
    AppState, admin, attachments, audit, dpo_page, inbox, lifecycle, messages, openapi, retention,
};
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
    /// Every authenticated identity: the API description, and unknown
    /// routes (which answer 404 to all).
    pub const ANY: Roles = Roles(15);

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
        ]
        .into_iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }

    fn contains(self, identity: &Identity) -> bool {
        let bit = match identity {
            Identity::Partner(_) => 1,
            Identity::PartnerDpo(_) => 2,
            Identity::GatewayDpo => 4,
            Identity::Operator(_) => 8,
        };
        self.0 & bit != 0
    }
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
}

impl Operation {
    /// Whether `identity` may call it.
    pub fn allows(&self, identity: &Identity) -> bool {
        self.roles.contains(identity)
    }
}

/// One endpoint.
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path pattern in axum syntax.
    pub path: &'static str,
    /// Action and roles.
    pub op: Operation,
    handler: fn() -> MethodRouter<Arc<AppState>>,
}

const fn spec(
    method: Method,
    path: &'static str,
    action: Action,
    roles: Roles,
    handler: fn() -> MethodRouter<Arc<AppState>>,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        op: Operation {
            action,
            roles,
            route: path,
        },
        handler,
    }
}

/// Every endpoint of the mTLS API.
#[rustfmt::skip]
pub static ROUTES: &[RouteSpec] = &[
    spec(Method::POST, "/v1/messages", Action::Collect, Roles::PARTNER, || post(messages::submit)),
    spec(Method::GET, "/v1/inbox", Action::List, Roles::PARTNER, || get(inbox::list)),
    spec(Method::GET, "/v1/messages/{id}", Action::Consult, Roles::PARTNER, || get(messages::read)),
    spec(Method::POST, "/v1/messages/{id}/ack", Action::Acknowledge, Roles::PARTNER, || post(messages::ack)),
    spec(Method::GET, "/v1/messages/{id}/status", Action::Status, Roles::PARTNER, || get(messages::status)),
    spec(Method::POST, "/v1/messages/{id}/forward", Action::Disclose, Roles::PARTNER, || post(lifecycle::forward)),
    spec(Method::POST, "/v1/messages/{id}/permissions", Action::Grant, Roles::PARTNER, || post(lifecycle::grant)),
    spec(Method::POST, "/v1/messages/{id}/judicial-use", Action::JudicialUse, Roles::PARTNER, || post(lifecycle::judicial_use)),
    spec(Method::POST, "/v1/messages/{id}/label", Action::Alter, Roles::PARTNER, || post(lifecycle::raise_label)),
    spec(Method::POST, "/v1/messages/{id}/hold", Action::Alter, Roles::PARTNER.or(Roles::GATEWAY_DPO), || post(lifecycle::set_hold)),
    spec(Method::DELETE, "/v1/messages/{id}/hold", Action::Alter, Roles::PARTNER.or(Roles::GATEWAY_DPO), || delete(lifecycle::lift_hold)),
    spec(Method::POST, "/v1/messages/{id}/review", Action::Alter, Roles::PARTNER, || post(lifecycle::review)),
    spec(Method::POST, "/v1/attachments", Action::Upload, Roles::PARTNER, || post(attachments::upload)),
    spec(Method::GET, "/v1/messages/{id}/attachments/{attachment_id}", Action::Consult, Roles::PARTNER, || get(attachments::download)),
    spec(Method::GET, "/v1/retention/due", Action::List, Roles::PARTNER, || get(retention::due)),
    spec(Method::GET, "/v1/audit", Action::AuditQuery, Roles::DPO, || get(audit::query)),
    spec(Method::GET, "/v1/audit/export", Action::AuditExport, Roles::DPO, || get(audit::export)),
    spec(Method::GET, "/v1/audit/checkpoint", Action::AuditQuery, Roles::DPO, || get(audit::checkpoint)),
    spec(Method::GET, "/v1/audit/proof/{seq}", Action::AuditQuery, Roles::DPO, || get(audit::proof)),
    spec(Method::GET, "/v1/audit/consistency", Action::AuditQuery, Roles::DPO, || get(audit::consistency)),
    spec(Method::GET, "/dpo", Action::AuditQuery, Roles::DPO, || get(dpo_page::index)),
    spec(Method::GET, "/dpo/records/{seq}", Action::AuditQuery, Roles::DPO, || get(dpo_page::record)),
    spec(Method::GET, "/v1/admin/partners", Action::Inspect, Roles::OPERATOR, || get(admin::partners)),
    spec(Method::POST, "/v1/admin/partners/{id}/suspend", Action::PartnerSuspend, Roles::OPERATOR, || post(admin::suspend)),
    spec(Method::POST, "/v1/admin/partners/{id}/resume", Action::PartnerResume, Roles::OPERATOR, || post(admin::resume)),
    spec(Method::GET, "/v1/admin/certificates", Action::Inspect, Roles::OPERATOR, || get(admin::certificates)),
    spec(Method::POST, "/v1/admin/reload", Action::ConfigReload, Roles::OPERATOR, || post(admin::reload)),
    spec(Method::GET, "/v1/admin/config", Action::Inspect, Roles::OPERATOR, || get(super::admin_config::show)),
    spec(Method::GET, "/v1/openapi.json", Action::Inspect, Roles::ANY, || get(openapi::serve)),
];

/// The operation for a request; unknown routes and methods map to
/// [`Action::Request`] open to all roles (they answer 404/405 to all).
pub fn lookup(method: &Method, matched_path: Option<&str>) -> Operation {
    ROUTES
        .iter()
        .find(|r| r.method == method && Some(r.path) == matched_path)
        .map_or(
            Operation {
                action: Action::Request,
                roles: Roles::ANY,
                route: "(unmatched)",
            },
            |r| r.op,
        )
}

/// The router over [`ROUTES`], before the gate is layered on.
pub fn build() -> Router<Arc<AppState>> {
    ROUTES.iter().fold(Router::new(), |router, r| {
        router.route(r.path, (r.handler)())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn role_sets() {
        let partner = Identity::Partner(crate::domain::PartnerId::parse("AL-CTD").expect("id"));
        assert!(Roles::PARTNER.contains(&partner));
        assert!(!Roles::DPO.contains(&partner));
        assert!(Roles::DPO.contains(&Identity::GatewayDpo));
        assert!(
            Roles::PARTNER
                .or(Roles::GATEWAY_DPO)
                .contains(&Identity::GatewayDpo)
        );
        assert!(!Roles::OPERATOR.contains(&Identity::GatewayDpo));
        assert_eq!(lookup(&Method::GET, Some("/v1/inbox")).action, Action::List);
        assert_eq!(
            lookup(&Method::DELETE, Some("/v1/inbox")).action,
            Action::Request
        );
        assert_eq!(lookup(&Method::GET, None).roles, Roles::ANY);
    }
}
