//! The data-protection officers' API (SPEC §5): queries, exports, signed
//! checkpoints, proofs, audit retention.

use brdo::audit::merkle;
use brdo::crypto::jose::CheckpointVerifier;
use serde_json::{Value, json};

use crate::harness::*;

/// A gateway signing a checkpoint every 5 records, with some traffic.
async fn busy_gateway() -> (TestGateway, Vec<String>) {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| c.audit.checkpoint_every = 5).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit_ok(&gw).await);
    }
    let mut m = message();
    m["recipients"] = json!(["ME-MOI"]);
    m["label"] = json!({"classification": "EU_RESTRICTED"});
    ids.push(send(&gw, "BA-SIPA", &m).await);
    read(&gw, "RS-MOI", &ids[0]).await;
    gw.partner("RS-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("inbox");
    submit(&gw, "XK-CTD", &message()).await; // denied
    (gw, ids)
}

fn verifier(gw: &TestGateway) -> CheckpointVerifier {
    CheckpointVerifier::from_public_pem_file(&gw.pki.join("audit-signing.pub")).expect("public key")
}

async fn dpo_get(gw: &TestGateway, stem: &str, path: &str) -> brdo_tools::client::ClientResponse {
    gw.client(stem).get(path, &[]).await.expect("dpo request")
}

