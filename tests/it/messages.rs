//! The message exchange (SPEC §3): submit, inbox, read, acknowledge, status.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn submit_answers_201_with_a_uuidv7_and_dates() {
    let gw = TestGateway::start().await;
    let r = submit(&gw, "AL-CTD", &message()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let id = uuid::Uuid::parse_str(v["id"].as_str().expect("id")).expect("uuid");
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/messages/{id}").as_str())
    );
    assert!(
        v["accepted_at"]
            .as_str()
            .expect("accepted_at")
            .ends_with('Z')
    );
    assert!(v["retain_until"].as_str().is_some());
    assert_eq!(v["review_on"], "2029-11-21", "the label's review date");
    assert_eq!(
        v["recipients"],
        json!([{"partner": "EU-ECTC", "status": "queued"}, {"partner": "RS-MOI", "status": "queued"}])
    );
    // retention_days 365 < the suspects' default of 1095 days.
    let accepted = time::OffsetDateTime::parse(
        v["accepted_at"].as_str().expect("t"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    let until = time::OffsetDateTime::parse(
        v["retain_until"].as_str().expect("t"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    assert_eq!((until - accepted).whole_days(), 365);
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "collect");
    assert_eq!(rec["outcome"], "allowed");
    assert_eq!(rec["message_id"], id.to_string());
    assert_eq!(rec["counterparts"], json!(["EU-ECTC", "RS-MOI"]));
    assert_eq!(rec["actor"]["officer"], "insp.hoxha");
    gw.stop().await;
}

#[tokio::test]
async fn inbox_read_ack_status_round_trip() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await;
    let serbia = gw.partner("RS-MOI");

    let inbox = serbia.get("/v1/inbox", &[]).await.expect("inbox");
    assert_eq!(inbox.status, 200);
    let v = inbox.json();
    let entry = &v["messages"][0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["from"], "AL-CTD");
    assert_eq!(
        entry["subject"],
        "Travel of a returning foreign terrorist fighter"
    );
    assert_eq!(entry["label"]["classification"], "EU_RESTRICTED");
    assert_eq!(entry["purpose"], "investigation");
    assert_eq!(entry["case_ref"], "AL-2026-0042");
    assert!(entry["received_at"].as_str().is_some());
    assert!(v["next"].as_str().is_some());

    let path = format!("/v1/messages/{id}");
    let read = serbia
        .get(&path, &[("brdo-officer", "insp.Petrović"), JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.status, 200, "{}", String::from_utf8_lossy(&read.body));
    let m = read.json();
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["from"], "AL-CTD");
    assert_eq!(m["body"], "Details follow.");
    assert_eq!(
        m["label"]["h3_text"],
        "Not to be shared with border police units."
    );
    assert_eq!(m["marking"], "RESTREINT UE/EU RESTRICTED");
    assert_eq!(m["evaluation"], message()["evaluation"]);
    assert_eq!(m["personal_data"]["subjects"], json!(["suspect"]));
    let rec = gw.audit_of(&read).await;
    assert_eq!(rec["action"], "consult");
    assert_eq!(rec["actor"]["officer"], "insp.Petrović");
    assert_eq!(rec["justification"], JUSTIFICATION.1);
    assert_eq!(rec["counterparts"], json!(["AL-CTD"]));

    let albania = gw.partner("AL-CTD");
    let status = albania
        .get(&format!("{path}/status"), &[])
        .await
        .expect("status");
    assert_eq!(status.status, 200);
    let s = status.json();
    assert_eq!(s["recipients"][0]["partner"], "EU-ECTC");
    assert_eq!(s["recipients"][0]["status"], "queued");
    assert_eq!(
        s["recipients"][1]["status"], "delivered",
        "first read marks delivered"
    );

    let ack = serbia
        .request(
            hyper::Method::POST,
            &format!("{path}/ack"),
            &[OFFICER, ("content-type", "application/json")],
            None,
        )
        .await
        .expect("ack");
    assert_eq!(ack.status, 200, "{}", String::from_utf8_lossy(&ack.body));
    assert_eq!(ack.json()["status"], "acknowledged");
    assert_eq!(gw.audit_of(&ack).await["action"], "acknowledge");
    let s = albania
        .get(&format!("{path}/status"), &[])
        .await
        .expect("status")
        .json();
    assert_eq!(s["recipients"][1]["status"], "acknowledged");
    assert!(s["recipients"][1]["updated_at"].as_str().is_some());

    // The originator reads its own message too (with a justification).
    let own = albania
        .get(&path, &[OFFICER, JUSTIFICATION])
        .await
        .expect("own read");
    assert_eq!(own.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn inbox_pages_with_cursor_and_limit() {
    let gw = TestGateway::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(submit_ok(&gw).await);
    }
    let serbia = gw.partner("RS-MOI");
    let first = serbia
        .get("/v1/inbox?limit=2", &[])
        .await
        .expect("page 1")
        .json();
    let got: Vec<_> = first["messages"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(got, [json!(ids[0]), json!(ids[1])], "oldest first");
    let next = first["next"].as_str().expect("next");
    let second = serbia
        .get(&format!("/v1/inbox?limit=2&after={next}"), &[])
        .await
        .expect("page 2")
        .json();
    let got: Vec<_> = second["messages"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(got, [json!(ids[2]), json!(ids[3])]);
    let next = second["next"].as_str().expect("next");
    let third = serbia
        .get(&format!("/v1/inbox?after={next}"), &[])
        .await
        .expect("page 3")
        .json();
    assert_eq!(third["messages"].as_array().expect("list").len(), 1);
    let last = third["next"].as_str().expect("next").to_owned();
    let empty = serbia
        .get(&format!("/v1/inbox?after={last}"), &[])
        .await
        .expect("empty")
        .json();
    assert_eq!(empty["messages"], json!([]));
    assert_eq!(
        empty["next"],
        last.as_str(),
        "an empty page keeps the cursor"
    );
    // Another partner's inbox does not show them.
    let other = gw
        .partner("BA-SIPA")
        .get("/v1/inbox", &[])
        .await
        .expect("other")
        .json();
    assert_eq!(other["messages"], json!([]));
    // Bad parameters are named.
    let bad = serbia
        .get("/v1/inbox?limit=0&wait=99&colour=red", &[])
        .await
        .expect("bad");
    let p = assert_problem(&bad, 400, "invalid_request");
    let fields: Vec<_> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("limit"), json!("wait"), json!("colour")]);
    gw.stop().await;
}

#[tokio::test]
async fn long_poll_wakes_when_a_message_arrives() {
    let gw = TestGateway::start().await;
    let serbia = gw.partner("RS-MOI");
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = serbia.get("/v1/inbox?wait=30", &[]).await.expect("poll");
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = submit_ok(&gw).await;
    let (r, elapsed) = waiting.await.expect("join");
    assert_eq!(r.json()["messages"][0]["id"], id.as_str());
    assert!(
        elapsed < Duration::from_secs(25),
        "woken by the delivery, not the timeout"
    );
    // A wait with nothing arriving returns empty after the wait.
    let r = gw
        .partner("ME-MOI")
        .get("/v1/inbox?wait=1", &[])
        .await
        .expect("poll");
    assert_eq!(r.json()["messages"], json!([]));
    gw.stop().await;
}

#[tokio::test]
async fn reads_need_officer_and_justification() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await;
    let serbia = gw.partner("RS-MOI");
    let path = format!("/v1/messages/{id}");
    let r = serbia.get(&path, &[JUSTIFICATION]).await.expect("read");
    assert_problem(&r, 400, "officer_required");
    let r = serbia.get(&path, &[OFFICER]).await.expect("read");
    assert_problem(&r, 400, "justification_required");
    let long = "x".repeat(1001);
    let r = serbia
        .get(&path, &[OFFICER, ("brdo-justification", &long)])
        .await
        .expect("read");
    assert_problem(&r, 400, "justification_required");
    let r = serbia
        .get(&path, &[("brdo-officer", &"o".repeat(129)), JUSTIFICATION])
        .await
        .expect("read");
    assert_problem(&r, 400, "officer_required");
    // Submitting and acknowledging need the officer too.
    let r = serbia
        .post_json("/v1/messages", &[], &message())
        .await
        .expect("submit");
    assert_problem(&r, 400, "officer_required");
    let r = serbia
        .request(
            hyper::Method::POST,
            &format!("{path}/ack"),
            &[("content-type", "application/json")],
            None,
        )
        .await
        .expect("ack");
    assert_problem(&r, 400, "officer_required");
    // None of this changed the delivery.
    let s = gw
        .partner("AL-CTD")
        .get(&format!("{path}/status"), &[])
        .await
        .expect("status")
        .json();
    assert_eq!(s["recipients"][1]["status"], "queued");
    gw.stop().await;
}

#[tokio::test]
async fn need_to_know_hides_existence() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await;
    let outsider = gw.partner("BA-SIPA");
    let missing = uuid::Uuid::now_v7().to_string();
    let mut bodies = Vec::new();
    for target in [id.as_str(), missing.as_str(), "not-a-uuid"] {
        let r = outsider
            .get(&format!("/v1/messages/{target}"), &[OFFICER, JUSTIFICATION])
            .await
            .expect("read");
        let mut p = assert_problem(&r, 404, "not_found");
        p.as_object_mut().expect("obj").remove("request_id");
        bodies.push(p);
        for suffix in ["ack", "status"] {
            let method = if suffix == "ack" {
                hyper::Method::POST
            } else {
                hyper::Method::GET
            };
            let r = outsider
                .request(
                    method,
                    &format!("/v1/messages/{target}/{suffix}"),
                    &[OFFICER, ("content-type", "application/json")],
                    None,
                )
                .await
                .expect("req");
            assert_problem(&r, 404, "not_found");
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "indistinguishable: {bodies:?}"
    );
    // A recipient cannot see the status of others' deliveries.
    let r = gw
        .partner("RS-MOI")
        .get(&format!("/v1/messages/{id}/status"), &[])
        .await
        .expect("status");
    assert_problem(&r, 404, "not_found");
    // The sender has no delivery to acknowledge.
    let r = gw
        .partner("AL-CTD")
        .request(
            hyper::Method::POST,
            &format!("/v1/messages/{id}/ack"),
            &[OFFICER, ("content-type", "application/json")],
            None,
        )
        .await
        .expect("ack");
    assert_problem(&r, 404, "not_found");
    // The probe is audited as a denial.
    let r = outsider
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    let rec = gw.audit_of(&r).await;
    assert_eq!(
        (rec["action"].as_str(), rec["outcome"].as_str()),
        (Some("deny"), Some("denied"))
    );
    assert_eq!(rec["details"]["attempted"], "consult");
    gw.stop().await;
}

#[tokio::test]
async fn idempotency_key_returns_the_first_answer() {
    let gw = TestGateway::start().await;
    let albania = gw.partner("AL-CTD");
    let key = ("idempotency-key", "al-2026-0042-1");
    let first = albania
        .post_json("/v1/messages", &[OFFICER, key], &message())
        .await
        .expect("first");
    assert_eq!(first.status, 201);
    // Same body, re-serialised differently: same answer, nothing new stored.
    let text = serde_json::to_string_pretty(&message()).expect("json");
    let again = albania
        .request(
            hyper::Method::POST,
            "/v1/messages",
            &[OFFICER, key, ("content-type", "application/json")],
            Some(text.into_bytes()),
        )
        .await
        .expect("again");
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(gw.count("messages").await, 1);
    // Another body with the same key: 409.
    let mut other = message();
    other["subject"] = json!("Another subject");
    let conflict = albania
        .post_json("/v1/messages", &[OFFICER, key], &other)
        .await
        .expect("conflict");
    assert_problem(&conflict, 409, "idempotency_conflict");
    assert_eq!(gw.count("messages").await, 1);
    // Keys are per partner.
    let serbia = gw.partner("RS-MOI");
    let mut reply = message();
    reply["recipients"] = json!(["AL-CTD"]);
    reply["label"]["releasable_to"] = json!(["AL-CTD"]);
    let r = serbia
        .post_json("/v1/messages", &[OFFICER, key], &reply)
        .await
        .expect("other partner");
    assert_eq!(r.status, 201);
    // Concurrent first uses of one key: exactly one message.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = gw.partner("AL-CTD");
        tasks.push(tokio::spawn(async move {
            c.post_json(
                "/v1/messages",
                &[OFFICER, ("idempotency-key", "race")],
                &message(),
            )
            .await
            .expect("race")
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let r = t.await.expect("join");
        assert_eq!(r.status, 201);
        ids.push(r.json()["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one message for one key");
    assert_eq!(gw.count("messages").await, 3);
    gw.stop().await;
}

#[tokio::test]
async fn in_reply_to_must_be_held_by_the_sender() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await;
    let mut reply = message();
    reply["recipients"] = json!(["AL-CTD"]);
    reply["label"]["releasable_to"] = json!(["AL-CTD"]);
    reply["in_reply_to"] = json!(id);
    let r = gw
        .partner("RS-MOI")
        .post_json("/v1/messages", &[OFFICER], &reply)
        .await
        .expect("reply");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // A partner not holding it cannot reply to it (and learns nothing).
    reply["recipients"] = json!(["RS-MOI"]);
    reply["label"]["releasable_to"] = json!(["RS-MOI"]);
    let r = gw
        .partner("BA-SIPA")
        .post_json("/v1/messages", &[OFFICER], &reply)
        .await
        .expect("reply");
    let p = assert_problem(&r, 400, "invalid_message");
    assert_eq!(p["errors"][0]["field"], "in_reply_to");
    gw.stop().await;
}
