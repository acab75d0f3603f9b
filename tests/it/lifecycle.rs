//! The provider's restrictions after sending (SPEC §3–4): forwarding, H2,
//! H1, releasability, permissions, label raises.

use serde_json::{Value, json};

use crate::harness::*;

/// AL-CTD → RS-MOI, EU_RESTRICTED, with the given handling codes, no
/// releasability limit.
fn to_serbia(codes: &[&str]) -> Value {
    let mut m = message();
    m["recipients"] = json!(["RS-MOI"]);
    m["label"] = json!({"classification": "EU_RESTRICTED", "handling_codes": codes});
    if codes.contains(&"H3") {
        m["label"]["h3_text"] = json!("Not to be shared with border police units.");
    }
    m
}

fn forward_body(to: &[&str]) -> Value {
    json!({"recipients": to, "justification": "Joint investigation team request"})
}

#[tokio::test]
async fn a_forward_keeps_label_evaluation_and_provenance() {
    let gw = TestGateway::start().await;
    let id = send(&gw, "AL-CTD", &to_serbia(&["H3"])).await;
    let r = post(
        &gw,
        "RS-MOI",
        &format!("/v1/messages/{id}/forward"),
        &forward_body(&["ME-MOI"]),
    )
    .await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let fwd = r.json();
    assert_eq!(fwd["forwarded_from"], id.as_str());
    assert_eq!(fwd["originator"], "AL-CTD");
    let copy_id = fwd["id"].as_str().expect("id").to_owned();
    assert_ne!(copy_id, id);
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "disclose");
    assert_eq!(rec["message_id"], id.as_str());
    assert_eq!(rec["details"]["forward_id"], copy_id.as_str());
    assert_eq!(rec["justification"], "Joint investigation team request");
    assert_eq!(rec["counterparts"], json!(["ME-MOI"]));

    let inbox = gw
        .partner("ME-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("inbox")
        .json();
    assert_eq!(inbox["messages"][0]["id"], copy_id.as_str());
    assert_eq!(inbox["messages"][0]["from"], "RS-MOI");
    assert_eq!(
        inbox["messages"][0]["label"]["h3_text"],
        "Not to be shared with border police units."
    );
    let copy = read(&gw, "ME-MOI", &copy_id).await.json();
    let original = read(&gw, "RS-MOI", &id).await.json();
    for field in [
        "label",
        "evaluation",
        "subject",
        "body",
        "purpose",
        "personal_data",
        "case_ref",
    ] {
        assert_eq!(
            copy[field], original[field],
            "{field} travels with the copy"
        );
    }
    assert_eq!(copy["from"], "RS-MOI");
    assert_eq!(copy["originator"], "AL-CTD");
    assert_eq!(copy["forwarded_from"], id.as_str());
    assert!(
        copy["retain_until"].as_str() <= original["retain_until"].as_str(),
        "never outlives the original"
    );
    // The copy's holder cannot read the original it was not sent.
    let r = read(&gw, "ME-MOI", &id).await;
    assert_problem(&r, 404, "not_found");
    gw.stop().await;
}

#[tokio::test]
async fn h2_needs_the_originators_forward_permission_per_recipient() {
    let gw = TestGateway::start().await;
    let id = send(&gw, "AL-CTD", &to_serbia(&["H2"])).await;
    let path = format!("/v1/messages/{id}/forward");
    let r = post(&gw, "RS-MOI", &path, &forward_body(&["ME-MOI", "BA-SIPA"])).await;
    let p = assert_problem(&r, 403, "handling_code_h2");
    assert_eq!(p["violations"].as_array().map(Vec::len), Some(2));
    assert_eq!(gw.audit_of(&r).await["action"], "deny");

    let g = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{id}/permissions"),
        &json!({"partner": "ME-MOI", "scope": "forward"}),
    )
    .await;
    assert_eq!(g.status, 201, "{}", text(&g.body));
    assert_eq!(gw.audit_of(&g).await["action"], "grant");
    let r = post(&gw, "RS-MOI", &path, &forward_body(&["ME-MOI", "BA-SIPA"])).await;
    let p = assert_problem(&r, 403, "handling_code_h2");
    assert_eq!(
        p["violations"][0]["recipient"], "BA-SIPA",
        "only the unpermitted recipient"
    );
    assert_eq!(p["violations"].as_array().map(Vec::len), Some(1));
    let r = post(&gw, "RS-MOI", &path, &forward_body(&["ME-MOI"])).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    // Back to the originator needs no permission.
    let r = post(&gw, "RS-MOI", &path, &forward_body(&["AL-CTD"])).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    // A forward of the copy is bound by the same H2 and permissions.
    let copy = r.json()["id"].as_str().expect("id").to_owned();
    let r = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{copy}/forward"),
        &forward_body(&["MK-MOI"]),
    )
    .await;
    assert_eq!(
        r.status,
        201,
        "the originator may forward its own information: {}",
        text(&r.body)
    );
    gw.stop().await;
}

