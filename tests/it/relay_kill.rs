//! Kills across gateways (SPEC §11 Reliability): both gateways run as real
//! `brdo serve` processes and one of them is SIGKILLed while messages are
//! on their way. Nothing may be lost and nothing stored twice: every
//! message reaches the peer's store, the recipient's inbox and the
//! origin's status exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{OFFICER, ProcFederation, ProcSide, message, text};

/// Submits `n` messages from AL-CTD on A at once; their ids.
async fn submit_many(a: &ProcSide, n: usize) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = a.partner("AL-CTD");
        tasks.spawn(async move {
            let r = client
                .post_json("/v1/messages", &[OFFICER], &message())
                .await
                .expect("submit");
            assert_eq!(r.status, 201, "{}", text(&r.body));
            r.json()["id"].as_str().expect("id").to_owned()
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        ids.push(id.expect("submit task"));
    }
    ids
}

/// Waits (up to `limit`) until `count(from)` on `side` is `want`.
async fn wait_count(side: &ProcSide, from: &str, want: i64, limit: Duration) {
    wait_for(side, from, |n| n == want, limit).await;
}

/// Waits (up to `limit`) until `count(from)` on `side` satisfies `ok`.
async fn wait_for(side: &ProcSide, from: &str, ok: impl Fn(i64) -> bool, limit: Duration) {
    let started = Instant::now();
    loop {
        let n = side.count(from).await;
        if ok(n) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{from}: {n}; log:\n{}",
            side.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message of `ids` is on B exactly once, readable in RS-MOI's inbox,
/// and A shows each relayed with nothing left in its outbox.
async fn assert_exactly_once(fed: &ProcFederation, ids: &[String]) {
    let n = i64::try_from(ids.len()).expect("n");
    let (a, b) = (&fed.a, &fed.b);
    wait_count(
        a,
        "deliveries WHERE recipient = 'RS-MOI' AND status = 'relayed'",
        n,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(a.count("relay_outbox").await, 0, "A's outbox is empty");
    assert_eq!(
        a.count("audit_log WHERE action = 'disclose' AND actor_role = 'system'")
            .await,
        n,
        "A disclosed each once"
    );
    assert_eq!(b.count("messages").await, n, "B stored each once");
    assert_eq!(b.count("deliveries").await, n, "one delivery each");
    assert_eq!(
        b.count("relay_receipts WHERE direction = 'issued'").await,
        n,
        "one receipt each"
    );
    assert_eq!(
        b.count(
            "audit_log WHERE action = 'collect' AND actor_role = 'gateway' \
             AND (details IS NULL OR details NOT LIKE '%\"replayed\":true%')"
        )
        .await,
        n,
        "B collected each once (a retry's answer is audited as replayed)"
    );
    for id in ids {
        assert_eq!(
            b.count(&format!("messages WHERE id = '{id}'")).await,
            1,
            "{id} on B"
        );
    }
    let inbox = b
        .partner("RS-MOI")
        .get("/v1/inbox?limit=500", &[OFFICER])
        .await
        .expect("inbox");
    assert_eq!(inbox.status, 200, "{}", text(&inbox.body));
    let listed: Vec<String> = inbox.json()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed.len(), ids.len(), "RS-MOI's inbox lists each once");
    let listed: HashSet<&String> = listed.iter().collect();
    assert!(ids.iter().all(|id| listed.contains(id)), "every id listed");
}

#[tokio::test]
async fn the_peer_killed_mid_relay_stores_every_message_exactly_once() {
    let mut fed = ProcFederation::create(|_, _| {}).await;
    fed.b.start().await;
    fed.a.start().await;
    const N: usize = 40;
    let ids = submit_many(&fed.a, N).await;
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), N);
    // SIGKILL B as soon as the relay has begun storing on it.
    let started = Instant::now();
    while fed.b.count("messages").await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the relay never began; A's log:\n{}",
            fed.a.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fed.b.kill().await;
    let at_kill = fed.b.count("messages").await;
    assert!(
        at_kill < i64::try_from(N).expect("n"),
        "B was killed after the relay was over ({at_kill})"
    );
    let waiting = fed.a.count("relay_outbox").await;
    assert!(waiting > 0, "A still holds rows for B");
    fed.b.start().await;
    assert_exactly_once(&fed, &ids).await;
    // Kill survivors read: a relayed message opens on B.
    let read = fed
        .b
        .partner("RS-MOI")
        .get(
            &format!("/v1/messages/{}", ids[0]),
            &[OFFICER, crate::harness::JUSTIFICATION],
        )
        .await
        .expect("read");
    assert_eq!(read.status, 200, "{}", text(&read.body));
    assert_eq!(read.json()["body"], Value::from("Details follow."));
}

#[tokio::test]
async fn the_origin_killed_mid_retry_relays_everything_exactly_once_later() {
    let mut fed = ProcFederation::create(|id, c| {
        if id == "AL-NCB" {
            c.federation.request_timeout_secs = 1;
        }
    })
    .await;
    fed.a.start().await;
    const N: usize = 12;
    let ids = submit_many(&fed.a, N).await;
    let n = i64::try_from(N).expect("n");
    assert_eq!(fed.a.count("relay_outbox").await, n);
    // B is down: wait until A has retried, then SIGKILL A mid-retry.
    wait_for(
        &fed.a,
        "relay_outbox WHERE attempts >= 3",
        |n| n >= 1,
        Duration::from_secs(30),
    )
    .await;
    fed.a.kill().await;
    assert_eq!(fed.a.count("relay_outbox").await, n, "nothing lost");
    assert_eq!(
        fed.a
            .count("deliveries WHERE recipient = 'RS-MOI' AND status = 'queued'")
            .await,
        n
    );
    fed.a.start().await;
    fed.b.start().await;
    assert_exactly_once(&fed, &ids).await;
}
