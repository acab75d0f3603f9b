//! Bad parameters are the caller's mistake: `400` naming the parameter (or
//! `404` for a path id that cannot exist), never a `5xx`, which means the
//! gateway failed. The sweep reads every operation, its parameters and its
//! roles from the OpenAPI description the gateway generates from its code,
//! so a new parameter or route is covered without touching this file.

use serde_json::{Value, json};

use crate::harness::*;

/// Hostile values for a parameter, as they appear in the URL (already
/// percent-encoded where needed): out of range, negative, huge,
/// non-numeric, invisible Unicode, empty, wrong JSON types, bad UTF-8.
fn hostile_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "-1",
        "0",
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
        "abc",
        "",
        "1.5",
        "1e3",
        "true",
        "null",
        "%5B1%5D",
        "%7B%7D",
        "%E2%80%8B1",
        "1%E2%80%AE",
        "%EF%BB%BF",
        "%00",
        "%FF",
        "%2E%2E",
        "%2F",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    v.push(format!("1{}", "0".repeat(400)));
    v.push("x".repeat(4096));
    v
}

/// A request body each operation accepts when its parameters are good, so
/// that a refusal in the path sweep can only be about the path.
fn good_body(operation: &str) -> Option<Value> {
    let label = message()["label"].clone();
    match operation {
        "forward_message" => Some(json!({"recipients": ["EU-ECTC"], "justification": "sweep"})),
        "grant_permission" => Some(json!({"partner": "RS-MOI", "scope": "forward"})),
        "record_judicial_use" => Some(json!({"reference": "sweep"})),
        "raise_label" => Some(label),
        "set_hold" => Some(json!({"reason": "sweep"})),
        "review_message" => Some(json!({"decision": "keep", "reason": "sweep", "extend_days": 1})),
        "suspend_partner" | "resume_partner" => Some(json!({"reason": "sweep"})),
        "submit_message" => Some(message()),
        _ => None,
    }
}

/// One operation of the API description.
struct Op {
    method: String,
    path: String,
    id: String,
    role: String,
    query: Vec<(String, bool)>,
    path_params: Vec<String>,
}

fn operations() -> Vec<Op> {
    let doc: Value =
        serde_json::from_str(brdo::api::openapi::document_json()).expect("API description");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(params) = op.get("parameters").and_then(Value::as_array) else {
                continue;
            };
            let of = |place: &str| -> Vec<(String, bool)> {
                params
                    .iter()
                    .filter(|p| p["in"] == place)
                    .map(|p| {
                        (
                            p["name"].as_str().expect("name").to_owned(),
                            p["required"] == true,
                        )
                    })
                    .collect()
            };
            ops.push(Op {
                method: method.to_uppercase(),
                path: path.clone(),
                id: op["operationId"].as_str().unwrap_or_default().to_owned(),
                role: op["x-brdo-roles"][0]
                    .as_str()
                    .expect("every operation names its roles")
                    .to_owned(),
                query: of("query"),
                path_params: of("path").into_iter().map(|(n, _)| n).collect(),
            });
        }
    }
    ops
}

fn client_for(gw: &TestGateway, role: &str) -> brdo_tools::client::Client {
    match role {
        "partner" => gw.partner("AL-CTD"),
        "partner DPO" => gw.client("dpo-AL-CTD"),
        "gateway DPO" => gw.client("dpo-gateway"),
        "operator" => gw.client("operator-admin"),
        other => panic!("role {other} has no test client"),
    }
}

/// A value for a path parameter that names something that exists, so the
/// other parameter is the only thing wrong.
fn good_path_value(name: &str, message_id: &str, attachment_id: &str) -> String {
    match name {
        "id" => message_id.to_owned(),
        "attachment_id" => attachment_id.to_owned(),
        "seq" => "1".to_owned(),
        other => panic!("path parameter {other} has no good value here"),
    }
}

async fn probe(gw: &TestGateway, op: &Op, path: &str) -> brdo_tools::client::ClientResponse {
    let client = client_for(gw, &op.role);
    let headers = [OFFICER, JUSTIFICATION, ("content-type", "application/json")];
    let body = good_body(&op.id).map(|b| b.to_string().into_bytes());
    let method = hyper::Method::from_bytes(op.method.as_bytes()).expect("method");
    client
        .request(method, path, &headers, body)
        .await
        .unwrap_or_else(|e| panic!("{} {path}: {e}", op.method))
}

