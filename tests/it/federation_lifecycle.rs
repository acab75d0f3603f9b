//! The lifecycle across gateways (SPEC §11): the originator's erasure,
//! holds, label raises and grants travel as notices from gateway A to
//! gateway B, which holds a copy, applies them under its own rules and
//! answers signed receipts; B's own retention tells A when it erases.
//! Two real gateways, each with its own CA, database, keys and policy.

use std::future::Future;
use std::time::{Duration, Instant};

use brdo::app::sweeper::{SweepOptions, sweep_with};
use brdo::crypto::jose::JwsKeys;
use brdo::federation::Receipt;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::fed::{erase_on_a, rows, status_as, status_of};
use crate::harness::{
    Federation, JUSTIFICATION, OFFICER, TestGateway, assert_problem, message, send, text,
};

/// Polls `probe` (up to 20 s) until it answers `Some`.
async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until A relayed `id` to B (RS-MOI's status `relayed`).
async fn relayed(a: &TestGateway, id: &str) {
    eventually("the relay", || async {
        (status_of(a, id, "RS-MOI").await["status"] == "relayed").then_some(())
    })
    .await;
}

/// Waits until A has nothing left to send (every notice confirmed).
async fn drained(a: &TestGateway) {
    eventually("A's outbox to drain", || async {
        (rows(a, "relay_outbox", "1 = 1").await == 0).then_some(())
    })
    .await;
}

/// A's operator suspends or resumes relaying to B.
async fn peer_state(a: &TestGateway, what: &str) {
    let r = a
        .client("operator-admin")
        .post_json(&format!("/v1/admin/peers/RS-NCB/{what}"), &[], &json!({}))
        .await
        .expect(what);
    assert_eq!(r.status, 200, "{}", text(&r.body));
}

/// B's envelope key (verifies its receipts).
fn b_keys(fed: &Federation) -> JwsKeys {
    JwsKeys::from_public_pem_file(&fed.b_pki.join("envelope-signing.pub")).expect("key")
}

/// A message from AL-CTD to `recipients` with these handling codes and no
/// `releasable_to`.
fn msg(recipients: &[&str], codes: &[&str]) -> Value {
    let mut m = message();
    m["recipients"] = json!(recipients);
    m["label"] = json!({"classification": "EU_RESTRICTED", "handling_codes": codes,
        "review_on": "2029-11-21"});
    m
}

/// `POST path` as `partner` on `gw`, with an officer.
async fn call(gw: &TestGateway, partner: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = gw
        .partner(partner)
        .post_json(path, &[OFFICER], body)
        .await
        .expect("post");
    (r.status, r.json())
}

/// RS-MOI reads `id` on B; the status code.
async fn read_on_b(b: &TestGateway, id: &str) -> u16 {
    b.partner("RS-MOI")
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read")
        .status
}

/// B's retention sweep as if 400 days on (past every retain_until).
async fn sweep_b(b: &TestGateway) -> Vec<String> {
    let app = &b.gateway.app;
    let opts = SweepOptions {
        as_of: OffsetDateTime::now_utc() + time::Duration::days(400),
        dry_run: false,
        audit_retention_days: 3650,
    };
    let signer = app.receipt_signer();
    let report = sweep_with(&app.store, &app.blobs, &opts, signer.as_ref())
        .await
        .expect("sweep");
    app.wake_relay();
    report.erased
}

#[tokio::test]
async fn an_erasure_on_a_reaches_b_and_is_confirmed_by_a_signed_receipt() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &message()).await;
    relayed(a, &id).await;
    assert_eq!(read_on_b(b, &id).await, 200);
    erase_on_a(a, &id).await;
    let s = eventually("the erased receipt", || async {
        let s = status_of(a, &id, "RS-MOI").await;
        (s["status"] == "erased" && s.get("erasure").is_none()).then_some(s)
    })
    .await;
    let r = Receipt::verify(s["receipt"].as_str().expect("receipt"), &b_keys(&fed)).expect("ok");
    assert_eq!(r.kind.as_str(), "erased");
    assert!(r.recipient.is_none() && r.audit_seq.is_some(), "{r:?}");
    // On B: read 410, the inbox entry without a subject, an erase record
    // by the gateway whose sequence number the receipt names.
    assert_eq!(read_on_b(b, &id).await, 410);
    let inbox = b
        .partner("RS-MOI")
        .get("/v1/inbox", &[OFFICER])
        .await
        .expect("inbox");
    assert_eq!(inbox.json()["messages"][0]["subject"], Value::Null);
    let rec = b.audit_record(r.audit_seq.expect("seq")).await;
    assert_eq!(rec["action"], "erase", "{rec}");
    assert_eq!(rec["actor"]["role"], "gateway", "{rec}");
    assert_eq!(rec["actor"]["id"], "AL-NCB", "{rec}");
    assert_eq!(rec["message_id"], id.as_str(), "{rec}");
    // On A: the confirmation is its own erase record by the relay.
    let filter = format!(
        "action = 'erase' AND actor_id = 'relay' AND message_id = '{id}' AND outcome = 'allowed'"
    );
    assert_eq!(rows(a, "audit_log", &filter).await, 1);
    // A's own recipient shows erased without any of this.
    let local = status_of(a, &id, "EU-ECTC").await;
    assert_eq!(local["status"], "erased");
    assert!(local.get("erasure").is_none(), "{local}");
}

