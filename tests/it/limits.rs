//! Resource limits (issue 6): sizes, slow clients, connection floods, the
//! per-identity rate limit and bounded long polls. A partner system may be
//! compromised; none of this may crash, starve or stall the gateway.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// Reads until the server closes the stream (EOF or a reset); returns
/// whether it did within `limit`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(s: &mut S, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn oversize_headers_and_bodies_are_refused_and_nothing_is_stored() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.max_body_bytes = 4096;
        c.server.max_header_bytes = 16 * 1024;
    })
    .await;
    // A request head beyond max_header_bytes never reaches the router.
    let big = "x".repeat(20 * 1024);
    let r = gw
        .partner("AL-CTD")
        .get("/v1/inbox", &[("x-padding", big.as_str())])
        .await
        .expect("answered");
    assert_eq!(r.status, 431, "{}", text(&r.body));
    // Over HTTP/2 the header list limit applies the same way.
    let h2 = gw.partner_h2("AL-CTD");
    let r = h2
        .get("/v1/inbox", &[("x-padding", big.as_str())])
        .await
        .expect("answered over HTTP/2");
    assert_eq!(r.status, 431, "{}", text(&r.body));
    // The configured body limit: 413, audited, nothing stored.
    let mut m = message();
    m["body"] = json!("b".repeat(8192));
    let r = submit(&gw, "AL-CTD", &m).await;
    assert_problem(&r, 413, "payload_too_large");
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["code"], "payload_too_large");
    assert_eq!(gw.count("messages").await, 0);
    // Within the limits the same client is served.
    submit_ok(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn slow_clients_are_dropped_while_others_are_served() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.handshake_timeout_secs = 1;
        c.server.header_read_timeout_secs = 1;
    })
    .await;
    // 1. A client that stalls in the middle of its ClientHello.
    let mut stalled = TcpStream::connect(gw.addr()).await.expect("tcp");
    stalled
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .await
        .expect("partial hello");
    // 2. A slowloris: a valid certificate, then request headers one byte
    // every 100 ms, for ever.
    let mut slow = raw_tls(&gw.pki, "partner-AL-CTD", gw.addr()).await;
    let started = Instant::now();
    let head = b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".to_vec();
    let dripper = async {
        for b in head.iter().chain(std::iter::repeat(&b'a')) {
            if slow.write_all(&[*b]).await.is_err() || slow.flush().await.is_err() {
                break;
            }
            if started.elapsed() > Duration::from_secs(8) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    };
    // Meanwhile a real client is served, more than once.
    let served = async {
        for _ in 0..3 {
            submit_ok(&gw).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (dripped_for, ()) = tokio::join!(dripper, served);
    assert!(
        dripped_for < Duration::from_secs(5),
        "the slowloris was cut off after {dripped_for:?} (header timeout 1 s)"
    );
    assert!(
        closed_within(&mut stalled, Duration::from_secs(4)).await,
        "the half-finished handshake was dropped"
    );
    submit_ok(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn three_hundred_idle_connections_do_not_keep_a_client_from_its_201() {
    let gw = TestGateway::start().await;
    let mut idle = Vec::with_capacity(300);
    for _ in 0..300 {
        idle.push(TcpStream::connect(gw.addr()).await.expect("idle tcp"));
    }
    // Let the gateway accept them all before the real client comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = submit(&gw, "AL-CTD", &message()).await;
    let took = started.elapsed();
    assert_eq!(r.status, 201, "{}", text(&r.body));
    assert!(
        took < Duration::from_secs(1),
        "a fresh mTLS client got its 201 in {took:?} beside 300 idle connections"
    );
    // The idle ones are still held open (not an artefact of them closing).
    let mut buf = [0u8; 1];
    let still_open = tokio::time::timeout(Duration::from_millis(50), idle[0].read(&mut buf))
        .await
        .is_err();
    assert!(
        still_open,
        "idle connections stay until their handshake timeout"
    );
    drop(idle);
    gw.stop().await;
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_and_is_audited() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.rate_limit_per_second = 1;
        c.server.rate_limit_burst = 3;
    })
    .await;
    // The burst of 3 goes through (a slow machine may refill a token or
    // two meanwhile), then the bucket is empty.
    let mut served = 0;
    let r = loop {
        let r = submit(&gw, "AL-CTD", &message()).await;
        if r.status != 201 {
            break r;
        }
        served += 1;
        assert!(served <= 10, "the limit never applied");
    };
    assert!(served >= 3, "the burst of 3 was served, not {served}");
    let p = assert_problem(&r, 429, "rate_limited");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("retry")),
        "{p}"
    );
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Refused like any other refusal: audited as a denial, nothing stored.
    let rec = gw.audit_of(&r).await;
    assert_eq!(rec["action"], "deny");
    assert_eq!(rec["outcome"], "denied");
    assert_eq!(rec["code"], "rate_limited");
    assert_eq!(rec["actor"]["id"], "AL-CTD");
    assert_eq!(rec["details"]["attempted"], "collect");
    assert_eq!(gw.count("messages").await, served);
    // Another partner has a bucket of its own.
    assert_eq!(
        gw.partner("RS-MOI")
            .get("/v1/inbox", &[])
            .await
            .expect("inbox")
            .status,
        200
    );
    // After Retry-After the partner is served again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    submit_ok(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn long_poll_waits_are_bounded() {
    let gw = TestGateway::start().await;
    let rs = gw.partner("RS-MOI");
    for wait in ["61", "3600", "18446744073709551616", "-1"] {
        let r = rs
            .get(&format!("/v1/inbox?wait={wait}"), &[])
            .await
            .expect("inbox");
        let p = assert_problem(&r, 400, "invalid_request");
        assert_eq!(p["errors"][0]["field"], "wait", "{p}");
    }
    // wait=1 on an empty inbox answers after about a second, empty.
    let started = Instant::now();
    let r = rs.get("/v1/inbox?wait=1", &[]).await.expect("inbox");
    let took = started.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["messages"], json!([]));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A long poll in progress when the gateway stops answers at once
    // instead of holding the shutdown for its whole wait.
    let poll = tokio::spawn({
        let rs = gw.partner("RS-MOI");
        async move {
            let started = Instant::now();
            let r = rs.get("/v1/inbox?wait=60", &[]).await;
            (r.map(|r| r.status), started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    gw.stop().await;
    let stopped_in = stopping.elapsed();
    let (status, took) = poll.await.expect("poll task");
    assert_eq!(status.expect("answered"), 200);
    assert!(
        took < Duration::from_secs(10),
        "the long poll ended after {took:?}"
    );
    assert!(
        stopped_in < Duration::from_secs(10),
        "stop took {stopped_in:?}"
    );
}