fn assert_refused_naming(
    resp: &brdo_tools::client::ClientResponse,
    what: &str,
    name: &str,
    allow_404: bool,
) {
    assert!(
        resp.status < 500,
        "{what}: answered {} {}",
        resp.status,
        text(&resp.body)
    );
    if resp.status < 400 {
        return; // a value that happens to be valid (e.g. wait=0)
    }
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json"),
        "{what}: {}",
        text(&resp.body)
    );
    let p = resp.json();
    match resp.status {
        400 => {
            let named = p["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["field"] == name));
            assert!(named, "{what}: 400 does not name {name}: {p}");
        }
        404 if allow_404 => assert_eq!(p["code"], "not_found", "{what}: {p}"),
        other => panic!("{what}: {other} {p}"),
    }
}

#[tokio::test]
async fn no_parameter_value_makes_a_server_error() {
    let gw = TestGateway::start().await;
    let (message_id, attachment_id) = message_with_attachment(&gw).await;
    let ops = operations();
    assert!(
        ops.iter().any(|o| o.path == "/v1/inbox"),
        "inbox is described"
    );
    let values = hostile_values();
    let mut probes = 0;

    for op in &ops {
        let good_path = |skip: Option<&str>, with: &str| -> String {
            let mut p = op.path.clone();
            for name in &op.path_params {
                let v = if Some(name.as_str()) == skip {
                    with.to_owned()
                } else {
                    good_path_value(name, &message_id, &attachment_id)
                };
                p = p.replace(&format!("{{{name}}}"), &v);
            }
            p
        };
        let required: Vec<String> = op
            .query
            .iter()
            .filter(|(_, req)| *req)
            .map(|(n, _)| format!("{n}=1"))
            .collect();

        for (name, _) in &op.query {
            let others: Vec<&String> = required
                .iter()
                .filter(|r| !r.starts_with(&format!("{name}=")))
                .collect();
            let mut queries: Vec<String> = values.iter().map(|v| format!("{name}={v}")).collect();
            queries.push(format!("{name}=1&{name}=1"));
            queries.push(format!("{name}=abc&{name}=2"));
            queries.push(name.clone());
            for q in queries {
                let mut parts: Vec<String> = others.iter().map(|s| (*s).clone()).collect();
                parts.push(q);
                let url = format!("{}?{}", good_path(None, ""), parts.join("&"));
                let resp = probe(&gw, op, &url).await;
                let what = format!("{} {url:.200} ({})", op.method, op.role);
                assert_refused_naming(&resp, &what, name, false);
                probes += 1;
            }
        }

        for name in &op.path_params {
            let query = required.join("&");
            for v in &values {
                if v.is_empty() {
                    continue; // an empty segment is another route: 404 below
                }
                let mut url = good_path(Some(name), v);
                if !query.is_empty() {
                    url = format!("{url}?{query}");
                }
                let resp = probe(&gw, op, &url).await;
                let what = format!("{} {url:.200} ({})", op.method, op.role);
                assert_refused_naming(&resp, &what, name, true);
                assert!(resp.status >= 400, "{what}: accepted");
                probes += 1;
            }
            let url = good_path(Some(name), "");
            let resp = probe(&gw, op, &url).await;
            assert!(resp.status < 500, "{} {url}: {}", op.method, resp.status);
        }
    }
    assert!(
        probes > 400,
        "only {probes} probes: the description lost its parameters?"
    );
    // Every probe was audited, none as a failure of the gateway.
    let dpo = gw.client("dpo-gateway");
    let resp = dpo
        .get("/v1/audit?outcome=failed&limit=1000&order=desc", &[])
        .await
        .expect("audit");
    assert_eq!(resp.status, 200, "{}", text(&resp.body));
    for rec in resp.json()["records"].as_array().expect("records") {
        let code = rec["code"].as_str().unwrap_or_default();
        assert!(
            !matches!(
                code,
                "audit_unavailable" | "internal_error" | "content_integrity"
            ),
            "{rec}"
        );
    }
    gw.stop().await;
}

