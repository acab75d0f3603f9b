//! The request gate as a whole, against a real gateway: every route of the
//! table × every method × every kind of caller, each cell's status and the
//! one audit record it left; requests a browser sends for another site;
//! the security headers of every response.

use brdo::api::routes::{ROUTES, Roles};
use brdo_tools::client::{Client, ClientResponse};
use hyper::Method;
use serde_json::{Value, json};

use crate::harness::*;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Partner,
    PartnerDpo,
    GatewayDpo,
    Operator,
    /// A certificate from the gateway's CA with no usable identity.
    Unidentified,
    /// A partner whose certificate was revoked before the gateway started.
    Revoked,
    /// A partner an operator suspended.
    Suspended,
    /// A peer gateway (SPEC §11). The matrix's gateway has no peers, so
    /// no caller of it acts in this role: its routes are refused to all
    /// (tests/it/federation.rs calls them as a peer).
    Gateway,
}

use Who::*;

/// Every caller, with the certificate it presents.
const CALLERS: [(Who, &str); 7] = [
    (Partner, "partner-AL-CTD"),
    (PartnerDpo, "dpo-AL-CTD"),
    (GatewayDpo, "dpo-gateway"),
    (Operator, "operator-admin"),
    (Unidentified, "no-uri"),
    (Revoked, "partner-RS-MOI"),
    (Suspended, "partner-ME-MOI"),
];

/// The methods of the matrix.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

const PARTNER: &[Who] = &[Partner];
const PARTNER_OR_GATEWAY_DPO: &[Who] = &[Partner, GatewayDpo];
const DPO: &[Who] = &[PartnerDpo, GatewayDpo];
const OPERATOR: &[Who] = &[Operator];
const ANY: &[Who] = &[Partner, PartnerDpo, GatewayDpo, Operator];
const GATEWAY: &[Who] = &[Gateway];

