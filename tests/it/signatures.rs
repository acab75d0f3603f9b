//! Sender signatures: a partner signs what it sends with its certificate's
//! key; the gateway checks, keeps and delivers the signature, and a
//! recipient verifies it with only the CA certificate.

use brdo::signature::{self, submission_statement};
use serde_json::{Value, json};

use crate::harness::*;

fn key_and_cert(pki: &std::path::Path, stem: &str) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(pki.join(format!("{stem}.key"))).expect("key"),
        std::fs::read(pki.join(format!("{stem}.crt"))).expect("crt"),
    )
}

/// `msg` signed by `stem`'s key as a submission by `sender`.
fn signed_by(pki: &std::path::Path, stem: &str, sender: &str, msg: &Value) -> String {
    let (key, crt) = key_and_cert(pki, stem);
    let st = submission_statement(sender, msg, &|_| String::new()).expect("statement");
    signature::sign(&key, &crt, &st).expect("sign")
}

async fn submit_signed(
    gw: &TestGateway,
    msg: &Value,
    sig: &str,
) -> brdo_tools::client::ClientResponse {
    gw.partner("AL-CTD")
        .post_json("/v1/messages", &[OFFICER, ("brdo-signature", sig)], msg)
        .await
        .expect("submit")
}

#[tokio::test]
async fn a_signed_message_is_delivered_with_a_signature_the_recipient_can_check() {
    let gw = TestGateway::start().await;
    let m = message();
    let sig = signed_by(&gw.pki, "partner-AL-CTD", "AL-CTD", &m);
    let r = submit_signed(&gw, &m, &sig).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["details"]["sender_signature"], "originator");
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let doc = read(&gw, "RS-MOI", &id).await.json();
    let sigs = doc["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0]["partner"], "AL-CTD");
    assert_eq!(sigs[0]["role"], "originator");
    assert_eq!(sigs[0]["jws"], json!(sig));
    // The recipient needs only the CA certificate.
    let ca = std::fs::read(gw.pki.join("ca.crt")).expect("ca");
    assert_eq!(
        signature::verify_entry(&sigs[0], &doc, &ca).expect("verifies"),
        "AL-CTD"
    );
    // A recipient who is shown another body under the same signature sees it.
    let mut other = doc.clone();
    other["body"] = json!("Something else.");
    assert!(signature::verify_entry(&sigs[0], &other, &ca).is_err());
    // Unsigned messages carry an empty list.
    let plain = submit_ok(&gw).await;
    assert_eq!(
        read(&gw, "RS-MOI", &plain).await.json()["signatures"],
        json!([])
    );
    gw.stop().await;
}

#[tokio::test]
async fn bad_signatures_are_refused_audited_and_nothing_is_stored() {
    let gw = TestGateway::start().await;
    let m = message();
    let mut changed = message();
    changed["body"] = json!("Not what was signed.");
    let foreign = Pki::shared().foreign.clone();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "signed another body",
            signed_by(&gw.pki, "partner-AL-CTD", "AL-CTD", &changed),
            "does not verify",
        ),
        (
            "another partner's key",
            signed_by(&gw.pki, "partner-RS-MOI", "AL-CTD", &m),
            "the signature is by RS-MOI",
        ),
        (
            "a certificate from another CA",
            {
                let stem = std::fs::read_dir(&foreign)
                    .expect("foreign pki")
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.starts_with("partner-") && n.ends_with(".crt"))
                    .expect("a foreign partner certificate")
                    .trim_end_matches(".crt")
                    .to_owned();
                signed_by(&foreign, &stem, "AL-CTD", &m)
            },
            "not trusted",
        ),
        ("garbage", "not-a-jws".to_owned(), "detached compact JWS"),
    ];
    for (what, sig, detail) in cases {
        let before = gw.count("messages").await;
        let r = submit_signed(&gw, &m, &sig).await;
        let p = assert_problem(&r, 400, "invalid_signature");
        assert!(
            p["detail"].as_str().unwrap_or_default().contains(detail),
            "{what}: {p}"
        );
        assert!(
            !text(&r.body).contains("Border")
                && !text(&r.body).contains(m["body"].as_str().unwrap_or("x")),
            "{what}: no content in the problem"
        );
        let rec = gw.audit_of(&r).await;
        assert_eq!(rec["outcome"], "failed", "{what}: {rec}");
        assert_eq!(rec["code"], "invalid_signature");
        assert_eq!(gw.count("messages").await, before, "{what}: nothing stored");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_forward_keeps_the_originators_signature_and_adds_the_forwarders() {
    let gw = TestGateway::start().await;
    let mut m = message();
    m["recipients"] = json!(["RS-MOI"]);
    m["label"] = json!({"classification": "EU_RESTRICTED", "handling_codes": ["H3"], "h3_text": "Not to be shared with border police units."});
    let sig = signed_by(&gw.pki, "partner-AL-CTD", "AL-CTD", &m);
    let r = submit_signed(&gw, &m, &sig).await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let original = read(&gw, "RS-MOI", &id).await.json();
    // Serbia signs its forward over the original as it received it.
    let (key, crt) = key_and_cert(&gw.pki, "partner-RS-MOI");
    let st = signature::forward_statement("RS-MOI", &original, &["ME-MOI".to_owned()], &|_| {
        String::new()
    })
    .expect("statement");
    let fsig = signature::sign(&key, &crt, &st).expect("sign");
    let body =
        json!({"recipients": ["ME-MOI"], "justification": "Joint investigation team request"});
    let r = gw
        .partner("RS-MOI")
        .post_json(
            &format!("/v1/messages/{id}/forward"),
            &[OFFICER, ("brdo-signature", fsig.as_str())],
            &body,
        )
        .await
        .expect("forward");
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let copy_id = r.json()["id"].as_str().expect("id").to_owned();
    let copy = read(&gw, "ME-MOI", &copy_id).await.json();
    let sigs = copy["signatures"].as_array().expect("signatures");
    let who: Vec<(&str, &str)> = sigs
        .iter()
        .map(|s| {
            (
                s["partner"].as_str().unwrap_or(""),
                s["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(who, [("AL-CTD", "originator"), ("RS-MOI", "forwarder")]);
    let ca = std::fs::read(gw.pki.join("ca.crt")).expect("ca");
    for s in sigs {
        signature::verify_entry(s, &copy, &ca).expect("each signature verifies on the copy");
    }
    // A forward signed over other recipients is refused.
    let st = signature::forward_statement("RS-MOI", &original, &["BA-SIPA".to_owned()], &|_| {
        String::new()
    })
    .expect("statement");
    let bad = signature::sign(&key, &crt, &st).expect("sign");
    let r = gw
        .partner("RS-MOI")
        .post_json(
            &format!("/v1/messages/{id}/forward"),
            &[OFFICER, ("brdo-signature", bad.as_str())],
            &body,
        )
        .await
        .expect("forward");
    assert_problem(&r, 400, "invalid_signature");
    gw.stop().await;
}