/// The reproduction from the review: an inbox cursor one past the largest
/// the store can hold answered `503 audit_unavailable`.
#[tokio::test]
async fn inbox_cursor_beyond_i64_is_a_bad_request() {
    let gw = TestGateway::start().await;
    let rs = gw.partner("RS-MOI");
    for v in ["9223372036854775808", "18446744073709551615", "-1", "x"] {
        let resp = rs
            .get(&format!("/v1/inbox?after={v}"), &[OFFICER])
            .await
            .expect("inbox");
        let p = assert_problem(&resp, 400, "invalid_request");
        assert_eq!(p["errors"][0]["field"], "after", "{v}");
        let rec = gw.audit_of(&resp).await;
        assert_eq!(rec["code"], "invalid_request");
        assert_eq!(rec["details"]["fields"], json!(["after"]));
    }
    // Cursors are sealed now: no number is one, not even one the store
    // could hold; `0` (the start) is the only plain value.
    let resp = rs
        .get("/v1/inbox?after=9223372036854775807", &[OFFICER])
        .await
        .expect("inbox");
    let p = assert_problem(&resp, 400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "after");
    let resp = rs
        .get("/v1/inbox?after=0", &[OFFICER])
        .await
        .expect("inbox");
    assert_eq!(resp.status, 200, "{}", text(&resp.body));
    assert_eq!(resp.json()["messages"], json!([]));
    gw.stop().await;
}

/// A message from AL-CTD carrying an attachment: the things the path
/// sweep's good values name.
async fn message_with_attachment(gw: &TestGateway) -> (String, String) {
    let resp = upload(gw, "AL-CTD", b"sweep".to_vec(), "application/octet-stream").await;
    assert_eq!(resp.status, 201, "{}", text(&resp.body));
    let attachment = resp.json()["id"].as_str().expect("id").to_owned();
    let mut m = message();
    m["attachments"] = json!([attachment]);
    (send(gw, "AL-CTD", &m).await, attachment)
}

/// A body member the API does not define is the caller's mistake on every
/// operation with a JSON body (SPEC §8): `400 invalid_message` naming it,
/// never accepted and silently dropped. The table is `good_body`; each body
/// is otherwise valid, so the unknown member is the only thing wrong.
#[tokio::test]
async fn every_json_body_refuses_an_unknown_member() {
    let gw = TestGateway::start().await;
    let (message_id, attachment_id) = message_with_attachment(&gw).await;
    let doc: Value =
        serde_json::from_str(brdo::api::openapi::document_json()).expect("API description");
    let mut checked = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"].as_str().unwrap_or_default();
            let Some(Value::Object(mut body)) = good_body(id) else {
                continue;
            };
            body.insert("colour".into(), json!("red"));
            let mut concrete = path.clone();
            for name in ["id", "attachment_id", "seq", "partner"] {
                let value = match name {
                    "partner" => "RS-MOI".to_owned(),
                    other => good_path_value(other, &message_id, &attachment_id),
                };
                concrete = concrete.replace(&format!("{{{name}}}"), &value);
            }
            let role = op["x-brdo-roles"][0].as_str().expect("roles");
            let client = client_for(&gw, role);
            let headers = [OFFICER, JUSTIFICATION, ("content-type", "application/json")];
            let m = hyper::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let resp = client
                .request(
                    m,
                    &concrete,
                    &headers,
                    Some(Value::Object(body).to_string().into_bytes()),
                )
                .await
                .expect("request");
            let what = format!("{} {concrete} ({id})", method.to_uppercase());
            assert_eq!(resp.status, 400, "{what}: {}", text(&resp.body));
            assert_eq!(resp.json()["code"], "invalid_message", "{what}");
            assert_refused_naming(&resp, &what, "colour", false);
            checked.push(id.to_owned());
        }
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "forward_message",
            "grant_permission",
            "raise_label",
            "record_judicial_use",
            "resume_partner",
            "review_message",
            "set_hold",
            "submit_message",
            "suspend_partner",
        ],
        "every operation with a JSON body is probed"
    );
    gw.stop().await;
}