/// What a cell answers and audits: status, then the record's action,
/// outcome and code.
type Answer = (u16, &'static str, &'static str, Option<&'static str>);

/// One route as this test expects it, written independently of `ROUTES`:
/// method, path, the audit action of the route, who may call it, and what
/// a permitted caller gets for the request the matrix sends (an unknown
/// message, partner `ZZ-NONE`, an empty JSON object as body).
struct Row {
    method: &'static str,
    path: &'static str,
    action: &'static str,
    roles: &'static [Who],
    allowed: Answer,
}

const fn row(
    method: &'static str,
    path: &'static str,
    action: &'static str,
    roles: &'static [Who],
    allowed: Answer,
) -> Row {
    Row {
        method,
        path,
        action,
        roles,
        allowed,
    }
}

/// A read of something that is not there: refused as not visible.
const HIDDEN: Answer = (404, "deny", "denied", Some("not_found"));

#[rustfmt::skip]
const EXPECTED: &[Row] = &[
    row("POST", "/v1/messages", "collect", PARTNER, (400, "collect", "failed", Some("invalid_message"))),
    row("GET", "/v1/inbox", "list", PARTNER, (200, "list", "allowed", None)),
    row("GET", "/v1/messages/{id}", "consult", PARTNER, HIDDEN),
    row("POST", "/v1/messages/{id}/ack", "acknowledge", PARTNER, HIDDEN),
    row("GET", "/v1/messages/{id}/status", "status", PARTNER, HIDDEN),
    row("POST", "/v1/messages/{id}/forward", "disclose", PARTNER, (400, "disclose", "failed", Some("invalid_message"))),
    row("POST", "/v1/messages/{id}/permissions", "grant", PARTNER, (400, "grant", "failed", Some("invalid_message"))),
    row("POST", "/v1/messages/{id}/judicial-use", "judicial_use", PARTNER, HIDDEN),
    row("POST", "/v1/messages/{id}/label", "alter", PARTNER, (400, "alter", "failed", Some("invalid_message"))),
    row("POST", "/v1/messages/{id}/hold", "alter", PARTNER_OR_GATEWAY_DPO, (400, "alter", "failed", Some("invalid_message"))),
    row("DELETE", "/v1/messages/{id}/hold", "alter", PARTNER_OR_GATEWAY_DPO, HIDDEN),
    row("POST", "/v1/messages/{id}/review", "alter", PARTNER, (400, "alter", "failed", Some("invalid_message"))),
    row("POST", "/v1/attachments", "upload", PARTNER, (201, "upload", "allowed", None)),
    row("GET", "/v1/messages/{id}/attachments/{attachment_id}", "consult", PARTNER, HIDDEN),
    row("GET", "/v1/retention/due", "list", PARTNER, (200, "list", "allowed", None)),
    row("GET", "/v1/audit", "audit_query", DPO, (200, "audit_query", "allowed", None)),
    row("GET", "/v1/audit/export", "audit_export", DPO, (200, "audit_export", "allowed", None)),
    row("GET", "/v1/audit/checkpoint", "audit_query", DPO, (200, "audit_query", "allowed", None)),
    row("GET", "/v1/audit/proof/{seq}", "audit_query", DPO, (200, "audit_query", "allowed", None)),
    row("GET", "/v1/audit/consistency", "audit_query", DPO, (400, "audit_query", "failed", Some("invalid_request"))),
    row("GET", "/dpo", "audit_query", DPO, (200, "audit_query", "allowed", None)),
    row("GET", "/dpo/records/{seq}", "audit_query", DPO, (200, "audit_query", "allowed", None)),
    row("GET", "/v1/admin/partners", "inspect", OPERATOR, (200, "inspect", "allowed", None)),
    row("POST", "/v1/admin/partners/{id}/suspend", "partner_suspend", OPERATOR, HIDDEN),
    row("POST", "/v1/admin/partners/{id}/resume", "partner_resume", OPERATOR, HIDDEN),
    row("GET", "/v1/admin/certificates", "inspect", OPERATOR, (200, "inspect", "allowed", None)),
    row("POST", "/v1/admin/reload", "config_reload", OPERATOR, (200, "config_reload", "allowed", None)),
    row("GET", "/v1/admin/config", "inspect", OPERATOR, (200, "inspect", "allowed", None)),
    row("GET", "/v1/admin/peers", "inspect", OPERATOR, (200, "inspect", "allowed", None)),
    row("POST", "/v1/admin/peers/{id}/suspend", "partner_suspend", OPERATOR, HIDDEN),
    row("POST", "/v1/admin/peers/{id}/resume", "partner_resume", OPERATOR, HIDDEN),
    row("POST", "/v1/federation/attachments", "upload", GATEWAY, (201, "upload", "allowed", None)),
    row("POST", "/v1/federation/messages", "collect", GATEWAY, (201, "collect", "allowed", None)),
    row("POST", "/v1/federation/receipts", "acknowledge", GATEWAY, (200, "acknowledge", "allowed", None)),
    row("POST", "/v1/federation/notices", "alter", GATEWAY, (200, "alter", "allowed", None)),
    row("GET", "/v1/openapi.json", "inspect", ANY, (200, "inspect", "allowed", None)),
];

/// A path no route has.
const UNKNOWN_PATH: &str = "/v1/nothing-here";

fn roles_of(who: &[Who]) -> Roles {
    who.iter().fold(Roles::NONE, |acc, w| {
        acc.or(match w {
            Partner => Roles::PARTNER,
            PartnerDpo => Roles::PARTNER_DPO,
            GatewayDpo => Roles::GATEWAY_DPO,
            Operator => Roles::OPERATOR,
            Gateway => Roles::GATEWAY,
            other => panic!("{other:?} is no role"),
        })
    })
}

/// The expectation table and `ROUTES` name the same (method, path) pairs
/// with the same roles and action: a route added to the table without a
/// row here, or with other roles, fails the matrix.
fn assert_table_matches_routes() {
    for r in ROUTES {
        let row = EXPECTED
            .iter()
            .find(|e| e.method == r.method.as_str() && e.path == r.path)
            .unwrap_or_else(|| {
                panic!(
                    "{} {} is in ROUTES but has no row in the gate matrix's EXPECTED table",
                    r.method, r.path
                )
            });
        assert_eq!(
            roles_of(row.roles),
            r.op.roles,
            "{} {}: roles differ from ROUTES",
            r.method,
            r.path
        );
        assert_eq!(row.action, r.op.action.as_str(), "{} {}", r.method, r.path);
    }
    for e in EXPECTED {
        assert!(
            ROUTES
                .iter()
                .any(|r| r.method.as_str() == e.method && r.path == e.path),
            "{} {} is expected but not in ROUTES",
            e.method,
            e.path
        );
    }
}

/// The concrete path the matrix requests for a path template.
fn concrete(template: &str, missing: &str, seq: u64) -> String {
    template
        .replace("/partners/{id}", "/partners/ZZ-NONE")
        .replace("{id}", missing)
        .replace("{attachment_id}", missing)
        .replace("{seq}", &seq.to_string())
}

/// What (who, method, path) must answer; `None`: no TLS connection.
fn expectation(who: Who, method: &Method, path: &str) -> Option<(Answer, Option<String>)> {
    let on_path: Vec<&Row> = EXPECTED.iter().filter(|e| e.path == path).collect();
    let row = on_path.iter().find(|e| e.method == method.as_str());
    // A path answered with a method it lacks names its methods, whoever
    // was refused.
    let allow = (!on_path.is_empty() && row.is_none()).then(|| {
        on_path
            .iter()
            .map(|e| e.method)
            .collect::<Vec<_>>()
            .join(", ")
    });
    match who {
        Revoked => return None,
        Unidentified => return Some(((403, "deny", "denied", Some("no_identity")), allow)),
        Suspended => {
            return Some(((403, "deny", "denied", Some("partner_suspended")), allow));
        }
        _ => {}
    }
    if on_path.is_empty() {
        return Some(((404, "request", "failed", Some("not_found")), None));
    }
    let Some(row) = row else {
        return Some((
            (405, "request", "failed", Some("method_not_allowed")),
            allow,
        ));
    };
    if row.roles.contains(&who) {
        Some((row.allowed, None))
    } else {
        Some(((403, "deny", "denied", Some("forbidden_role")), None))
    }
}

/// Sends one matrix request: with an officer and a justification, and for
/// methods that may carry a body an empty JSON object declared as JSON.
async fn call(client: &Client, method: &Method, path: &str) -> Result<ClientResponse, String> {
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    let (headers, body): (Vec<(&str, &str)>, _) = if reads.contains(method) {
        (vec![OFFICER, JUSTIFICATION], None)
    } else {
        (
            vec![OFFICER, JUSTIFICATION, ("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
    };
    client
        .request(method.clone(), path, &headers, body)
        .await
        .map_err(|e| e.to_string())
}

/// The headers every response carries for browsers.
fn assert_security_headers(r: &ClientResponse, what: &str) {
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.starts_with("default-src 'none';"), "{what}: {csp}");
    let html = r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        // The DPO page: its one stylesheet by hash, nothing inline.
        assert!(csp.contains("style-src 'sha256-"), "{what}: {csp}");
        assert!(!csp.contains("unsafe"), "{what}: {csp}");
    } else {
        assert_eq!(csp, brdo::api::security_headers::API_CSP, "{what}");
    }
}

/// Checks one cell's response and its audit record.
async fn check_cell(
    gw: &TestGateway,
    what: &str,
    method: &Method,
    answer: &Result<ClientResponse, String>,
    expected: Option<(Answer, Option<String>)>,
    before: u64,
) {
    let after = gw.audit_size().await;
    let Some(((status, action, outcome, code), allow)) = expected else {
        assert!(
            answer.is_err(),
            "{what}: answered {:?}",
            answer.as_ref().map(|r| r.status)
        );
        assert_eq!(
            after, before,
            "{what}: a refused handshake leaves no record"
        );
        return;
    };
    let r = answer.as_ref().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.status, status, "{what}: {}", text(&r.body));
    assert_security_headers(r, what);
    if *method != Method::HEAD && status >= 400 {
        let body = r.json();
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(body["code"].as_str(), code, "{what}: {body}");
    }
    if *method == Method::HEAD {
        assert!(r.body.is_empty(), "{what}: HEAD answered a body");
    }
    assert_eq!(
        r.header("allow"),
        allow.as_deref(),
        "{what}: Allow names the path's methods"
    );
    assert_eq!(after, before + 1, "{what}: exactly one audit record");
    // Partners are not shown the gateway-wide sequence (SPEC §5); the
    // record is found by the request id, and it must be the newest.
    if let Some(seq) = r.header("brdo-audit-seq") {
        assert_eq!(
            seq,
            after.to_string(),
            "{what}: the record is the request's"
        );
    }
    let rec = gw.audit_record(after).await;
    assert_eq!(
        rec["request_id"].as_str(),
        r.header("brdo-request-id"),
        "{what}"
    );
    assert_eq!(
        (
            rec["action"].as_str(),
            rec["outcome"].as_str(),
            rec["code"].as_str()
        ),
        (Some(action), Some(outcome), code),
        "{what}: {rec}"
    );
}

/// A gateway for the gate's tests: its own PKI with partner RS-MOI's
/// certificate revoked, no rate limit (the matrix sends ~200 requests per
/// identity), AL-CTD's message as record 1 (so a partner DPO may see it)
/// and ME-MOI suspended.
/// The gateway, its PKI, and the seq of the submit's record (which every
/// DPO may see: the start-up records are the gateway's own).
async fn gate_gateway() -> (TestGateway, Pki, u64) {
    let pki = Pki::create();
    let pem = std::fs::read(pki.dir.join("partner-RS-MOI.crt")).expect("cert");
    let der = <rustls::pki_types::CertificateDer<'_> as rustls::pki_types::pem::PemObject>::from_pem_slice(&pem)
        .expect("pem");
    let serial = brdo::tls::PeerCert::from_der(&der).serial;
    brdo::pki::revoke(
        &pki.dir,
        &serial,
        brdo::pki::RevocationReason::KeyCompromise,
        time::OffsetDateTime::now_utc(),
    )
    .expect("revoke");
    let gw = TestGateway::start_with(&pki.dir, |c| {
        c.server.rate_limit_per_second = 0;
        c.audit.checkpoint_every = 1;
    })
    .await;
    let submit_seq = gw.audit_size().await + 1;
    send(&gw, "AL-CTD", &message()).await;
    let r = gw
        .client("operator-admin")
        .post_json("/v1/admin/partners/ME-MOI/suspend", &[], &json!({}))
        .await
        .expect("suspend");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    (gw, pki, submit_seq)
}

#[tokio::test]
async fn route_method_role_matrix() {
    assert_table_matches_routes();
    let (gw, _pki, seq) = gate_gateway().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let mut paths: Vec<&str> = Vec::new();
    for r in ROUTES {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    paths.push(UNKNOWN_PATH);
    let mut cells = 0;
    for (who, stem) in CALLERS {
        let client = gw.client(stem);
        for template in &paths {
            let path = concrete(template, &missing, seq);
            for method in &METHODS {
                let what = format!("{who:?} {method} {template}");
                let before = gw.audit_size().await;
                let answer = call(&client, method, &path).await;
                check_cell(
                    &gw,
                    &what,
                    method,
                    &answer,
                    expectation(who, method, template),
                    before,
                )
                .await;
                cells += 1;
            }
        }
    }
    assert_eq!(cells, CALLERS.len() * METHODS.len() * paths.len());
    gw.stop().await;
}

/// The ways a page on another site can try to make a browser send a
/// state-changing call: name, headers (besides the officer), body, and
/// whether the gate must call it cross-site (403) rather than a wrong
/// media type (415). `None` as content type: the route's proper one.
type Forgery = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
    &'static [u8],
);

const EVIL: &str = "https://evil.example";

const FORGERIES: &[Forgery] = &[
    ("Origin of another site", &[("origin", EVIL)], None, b"{}"),
    (
        "Sec-Fetch-Site cross-site",
        &[("sec-fetch-site", "cross-site")],
        None,
        b"{}",
    ),
    (
        "Sec-Fetch-Site same-site",
        &[("sec-fetch-site", "same-site")],
        None,
        b"{}",
    ),
    ("Origin null", &[("origin", "null")], None, b"{}"),
    (
        "form content type",
        &[],
        Some("application/x-www-form-urlencoded"),
        b"",
    ),
    ("text/plain", &[], Some("text/plain"), b"{}"),
    (
        "multipart",
        &[],
        Some("multipart/form-data; boundary=x"),
        b"--x--\r\n",
    ),
    ("no content type", &[], Some(""), b""),
];

/// The media type a route's proper call declares.
fn proper_type(row: &Row) -> &'static str {
    if row.path == "/v1/attachments" {
        "application/octet-stream"
    } else {
        "application/json"
    }
}

