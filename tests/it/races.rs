//! Lifecycle writes racing each other (SPEC §4, "Lifecycle writes and the
//! family's state"): every write is checked against the family as it is
//! at its commit, so whatever order concurrent requests commit in, no copy
//! outlives an erasure, escapes a label raise or erases a held family.
//!
//! Each test runs `ROUNDS` rounds of `CLIENTS` real mTLS clients released
//! together against one gateway, and checks the invariant after every
//! round from the answers and from the database itself.

use std::sync::Arc;

use brdo_tools::client::ClientResponse;
use hyper::Method;
use serde_json::{Value, json};

use crate::harness::*;

const ROUNDS: usize = 20;
const CLIENTS: usize = 12;

/// One request of a race.
struct Call {
    partner: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

fn post_call(partner: &'static str, path: String, body: Value) -> Call {
    Call {
        partner,
        method: Method::POST,
        path,
        body: Some(body),
    }
}

/// Sends every call at once, each from a client of its own that has
/// connected already, so the requests race each other and not their
/// handshakes. Answers in the calls' order.
async fn race(gw: &TestGateway, calls: Vec<Call>) -> Vec<ClientResponse> {
    let barrier = Arc::new(tokio::sync::Barrier::new(calls.len()));
    let mut tasks = Vec::new();
    for c in calls {
        let client = gw.partner(c.partner);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            client
                .get("/v1/inbox", &[])
                .await
                .expect("connect before the race");
            barrier.wait().await;
            let mut headers = vec![OFFICER, JUSTIFICATION];
            if c.body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            client
                .request(
                    c.method,
                    &c.path,
                    &headers,
                    c.body.map(|b| b.to_string().into_bytes()),
                )
                .await
                .expect("request")
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("client task"));
    }
    out
}

/// A gateway whose rate limit does not get in the way of the races.
async fn gateway() -> TestGateway {
    TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.rate_limit_per_second = 100_000;
        c.server.rate_limit_burst = 100_000;
    })
    .await
}

/// AL-CTD → RS-MOI with these handling codes and releasability.
fn to_serbia(codes: &[&str], releasable_to: Option<&[&str]>) -> Value {
    let mut m = message();
    m["recipients"] = json!(["RS-MOI"]);
    m["label"] = json!({"classification": "EU_RESTRICTED", "handling_codes": codes});
    if codes.contains(&"H3") {
        m["label"]["h3_text"] = json!("Not for border police.");
    }
    if let Some(r) = releasable_to {
        m["label"]["releasable_to"] = json!(r);
    }
    m
}

fn forward_to(to: &str) -> Value {
    json!({"recipients": [to], "justification": "Joint investigation team request"})
}

fn erase_body() -> Value {
    json!({"decision": "erase", "reason": "No longer needed for the investigation"})
}

fn hold_body() -> Value {
    json!({"reason": "Preservation order, Tirana District Court 2026/117"})
}

/// Where the odd one out goes in round `round`: the position moves so
/// that it is sometimes sent first, sometimes last.
fn slot(round: usize) -> usize {
    (round * 5) % CLIENTS
}

/// (id, label, held, erased) of every message of the family of `root`.
async fn family_rows(gw: &TestGateway, root: &str) -> Vec<(String, String, i64, bool)> {
    let db = gw.db().await;
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, label, held, erased_at_ms FROM messages WHERE id = $1 OR root_id = $1",
    )
    .bind(root.to_owned())
    .fetch_all(&db)
    .await
    .expect("family rows");
    db.close().await;
    rows.into_iter()
        .map(|(id, l, h, e)| (id, l, h, e.is_some()))
        .collect()
}

/// Audit records of `action` with outcome allowed about `message_id`, by seq.
async fn allowed_seqs(gw: &TestGateway, action: &str, message_id: &str) -> Vec<i64> {
    let db = gw.db().await;
    let seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM audit_log WHERE action = $1 AND message_id = $2 AND outcome = 'allowed' ORDER BY seq",
    )
    .bind(action.to_owned())
    .bind(message_id.to_owned())
    .fetch_all(&db)
    .await
    .expect("audit seqs");
    db.close().await;
    seqs
}

fn copy_id(r: &ClientResponse) -> String {
    r.json()["id"].as_str().expect("copy id").to_owned()
}

