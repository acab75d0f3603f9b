//! Bad input (SPEC §8): a clear problem naming every field, an audit
//! record, and nothing else stored.

use serde_json::{Value, json};

use crate::harness::*;

fn fields(p: &Value) -> Vec<String> {
    p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

#[tokio::test]
async fn every_field_error_is_listed_and_nothing_is_stored() {
    let gw = TestGateway::start().await;
    let mut m = message();
    m["recipients"] = json!(["RS-MOI", "RS-MOI"]);
    m["label"]["classification"] = json!("SECRET");
    m["label"]["handling_codes"] = json!(["H0", "H3"]);
    m["label"]["h3_text"] = Value::Null;
    m["evaluation"] = json!({"scheme": "EU-4x4", "source": "F", "information": "6"});
    m["purpose"] = json!("curiosity");
    m["personal_data"]["special_categories"] = json!(["health"]);
    m["retention_days"] = json!("a year");
    m["priority"] = json!("high");
    let r = submit(&gw, "AL-CTD", &m).await;
    let p = assert_problem(&r, 400, "invalid_message");
    assert_eq!(
        fields(&p),
        [
            "recipients[1]",
            "label.classification",
            "label.h3_text",
            "evaluation.source",
            "evaluation.information",
            "purpose",
            "personal_data.special_categories_basis",
            "retention_days",
            "priority",
        ]
    );
    for e in p["errors"].as_array().expect("errors") {
        assert!(e["message"].as_str().is_some_and(|m| m.len() > 5), "{e}");
    }
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "collect");
    assert_eq!(rec["outcome"], "failed");
    assert_eq!(rec["code"], "invalid_message");
    assert_eq!(rec["details"]["fields"].as_array().map(Vec::len), Some(9));
    assert_eq!(gw.count("messages").await, 0);
    assert_eq!(gw.count("deliveries").await, 0);
    assert_eq!(gw.count("data_keys").await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn h3_text_without_h3_and_nato_codes_outside_their_scheme() {
    let gw = TestGateway::start().await;
    let mut m = message();
    m["label"]["handling_codes"] = json!(["H2"]);
    m["evaluation"] = json!({"scheme": "NATO-6x6", "source": "X", "information": "1"});
    let p = assert_problem(&submit(&gw, "AL-CTD", &m).await, 400, "invalid_message");
    assert_eq!(fields(&p), ["label.h3_text", "evaluation.source"]);
    gw.stop().await;
}

#[tokio::test]
async fn malformed_json_wrong_types_and_media_types() {
    let gw = TestGateway::start().await;
    let albania = gw.partner("AL-CTD");
    let post = |body: &'static str, ctype: &'static str| {
        let c = &albania;
        async move {
            c.request(
                hyper::Method::POST,
                "/v1/messages",
                &[OFFICER, ("content-type", ctype)],
                Some(body.as_bytes().to_vec()),
            )
            .await
            .expect("request")
        }
    };
    let p = assert_problem(
        &post("{\"recipients\": [", "application/json").await,
        400,
        "invalid_message",
    );
    assert_eq!(fields(&p), ["(body)"]);
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("line 1")
    );
    let p = assert_problem(
        &post("[]", "application/json").await,
        400,
        "invalid_message",
    );
    assert_eq!(fields(&p), ["(body)"]);
    let p = assert_problem(
        &post("{}", "application/json; charset=utf-8").await,
        400,
        "invalid_message",
    );
    assert_eq!(
        fields(&p),
        [
            "recipients",
            "subject",
            "body",
            "label",
            "evaluation",
            "purpose",
            "personal_data"
        ]
    );
    assert_problem(
        &post("a=b", "application/x-www-form-urlencoded").await,
        415,
        "unsupported_media_type",
    );
    assert_eq!(gw.count("messages").await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn oversize_bodies_get_413_and_are_audited() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| c.server.max_body_bytes = 4096).await;
    let mut m = message();
    m["body"] = json!("x".repeat(5000));
    let r = submit(&gw, "AL-CTD", &m).await;
    assert_problem(&r, 413, "payload_too_large");
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["code"].as_str()),
        (Some("collect"), Some("payload_too_large"))
    );
    // Chunked (no Content-Length) is cut off at the limit too.
    let r = gw
        .partner_h2("AL-CTD")
        .post_json("/v1/messages", &[OFFICER], &m)
        .await
        .expect("h2");
    assert_problem(&r, 413, "payload_too_large");
    assert_eq!(gw.count("messages").await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_and_audited() {
    let gw = TestGateway::start().await;
    let c = gw.partner("AL-CTD");
    let r = c.get("/v1/nothing-here", &[]).await.expect("req");
    assert_problem(&r, 404, "not_found");
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["outcome"].as_str()),
        (Some("request"), Some("failed"))
    );
    let r = c
        .request(hyper::Method::DELETE, "/v1/inbox", &[], None)
        .await
        .expect("req");
    assert_problem(&r, 405, "method_not_allowed");
    gw.stop().await;
}