#[tokio::test]
async fn releasable_to_binds_every_later_holder() {
    let gw = TestGateway::start().await;
    let mut m = to_serbia(&[]);
    m["recipients"] = json!(["RS-MOI"]);
    m["label"]["releasable_to"] = json!(["RS-MOI", "EU-ECTC"]);
    let id = send(&gw, "AL-CTD", &m).await;
    let path = format!("/v1/messages/{id}/forward");
    let r = post(&gw, "RS-MOI", &path, &forward_body(&["ME-MOI"])).await;
    let p = assert_problem(&r, 403, "not_releasable");
    assert_eq!(p["violations"][0]["recipient"], "ME-MOI");
    let r = post(&gw, "RS-MOI", &path, &forward_body(&["EU-ECTC"])).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    gw.stop().await;
}

#[tokio::test]
async fn forwarding_needs_holding_the_message_and_a_valid_body() {
    let gw = TestGateway::start().await;
    let id = send(&gw, "AL-CTD", &to_serbia(&[])).await;
    let path = format!("/v1/messages/{id}/forward");
    let r = post(&gw, "BA-SIPA", &path, &forward_body(&["ME-MOI"])).await;
    assert_problem(&r, 404, "not_found");
    let r = post(&gw, "RS-MOI", &path, &json!({"recipients": ["ME-MOI"]})).await;
    let p = assert_problem(&r, 400, "invalid_message");
    assert_eq!(p["errors"][0]["field"], "justification");
    let r = post(
        &gw,
        "RS-MOI",
        &path,
        &json!({"recipients": [], "justification": "x", "extra": 1}),
    )
    .await;
    let p = assert_problem(&r, 400, "invalid_message");
    assert_eq!(p["errors"].as_array().map(Vec::len), Some(2));
    // The policy applies with the forwarder as sender: RS-MOI has no legal basis with XK-CTD.
    let r = post(&gw, "RS-MOI", &path, &forward_body(&["XK-CTD"])).await;
    let p = assert_problem(&r, 403, "recipient_not_cleared");
    let codes: Vec<_> = p["violations"]
        .as_array()
        .expect("v")
        .iter()
        .map(|v| v["code"].clone())
        .collect();
    assert!(codes.contains(&json!("no_legal_basis")), "{codes:?}");
    let r = gw
        .partner("RS-MOI")
        .post_json(&path, &[], &forward_body(&["ME-MOI"]))
        .await
        .expect("forward");
    assert_problem(&r, 400, "officer_required");
    assert_eq!(gw.count("messages").await, 1, "nothing forwarded");
    gw.stop().await;
}

#[tokio::test]
async fn only_the_originator_grants() {
    let gw = TestGateway::start().await;
    let id = send(&gw, "AL-CTD", &to_serbia(&["H2"])).await;
    let path = format!("/v1/messages/{id}/permissions");
    let body = json!({"partner": "ME-MOI", "scope": "forward"});
    assert_problem(
        &post(&gw, "RS-MOI", &path, &body).await,
        403,
        "not_originator",
    );
    assert_problem(&post(&gw, "BA-SIPA", &path, &body).await, 404, "not_found");
    let p = assert_problem(
        &post(
            &gw,
            "AL-CTD",
            &path,
            &json!({"partner": "ZZ-NONE", "scope": "everything"}),
        )
        .await,
        400,
        "invalid_message",
    );
    let fields: Vec<_> = p["errors"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("partner"), json!("scope")]);
    let r = post(&gw, "AL-CTD", &path, &body).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["scope"], "forward");
    // Granting twice is harmless.
    assert_eq!(post(&gw, "AL-CTD", &path, &body).await.status, 201);
    gw.stop().await;
}

