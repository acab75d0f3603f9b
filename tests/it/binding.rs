//! Label binding: every delivered message carries a JWS by the envelope
//! key that a recipient checks offline with `brdo verify-binding`.

use serde_json::{Value, json};

use crate::harness::*;

/// A change made to a delivered message on the way.
type Change = Box<dyn Fn(&mut Value)>;

/// Runs `brdo verify-binding` on `doc`; returns (exit code, stdout+stderr).
fn verify_cli(gw: &TestGateway, doc: &Value, attachments: &[(&str, &[u8])]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("message.json");
    std::fs::write(&file, serde_json::to_vec_pretty(doc).expect("json")).expect("write");
    let pubkey = gw.pki.join("envelope-signing.pub");
    let mut args = vec![
        "verify-binding".to_owned(),
        "--message".into(),
        file.display().to_string(),
        "--pubkey".into(),
        pubkey.display().to_string(),
    ];
    for (i, (id, bytes)) in attachments.iter().enumerate() {
        let p = dir.path().join(format!("a{i}"));
        std::fs::write(&p, bytes).expect("write");
        args.push("--attachment".into());
        args.push(format!("{id}={}", p.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = brdo(&args);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout) + &text(&out.stderr),
    )
}

#[tokio::test]
async fn a_delivered_message_is_bound_and_any_change_is_named() {
    let gw = TestGateway::start().await;
    let bytes = b"seized phone extract".to_vec();
    let att = upload(&gw, "AL-CTD", bytes.clone(), "application/octet-stream")
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut m = message();
    m["attachments"] = json!([att]);
    let id = send(&gw, "AL-CTD", &m).await;
    let r = read(&gw, "RS-MOI", &id).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    let jws = doc["binding"].as_str().expect("binding");
    assert_eq!(jws.split('.').count(), 3, "a compact JWS");

    // As received, with the attachment: holds.
    let (code, out) = verify_cli(&gw, &doc, &[(&att, &bytes)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("attachment {att}: content as bound")),
        "{out}"
    );

    // The same check through the library.
    let keys =
        brdo::crypto::jose::JwsKeys::from_public_pem_file(&gw.pki.join("envelope-signing.pub"))
            .expect("key");
    brdo::binding::verify(&doc, None, &keys, &[(att.clone(), bytes.clone())]).expect("holds");

    let changes: Vec<(&str, Change)> = vec![
        (
            "label",
            Box::new(|d| d["label"]["classification"] = json!("UNCLASSIFIED")),
        ),
        (
            "evaluation",
            Box::new(|d| d["evaluation"]["source"] = json!("A")),
        ),
        (
            "recipients",
            Box::new(|d| d["recipients"] = json!(["RS-MOI"])),
        ),
        ("body", Box::new(|d| d["body"] = json!("Nothing to see."))),
        ("attachments", Box::new(|d| d["attachments"] = json!([]))),
    ];
    for (field, change) in changes {
        let mut t = doc.clone();
        change(&mut t);
        let (code, out) = verify_cli(&gw, &t, &[]);
        assert_eq!(code, 3, "{field}: {out}");
        assert!(
            out.contains(&format!("  {field}: ")),
            "{field} named: {out}"
        );
    }
    let (code, out) = verify_cli(&gw, &doc, &[(&att, b"another file")]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("attachments[0]"), "{out}");

    // Another gateway's envelope key does not verify it.
    let other = Pki::create();
    let foreign =
        brdo::crypto::jose::JwsKeys::from_public_pem_file(&other.dir.join("envelope-signing.pub"))
            .expect("key");
    assert!(brdo::binding::verify(&doc, None, &foreign, &[]).is_err());
    gw.stop().await;
}

#[tokio::test]
async fn a_raised_label_is_what_the_binding_says() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await;
    let before = read(&gw, "RS-MOI", &id).await.json();
    let mut label = before["label"].clone();
    label["h3_text"] = json!(format!(
        "{} Nor with customs.",
        label["h3_text"].as_str().unwrap_or_default()
    ));
    let r = post(&gw, "AL-CTD", &format!("/v1/messages/{id}/label"), &label).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let after = read(&gw, "RS-MOI", &id).await.json();
    assert_ne!(after["label"], before["label"]);
    assert_eq!(verify_cli(&gw, &after, &[]).0, 0);
    // The old binding no longer matches the current label.
    let mut stale = after.clone();
    stale["binding"] = before["binding"].clone();
    let (code, out) = verify_cli(&gw, &stale, &[]);
    assert_eq!(code, 3);
    assert!(out.contains("label:"), "{out}");
    gw.stop().await;
}