fn hash32(hex_str: &str) -> merkle::Hash {
    hex::decode(hex_str)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

#[tokio::test]
async fn checkpoints_proofs_and_consistency_verify_with_the_published_key() {
    let (gw, _) = busy_gateway().await;
    let r = dpo_get(&gw, "dpo-gateway", "/v1/audit/checkpoint").await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let cp = r.json();
    let signed = verifier(&gw)
        .verify(cp["jws"].as_str().expect("jws"))
        .expect("signature verifies");
    assert_eq!(json!(signed.tree_size), cp["tree_size"]);
    assert_eq!(json!(signed.root_hash), cp["root_hash"]);
    assert_eq!(gw.audit_of(&r).await["action"], "audit_query");
    let size = signed.tree_size;
    assert!(size >= 5);

    // Every record up to the checkpoint is provably in it.
    for seq in 1..=size {
        let p = dpo_get(
            &gw,
            "dpo-gateway",
            &format!("/v1/audit/proof/{seq}?tree_size={size}"),
        )
        .await
        .json();
        assert_eq!(p["tree_size"], size);
        assert_eq!(p["root_hash"], cp["root_hash"]);
        let record = gw.audit_record(seq).await;
        assert_eq!(p["record_hash"], record["hash"]);
        let path: Vec<merkle::Hash> = p["audit_path"]
            .as_array()
            .expect("path")
            .iter()
            .map(|h| hash32(h.as_str().expect("hex")))
            .collect();
        let leaf = merkle::leaf_hash(&hash32(record["hash"].as_str().expect("hash")));
        merkle::verify_inclusion(&leaf, seq - 1, size, &path, &hash32(&signed.root_hash))
            .expect("inclusion verifies");
    }
    // Consistency between the first checkpoint and the log now.
    let now = gw.audit_size().await;
    let c = dpo_get(
        &gw,
        "dpo-gateway",
        &format!("/v1/audit/consistency?from={size}&to={now}"),
    )
    .await;
    assert_eq!(c.status, 200, "{}", text(&c.body));
    let c = c.json();
    assert_eq!(c["from_root"], cp["root_hash"]);
    let proof: Vec<merkle::Hash> = c["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| hash32(h.as_str().expect("hex")))
        .collect();
    merkle::verify_consistency(
        size,
        c["to"].as_u64().expect("to"),
        &hash32(c["from_root"].as_str().expect("r")),
        &hash32(c["to_root"].as_str().expect("r")),
        &proof,
    )
    .expect("consistency verifies");
    // Bad parameters are named; unknown records are 404.
    assert_problem(
        &dpo_get(&gw, "dpo-gateway", "/v1/audit/consistency?from=9&to=2").await,
        400,
        "invalid_request",
    );
    assert_problem(
        &dpo_get(&gw, "dpo-gateway", "/v1/audit/proof/99999").await,
        404,
        "not_found",
    );
    assert_problem(
        &dpo_get(&gw, "dpo-gateway", "/v1/audit/proof/3?tree_size=2").await,
        400,
        "invalid_request",
    );
    let beyond = gw.audit_size().await + 1000;
    assert_problem(
        &dpo_get(
            &gw,
            "dpo-gateway",
            &format!("/v1/audit/checkpoint?tree_size={beyond}"),
        )
        .await,
        404,
        "not_found",
    );
    gw.stop().await;
}

async fn all_pages(gw: &TestGateway, stem: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let r = dpo_get(gw, stem, &format!("/v1/audit?limit=3{query}{cursor}")).await;
        assert_eq!(r.status, 200, "{}", text(&r.body));
        let v = r.json();
        out.extend(v["records"].as_array().expect("records").iter().cloned());
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    out
}

#[tokio::test]
async fn queries_filter_page_and_scope_to_the_partner() {
    let (gw, ids) = busy_gateway().await;
    let size_before = gw.audit_size().await;
    let everything = all_pages(&gw, "dpo-gateway", "").await;
    let seqs: Vec<u64> = everything
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    // Stable cursor paging, oldest first, no gaps or repeats; the log grows
    // while we page (each page is itself an audit_query record).
    let last = *seqs.last().expect("records");
    assert!(last >= size_before);
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());

    // A partner DPO sees only records involving its partner.
    let serbia = all_pages(&gw, "dpo-RS-MOI", "").await;
    assert!(!serbia.is_empty());
    for r in &serbia {
        let involved = r["actor"]["id"] == "RS-MOI"
            || r["counterparts"]
                .as_array()
                .expect("c")
                .contains(&json!("RS-MOI"));
        assert!(involved, "{r}");
    }
    let bosnia_message = &ids[3];
    assert!(
        serbia
            .iter()
            .all(|r| r["message_id"] != bosnia_message.as_str()),
        "nothing of BA-SIPA → ME-MOI"
    );

    // Filters.
    let consult = all_pages(&gw, "dpo-gateway", "&action=consult").await;
    assert_eq!(consult.len(), 1);
    assert_eq!(consult[0]["justification"], JUSTIFICATION.1);
    let about = all_pages(&gw, "dpo-gateway", &format!("&message={}", ids[0])).await;
    let actions: Vec<&str> = about
        .iter()
        .map(|r| r["action"].as_str().expect("a"))
        .collect();
    assert_eq!(
        actions,
        ["collect", "consult", "list"],
        "who saw this message, including the inbox listing"
    );
    let denied = all_pages(&gw, "dpo-gateway", "&outcome=denied").await;
    assert!(denied.iter().all(|r| r["outcome"] == "denied") && !denied.is_empty());
    let officer = all_pages(&gw, "dpo-gateway", "&officer=insp.hoxha&partner=BA-SIPA").await;
    assert_eq!(officer.len(), 1, "combined filters: {officer:?}");
    let from = everything[2]["at"].as_str().expect("at");
    let since = all_pages(&gw, "dpo-gateway", &format!("&from={from}")).await;
    assert!(since.iter().all(|r| r["at"].as_str() >= Some(from)));
    let desc = dpo_get(&gw, "dpo-gateway", "/v1/audit?order=desc&limit=2")
        .await
        .json();
    assert!(desc["records"][0]["seq"].as_u64() > desc["records"][1]["seq"].as_u64());

    let r = dpo_get(&gw, "dpo-gateway", "/v1/audit?action=peek&limit=0&colour=1").await;
    let p = assert_problem(&r, 400, "invalid_request");
    assert_eq!(p["errors"].as_array().map(Vec::len), Some(3));

    // Every DPO call was itself audited.
    let after = gw.audit_size().await;
    let mut queries = 0;
    for seq in size_before + 1..=after {
        let rec = gw.audit_record(seq).await;
        if rec["action"] == "audit_query" {
            queries += 1;
            assert_eq!(rec["actor"]["role"], "dpo");
        }
    }
    assert!(queries >= 10, "{queries} audit_query records");
    // Other roles are refused.
    assert_problem(
        &gw.partner("RS-MOI").get("/v1/audit", &[]).await.expect("r"),
        403,
        "forbidden_role",
    );
    assert_problem(
        &dpo_get(&gw, "operator-admin", "/v1/audit").await,
        403,
        "forbidden_role",
    );
    assert_problem(
        &dpo_get(&gw, "dpo-RS-MOI", "/v1/inbox").await,
        403,
        "forbidden_role",
    );
    gw.stop().await;
}

#[tokio::test]
async fn exports_stream_jsonl_and_csv_and_verify_offline() {
    let (gw, _) = busy_gateway().await;
    let checkpoint = dpo_get(&gw, "dpo-gateway", "/v1/audit/checkpoint")
        .await
        .json();
    let r = gw
        .client("dpo-gateway")
        .get("/v1/audit/export", &[("accept", "application/x-ndjson")])
        .await
        .expect("export");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(gw.audit_of(&r).await["action"], "audit_export");
    let lines: Vec<Value> = text(&r.body)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines.len() as u64,
        r.header("brdo-audit-seq")
            .expect("seq")
            .parse::<u64>()
            .expect("n"),
        "export includes its own record"
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as u64 + 1);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    std::fs::write(&file, &r.body).expect("write");
    let jws = checkpoint["jws"].as_str().expect("jws");
    let pubkey = gw.pki.join("audit-signing.pub");
    let args = |f: &std::path::Path| {
        vec![
            "audit".to_owned(),
            "verify".to_owned(),
            "--export".to_owned(),
            f.display().to_string(),
            "--checkpoint".to_owned(),
            jws.to_owned(),
            "--pubkey".to_owned(),
            pubkey.display().to_string(),
        ]
    };
    let run = |a: Vec<String>| brdo(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let out = run(args(&file));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 signed checkpoints"),
        "{}",
        text(&out.stdout)
    );
    // An edited export fails and names the record.
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        text(&r.body).replacen("\"outcome\":\"denied\"", "\"outcome\":\"allowed\"", 1),
    )
    .expect("write");
    let out = run(args(&tampered));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("altered"),
        "{}",
        text(&out.stderr)
    );
    // A truncated export cannot match the checkpoint.
    let short: String = text(&r.body)
        .lines()
        .take(2)
        .map(|l| format!("{l}\n"))
        .collect();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, short).expect("write");
    let out = run(args(&cut));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("missing"),
        "{}",
        text(&out.stderr)
    );

    // CSV, filtered and scoped, with a header and one row per record.
    let csv = dpo_get(
        &gw,
        "dpo-RS-MOI",
        "/v1/audit/export?format=csv&action=collect",
    )
    .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let body = text(&csv.body);
    let mut rows = body.lines();
    assert_eq!(
        rows.next(),
        Some(brdo::api::audit::CSV_COLUMNS.join(",").as_str())
    );
    assert_eq!(rows.count(), 3, "{body}");
    assert_problem(
        &dpo_get(&gw, "dpo-gateway", "/v1/audit/export?format=xml").await,
        400,
        "invalid_request",
    );
    gw.stop().await;
}