/// Waits until identical refusals are recorded again rather than counted
/// into the previous one (the gateway folds them for one window, SPEC §5).
async fn past_fold_window() {
    tokio::time::sleep(brdo::app::refusals::WINDOW + std::time::Duration::from_millis(200)).await;
}

/// The identity the cross-site table calls a route as: one it allows.
fn caller_for(row: &Row) -> &'static str {
    let who = row.roles.first().copied().expect("a role");
    CALLERS
        .iter()
        .find(|(w, _)| *w == who)
        .map(|(_, stem)| *stem)
        .expect("a caller")
}

#[tokio::test]
async fn cross_site_requests_change_nothing() {
    let (gw, _pki, seq) = gate_gateway().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let own_origin = "https://localhost";
    let attachments = gw.count("attachments").await;
    let writes: Vec<&Row> = EXPECTED.iter().filter(|r| r.method != "GET").collect();
    assert_eq!(
        writes.len(),
        ROUTES.iter().filter(|r| r.method != Method::GET).count(),
        "every state-changing route is in the table"
    );
    // Forgery-major: refusals of one call with one code within the fold
    // window are one record with a count (SPEC §5), so each forgery is
    // sent to every route, then the window is let pass before the next.
    for (name, extra, ctype, body) in FORGERIES {
        for row in writes.iter().filter(|r| !r.roles.contains(&Gateway)) {
            let client = gw.client(caller_for(row));
            let method = Method::from_bytes(row.method.as_bytes()).expect("method");
            let path = concrete(row.path, &missing, seq);
            let what = format!("{name}: {} {}", row.method, row.path);
            let mut headers = vec![OFFICER, JUSTIFICATION];
            headers.extend_from_slice(extra);
            match ctype {
                None => headers.push(("content-type", proper_type(row))),
                Some("") => {}
                Some(t) => headers.push(("content-type", t)),
            }
            let before = gw.audit_size().await;
            let answer = client
                .request(method.clone(), &path, &headers, Some(body.to_vec()))
                .await
                .map_err(|e| e.to_string());
            let expected: Answer = if ctype.is_none() {
                (403, "deny", "denied", Some("cross_site_request"))
            } else {
                (415, row.action, "failed", Some("unsupported_media_type"))
            };
            check_cell(&gw, &what, &method, &answer, Some((expected, None)), before).await;
        }
        past_fold_window().await;
    }
    // The same calls from the gateway's own origin, as its own pages would
    // send them, reach the handlers: the refusals above are the headers',
    // not the routes'.
    for row in writes.iter().filter(|r| !r.roles.contains(&Gateway)) {
        let client = gw.client(caller_for(row));
        let method = Method::from_bytes(row.method.as_bytes()).expect("method");
        let path = concrete(row.path, &missing, seq);
        let before = gw.audit_size().await;
        let answer = client
            .request(
                method.clone(),
                &path,
                &[
                    OFFICER,
                    JUSTIFICATION,
                    ("origin", own_origin),
                    ("sec-fetch-site", "same-origin"),
                    ("content-type", proper_type(row)),
                ],
                Some(b"{}".to_vec()),
            )
            .await
            .map_err(|e| e.to_string());
        let what = format!("own origin: {} {}", row.method, row.path);
        check_cell(
            &gw,
            &what,
            &method,
            &answer,
            Some((row.allowed, None)),
            before,
        )
        .await;
    }
    // Only the own-origin upload stored anything.
    assert_eq!(gw.count("attachments").await, attachments + 1);
    gw.stop().await;
}