#[tokio::test]
async fn an_erasure_while_b_is_down_stays_outstanding_until_b_is_back() {
    let mut fed = Federation::start().await;
    let id = send(fed.a(), "AL-CTD", &message()).await;
    relayed(fed.a(), &id).await;
    fed.stop_b().await;
    erase_on_a(fed.a(), &id).await;
    let s = status_of(fed.a(), &id, "RS-MOI").await;
    assert_eq!(s["status"], "erased", "{s}");
    assert_eq!(s["erasure"], "outstanding", "{s}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = status_of(fed.a(), &id, "RS-MOI").await;
    assert_eq!(s["erasure"], "outstanding", "still, after retries: {s}");
    fed.start_b().await;
    let a = fed.a();
    eventually("B's confirmation", || async {
        status_of(a, &id, "RS-MOI")
            .await
            .get("erasure")
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(read_on_b(fed.b(), &id).await, 410);
}

#[tokio::test]
async fn a_notice_waits_behind_its_copy_and_a_copy_erased_before_it_left_is_never_sent() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    // A suspended peer's rows wait unclaimed (a stopped peer's row may be
    // claimed by an attempt in flight, and then it gets a notice).
    peer_state(a, "suspend").await;
    let held = send(a, "AL-CTD", &message()).await;
    let (s, body) = call(
        a,
        "AL-CTD",
        &format!("/v1/messages/{held}/hold"),
        &json!({"reason": "Court order 12/2026"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // The notice is queued, but not due before the copy it is about.
    let store = &a.gateway.app.store;
    assert_eq!(store.outbox_of("RS-NCB").await.expect("outbox").len(), 2);
    let now = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .expect("ms")
        + 3_600_000;
    let due = store.outbox_due("RS-NCB", now, 32).await.expect("due");
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].entry.kind.as_str(), "message");
    // A message erased before it left: its row goes, no notice replaces it.
    let gone = send(a, "AL-CTD", &message()).await;
    erase_on_a(a, &gone).await;
    let filter = format!("message_id = '{gone}'");
    assert_eq!(rows(a, "relay_outbox", &filter).await, 0);
    let s = status_of(a, &gone, "RS-MOI").await;
    assert_eq!(s["status"], "erased");
    assert!(s.get("erasure").is_none(), "{s}");
    peer_state(a, "resume").await;
    relayed(a, &held).await;
    drained(a).await;
    let filter = format!("id = '{held}' AND held = 1");
    assert_eq!(rows(b, "messages", &filter).await, 1, "B's copy is held");
    let filter = format!("id = '{gone}'");
    assert_eq!(rows(b, "messages", &filter).await, 0, "never sent");
}

#[tokio::test]
async fn a_hold_keeps_bs_copy_from_its_sweeper_and_bs_own_erasure_reaches_a() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &message()).await;
    relayed(a, &id).await;
    let (s, body) = call(
        a,
        "AL-CTD",
        &format!("/v1/messages/{id}/hold"),
        &json!({"reason": "Court order 12/2026"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    drained(a).await;
    let applied = format!("message_id = '{id}' AND kind = 'applied' AND direction = 'received'");
    assert_eq!(rows(a, "relay_receipts", &applied).await, 1);
    assert!(!sweep_b(b).await.contains(&id), "a held copy is not swept");
    assert_eq!(read_on_b(b, &id).await, 200);
    let lift = a
        .partner("AL-CTD")
        .request(
            axum::http::Method::DELETE,
            &format!("/v1/messages/{id}/hold"),
            &[OFFICER, ("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await
        .expect("lift");
    assert_eq!(lift.status, 200, "{}", text(&lift.body));
    drained(a).await;
    assert_eq!(
        rows(b, "messages", &format!("id = '{id}' AND held = 0")).await,
        1
    );
    // B's own (shorter) retention erases its copy and tells A.
    assert!(sweep_b(b).await.contains(&id));
    let s = eventually("B's erased receipt", || async {
        let s = status_of(a, &id, "RS-MOI").await;
        (s["status"] == "erased").then_some(s)
    })
    .await;
    let r = Receipt::verify(s["receipt"].as_str().expect("receipt"), &b_keys(&fed)).expect("ok");
    assert_eq!(r.kind.as_str(), "erased");
    // A's own copy is untouched.
    let read = a
        .partner("EU-ECTC")
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.status, 200, "{}", text(&read.body));
}

#[tokio::test]
async fn a_label_raise_travels_and_bs_read_shows_it() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &message()).await;
    relayed(a, &id).await;
    let mut label = message()["label"].clone();
    label["handling_codes"] = json!(["H0", "H1", "H2", "H3"]);
    let (s, body) = call(a, "AL-CTD", &format!("/v1/messages/{id}/label"), &label).await;
    assert_eq!(s, 200, "{body}");
    drained(a).await;
    let read = b
        .partner("RS-MOI")
        .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
        .await
        .expect("read");
    assert_eq!(read.status, 200);
    assert_eq!(
        read.json()["label"]["handling_codes"],
        json!(["H0", "H1", "H2", "H3"])
    );
    let filter = format!("action = 'alter' AND actor_role = 'gateway' AND message_id = '{id}'");
    assert_eq!(rows(b, "audit_log", &filter).await, 1);
}

#[tokio::test]
async fn a_grant_travels_so_a_holder_on_b_may_forward_under_h2() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &msg(&["RS-MOI"], &["H2"])).await;
    relayed(a, &id).await;
    let forward = |to: &'static str| {
        let path = format!("/v1/messages/{id}/forward");
        async move {
            let body = json!({"recipients": [to], "justification": "Joint investigation"});
            call(b, "RS-MOI", &path, &body).await
        }
    };
    let (s, body) = forward("ME-MOI").await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["violations"][0]["code"], "handling_code_h2", "{body}");
    let (s, body) = call(
        a,
        "AL-CTD",
        &format!("/v1/messages/{id}/permissions"),
        &json!({"partner": "ME-MOI", "scope": "forward"}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    drained(a).await;
    let (s, body) = forward("ME-MOI").await;
    assert_eq!(s, 201, "{body}");
    // A peer's information never goes on to a partner behind a peer.
    let (s, body) = forward("EU-ECTC").await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["code"], "origin_not_behind_peer", "{body}");
    let filter = format!("action = 'grant' AND actor_role = 'gateway' AND message_id = '{id}'");
    assert_eq!(rows(b, "audit_log", &filter).await, 1);
}

#[tokio::test]
async fn a_local_originators_forward_is_relayed_and_erased_with_its_family() {
    let fed = Federation::start().await;
    let (a, b) = (fed.a(), fed.b());
    let id = send(a, "AL-CTD", &msg(&["EU-ECTC"], &["H0"])).await;
    let (s, body) = call(
        a,
        "EU-ECTC",
        &format!("/v1/messages/{id}/forward"),
        &json!({"recipients": ["RS-MOI"], "justification": "Regional follow-up"}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let fwd = body["id"].as_str().expect("id").to_owned();
    eventually("the forward relayed", || async {
        (status_as(a, "EU-ECTC", &fwd, "RS-MOI").await["status"] == "relayed").then_some(())
    })
    .await;
    assert_eq!(read_on_b(b, &fwd).await, 200);
    // The originator erases its family: the notice names the copy B holds.
    erase_on_a(a, &id).await;
    drained(a).await;
    assert_eq!(read_on_b(b, &fwd).await, 410);
}

#[tokio::test]
async fn notices_from_the_wrong_gateway_or_malformed_are_refused_and_audited() {
    let fed = Federation::start().await;
    let b = fed.b();
    let client = fed.a_as_gateway_to_b();
    let post = |doc: Value| crate::fed::post_doc(&client, "/v1/federation/notices", doc);
    // A message of B's own partners: A may not decide about it.
    let local = send(b, "ME-MOI", &msg(&["RS-MOI"], &["H0"])).await;
    let erase = |id: &str| json!({"v": 1, "kind": "erase", "message_id": id, "reason": "r"});
    let r = post(erase(&local)).await;
    assert_problem(&r, 403, "origin_not_behind_peer");
    let rec = b.audit_of(&r).await;
    assert_eq!(rec["code"], "origin_not_behind_peer", "{rec}");
    assert_eq!(rec["actor"]["role"], "gateway", "{rec}");
    assert_eq!(read_on_b(b, &local).await, 200, "nothing erased");
    let with = |k: &str, v: Value| {
        let mut d = erase(&local);
        d[k] = v;
        d
    };
    let cases = [
        (with("v", json!(2)), "v"),
        (with("kind", json!("delete")), "kind"),
        (with("message_id", json!("../etc")), "message_id"),
        (with("reason", json!("a\u{202e}b")), "reason"),
        (with("colour", json!("red")), "colour"),
        (with("partner", json!("RS-MOI")), "partner"),
        (
            json!({"v": 1, "kind": "hold", "message_id": local}),
            "reason",
        ),
        (
            json!({"v": 1, "kind": "grant", "message_id": local, "partner": "RS-MOI", "scope": "all"}),
            "scope",
        ),
    ];
    for (doc, field) in cases {
        let r = post(doc).await;
        let p = assert_problem(&r, 400, "invalid_message");
        assert_eq!(p["errors"][0]["field"], field, "{p}");
        assert_eq!(b.audit_of(&r).await["code"], "invalid_message");
    }
    // A family B does not hold: the same receipt, holding nothing; again
    // is harmless.
    let unknown = uuid::Uuid::now_v7().to_string();
    for _ in 0..2 {
        let r = post(erase(&unknown)).await;
        assert_eq!(r.status, 200, "{}", text(&r.body));
        let jws = r.json()["receipt"].as_str().expect("jws").to_owned();
        let receipt = Receipt::verify(&jws, &b_keys(&fed)).expect("verifies");
        assert_eq!(receipt.kind.as_str(), "erased");
        assert_eq!(receipt.message_id, unknown);
        let rec = b.audit_record(receipt.audit_seq.expect("seq")).await;
        assert_eq!(rec["action"], "erase", "{rec}");
    }
    let hold = json!({"v": 1, "kind": "hold", "message_id": unknown, "reason": "x"});
    let r = post(hold).await;
    let receipt = Receipt::verify(r.json()["receipt"].as_str().expect("jws"), &b_keys(&fed))
        .expect("verifies");
    assert_eq!(receipt.kind.as_str(), "applied");
    assert_eq!(receipt.notice.as_deref(), Some("hold"));
    // A partner certificate may not send notices.
    let r = b
        .partner("RS-MOI")
        .post_json("/v1/federation/notices", &[], &erase(&local))
        .await
        .expect("post");
    assert_problem(&r, 403, "forbidden_role");
}
