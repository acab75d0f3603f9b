//! Retention, review, legal hold and erasure (SPEC §3–4).

use serde_json::json;

use crate::harness::*;

fn hold_body() -> serde_json::Value {
    json!({"reason": "Preservation order, Tirana District Court 2026/117"})
}

#[tokio::test]
async fn held_messages_are_never_erased_until_the_hold_is_lifted() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await;
    let hold = format!("/v1/messages/{id}/hold");
    let review = format!("/v1/messages/{id}/review");
    let r = post(&gw, "AL-CTD", &hold, &hold_body()).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["held"], true);
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["details"]["hold"].as_bool()),
        (Some("alter"), Some(true))
    );
    assert_eq!(rec["justification"], hold_body()["reason"]);

    let erase = json!({"decision": "erase", "reason": "No longer needed"});
    assert_problem(
        &post(&gw, "AL-CTD", &review, &erase).await,
        409,
        "legal_hold",
    );
    // The sweeper skips it too, even far beyond its retention.
    let config = write_config(&gw);
    let out = brdo(&[
        "retention",
        "run",
        "--config",
        config.to_str().expect("utf8"),
        "--as-of",
        "2040-01-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "", "held: nothing erased");
    assert_eq!(read(&gw, "RS-MOI", &id).await.status, 200);

    // Other holders may not hold or lift; the gateway DPO may.
    assert_problem(
        &post(&gw, "RS-MOI", &hold, &hold_body()).await,
        403,
        "not_originator",
    );
    let dpo = gw.client("dpo-gateway");
    let r = dpo
        .request(
            hyper::Method::DELETE,
            &hold,
            &[("content-type", "application/json")],
            None,
        )
        .await
        .expect("lift");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(gw.audit_of(&r).await["actor"]["role"], "dpo");

    let r = post(&gw, "AL-CTD", &review, &erase).await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.json()["erased"], json!([id]));
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "erase");
    assert_eq!(rec["details"]["rule"]["kind"], "review");
    assert_problem(&read(&gw, "RS-MOI", &id).await, 410, "erased");
    let status = gw
        .partner("AL-CTD")
        .get(&format!("/v1/messages/{id}/status"), &[])
        .await
        .expect("status")
        .json();
    assert!(
        status["recipients"]
            .as_array()
            .expect("r")
            .iter()
            .all(|r| r["status"] == "erased"),
        "{status}"
    );
    // A hold on an erased message: 410.
    assert_problem(
        &post(&gw, "AL-CTD", &hold, &hold_body()).await,
        410,
        "erased",
    );
    let r = dpo
        .post_json(&hold, &[], &hold_body())
        .await
        .expect("dpo hold");
    assert_problem(&r, 410, "erased");
    // The tombstone stays: parties, label, dates; no content, no key.
    assert_eq!(gw.count("messages").await, 1);
    assert_eq!(gw.count("data_keys").await, 0);
    let inbox = gw
        .partner("RS-MOI")
        .get("/v1/inbox", &[])
        .await
        .expect("inbox")
        .json();
    assert_eq!(inbox["messages"][0]["subject"], serde_json::Value::Null);
    assert_eq!(
        inbox["messages"][0]["label"]["classification"],
        "EU_RESTRICTED"
    );
    gw.stop().await;
}

