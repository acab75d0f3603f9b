//! The policy at the API (SPEC §4): denials list every violation for every
//! recipient, store nothing, and are audited.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn denial_lists_every_violation_for_every_recipient() {
    let gw = TestGateway::start().await;
    // XK-CTD (BASIC_PROTECTION clearance) sends EU_RESTRICTED personal data.
    let mut m = message();
    m["label"]["releasable_to"] = json!(["RS-MOI", "EU-ECTC"]);
    let r = submit(&gw, "XK-CTD", &m).await;
    let p = assert_problem(&r, 403, "sender_not_cleared");
    let got: Vec<(Option<String>, String)> = p["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
            (
                v["recipient"].as_str().map(str::to_owned),
                v["code"].as_str().expect("code").to_owned(),
            )
        })
        .collect();
    let want = [
        (None, "sender_not_cleared"),
        (Some("EU-ECTC"), "classification_exceeds_agreement"),
        (Some("EU-ECTC"), "purpose_not_permitted"),
        (Some("EU-ECTC"), "personal_data_not_permitted"),
        (Some("RS-MOI"), "no_legal_basis"),
    ];
    let want: Vec<(Option<String>, String)> = want
        .iter()
        .map(|(r, c)| (r.map(str::to_owned), (*c).to_owned()))
        .collect();
    assert_eq!(got, want);
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "deny");
    assert_eq!(rec["outcome"], "denied");
    assert_eq!(rec["code"], "sender_not_cleared");
    assert_eq!(rec["counterparts"], json!(["EU-ECTC", "RS-MOI"]));
    assert_eq!(
        rec["details"]["violations"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(
        gw.count("messages").await,
        0,
        "all or nothing: no recipient gets it"
    );
    assert_eq!(gw.count("deliveries").await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn one_bad_recipient_stops_delivery_to_all() {
    let gw = TestGateway::start().await;
    let mut m = message();
    m["recipients"] = json!(["RS-MOI", "EU-ECTC", "ZZ-NOBODY", "AL-CTD"]);
    m["label"]["releasable_to"] = json!(["RS-MOI"]);
    let r = submit(&gw, "AL-CTD", &m).await;
    let p = assert_problem(&r, 403, "unknown_recipient");
    let codes: Vec<_> = p["violations"]
        .as_array()
        .expect("v")
        .iter()
        .map(|v| {
            format!(
                "{}:{}",
                v["recipient"].as_str().unwrap_or("-"),
                v["code"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            "AL-CTD:unknown_recipient",
            "EU-ECTC:not_releasable",
            "ZZ-NOBODY:unknown_recipient"
        ]
    );
    assert_eq!(gw.count("deliveries").await, 0);
    let inbox = gw
        .partner("RS-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("inbox")
        .json();
    assert_eq!(inbox["messages"], json!([]));
    gw.stop().await;
}

#[tokio::test]
async fn accreditation_caps_every_clearance() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.accreditation.max_classification = brdo::domain::Classification::BasicProtection;
    })
    .await;
    let r = submit(&gw, "AL-CTD", &message()).await;
    let p = assert_problem(&r, 403, "classification_exceeds_accreditation");
    assert_eq!(p["violations"][0]["recipient"], serde_json::Value::Null);
    gw.stop().await;
}
