//! The member order of every answer the refactor of issue 17 moved from a
//! `json!` literal in a handler to a typed outcome in `app::ops`.
//!
//! serde_json keeps document order in this build (josekit switches on its
//! `preserve_order` feature), so the order of a struct's fields is now
//! the order partners receive, and store for an idempotent replay. Each
//! list below is the order of the literal before the refactor (c5a08a8);
//! reordering a field of an outcome must not pass unnoticed. The order is
//! read with a visitor of our own, so this test does not depend on which
//! serde_json features are on.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::harness::*;

/// A JSON document with its members in the order they were sent.
enum Node {
    Obj(Vec<(String, Node)>),
    Arr(Vec<Node>),
    Leaf,
}

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = a.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Node::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((k, n)) = a.next_entry::<String, Node>()? {
            members.push((k, n));
        }
        Ok(Node::Obj(members))
    }
}

impl Node {
    fn parse(body: &[u8]) -> Node {
        serde_json::from_slice(body).expect("a JSON answer")
    }

    /// The member names, in order.
    fn keys(&self) -> Vec<&str> {
        match self {
            Node::Obj(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object"),
        }
    }

    fn member(&self, key: &str) -> &Node {
        match self {
            Node::Obj(m) => m
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, n)| n)
                .expect("member"),
            _ => panic!("not an object"),
        }
    }

    fn first(&self) -> &Node {
        match self {
            Node::Arr(items) => items.first().expect("an item"),
            _ => panic!("not an array"),
        }
    }
}

/// Asserts `status` and the top-level member order of an answer; returns it.
fn order(r: &brdo_tools::client::ClientResponse, status: u16, keys: &[&str]) -> Node {
    assert_eq!(r.status, status, "{}", text(&r.body));
    let n = Node::parse(&r.body);
    assert_eq!(n.keys(), keys, "{}", text(&r.body));
    n
}

const QUEUED: &[&str] = &["partner", "status"];

#[tokio::test]
async fn answers_keep_their_member_order() {
    let gw = TestGateway::start().await;
    let albania = gw.partner("AL-CTD");
    let up = upload(&gw, "AL-CTD", b"scan".to_vec(), "application/pdf").await;
    order(&up, 201, &["id", "sha256", "size"]);
    let att_id = up.json()["id"].as_str().expect("id").to_owned();

    let mut m = message();
    m["recipients"] = json!(["RS-MOI"]);
    m["label"] = json!({"classification": "EU_RESTRICTED", "handling_codes": ["H1"]});
    m["attachments"] = json!([att_id]);
    let accepted = &[
        "id",
        "accepted_at",
        "retain_until",
        "review_on",
        "recipients",
    ];
    let key = ("idempotency-key", "wire-order-1");
    let first = albania
        .post_json("/v1/messages", &[OFFICER, key], &m)
        .await
        .expect("submit");
    let n = order(&first, 201, accepted);
    assert_eq!(n.member("recipients").first().keys(), QUEUED);
    // The replay answers with the stored text of the first answer.
    let again = albania
        .post_json("/v1/messages", &[OFFICER, key], &m)
        .await
        .expect("replay");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    order(&again, 201, accepted);
    let id = first.json()["id"].as_str().expect("id").to_owned();

    let serbia = gw.partner("RS-MOI");
    let inbox = serbia.get("/v1/inbox", &[]).await.expect("inbox");
    let n = order(&inbox, 200, &["messages", "next"]);
    assert_eq!(
        n.member("messages").first().keys(),
        [
            "id",
            "from",
            "subject",
            "label",
            "marking",
            "purpose",
            "case_ref",
            "received_at",
            "status"
        ]
    );
    let ack = post(&gw, "RS-MOI", &format!("/v1/messages/{id}/ack"), &json!({})).await;
    order(&ack, 200, &["id", "partner", "status", "updated_at"]);
    let status = albania
        .get(&format!("/v1/messages/{id}/status"), &[])
        .await
        .expect("status");
    let n = order(&status, 200, &["id", "recipients"]);
    assert_eq!(
        n.member("recipients").first().keys(),
        ["partner", "status", "updated_at"]
    );

    lifecycle_answers(&gw, &id).await;
    gw.stop().await;
}

/// Permissions, judicial use, forward, label, hold, due and review.
async fn lifecycle_answers(gw: &TestGateway, id: &str) {
    let grant = post(
        gw,
        "AL-CTD",
        &format!("/v1/messages/{id}/permissions"),
        &json!({"partner": "RS-MOI", "scope": "judicial_use"}),
    )
    .await;
    order(&grant, 201, &["id", "partner", "scope", "granted_at"]);
    let used = post(
        gw,
        "RS-MOI",
        &format!("/v1/messages/{id}/judicial-use"),
        &json!({"reference": "Special Court Belgrade K.Po1 12/26"}),
    )
    .await;
    order(&used, 201, &["id", "partner", "recorded_at", "reference"]);
    let fwd = post(
        gw,
        "RS-MOI",
        &format!("/v1/messages/{id}/forward"),
        &json!({"recipients": ["ME-MOI"], "justification": "Joint investigation team request"}),
    )
    .await;
    let n = order(
        &fwd,
        201,
        &[
            "id",
            "forwarded_from",
            "originator",
            "accepted_at",
            "retain_until",
            "review_on",
            "recipients",
        ],
    );
    assert_eq!(n.member("recipients").first().keys(), QUEUED);
    let raised = post(
        gw,
        "AL-CTD",
        &format!("/v1/messages/{id}/label"),
        &json!({"classification": "EU_RESTRICTED", "handling_codes": ["H1", "H2"]}),
    )
    .await;
    order(&raised, 200, &["id", "label", "marking"]);
    hold_due_and_review(gw, id).await;
}

async fn hold_due_and_review(gw: &TestGateway, id: &str) {
    let hold = format!("/v1/messages/{id}/hold");
    let held = post(gw, "AL-CTD", &hold, &json!({"reason": "Court order 12/26"})).await;
    order(&held, 200, &["id", "held", "reason"]);
    let lifted = gw
        .partner("AL-CTD")
        .request(
            hyper::Method::DELETE,
            &hold,
            &[OFFICER, ("content-type", "application/json")],
            None,
        )
        .await
        .expect("lift");
    order(&lifted, 200, &["id", "held", "reason"]);
    let due = gw
        .partner("AL-CTD")
        .get("/v1/retention/due?within_days=3650", &[])
        .await
        .expect("due");
    let n = order(&due, 200, &["within_days", "messages"]);
    assert_eq!(
        n.member("messages").first().keys(),
        [
            "id",
            "case_ref",
            "label",
            "accepted_at",
            "review_on",
            "retain_until",
            "held",
            "forwarded_from"
        ]
    );
    let review = format!("/v1/messages/{id}/review");
    let keep: Value = json!({"decision": "keep", "reason": "Still needed for the case"});
    let kept = post(gw, "AL-CTD", &review, &keep).await;
    order(&kept, 200, &["id", "decision", "retain_until", "review_on"]);
    let erase = json!({"decision": "erase", "reason": "No longer needed"});
    let erased = post(gw, "AL-CTD", &review, &erase).await;
    order(&erased, 200, &["id", "decision", "erased"]);
}