#[tokio::test]
async fn reported_cross_site_suspension_is_refused() {
    let gw = TestGateway::start().await;
    let ops = gw.client("operator-admin");
    let path = "/v1/admin/partners/RS-MOI/suspend";
    let form = ("content-type", "application/x-www-form-urlencoded");
    // As reported: another site's form, an empty body.
    for (headers, status, code) in [
        (vec![("origin", EVIL), form], 403, "cross_site_request"),
        (
            vec![("sec-fetch-site", "cross-site"), form],
            403,
            "cross_site_request",
        ),
        // A browser that sends neither header: the form's type is enough.
        (vec![form], 415, "unsupported_media_type"),
        (vec![], 415, "unsupported_media_type"),
    ] {
        let r = ops
            .request(Method::POST, path, &headers, None)
            .await
            .expect("request");
        assert_problem(&r, status, code);
        let rec = gw.audit_of(&r).await;
        assert_eq!(rec["code"], code);
        past_fold_window().await;
    }
    assert_eq!(
        gw.partner("RS-MOI")
            .get("/v1/inbox", &[])
            .await
            .expect("inbox")
            .status,
        200,
        "RS-MOI was not suspended"
    );
    let partners = ops
        .get("/v1/admin/partners", &[])
        .await
        .expect("partners")
        .json();
    let rs = partners["partners"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == "RS-MOI"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(rs["status"], "active", "{partners}");
    gw.stop().await;
}

#[tokio::test]
async fn methods_outside_the_table_reach_no_handler() {
    let gw = TestGateway::start().await;
    let partner = gw.partner("AL-CTD");
    // As reported: HEAD ran GET handlers the caller's role may not call.
    for path in ["/v1/admin/certificates", "/v1/admin/partners", "/v1/audit"] {
        let r = partner
            .request(Method::HEAD, path, &[], None)
            .await
            .expect("head");
        assert_eq!(r.status, 405, "HEAD {path}");
        assert_eq!(r.header("allow"), Some("GET"));
        assert!(r.body.is_empty());
        let rec = gw.audit_of(&r).await;
        assert_eq!(
            (
                rec["action"].as_str(),
                rec["outcome"].as_str(),
                rec["code"].as_str()
            ),
            (Some("request"), Some("failed"), Some("method_not_allowed")),
            "HEAD {path}: {rec}"
        );
    }
    // HEAD is refused to the role that may GET too.
    let r = gw
        .client("operator-admin")
        .request(Method::HEAD, "/v1/admin/partners", &[], None)
        .await
        .expect("head");
    assert_eq!(r.status, 405);
    // TRACE and made-up methods, on a route and off it.
    for method in [
        Method::TRACE,
        Method::from_bytes(b"BREW").expect("method"),
        Method::from_bytes(b"get").expect("method"),
    ] {
        let r = partner
            .request(method.clone(), "/v1/inbox", &[], None)
            .await
            .expect("request");
        let p = assert_problem(&r, 405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET"), "{method}: {p}");
        let r = partner
            .request(method.clone(), UNKNOWN_PATH, &[], None)
            .await
            .expect("request");
        assert_problem(&r, 404, "not_found");
        past_fold_window().await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn dpo_page_refuses_other_sites() {
    let gw = TestGateway::start().await;
    let dpo = gw.client("dpo-gateway");
    for (headers, ok) in [
        (vec![], true),
        (vec![("sec-fetch-site", "none")], true),
        (vec![("sec-fetch-site", "same-origin")], true),
        (
            vec![
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://localhost"),
            ],
            true,
        ),
        (vec![("sec-fetch-site", "cross-site")], false),
        (vec![("sec-fetch-site", "same-site")], false),
        (vec![("origin", EVIL)], false),
        (vec![("origin", "null")], false),
    ] {
        for path in ["/dpo", "/dpo/records/1", "/v1/audit/export"] {
            let r = dpo.get(path, &headers).await.expect("get");
            if ok {
                assert_eq!(r.status, 200, "{path} {headers:?}: {}", text(&r.body));
            } else {
                assert_problem(&r, 403, "cross_site_request");
                let rec = gw.audit_of(&r).await;
                assert_eq!(
                    (rec["action"].as_str(), rec["details"]["attempted"].as_str()),
                    (
                        Some("deny"),
                        Some(if path == "/v1/audit/export" {
                            "audit_export"
                        } else {
                            "audit_query"
                        })
                    ),
                    "{rec}"
                );
            }
            assert_security_headers(&r, path);
        }
        if !ok {
            past_fold_window().await;
        }
    }
    gw.stop().await;
}

/// Spellings of a path the table names that a lax router would serve as
/// that path: every one is `404` for every caller, audited, with the
/// browser security headers, and never reaches a handler (an operator's
/// listing, a DPO's audit query).
#[tokio::test]
async fn path_spellings_reach_no_handler() {
    let gw = TestGateway::start().await;
    let tricks: &[(&str, &str)] = &[
        ("operator-admin", "/v1/admin/partners/"),
        ("operator-admin", "//v1/admin/partners"),
        ("operator-admin", "/v1//admin/partners"),
        ("operator-admin", "/v1/admin/%70artners"),
        ("operator-admin", "/v1/admin%2Fpartners"),
        ("operator-admin", "/V1/ADMIN/PARTNERS"),
        ("operator-admin", "/v1/admin/./partners"),
        ("operator-admin", "/v1/x/../admin/partners"),
        ("operator-admin", "/v1/admin/partners;x"),
        ("operator-admin", "/v1/admin/partners%00"),
        ("partner-AL-CTD", "/v1/inbox/"),
        ("partner-AL-CTD", "/v1/%69nbox"),
        ("partner-AL-CTD", "/v1/Inbox"),
        ("partner-AL-CTD", "/v1/messages/../admin/partners"),
        ("partner-AL-CTD", "/v1/messages/x/../../admin/partners"),
    ];
    for (stem, path) in tricks {
        let what = format!("{stem} GET {path}");
        let r = gw
            .client(stem)
            .request(Method::GET, path, &[OFFICER], None)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_problem(&r, 404, "not_found");
        assert_security_headers(&r, &what);
        let rec = gw.audit_of(&r).await;
        assert_eq!(
            (rec["action"].as_str(), rec["outcome"].as_str()),
            (Some("request"), Some("failed")),
            "{what}: {rec}"
        );
        past_fold_window().await;
    }
    gw.stop().await;
}
