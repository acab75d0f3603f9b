//! The connection timers of the accept loop (red team of the change that
//! moved the request-head deadline out of hyper): a head is timed from its
//! first byte whatever the TLS handshake negotiated, and a response still
//! being sent is a request in progress.

use std::time::{Duration, Instant};

use brdo_tools::client::Protocol;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// A raw TLS client of `stem` that offers only `protocol` by ALPN.
async fn raw_tls_alpn(
    gw: &TestGateway,
    stem: &str,
    protocol: Protocol,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(gw.addr())
        .await
        .expect("tcp");
    tls_over(&gw.pki, stem, protocol, tcp).await
}

/// Drips `head` and then `a`s one byte every 100 ms while watching for the
/// server to close; returns how long the drip went on (at most `cap`).
async fn drip_until_closed<S>(s: S, head: &[u8], cap: Duration) -> Duration
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let started = Instant::now();
    let (mut rd, mut wr) = tokio::io::split(s);
    let closed = async {
        let mut buf = [0u8; 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let drip = async {
        for b in head.iter().chain(std::iter::repeat(&b'a')) {
            if wr.write_all(&[*b]).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            if started.elapsed() > cap {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        () = closed => {}
        () = drip => {}
    }
    started.elapsed()
}

/// hyper-util's auto builder picks HTTP/1.1 or HTTP/2 from the first bytes,
/// not from ALPN: a client that negotiates `h2` and then speaks HTTP/1.1 is
/// served HTTP/1.1. Its head must be timed like any other; the ALPN check
/// let it drip a head for ever (hyper's own header timer is off, and the
/// idle close is a graceful one that waits for the request being read).
#[tokio::test]
async fn an_http1_head_sent_after_alpn_h2_is_still_timed() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.header_read_timeout_secs = 1;
        c.server.idle_timeout_secs = 2;
    })
    .await;
    // Served as HTTP/1.1 despite ALPN h2.
    let mut s = raw_tls_alpn(&gw, "partner-AL-CTD", Protocol::Http2).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    s.write_all(b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.expect("answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    // A slowloris on a fresh such connection.
    let s = raw_tls_alpn(&gw, "partner-AL-CTD", Protocol::Http2).await;
    let dripped = drip_until_closed(
        s,
        b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        dripped < Duration::from_secs(5),
        "a head dripped after ALPN h2 was cut off after {dripped:?} (header timeout 1 s)"
    );
    gw.stop().await;
}

/// A request pipelined while a long answer is still being sent waits in
/// hyper's buffer until that answer is done: it is no head that is late.
/// The request counted as in progress only until its handler returned the
/// response head, so the pipelined bytes started the head deadline and a
/// download slower than `header_read_timeout_secs` was cut mid-way.
#[tokio::test]
async fn a_request_pipelined_behind_a_slow_download_does_not_cut_it() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.header_read_timeout_secs = 1;
        c.server.idle_timeout_secs = 60;
    })
    .await;
    let size = 12 * 1024 * 1024;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let r = upload(&gw, "AL-CTD", data, "application/pdf").await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let att = r.json()["id"].as_str().expect("id").to_owned();
    let mut m = message();
    m["attachments"] = json!([att]);
    m["label"] = json!({"classification": "EU_RESTRICTED"});
    let id = send(&gw, "AL-CTD", &m).await;

    let mut s = raw_tls(&gw.pki, "partner-RS-MOI", gw.addr()).await;
    let (o, j) = (OFFICER, JUSTIFICATION);
    let download = format!(
        "GET /v1/messages/{id}/attachments/{att} HTTP/1.1\r\nHost: localhost\r\n{}: {}\r\n{}: {}\r\n\r\n",
        o.0, o.1, j.0, j.1
    );
    s.write_all(download.as_bytes()).await.expect("download");
    // The answer begins; then the next request goes out behind it.
    let mut got = vec![0u8; 64 * 1024];
    let n = s.read(&mut got).await.expect("answer begins");
    got.truncate(n);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got[..n.min(200)])
    );
    s.write_all(b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("pipelined request");
    // A slow reader: the download takes longer than the header timeout.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut buf = vec![0u8; 256 * 1024];
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if got.len() > size
                && got[size..].windows(12).any(|w| w == b"HTTP/1.1 200")
                && got.ends_with(b"\r\n\r\n") | got.ends_with(b"}") | got.ends_with(b"]")
            {
                return Ok(());
            }
            match s.read(&mut buf).await {
                Ok(0) => return Err(format!("closed after {} bytes", got.len())),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("{e} after {} bytes", got.len())),
            }
        }
    })
    .await;
    assert!(
        matches!(outcome, Ok(Ok(()))),
        "the download and the pipelined answer arrive whole: {outcome:?} ({size} byte attachment)"
    );
    gw.stop().await;
}

/// An HTTP/2 connection has no heads to time: its preface, settings and
/// pings between requests never start the head deadline, by ALPN or
/// without it.
#[tokio::test]
async fn http2_between_requests_outlives_the_header_timeout() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.header_read_timeout_secs = 1;
        c.server.idle_timeout_secs = 10;
    })
    .await;
    for protocol in [Protocol::Http2, Protocol::Http1] {
        // Prior knowledge over ALPN http/1.1 is HTTP/2 all the same.
        let tls = raw_tls_alpn(&gw, "partner-AL-CTD", protocol).await;
        let (mut send, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(Duration::from_millis(300))
                .keep_alive_while_idle(true)
                .handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        let conn = tokio::spawn(conn);
        for round in 0..2 {
            let req =
                hyper::Request::get(format!("https://localhost:{}/v1/inbox", gw.addr().port()))
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .expect("request");
            let r = send
                .send_request(req)
                .await
                .unwrap_or_else(|e| panic!("{protocol:?} round {round}: {e}"));
            assert_eq!(r.status(), 200, "{protocol:?} round {round}");
            // Pings for longer than the header timeout.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        assert!(!conn.is_finished(), "{protocol:?}: the connection is open");
        conn.abort();
    }
    gw.stop().await;
}

/// A connection that never sends a byte after its handshake (a client's
/// spare, opened ahead of need) is idle like any other, and its idle close
/// is the same orderly one: TLS `close_notify`, not a truncation its
/// client would report as an error.
#[tokio::test]
async fn an_unused_connection_is_closed_in_order_when_idle() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.idle_timeout_secs = 1;
        c.server.header_read_timeout_secs = 30;
    })
    .await;
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let mut s = raw_tls_alpn(&gw, "partner-AL-CTD", protocol).await;
        let end = read_until_closed(&mut s, Duration::from_secs(10)).await;
        assert!(
            end.is_ok(),
            "{protocol:?}: an unused connection ends with close_notify, not {end:?}"
        );
    }
    gw.stop().await;
}

/// An HTTP/2 connection that sends its preface and then nothing (no
/// SETTINGS, no request, no answer to pings) is idle, and closed soon after
/// the idle timeout: the orderly close (GOAWAY) waits for the ping it sends
/// to be answered, so it was held until the keep-alive ping went
/// unanswered (30 s + `keep_alive_timeout_secs`), whatever the idle limit.
#[tokio::test]
async fn an_http2_preface_and_then_silence_is_closed_when_idle() {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.idle_timeout_secs = 1;
        c.server.header_read_timeout_secs = 2;
    })
    .await;
    let mut s = raw_tls_alpn(&gw, "partner-AL-CTD", Protocol::Http2).await;
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok() && started.elapsed() < Duration::from_secs(6),
        "a silent HTTP/2 connection is closed within idle + header timeout, not after {:?}",
        started.elapsed()
    );
    gw.stop().await;
}
