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

pub use super::operation::{Accepts, Operation, Roles};
use super::{
    AppState, admin, attachments, audit, dpo_page, federation, inbox, lifecycle, messages, openapi,
    retention,
};
use crate::audit::Action;

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
    accepts: Accepts,
    handler: fn() -> MethodRouter<Arc<AppState>>,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        op: Operation {
            action,
            roles,
            route: path,
            accepts,
        },
        handler,
    }
}

/// Short names for the body column of [`ROUTES`].
const NO_BODY: Accepts = Accepts::Nothing;
const JSON: Accepts = Accepts::Json;
const RAW: Accepts = Accepts::Raw;

/// Every endpoint of the mTLS API.
#[rustfmt::skip]
pub static ROUTES: &[RouteSpec] = &[
    spec(Method::POST, "/v1/messages", Action::Collect, Roles::PARTNER, JSON, || post(messages::submit)),
    spec(Method::GET, "/v1/inbox", Action::List, Roles::PARTNER, NO_BODY, || get(inbox::list)),
    spec(Method::GET, "/v1/messages/{id}", Action::Consult, Roles::PARTNER, NO_BODY, || get(messages::read)),
    spec(Method::POST, "/v1/messages/{id}/ack", Action::Acknowledge, Roles::PARTNER, JSON, || post(messages::ack)),
    spec(Method::GET, "/v1/messages/{id}/status", Action::Status, Roles::PARTNER, NO_BODY, || get(messages::status)),
    spec(Method::POST, "/v1/messages/{id}/forward", Action::Disclose, Roles::PARTNER, JSON, || post(lifecycle::forward)),
    spec(Method::POST, "/v1/messages/{id}/permissions", Action::Grant, Roles::PARTNER, JSON, || post(lifecycle::grant)),
    spec(Method::POST, "/v1/messages/{id}/judicial-use", Action::JudicialUse, Roles::PARTNER, JSON, || post(lifecycle::judicial_use)),
    spec(Method::POST, "/v1/messages/{id}/label", Action::Alter, Roles::PARTNER, JSON, || post(lifecycle::raise_label)),
    spec(Method::POST, "/v1/messages/{id}/hold", Action::Alter, Roles::PARTNER.or(Roles::GATEWAY_DPO), JSON, || post(lifecycle::set_hold)),
    spec(Method::DELETE, "/v1/messages/{id}/hold", Action::Alter, Roles::PARTNER.or(Roles::GATEWAY_DPO), JSON, || delete(lifecycle::lift_hold)),
    spec(Method::POST, "/v1/messages/{id}/review", Action::Alter, Roles::PARTNER, JSON, || post(lifecycle::review)),
    spec(Method::POST, "/v1/attachments", Action::Upload, Roles::PARTNER, RAW, || post(attachments::upload)),
    spec(Method::GET, "/v1/messages/{id}/attachments/{attachment_id}", Action::Consult, Roles::PARTNER, NO_BODY, || get(attachments::download)),
    spec(Method::GET, "/v1/retention/due", Action::List, Roles::PARTNER, NO_BODY, || get(retention::due)),
    spec(Method::GET, "/v1/audit", Action::AuditQuery, Roles::DPO, NO_BODY, || get(audit::query)),
    spec(Method::GET, "/v1/audit/export", Action::AuditExport, Roles::DPO, NO_BODY, || get(audit::export)),
    spec(Method::GET, "/v1/audit/checkpoint", Action::AuditQuery, Roles::DPO, NO_BODY, || get(audit::checkpoint)),
    spec(Method::GET, "/v1/audit/proof/{seq}", Action::AuditQuery, Roles::DPO, NO_BODY, || get(audit::proof)),
    spec(Method::GET, "/v1/audit/consistency", Action::AuditQuery, Roles::DPO, NO_BODY, || get(audit::consistency)),
    spec(Method::GET, "/dpo", Action::AuditQuery, Roles::DPO, NO_BODY, || get(dpo_page::index)),
    spec(Method::GET, "/dpo/records/{seq}", Action::AuditQuery, Roles::DPO, NO_BODY, || get(dpo_page::record)),
    spec(Method::GET, "/v1/admin/partners", Action::Inspect, Roles::OPERATOR, NO_BODY, || get(admin::partners)),
    spec(Method::POST, "/v1/admin/partners/{id}/suspend", Action::PartnerSuspend, Roles::OPERATOR, JSON, || post(admin::suspend)),
    spec(Method::POST, "/v1/admin/partners/{id}/resume", Action::PartnerResume, Roles::OPERATOR, JSON, || post(admin::resume)),
    spec(Method::GET, "/v1/admin/certificates", Action::Inspect, Roles::OPERATOR, NO_BODY, || get(admin::certificates)),
    spec(Method::POST, "/v1/admin/reload", Action::ConfigReload, Roles::OPERATOR, JSON, || post(admin::reload)),
    spec(Method::GET, "/v1/admin/peers", Action::Inspect, Roles::OPERATOR, NO_BODY, || get(super::admin_peers::peers)),
    spec(Method::POST, "/v1/admin/peers/{id}/suspend", Action::PartnerSuspend, Roles::OPERATOR, JSON, || post(super::admin_peers::suspend)),
    spec(Method::POST, "/v1/admin/peers/{id}/resume", Action::PartnerResume, Roles::OPERATOR, JSON, || post(super::admin_peers::resume)),
    spec(Method::GET, "/v1/admin/config", Action::Inspect, Roles::OPERATOR, NO_BODY, || get(super::admin_config::show)),
    spec(Method::POST, "/v1/federation/attachments", Action::Upload, Roles::GATEWAY, RAW, || post(federation::attachments)),
    spec(Method::POST, "/v1/federation/messages", Action::Collect, Roles::GATEWAY, JSON, || post(federation::messages)),
    spec(Method::POST, "/v1/federation/receipts", Action::Acknowledge, Roles::GATEWAY, JSON, || post(federation::receipts)),
    spec(Method::POST, "/v1/federation/notices", Action::Alter, Roles::GATEWAY, JSON, || post(federation::notices)),
    spec(Method::GET, "/v1/openapi.json", Action::Inspect, Roles::ANY, NO_BODY, || get(openapi::serve)),
];