#[tokio::test]
async fn judicial_use_under_h1_needs_permission() {
    let gw = TestGateway::start().await;
    let id = send(&gw, "AL-CTD", &to_serbia(&["H1"])).await;
    let path = format!("/v1/messages/{id}/judicial-use");
    let body = json!({"reference": "Special Court Belgrade K.Po1 12/26"});
    let r = post(&gw, "RS-MOI", &path, &body).await;
    let p = assert_problem(&r, 403, "handling_code_h1");
    assert_eq!(p["violations"][0]["recipient"], "RS-MOI");
    let g = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{id}/permissions"),
        &json!({"partner": "RS-MOI", "scope": "judicial_use"}),
    )
    .await;
    assert_eq!(g.status, 201);
    let r = post(&gw, "RS-MOI", &path, &body).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "judicial_use");
    assert_eq!(rec["counterparts"], json!(["AL-CTD"]));
    // Without H1 no permission is needed; the sender cannot record it.
    let free = send(&gw, "AL-CTD", &to_serbia(&[])).await;
    let r = gw
        .partner("RS-MOI")
        .request(
            hyper::Method::POST,
            &format!("/v1/messages/{free}/judicial-use"),
            &[OFFICER, ("content-type", "application/json")],
            None,
        )
        .await
        .expect("judicial use");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    assert_problem(
        &post(
            &gw,
            "AL-CTD",
            &format!("/v1/messages/{free}/judicial-use"),
            &json!({}),
        )
        .await,
        404,
        "not_found",
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_originator_raises_labels_never_lowers_them() {
    let gw = TestGateway::start().await;
    let mut m = to_serbia(&["H3"]);
    m["recipients"] = json!(["RS-MOI", "EU-ECTC"]);
    let id = send(&gw, "AL-CTD", &m).await;
    let fwd = post(
        &gw,
        "RS-MOI",
        &format!("/v1/messages/{id}/forward"),
        &forward_body(&["ME-MOI"]),
    )
    .await;
    let copy = fwd.json()["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/messages/{id}/label");
    let h3 = "Not to be shared with border police units.";

    let raised = json!({"classification": "EU_RESTRICTED", "handling_codes": ["H1", "H3"], "h3_text": format!("{h3} Nor with customs.")});
    let r = post(&gw, "AL-CTD", &path, &raised).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "alter");
    assert_eq!(
        rec["details"]["message_ids"].as_array().map(Vec::len),
        Some(2)
    );
    // Every copy carries the raised label and its H3 text.
    let c = read(&gw, "ME-MOI", &copy).await.json();
    assert_eq!(c["label"]["handling_codes"], json!(["H0", "H1", "H3"]));
    assert_eq!(c["label"]["h3_text"], format!("{h3} Nor with customs."));

    let lower =
        json!({"classification": "BASIC_PROTECTION", "handling_codes": ["H3"], "h3_text": "x"});
    let p = assert_problem(
        &post(&gw, "AL-CTD", &path, &lower).await,
        400,
        "label_not_raised",
    );
    let fields: Vec<_> = p["errors"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [
            json!("classification"),
            json!("handling_codes"),
            json!("h3_text")
        ]
    );

    // Above a holder's clearance: refused, naming the holders.
    let up = json!({"classification": "EU_CONFIDENTIAL", "handling_codes": ["H1", "H3"], "h3_text": format!("{h3} Nor with customs.")});
    let p = assert_problem(
        &post(&gw, "AL-CTD", &path, &up).await,
        403,
        "sender_not_cleared",
    );
    let who: Vec<_> = p["violations"]
        .as_array()
        .expect("v")
        .iter()
        .map(|v| v["recipient"].clone())
        .collect();
    assert_eq!(who, [Value::Null, json!("ME-MOI"), json!("RS-MOI")]);
    assert_problem(
        &post(&gw, "RS-MOI", &path, &raised).await,
        403,
        "not_originator",
    );
    assert_problem(
        &post(&gw, "BA-SIPA", &path, &raised).await,
        404,
        "not_found",
    );
    gw.stop().await;
}