#[tokio::test]
async fn audit_retention_reduces_old_records_and_proofs_still_verify() {
    let (gw, _) = busy_gateway().await;
    let config = write_config(&gw);
    let cfg = config.to_str().expect("utf8");
    let before = gw.audit_size().await;
    let cp = dpo_get(&gw, "dpo-gateway", "/v1/audit/checkpoint")
        .await
        .json();
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(1096))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let out = brdo(&["retention", "run", "--config", cfg, "--as-of", &later]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Everything before the reduction's own record is reduced: the traffic,
    // the DPO query, and the erase records this sweep wrote first.
    let n = gw.audit_size().await;
    assert!(n > before + 1);
    assert!(
        text(&out.stderr).contains(&format!("reduced {} audit record", n - 1)),
        "{}",
        text(&out.stderr)
    );
    // Reduced records keep their place: seq, prev_hash, hash.
    let first = gw.audit_record(1).await;
    assert_eq!(first["reduced"], true);
    assert_eq!(first.get("at"), None);
    let listed = dpo_get(&gw, "dpo-gateway", "/v1/audit?limit=2")
        .await
        .json();
    assert_eq!(
        listed["records"][0],
        json!({"seq": 1, "prev_hash": "0".repeat(64), "hash": first["hash"], "reduced": true})
    );
    // Partner DPOs no longer find them.
    let serbia = dpo_get(&gw, "dpo-RS-MOI", "/v1/audit?limit=1000")
        .await
        .json();
    assert!(
        serbia["records"]
            .as_array()
            .expect("r")
            .iter()
            .all(|r| r["seq"].as_u64() >= Some(n))
    );
    // The whole log and its checkpoints still verify, and old proofs hold.
    let out = brdo(&["audit", "verify", "--config", cfg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("({} reduced", n - 1)),
        "{}",
        text(&out.stdout)
    );
    let size = cp["tree_size"].as_u64().expect("size");
    let p = dpo_get(
        &gw,
        "dpo-gateway",
        &format!("/v1/audit/proof/2?tree_size={size}"),
    )
    .await
    .json();
    let path: Vec<merkle::Hash> = p["audit_path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|h| hash32(h.as_str().expect("h")))
        .collect();
    let leaf = merkle::leaf_hash(&hash32(
        gw.audit_record(2).await["hash"].as_str().expect("hash"),
    ));
    merkle::verify_inclusion(
        &leaf,
        1,
        size,
        &path,
        &hash32(cp["root_hash"].as_str().expect("root")),
    )
    .expect("still verifies");
    // The reduction is itself recorded, and kept.
    let last = gw.audit_record(n).await;
    assert_eq!(last["action"], "erase");
    assert_eq!(last["details"]["rule"]["kind"], "audit_retention");
    gw.stop().await;
}
