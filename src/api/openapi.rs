//! The OpenAPI 3.1 description of the API, generated from the code.
//!
//! Why generated: integrators and the API fuzzer (`.ci/api-fuzz`) work from
//! this document, so it must say exactly what the gateway does. Each
//! handler carries its `#[utoipa::path]` next to its code; the request and
//! response shapes are in `schema`; the enumerations come from the
//! domain's own enums; the problem codes from [`ApiError::CODES`] and the
//! policy's [`ViolationCode`]s. What every route shares is added here from
//! the route table itself ([`ROUTES`]): the roles that may call it, the
//! audit action it records, and the problem answers of the request gate.
//! The unit test `every_route_is_documented` fails when a route is served
//! without a description, or described without being served.
//!
//! The document is served at `GET /v1/openapi.json` to any authenticated
//! caller (it is audited like every request), printed by `brdo openapi`,
//! and committed as `openapi.json` (a test compares the two).

use std::sync::OnceLock;

use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{OpenApi, ToSchema};

use super::problem::Problem;
use super::routes::{Accepts, ROUTES};
use super::{admin, attachments, audit, dpo_page, inbox, lifecycle, messages, retention, schema};

/// Media type of problem documents (RFC 9457).
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";
/// Name of the security scheme: a client certificate on the TLS connection.
pub(crate) const SECURITY_SCHEME: &str = "mutualTLS";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Brdo gateway API",
        description = "Secure information exchange for counter-terrorism partner authorities. \
            Every call is made over TLS with a client certificate naming one Brdo identity \
            (SPEC §1); every call leaves one audit record (identical refusals within a second \
            are counted into one), whose seq DPOs and operators get in the Brdo-Audit-Seq \
            response header (partners do not: it would reveal the gateway's whole traffic), \
            and every answer names its Brdo-Request-Id. Errors are RFC 9457 \
            problem documents (application/problem+json) with a stable `code`.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    paths(
        messages::submit, inbox::list, messages::read, messages::ack, messages::status,
        lifecycle::forward, lifecycle::grant, lifecycle::judicial_use, lifecycle::raise_label,
        lifecycle::set_hold, lifecycle::lift_hold, lifecycle::review,
        attachments::upload, attachments::download, retention::due,
        audit::query, audit::export, audit::checkpoint, audit::proof, audit::consistency,
        dpo_page::index, dpo_page::record,
        admin::partners, admin::suspend, admin::resume, admin::certificates, admin::reload,
        super::admin_config::show,
        super::admin_peers::peers, super::admin_peers::suspend, super::admin_peers::resume,
        super::federation::attachments, super::federation::messages, super::federation::receipts,
        super::federation::notices,
        serve,
    ),
    components(schemas(Problem, schema::Violation, schema::FieldError)),
    tags(
        (name = "messages", description = "Send, receive, read, acknowledge (partners)"),
        (name = "lifecycle", description = "Forwarding, permissions, holds, reviews, label raises"),
        (name = "attachments", description = "Attachments, uploaded before the message that names them"),
        (name = "audit", description = "The tamper-evident audit log (DPOs)"),
        (name = "operators", description = "Partners, certificates, reload (operators)"),
        (name = "federation", description = "Peer gateways relaying messages and receipts (SPEC §11)"),
        (name = "meta", description = "This description"),
    )
)]
struct ApiDoc;

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    summary = "This OpenAPI 3.1 description",
    responses((status = 200, description = "The description", body = Object))
)]
pub async fn serve() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json().to_owned(),
    )
        .into_response()
}

/// The document as pretty JSON with a final newline, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let value = serde_json::to_value(document()).map(sorted);
        let mut s = value
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    })
}