#[tokio::test]
async fn no_forward_outlives_the_familys_erasure() {
    let gw = gateway().await;
    for round in 0..ROUNDS {
        let id = send(&gw, "AL-CTD", &to_serbia(&["H3"], None)).await;
        let mut calls: Vec<Call> = (0..CLIENTS - 1)
            .map(|_| {
                post_call(
                    "RS-MOI",
                    format!("/v1/messages/{id}/forward"),
                    forward_to("ME-MOI"),
                )
            })
            .collect();
        let at = slot(round);
        calls.insert(
            at,
            post_call("AL-CTD", format!("/v1/messages/{id}/review"), erase_body()),
        );
        let mut answers = race(&gw, calls).await;
        let erase = answers.remove(at);
        assert_eq!(erase.status, 200, "round {round}: {}", text(&erase.body));
        let erased: Vec<String> =
            serde_json::from_value(erase.json()["erased"].clone()).expect("erased ids");
        for f in &answers {
            match f.status {
                201 => {
                    let copy = copy_id(f);
                    assert!(
                        erased.contains(&copy),
                        "round {round}: a forward answered 201 but its copy {copy} escaped the erasure"
                    );
                    assert_problem(&read(&gw, "ME-MOI", &copy).await, 410, "erased");
                }
                410 => {}
                s => panic!("round {round}: forward answered {s}: {}", text(&f.body)),
            }
        }
        let rows = family_rows(&gw, &id).await;
        assert!(
            rows.iter().all(|(_, _, _, erased)| *erased),
            "round {round}: a copy holds content after the erasure answered: {rows:?}"
        );
        assert_eq!(
            rows.len(),
            1 + answers.iter().filter(|f| f.status == 201).count(),
            "round {round}: every stored copy was answered 201"
        );
        let erase_rec = gw.audit_of(&erase).await;
        let mut listed: Vec<String> =
            serde_json::from_value(erase_rec["details"]["message_ids"].clone()).expect("ids");
        let mut stored: Vec<String> = rows.into_iter().map(|r| r.0).collect();
        listed.sort();
        stored.sort();
        assert_eq!(
            listed, stored,
            "round {round}: the erase record names the family at commit"
        );
    }
}

#[tokio::test]
async fn no_copy_keeps_a_label_lower_than_the_raised_one() {
    let gw = gateway().await;
    let releasable: &[&str] = &["RS-MOI", "ME-MOI"];
    let raised = json!({
        "classification": "EU_RESTRICTED",
        "handling_codes": ["H1", "H3"],
        "h3_text": "Not for border police.",
        "releasable_to": ["RS-MOI"]
    });
    let mut raises_won = 0;
    for round in 0..ROUNDS {
        let id = send(&gw, "AL-CTD", &to_serbia(&["H3"], Some(releasable))).await;
        let mut calls: Vec<Call> = (0..CLIENTS - 1)
            .map(|_| {
                post_call(
                    "RS-MOI",
                    format!("/v1/messages/{id}/forward"),
                    forward_to("ME-MOI"),
                )
            })
            .collect();
        let at = slot(round);
        calls.insert(
            at,
            post_call("AL-CTD", format!("/v1/messages/{id}/label"), raised.clone()),
        );
        let mut answers = race(&gw, calls).await;
        let raise = answers.remove(at);
        let forwards = answers.iter().filter(|f| f.status == 201).count();
        for f in &answers {
            assert!(
                matches!(f.status, 201 | 403 | 409),
                "round {round}: forward answered {}: {}",
                f.status,
                text(&f.body)
            );
        }
        let rows = family_rows(&gw, &id).await;
        let labels: std::collections::BTreeSet<&String> = rows.iter().map(|r| &r.1).collect();
        assert_eq!(
            labels.len(),
            1,
            "round {round}: the family's copies carry different labels: {rows:?}"
        );
        match raise.status {
            200 => {
                raises_won += 1;
                assert_eq!(
                    forwards, 0,
                    "round {round}: a copy went to ME-MOI, outside the raised releasable_to"
                );
                assert!(labels.iter().all(|l| l.contains("H1")), "{labels:?}");
            }
            403 | 409 => {
                assert!(
                    forwards > 0 || raise.status == 409,
                    "round {round}: the raise was refused though nobody outside it holds the message: {}",
                    text(&raise.body)
                );
                assert!(labels.iter().all(|l| !l.contains("H1")), "{labels:?}");
            }
            s => panic!("round {round}: raise answered {s}: {}", text(&raise.body)),
        }
        assert_eq!(rows.len(), 1 + forwards, "round {round}");
    }
    // Rounds where the raise went first must exist for the test to mean
    // anything; the slot moves to the front every few rounds.
    assert!(raises_won > 0, "the raise never won a race");
}

