//! What the federation tests share: statuses as the originator sees them,
//! waiting for one, the peers as the operator sees them, row counts, and a
//! third peer in B's policy, an erasure on A and the notices it queues.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{OFFICER, TestGateway, peer_table, text};

/// The status entry of `recipient` for message `id`, as `sender` sees it.
pub async fn status_as(gw: &TestGateway, sender: &str, id: &str, recipient: &str) -> Value {
    let r = gw
        .partner(sender)
        .get(&format!("/v1/messages/{id}/status"), &[])
        .await
        .expect("status");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    r.json()["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .find(|e| e["partner"] == recipient)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The status entry of `recipient` for message `id`, as AL-CTD sees it on A.
pub async fn status_of(a: &TestGateway, id: &str, recipient: &str) -> Value {
    status_as(a, "AL-CTD", id, recipient).await
}

/// Waits (up to 20 s) until `recipient`'s status is `want`; returns the entry.
pub async fn wait_status(a: &TestGateway, id: &str, recipient: &str, want: &str) -> Value {
    let started = Instant::now();
    loop {
        let s = status_of(a, id, recipient).await;
        if s["status"] == want {
            return s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let p = peers(a).await;
            panic!("{recipient} of {id} is still {s} (wanted {want}); peer: {p}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first peer as the gateway's operator sees it.
pub async fn peers(gw: &TestGateway) -> Value {
    let r = gw
        .client("operator-admin")
        .get("/v1/admin/peers", &[])
        .await
        .expect("peers");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    r.json()["peers"][0].clone()
}

/// Rows of `table` on `gw` matching `filter` (SQL after WHERE).
pub async fn rows(gw: &TestGateway, table: &str, filter: &str) -> i64 {
    gw.count(&format!("{table} WHERE {filter}")).await
}

/// B's policy with a third peer, XK-NCB, fronting XK-CTD (it never runs);
/// A's policy unchanged.
pub fn with_third_peer(id: &str, policy: String) -> String {
    if id != "RS-NCB" {
        return policy;
    }
    behind_third_peer(&policy, "XK-CTD")
}

/// A policy in which `partner`, behind A (`AL-NCB`), moves behind a third
/// peer, XK-NCB (the shared test PKI's files; it never runs).
pub fn behind_third_peer(policy: &str, partner: &str) -> String {
    let mut policy = policy.replace(
        &format!("id = \"{partner}\"\nvia = \"AL-NCB\"\n"),
        &format!("id = \"{partner}\"\nvia = \"XK-NCB\"\n"),
    );
    policy.push('\n');
    let other = &crate::harness::Pki::shared().dir;
    policy.push_str(&peer_table(
        "XK-NCB",
        1,
        &other.join("ca.crt"),
        &other.join("envelope-signing.pub"),
    ));
    policy
}

/// AL-CTD erases the family of `id` on A (a review `erase`).
pub async fn erase_on_a(a: &TestGateway, id: &str) {
    let r = a
        .partner("AL-CTD")
        .post_json(
            &format!("/v1/messages/{id}/review"),
            &[OFFICER],
            &json!({"decision": "erase", "reason": "No longer needed"}),
        )
        .await
        .expect("erase");
    assert_eq!(r.status, 200, "{}", text(&r.body));
}

/// Notices about `id` waiting on A for B (`RS-NCB`).
pub async fn notices_to_b(a: &TestGateway, id: &str) -> i64 {
    rows(
        a,
        "relay_outbox",
        &format!("message_id = '{id}' AND kind = 'notice' AND peer = 'RS-NCB'"),
    )
    .await
}

/// Posts `doc` to `path` with `client` (a gateway's client to a peer),
/// as the federation tests send hand-made documents and notices.
pub async fn post_doc(
    client: &brdo_tools::client::Client,
    path: &str,
    doc: Value,
) -> brdo_tools::client::ClientResponse {
    client.post_json(path, &[], &doc).await.expect("post")
}