/// The operation for a request. A (method, path) the table does not name
/// maps to [`Action::Request`] open to no role: the gate refuses it with
/// [`route_refusal`] before any handler, and the empty role set refuses it
/// again should that step ever be skipped.
pub fn lookup(method: &Method, matched_path: Option<&str>) -> Operation {
    ROUTES
        .iter()
        .find(|r| r.method == method && Some(r.path) == matched_path)
        .map_or(
            Operation {
                action: Action::Request,
                roles: Roles::NONE,
                route: "(unmatched)",
                accepts: Accepts::Nothing,
            },
            |r| r.op,
        )
}

/// Why the table does not serve (method, path), if it does not.
///
/// Deny by default: the router alone would run a `GET` handler for `HEAD`
/// and answer `OPTIONS` itself, so only pairs the table names pass. `HEAD`,
/// `OPTIONS` and every other method the table does not list for a path are
/// `405` with the path's methods in `Allow`; an unknown path is `404`.
pub(crate) fn route_refusal(method: &Method, matched_path: Option<&str>) -> Option<RouteRefusal> {
    let Some(path) = matched_path else {
        return Some(RouteRefusal::NotFound);
    };
    let mut on_path = ROUTES.iter().filter(|r| r.path == path).peekable();
    if on_path.peek().is_none() {
        return Some(RouteRefusal::NotFound);
    }
    let methods: Vec<&str> = on_path.map(|r| r.method.as_str()).collect();
    if methods.contains(&method.as_str()) {
        None
    } else {
        Some(RouteRefusal::MethodNotAllowed {
            allow: methods.join(", "),
        })
    }
}

/// A (method, path) the table does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteRefusal {
    /// No route has this path.
    NotFound,
    /// The path exists with other methods, listed for the `Allow` header.
    MethodNotAllowed {
        /// The path's methods, comma-separated.
        allow: String,
    },
}

/// The table's path template of a matched path, `(unmatched)` for a path
/// the table does not know: a bounded label whatever path a client sends.
pub(crate) fn path_template(matched_path: Option<&str>) -> &'static str {
    ROUTES
        .iter()
        .find(|r| Some(r.path) == matched_path)
        .map_or("(unmatched)", |r| r.path)
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
    use crate::tls::Identity;

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
        assert_eq!(lookup(&Method::GET, None).roles, Roles::NONE);
        assert!(!lookup(&Method::HEAD, Some("/v1/admin/partners")).allows(&partner));
        assert!(
            !lookup(&Method::HEAD, Some("/v1/admin/partners"))
                .allows(&Identity::Operator("admin".into()))
        );
    }

    #[test]
    fn only_named_pairs_pass() {
        assert_eq!(route_refusal(&Method::GET, Some("/v1/inbox")), None);
        for m in [
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::PATCH,
            Method::TRACE,
            Method::CONNECT,
            Method::from_bytes(b"BREW").expect("method"),
        ] {
            assert_eq!(
                route_refusal(&m, Some("/v1/inbox")),
                Some(RouteRefusal::MethodNotAllowed {
                    allow: "GET".into()
                }),
                "{m}"
            );
        }
        assert_eq!(
            route_refusal(&Method::GET, Some("/v1/messages/{id}/hold")),
            Some(RouteRefusal::MethodNotAllowed {
                allow: "POST, DELETE".into()
            })
        );
        assert_eq!(
            route_refusal(&Method::GET, None),
            Some(RouteRefusal::NotFound)
        );
        assert_eq!(
            route_refusal(&Method::GET, Some("/v1/nothing")),
            Some(RouteRefusal::NotFound)
        );
    }

    #[test]
    fn reads_take_no_body_and_writes_take_json_except_uploads() {
        for r in ROUTES {
            let expected = match (r.method.as_str(), r.path) {
                ("GET", _) => Accepts::Nothing,
                ("POST", "/v1/attachments" | "/v1/federation/attachments") => Accepts::Raw,
                _ => Accepts::Json,
            };
            assert_eq!(r.op.accepts, expected, "{} {}", r.method, r.path);
        }
    }
}