#[tokio::test]
async fn a_held_family_is_never_erased() {
    let gw = gateway().await;
    for round in 0..ROUNDS {
        let id = send(&gw, "AL-CTD", &to_serbia(&["H3"], None)).await;
        let fwd = post(
            &gw,
            "RS-MOI",
            &format!("/v1/messages/{id}/forward"),
            &forward_to("ME-MOI"),
        )
        .await;
        assert_eq!(fwd.status, 201, "{}", text(&fwd.body));
        // Half the clients hold, half erase (by the original or by the
        // copy's originator view: the family either way).
        let calls: Vec<Call> = (0..CLIENTS)
            .map(|i| {
                if (i + round) % 2 == 0 {
                    post_call("AL-CTD", format!("/v1/messages/{id}/hold"), hold_body())
                } else {
                    post_call("AL-CTD", format!("/v1/messages/{id}/review"), erase_body())
                }
            })
            .collect();
        let kinds: Vec<bool> = (0..CLIENTS).map(|i| (i + round) % 2 == 0).collect();
        let answers = race(&gw, calls).await;
        let held_ok = answers
            .iter()
            .zip(&kinds)
            .any(|(a, hold)| *hold && a.status == 200);
        let erased_ok = answers
            .iter()
            .zip(&kinds)
            .any(|(a, hold)| !*hold && a.status == 200);
        for (a, hold) in answers.iter().zip(&kinds) {
            let allowed: &[u16] = if *hold { &[200, 410] } else { &[200, 409, 410] };
            assert!(
                allowed.contains(&a.status),
                "round {round}: {} answered {}: {}",
                if *hold { "hold" } else { "erase" },
                a.status,
                text(&a.body)
            );
        }
        assert!(
            held_ok != erased_ok,
            "round {round}: exactly one of hold and erase must win"
        );
        let rows = family_rows(&gw, &id).await;
        assert_eq!(rows.len(), 2);
        for (mid, _, held, erased) in &rows {
            assert!(
                !(*held != 0 && *erased),
                "round {round}: {mid} is held and erased"
            );
            assert_eq!(*erased, erased_ok, "round {round}: {mid}");
            assert_eq!(*held != 0, held_ok, "round {round}: {mid}");
        }
    }
}

#[tokio::test]
async fn a_forward_commits_only_under_a_permission_granted_before_it() {
    let gw = gateway().await;
    for round in 0..ROUNDS {
        let id = send(&gw, "AL-CTD", &to_serbia(&["H2"], None)).await;
        let mut calls: Vec<Call> = (0..CLIENTS - 1)
            .map(|_| {
                post_call(
                    "RS-MOI",
                    format!("/v1/messages/{id}/forward"),
                    forward_to("ME-MOI"),
                )
            })
            .collect();
        let at = slot(round);
        calls.insert(
            at,
            post_call(
                "AL-CTD",
                format!("/v1/messages/{id}/permissions"),
                json!({"partner": "ME-MOI", "scope": "forward"}),
            ),
        );
        let mut answers = race(&gw, calls).await;
        let grant = answers.remove(at);
        assert_eq!(grant.status, 201, "round {round}: {}", text(&grant.body));
        for f in &answers {
            assert!(
                matches!(f.status, 201 | 403),
                "round {round}: forward answered {}: {}",
                f.status,
                text(&f.body)
            );
        }
        let granted = allowed_seqs(&gw, "grant", &id).await;
        assert_eq!(granted.len(), 1);
        let forwarded = allowed_seqs(&gw, "disclose", &id).await;
        assert_eq!(
            forwarded.len(),
            answers.iter().filter(|f| f.status == 201).count(),
            "round {round}"
        );
        assert!(
            forwarded.iter().all(|s| *s > granted[0]),
            "round {round}: a forward under H2 committed before the permission: {forwarded:?} vs {granted:?}"
        );
        let rows = family_rows(&gw, &id).await;
        assert_eq!(rows.len(), 1 + forwarded.len(), "round {round}");
    }
}

#[tokio::test]
async fn no_content_is_read_after_the_erasure_commits() {
    let gw = gateway().await;
    for round in 0..ROUNDS {
        let id = send(&gw, "AL-CTD", &to_serbia(&["H3"], None)).await;
        let mut calls: Vec<Call> = (0..CLIENTS - 1)
            .map(|_| Call {
                partner: "RS-MOI",
                method: Method::GET,
                path: format!("/v1/messages/{id}"),
                body: None,
            })
            .collect();
        let at = slot(round);
        calls.insert(
            at,
            post_call("AL-CTD", format!("/v1/messages/{id}/review"), erase_body()),
        );
        let mut answers = race(&gw, calls).await;
        let erase = answers.remove(at);
        assert_eq!(erase.status, 200, "round {round}: {}", text(&erase.body));
        let delivered = answers.iter().filter(|r| r.status == 200).count();
        for r in &answers {
            match r.status {
                200 => assert_eq!(r.json()["subject"], message()["subject"]),
                410 => {}
                s => panic!("round {round}: read answered {s}: {}", text(&r.body)),
            }
        }
        let erased_at = allowed_seqs(&gw, "erase", &id).await;
        assert_eq!(erased_at.len(), 1);
        let consulted = allowed_seqs(&gw, "consult", &id).await;
        assert_eq!(consulted.len(), delivered, "round {round}");
        assert!(
            consulted.iter().all(|s| *s < erased_at[0]),
            "round {round}: content was handed out under a record after the erasure: {consulted:?} vs {erased_at:?}"
        );
        assert_problem(&read(&gw, "RS-MOI", &id).await, 410, "erased");
    }
}