/// The value with every object's keys in sorted order, so the text is the
/// same on every build (some maps in the model are hash maps) and the
/// committed copy can be compared byte for byte.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The whole document: the derived paths and schemas, completed from the
/// route table.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::MutualTls {
                description: Some(
                    "A client certificate issued by the gateway's client CA (`brdo pki issue`), \
                     not revoked, whose SAN URI names one identity: \
                     urn:brdo:partner:<ID>, urn:brdo:dpo:<ID>, urn:brdo:dpo:gateway or \
                     urn:brdo:operator:<NAME>."
                        .to_owned(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
    doc.security = Some(vec![SecurityRequirement::new(
        SECURITY_SCHEME,
        Vec::<String>::new(),
    )]);
    for route in ROUTES {
        let Some(item) = doc.paths.paths.get_mut(route.path) else {
            continue;
        };
        let Some(op) = operation_mut(item, &route.method) else {
            continue;
        };
        complete(
            op,
            route.op.roles.names(),
            route.op.action.as_str(),
            route.op.accepts,
        );
    }
    doc
}

/// Adds what the gate gives every route: who may call it, what it audits
/// as, and the problem answers any call can get.
fn complete(op: &mut Operation, roles: Vec<&'static str>, action: &str, accepts: Accepts) {
    let who = format!("Roles: {}. Audited as `{action}`.", roles.join(", "));
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{who}"),
        _ => who,
    });
    let mut ext = Extensions::default();
    ext.insert("x-brdo-roles".to_owned(), json!(roles));
    ext.insert("x-brdo-audit-action".to_owned(), json!(action));
    op.extensions
        .get_or_insert_with(Default::default)
        .merge(ext);

    let mut errors = vec![
        (
            "400",
            "Invalid input: a header, parameter or field; `errors` names each",
        ),
        (
            "403",
            "Refused: no identity, another role's endpoint, suspended or revoked, a request from another site (cross_site_request), or the policy",
        ),
        ("404", "Not found, or not visible to the caller"),
        (
            "500",
            "Internal failure; the request_id finds the cause in the logs",
        ),
        (
            "429",
            "The caller's identity exceeded server.rate_limit_per_second; Retry-After gives whole seconds",
        ),
        ("503", "The audit log cannot be written; nothing was done"),
    ];
    if op.request_body.is_some() {
        errors.push(("413", "The body exceeds the configured limit"));
        errors.push((
            "408",
            "The body arrived slower than server.min_upload_bytes_per_second after server.upload_grace_secs",
        ));
    }
    match accepts {
        Accepts::Nothing => {}
        Accepts::Json => errors.push((
            "415",
            "Content-Type must be application/json, also when the body is empty",
        )),
        Accepts::Raw => errors.push((
            "415",
            "Content-Type must name the upload's media type; none, form types and text/plain are refused",
        )),
    }
    for (status, description) in errors {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    }
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .build(),
        )
        .build()
        .into()
}

/// The operation of `method` on a path item.
pub(crate) fn operation_mut<'a>(
    item: &'a mut PathItem,
    method: &Method,
) -> Option<&'a mut Operation> {
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        Method::HEAD => item.head.as_mut(),
        Method::OPTIONS => item.options.as_mut(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (method, path) of the document, as the router would match it.
    fn documented() -> Vec<(Method, String)> {
        let doc = document();
        let mut out = Vec::new();
        for (path, item) in &doc.paths.paths {
            let mut item = item.clone();
            for m in [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::PATCH,
                Method::HEAD,
                Method::OPTIONS,
            ] {
                if operation_mut(&mut item, &m).is_some() {
                    out.push((m, path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented() {
        let documented = documented();
        for r in ROUTES {
            assert!(
                documented.contains(&(r.method.clone(), r.path.to_owned())),
                "{} {} is served but not in the OpenAPI document: add #[utoipa::path] to its handler and list it in ApiDoc",
                r.method,
                r.path
            );
        }
        for (m, p) in &documented {
            assert!(
                ROUTES.iter().any(|r| r.method == *m && r.path == p),
                "{m} {p} is documented but not served"
            );
        }
    }

    #[test]
    fn document_essentials() {
        let v: serde_json::Value = serde_json::from_str(document_json()).expect("json");
        assert_eq!(v["openapi"], "3.1.0");
        assert_eq!(
            v["components"]["securitySchemes"][SECURITY_SCHEME]["type"],
            "mutualTLS"
        );
        assert_eq!(v["security"][0][SECURITY_SCHEME], json!([]));
        let codes = v["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
            .as_array()
            .expect("codes");
        for c in [
            "invalid_message",
            "recipient_not_cleared",
            "handling_code_h1",
        ] {
            assert!(codes.contains(&json!(c)), "{c}");
        }
        let submit = &v["paths"]["/v1/messages"]["post"];
        assert_eq!(submit["x-brdo-roles"], json!(["partner"]));
        assert_eq!(submit["x-brdo-audit-action"], "collect");
        assert_eq!(
            submit["responses"]["413"]["content"][PROBLEM_JSON]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert_eq!(
            v["components"]["schemas"]["Classification"]["enum"][0],
            "BASIC_PROTECTION"
        );
        assert_eq!(
            v["components"]["schemas"]["MessageSubmission"]["additionalProperties"],
            false
        );
    }
}
