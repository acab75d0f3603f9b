//! Nothing a client chooses reaches the permanent audit log unbounded: an
//! unknown JSON key (which may be a person's name) is recorded as
//! `(unknown field)`, an oversized header value or parameter name not at
//! all, and every record stays small. Checked as the gateway DPO reads the
//! log and in the database file itself.

use serde_json::{Value, json};

use crate::harness::*;

const NAME: &str = "Ahmet-Rexhepi-born-1987";

/// Largest serialised record this test accepts: far above an ordinary
/// refusal (about 600 bytes), far below the 8 KiB a client sends.
const SMALL: usize = 2048;

#[tokio::test]
async fn client_chosen_keys_and_values_stay_out_of_the_audit_log() {
    let gw = TestGateway::start_sqlite_with(&Pki::shared().dir, |_| {}).await;
    let big_key = format!("{NAME}-{}", "x".repeat(8192));
    let big_value = format!("{NAME}{}", "y".repeat(8192));
    let mut seqs = Vec::new();

    // An 8 KiB unknown key and a short one that is a person's name.
    for key in [big_key.as_str(), NAME, "Ahmet Rexhepi"] {
        let mut m = message();
        m[key] = json!(1);
        let resp = submit(&gw, "AL-CTD", &m).await;
        let p = assert_problem(&resp, 400, "invalid_message");
        // The caller may see a bounded, sanitised prefix of the key.
        let field = p["errors"][0]["field"].as_str().expect("field");
        assert!(field.chars().count() <= 41, "echoed {} chars", field.len());
        assert!(
            resp.body.len() < SMALL,
            "problem of {} bytes",
            resp.body.len()
        );
        let rec = gw.audit_of(&resp).await;
        assert_eq!(
            rec["details"]["fields"],
            json!(["(unknown field)"]),
            "{rec}"
        );
        seqs.push(rec["seq"].as_u64().expect("seq"));
    }

    // An unknown key inside a known object keeps its known parent.
    let mut m = message();
    m["label"][NAME] = json!(true);
    let resp = submit(&gw, "AL-CTD", &m).await;
    assert_problem(&resp, 400, "invalid_message");
    let rec = gw.audit_of(&resp).await;
    assert_eq!(rec["details"]["fields"], json!(["label.(unknown field)"]));
    seqs.push(rec["seq"].as_u64().expect("seq"));

    // Ten thousand unknown keys make one small record and a bounded answer.
    let mut m = message();
    for i in 0..10_000 {
        m[format!("{NAME}-{i}")] = json!(i);
    }
    let resp = submit(&gw, "AL-CTD", &m).await;
    let p = assert_problem(&resp, 400, "invalid_message");
    assert!(
        p["errors"].as_array().is_some_and(|e| e.len() <= 100),
        "{}",
        resp.body.len()
    );
    seqs.push(gw.audit_of(&resp).await["seq"].as_u64().expect("seq"));

    // An 8 KiB officer or justification header, and an 8 KiB parameter name.
    let resp = gw
        .partner("AL-CTD")
        .post_json(
            "/v1/messages",
            &[("brdo-officer", big_value.as_str())],
            &message(),
        )
        .await
        .expect("submit");
    assert_problem(&resp, 400, "officer_required");
    seqs.push(gw.audit_of(&resp).await["seq"].as_u64().expect("seq"));
    let id = submit_ok(&gw).await;
    let resp = gw
        .partner("RS-MOI")
        .get(
            &format!("/v1/messages/{id}"),
            &[OFFICER, ("brdo-justification", big_value.as_str())],
        )
        .await
        .expect("read");
    assert_problem(&resp, 400, "justification_required");
    seqs.push(gw.audit_of(&resp).await["seq"].as_u64().expect("seq"));
    for path in [
        format!("/v1/inbox?{big_key}=1"),
        format!("/v1/retention/due?{big_key}=1"),
        format!("/v1/inbox?{NAME}=1&{NAME}=2"),
    ] {
        let resp = gw
            .partner("RS-MOI")
            .get(&path, &[OFFICER])
            .await
            .expect("get");
        assert_problem(&resp, 400, "invalid_request");
        seqs.push(gw.audit_of(&resp).await["seq"].as_u64().expect("seq"));
    }
    let resp = gw
        .client("dpo-gateway")
        .get(&format!("/v1/audit?{big_key}=1"), &[])
        .await
        .expect("audit");
    assert_problem(&resp, 400, "invalid_request");
    seqs.push(gw.audit_of(&resp).await["seq"].as_u64().expect("seq"));
    // An 8 KiB attachment id in the path of a download.
    let resp = gw
        .partner("RS-MOI")
        .get(
            &format!("/v1/messages/{id}/attachments/{big_key}"),
            &[OFFICER, JUSTIFICATION],
        )
        .await
        .expect("download");
    assert_problem(&resp, 404, "not_found");
    seqs.push(gw.audit_of(&resp).await["seq"].as_u64().expect("seq"));

    // As the gateway DPO reads them.
    let dpo = gw.client("dpo-gateway");
    let resp = dpo.get("/v1/audit?limit=1000", &[]).await.expect("audit");
    assert_eq!(resp.status, 200, "{}", text(&resp.body));
    let records = resp.json()["records"].clone();
    let records = records.as_array().expect("records");
    for seq in &seqs {
        let rec: &Value = records
            .iter()
            .find(|r| r["seq"] == *seq)
            .unwrap_or_else(|| panic!("record {seq} served"));
        let s = rec.to_string();
        assert!(!s.contains("Rexhepi"), "record {seq}: {s:.400}");
        assert!(s.len() < SMALL, "record {seq} is {} bytes", s.len());
    }
    let all = text(&resp.body);
    assert!(!all.contains("Rexhepi"), "the DPO's view holds the name");

    // And in the database file, WAL included, as a copy of the disk would
    // find them: while the gateway runs, and after it stopped.
    let data = gw.data.clone();
    assert_file_clean(&data);
    let _files = gw.stop().await;
    assert_file_clean(&data);
}

/// Greps the SQLite files for the name. The WAL is read before the main
/// file: SQLite removes a WAL only after copying it into the main file, so
/// a WAL gone by the time it is read is covered by reading the main file.
fn assert_file_clean(data: &std::path::Path) {
    let mut seen_officer = false;
    for name in ["brdo.db-wal", "brdo.db-journal", "brdo.db"] {
        let bytes = match std::fs::read(data.join(name)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != "brdo.db" => continue,
            Err(e) => panic!("{name}: {e}"),
        };
        assert!(
            !bytes.windows(7).any(|w| w == b"Rexhepi"),
            "{name} holds the client's key"
        );
        seen_officer |= bytes.windows(10).any(|w| w == b"insp.hoxha");
    }
    // The grep does see what records hold: the officer every record names.
    assert!(seen_officer, "the audit records' text is not in the files");
}