#[tokio::test]
async fn keep_decisions_extend_within_max_only() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await; // retention_days 365; max_days 1825
    let review = format!("/v1/messages/{id}/review");
    let r = post(
        &gw,
        "AL-CTD",
        &review,
        &json!({"decision": "keep", "reason": "Investigation ongoing", "extend_days": 1000}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let v = r.json();
    assert_eq!(v["decision"], "keep");
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["justification"].as_str()),
        (Some("alter"), Some("Investigation ongoing"))
    );
    let after: serde_json::Value = read(&gw, "AL-CTD", &id).await.json();
    assert_eq!(after["retain_until"], v["retain_until"]);

    // 365 + 1000 + 500 > 1825: refused, naming the field and the limit.
    let r = post(
        &gw,
        "AL-CTD",
        &review,
        &json!({"decision": "keep", "reason": "More", "extend_days": 500}),
    )
    .await;
    let p = assert_problem(&r, 400, "invalid_message");
    assert_eq!(p["errors"][0]["field"], "extend_days");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("max_days")
    );
    let r = post(
        &gw,
        "AL-CTD",
        &review,
        &json!({"decision": "erase", "reason": "x", "extend_days": 5}),
    )
    .await;
    assert_problem(&r, 400, "invalid_message");
    let r = post(&gw, "AL-CTD", &review, &json!({"decision": "maybe"})).await;
    let p = assert_problem(&r, 400, "invalid_message");
    assert_eq!(p["errors"].as_array().map(Vec::len), Some(2));
    assert_problem(
        &post(
            &gw,
            "RS-MOI",
            &review,
            &json!({"decision": "keep", "reason": "x"}),
        )
        .await,
        403,
        "not_originator",
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_sweeper_erases_what_is_due_naming_the_rule() {
    let gw = TestGateway::start().await;
    let short = {
        let mut m = message();
        m["retention_days"] = json!(30);
        send(&gw, "AL-CTD", &m).await
    };
    let witness = {
        let mut m = message();
        m["retention_days"] = serde_json::Value::Null;
        m["personal_data"]["subjects"] = json!(["witness"]);
        send(&gw, "AL-CTD", &m).await
    };
    let default = {
        let mut m = message();
        m["retention_days"] = serde_json::Value::Null;
        send(&gw, "AL-CTD", &m).await
    };
    let due = gw
        .partner("AL-CTD")
        .get("/v1/retention/due?within_days=400", &[])
        .await
        .expect("due");
    assert_eq!(due.status, 200);
    let listed: Vec<_> = due.json()["messages"]
        .as_array()
        .expect("m")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert!(
        listed.contains(&json!(short))
            && listed.contains(&json!(witness))
            && !listed.contains(&json!(default)),
        "{listed:?}"
    );
    assert_problem(
        &gw.partner("AL-CTD")
            .get("/v1/retention/due?within_days=-1", &[])
            .await
            .expect("r"),
        400,
        "invalid_request",
    );
    assert_eq!(
        gw.partner("RS-MOI")
            .get("/v1/retention/due?within_days=3650", &[])
            .await
            .expect("r")
            .json()["messages"],
        json!([])
    );

    let config = write_config(&gw);
    let cfg = config.to_str().expect("utf8");
    let in_60_days = (time::OffsetDateTime::now_utc() + time::Duration::days(60))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let dry = brdo(&[
        "retention",
        "run",
        "--config",
        cfg,
        "--as-of",
        &in_60_days,
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(
        text(&dry.stdout).lines().collect::<Vec<_>>(),
        [short.as_str()]
    );
    assert_eq!(
        read(&gw, "RS-MOI", &short).await.status,
        200,
        "a dry run changes nothing"
    );

    let run = brdo(&["retention", "run", "--config", cfg, "--as-of", &in_60_days]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        text(&run.stdout).lines().collect::<Vec<_>>(),
        [short.as_str()],
        "one erased id per line"
    );
    assert_problem(&read(&gw, "RS-MOI", &short).await, 410, "erased");
    assert_eq!(read(&gw, "RS-MOI", &witness).await.status, 200);

    let in_400_days = (time::OffsetDateTime::now_utc() + time::Duration::days(400))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let run = brdo(&["retention", "run", "--config", cfg, "--as-of", &in_400_days]);
    assert_eq!(
        text(&run.stdout).lines().collect::<Vec<_>>(),
        [witness.as_str()]
    );

    // Each erasure is an erase record by the system, naming its rule.
    let n = gw.audit_size().await;
    let mut rules = Vec::new();
    for seq in 1..=n {
        let rec = gw.audit_record(seq).await;
        if rec["action"] == "erase" {
            assert_eq!(rec["actor"]["role"], "system");
            assert_eq!(rec["actor"]["id"], "retention");
            assert_eq!(rec["counterparts"], json!(["AL-CTD", "EU-ECTC", "RS-MOI"]));
            rules.push(rec["details"]["rule"].clone());
        }
    }
    assert_eq!(
        rules,
        [
            json!({"kind": "sender", "days": 30}),
            json!({"kind": "rule", "index": 0, "days": 365})
        ]
    );
    let bad = brdo(&[
        "retention",
        "run",
        "--config",
        cfg,
        "--as-of",
        "next tuesday",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    gw.stop().await;
}

#[tokio::test]
async fn the_background_sweeper_runs_on_its_interval() {
    let gw =
        TestGateway::start_with(&Pki::shared().dir, |c| c.retention.sweep_interval_secs = 1).await;
    let id = submit_ok(&gw).await;
    // Pretend its retention ended yesterday.
    let pool = gw.db().await;
    sqlx::query("UPDATE messages SET retain_until_ms = retain_until_ms - $2 WHERE id = $1")
        .bind(&id)
        .bind(400_i64 * 86_400_000)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;
    let mut status = 0;
    for _ in 0..50 {
        status = read(&gw, "RS-MOI", &id).await.status;
        if status == 410 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, 410, "erased by the background sweeper");
    gw.stop().await;
}
