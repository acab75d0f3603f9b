//! Regression tests for what the outside API fuzzer (`.ci/api-fuzz`,
//! schemathesis) found. Each names the request it sent.

use crate::harness::{TestGateway, assert_problem, text};

/// Sequence numbers and tree sizes above `i64::MAX` cannot exist (the store
/// keeps them as signed 64-bit integers); they were passed to the store,
/// which reported corruption, and the gateway answered `503
/// audit_unavailable`. Now they are refused as input: `400` for a query
/// parameter, `404` for a record that cannot exist.
#[tokio::test]
async fn sequence_numbers_beyond_i64_are_refused_as_input() {
    let gw = TestGateway::start().await;
    let dpo = gw.client("dpo-gateway");
    let too_big = "9223372036854775808";
    for (path, field) in [
        (format!("/v1/audit?after={too_big}"), "after"),
        (format!("/v1/audit/export?after={too_big}"), "after"),
        (
            format!("/v1/audit/checkpoint?tree_size={too_big}"),
            "tree_size",
        ),
        (format!("/v1/audit/consistency?from=1&to={too_big}"), "to"),
        (
            format!("/v1/audit/proof/1?tree_size={too_big}"),
            "tree_size",
        ),
    ] {
        let resp = dpo.get(&path, &[]).await.expect("get");
        let p = assert_problem(&resp, 400, "invalid_request");
        assert_eq!(
            p["errors"][0]["field"],
            field,
            "{path}: {}",
            text(&resp.body)
        );
    }
    for path in [
        format!("/v1/audit/proof/{too_big}"),
        format!("/dpo/records/{too_big}"),
    ] {
        let resp = dpo.get(&path, &[]).await.expect("get");
        assert_problem(&resp, 404, "not_found");
    }
    // The largest valid value is still an ordinary (empty) answer.
    let resp = dpo
        .get("/v1/audit?after=9223372036854775807", &[])
        .await
        .expect("get");
    assert_eq!(resp.status, 200, "{}", text(&resp.body));
    assert_eq!(resp.json()["records"], serde_json::json!([]));
}

/// `days_left` is fractional; the description said integer, so every
/// answer of `GET /v1/admin/certificates` and `/v1/admin/partners` broke
/// its own schema. The document now says number, as served.
#[tokio::test]
async fn certificate_days_left_is_documented_as_served() {
    let doc: serde_json::Value =
        serde_json::from_str(brdo::api::openapi::document_json()).expect("document");
    assert_eq!(
        doc["components"]["schemas"]["CertificateInfo"]["properties"]["days_left"]["type"],
        "number"
    );
    let gw = TestGateway::start().await;
    let resp = gw
        .client("operator-admin")
        .get("/v1/admin/certificates", &[])
        .await
        .expect("get");
    assert_eq!(resp.status, 200, "{}", text(&resp.body));
    let certs = resp.json()["certificates"].clone();
    let first = &certs[0]["days_left"];
    assert!(first.is_number(), "{certs}");
}
