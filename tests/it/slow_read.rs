//! A client that asks for a large answer and stops reading it (a slow
//! read): the answer counts as a request in progress, so neither the idle
//! close nor a drain ended the connection, and one certificate could hold
//! its connection slots for ever. An answer that has no frame taken for
//! `idle_timeout_secs` is cut; one that keeps moving, however slowly, is
//! not.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// The idle limit of these tests' gateways.
const IDLE: Duration = Duration::from_secs(2);

/// A gateway with a short idle limit and a message to RS-MOI carrying an
/// attachment of `size` bytes: the gateway, and the download's path.
async fn download_setup(size: usize) -> (TestGateway, String) {
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| {
        c.server.idle_timeout_secs = IDLE.as_secs();
    })
    .await;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let r = upload(&gw, "AL-CTD", data, "application/pdf").await;
    assert_eq!(r.status, 201, "{}", text(&r.body));
    let att = r.json()["id"].as_str().expect("id").to_owned();
    let mut m = message();
    m["attachments"] = json!([att]);
    m["label"] = json!({"classification": "EU_RESTRICTED"});
    let id = send(&gw, "AL-CTD", &m).await;
    (gw, format!("/v1/messages/{id}/attachments/{att}"))
}

/// RS-MOI's TLS connection (HTTP/1.1 or HTTP/2 by ALPN) over a socket
/// whose receive buffer is `rcvbuf` bytes, so that an unread answer fills
/// it soon.
async fn connect_small(
    gw: &TestGateway,
    protocol: brdo_tools::client::Protocol,
    rcvbuf: u32,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(rcvbuf).expect("receive buffer");
    let tcp = sock.connect(gw.addr()).await.expect("tcp");
    tls_over(&gw.pki, "partner-RS-MOI", protocol, tcp).await
}

/// RS-MOI's download of `path` over HTTP/2 (a connection made by
/// `builder` on a socket of `rcvbuf` bytes), its answer begun: the client,
/// the connection's driver and the answer's body, its first frame taken and
/// no window released.
async fn h2_download_begun(
    gw: &TestGateway,
    path: &str,
    rcvbuf: u32,
    builder: h2::client::Builder,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
    h2::RecvStream,
) {
    let io = connect_small(gw, brdo_tools::client::Protocol::Http2, rcvbuf).await;
    let (h2c, conn) = builder.handshake(io).await.expect("h2 handshake");
    let driver = tokio::spawn(conn);
    let mut h2c = h2c.ready().await.expect("ready");
    let req = hyper::Request::get(format!("https://localhost{path}"))
        .header(OFFICER.0, OFFICER.1)
        .header(JUSTIFICATION.0, JUSTIFICATION.1)
        .body(())
        .expect("request");
    let (resp, _) = h2c.send_request(req, true).expect("send");
    let resp = resp.await.expect("answer head");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.data().await.expect("a first frame").expect("data");
    assert!(!first.is_empty());
    (h2c, driver, body)
}

fn get_head(path: &str) -> String {
    let (o, j) = (OFFICER, JUSTIFICATION);
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{}: {}\r\n{}: {}\r\n\r\n",
        o.0, o.1, j.0, j.1
    )
}

/// HTTP/1.1: the answer begins, the client stops reading; once it reads
/// again it finds the connection ended well short of the whole answer.
#[tokio::test]
async fn a_client_that_stops_reading_an_answer_is_cut_at_the_idle_limit() {
    let size = 24 * 1024 * 1024;
    let (gw, path) = download_setup(size).await;
    let mut s = connect_small(&gw, brdo_tools::client::Protocol::Http1, 64 * 1024).await;
    s.write_all(get_head(&path).as_bytes())
        .await
        .expect("request");
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).await.expect("the answer begins");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "an answer began");
    // Not reading: the socket fills, and the gateway can send no more.
    tokio::time::sleep(IDLE * 3).await;
    let mut got = n;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => got += k,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the connection ended ({got} bytes read, still open)"
    );
    assert!(
        got < size,
        "the stalled answer was cut, not sent whole ({got} of {size} bytes)"
    );
    // The gateway still serves the same partner afterwards.
    let inbox = gw.partner("RS-MOI").get("/v1/inbox", &[]).await;
    assert_eq!(inbox.map(|r| r.status).ok(), Some(200));
    gw.stop().await;
}

/// HTTP/2: a client that never opens its flow-control window leaves the
/// socket empty, not full; the answer is stalled all the same, and cut.
#[tokio::test]
async fn an_http2_client_that_keeps_its_window_shut_is_cut_at_the_idle_limit() {
    let size = 4 * 1024 * 1024;
    let (gw, path) = download_setup(size).await;
    let (_h2c, driver, _body) =
        h2_download_begun(&gw, &path, 256 * 1024, h2::client::Builder::new()).await;
    let ended = tokio::time::timeout(IDLE * 4, driver).await;
    assert!(
        ended.is_ok(),
        "the gateway ended the connection whose answer was stalled"
    );
    gw.stop().await;
}

/// A client that reads slowly but keeps reading (a pause shorter than the
/// idle limit between bursts) gets the whole answer, though the download
/// lasts longer than the idle limit.
#[tokio::test]
async fn a_slow_reader_that_keeps_reading_is_not_cut() {
    let size = 6 * 1024 * 1024;
    let (gw, path) = download_setup(size).await;
    let mut s = connect_small(&gw, brdo_tools::client::Protocol::Http1, 256 * 1024).await;
    let started = Instant::now();
    s.write_all(get_head(&path).as_bytes())
        .await
        .expect("request");
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    let outcome: Result<(), String> = async {
        while got < size {
            // A burst of at most 1 MiB, then a pause.
            let mut burst = 0usize;
            while burst < 1024 * 1024 {
                match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                    Err(_) => break,
                    Ok(Ok(0)) => return Err(format!("closed after {got} bytes")),
                    Ok(Ok(k)) => {
                        burst += k;
                        got += k;
                    }
                    Ok(Err(e)) => return Err(format!("{e} after {got} bytes")),
                }
            }
            tokio::time::sleep(IDLE * 3 / 5).await;
        }
        Ok(())
    }
    .await;
    assert_eq!(outcome, Ok(()), "the slow download arrived whole");
    assert!(
        started.elapsed() > IDLE,
        "the download outlasted the idle limit ({:?}), or it proved nothing",
        started.elapsed()
    );
    gw.stop().await;
}

// ---------------------------------------------------------------------
// Ways the first version of the stall cut failed (red team).
// ---------------------------------------------------------------------

/// The gateway's own accept loop (`brdo::tls::serve`, idle limit `IDLE`)
/// serving `app` on a local port, with the shared PKI's gateway
/// certificate: for answers whose pace the test decides. Returns the
/// address and the sender that stops it.
async fn accept_loop_serving(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let pki = &Pki::shared().dir;
    let defaults = brdo::config::Config::default();
    let tls_cfg = brdo::config::TlsConfig {
        cert: pki.join("gateway.crt"),
        key: pki.join("gateway.key"),
        client_ca: pki.join("ca.crt").into(),
        crl: pki.join("ca.crl"),
        ..defaults.tls.clone()
    };
    let material = brdo::tls::TlsMaterial::load(&tls_cfg, &brdo::tls::PolicyTrust::default())
        .expect("TLS material");
    let tls = std::sync::Arc::new(
        brdo::tls::TlsState::new(&material, tls_cfg.min_version).expect("TLS state"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let addr = listener.local_addr().expect("addr");
    let mut server = defaults.server.clone();
    server.idle_timeout_secs = IDLE.as_secs();
    let opts = brdo::tls::ServeOptions::from_config(&server);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(brdo::tls::serve(
        listener,
        tls,
        app,
        opts,
        std::sync::Arc::new(brdo::tls::Connections::default()),
        async {
            let _ = rx.await;
        },
    ));
    (addr, stop)
}

/// A streamed answer whose second part takes the server longer than the
/// idle limit to make (an audit export's next page on a large or busy
/// log, a slow blob store). The client reads eagerly the whole time: it
/// is the server, not the client, that has nothing to send. Such an
/// answer must not be taken for a slow read.
#[tokio::test]
async fn a_streamed_answer_the_server_is_slow_to_produce_is_not_cut() {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/slow",
        get(|| async {
            let parts = futures_util::stream::unfold(0u8, |i| async move {
                match i {
                    0 => Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"first\n")),
                        1,
                    )),
                    1 => {
                        tokio::time::sleep(IDLE * 2).await;
                        Some((Ok(bytes::Bytes::from_static(b"second\n")), 2))
                    }
                    _ => None,
                }
            });
            axum::body::Body::from_stream(parts)
        }),
    );
    let (addr, stop) = accept_loop_serving(app).await;
    let mut s = raw_tls(&Pki::shared().dir, "partner-RS-MOI", addr).await;
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(IDLE * 6, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
        }
    })
    .await;
    let got = text(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        got.contains("second"),
        "the answer arrived whole though the client read all along: {got:?}"
    );
    let _ = stop.send(());
}

/// HTTP/2: one stream's window kept shut (a download never read past its
/// first window) while the client sends a small request on the same
/// connection every half idle limit. Every new answer counts as progress
/// of "any answer", so the stalled download (its open file, its buffered
/// chunk, its stream slot) is held for as long as the client likes: the
/// slow read the change meant to end, with a cheap keep-alive beside it.
#[tokio::test]
async fn an_http2_stream_kept_shut_beside_small_requests_is_still_ended() {
    let size = 4 * 1024 * 1024;
    let (gw, path) = download_setup(size).await;
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(64 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024);
    let (h2c, driver, mut stalled) = h2_download_begun(&gw, &path, 1024 * 1024, builder).await;
    // Never released: the download's window stays shut.
    let started = Instant::now();
    let mut small = 0;
    let mut stalled_ended = false;
    while started.elapsed() < IDLE * 5 {
        tokio::time::sleep(IDLE / 2).await;
        let Ok(mut ready) = h2c.clone().ready().await else {
            stalled_ended = true;
            break;
        };
        let req = hyper::Request::get("https://localhost/v1/inbox")
            .body(())
            .expect("request");
        let Ok((resp, _)) = ready.send_request(req, true) else {
            stalled_ended = true;
            break;
        };
        let Ok(resp) = resp.await else {
            stalled_ended = true;
            break;
        };
        let mut body = resp.into_body();
        while let Some(Ok(d)) = body.data().await {
            let _ = body.flow_control().release_capacity(d.len());
        }
        small += 1;
        // Has the stalled stream been reset meanwhile?
        if let Ok(next) = tokio::time::timeout(Duration::from_millis(10), stalled.data()).await
            && !matches!(next, Some(Ok(_)))
        {
            stalled_ended = true;
            break;
        }
    }
    assert!(
        stalled_ended || driver.is_finished(),
        "the download whose window stayed shut for {:?} (5 idle limits) was still open \
         ({small} small requests beside it kept the connection 'progressing')",
        started.elapsed()
    );
    gw.stop().await;
}

// ---------------------------------------------------------------------
// Second look (red team).
// ---------------------------------------------------------------------

/// HTTP/2: an answer made of one large frame (an axum `Json`, `Vec<u8>`
/// or `Bytes` body: a message, a listing, a blob read whole) is taken by
/// hyper in a single poll whatever the stream's window, handed to h2's
/// send buffer, and its body ends. From then on no `Sending` entry is left
/// to time it: a client that keeps that stream's window shut, and sends a
/// small request every half idle limit on the same connection, holds the
/// whole answer in the gateway's memory (up to 128 streams of it per
/// connection) for as long as it likes.
#[tokio::test]
async fn an_http2_answer_taken_whole_but_never_read_is_still_ended() {
    use axum::routing::get;
    const BIG: usize = 4 * 1024 * 1024;
    let app = axum::Router::new()
        .route("/big", get(|| async { vec![7u8; BIG] }))
        .route("/small", get(|| async { "ok" }));
    let (addr, stop) = accept_loop_serving(app).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let io = tls_over(
        &Pki::shared().dir,
        "partner-RS-MOI",
        brdo_tools::client::Protocol::Http2,
        tcp,
    )
    .await;
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(64 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024);
    let (h2c, conn) = builder
        .handshake::<_, bytes::Bytes>(io)
        .await
        .expect("h2 handshake");
    let driver = tokio::spawn(conn);
    let mut ready = h2c.clone().ready().await.expect("ready");
    let req = hyper::Request::get("https://localhost/big")
        .body(())
        .expect("request");
    let (resp, _) = ready.send_request(req, true).expect("send");
    let resp = resp.await.expect("answer head");
    assert_eq!(resp.status(), 200);
    let mut stalled = resp.into_body();
    let first = stalled.data().await.expect("a first frame").expect("data");
    assert!(!first.is_empty());
    // Never released: the big answer's window stays shut.
    let started = Instant::now();
    let mut small = 0;
    let mut stalled_ended = false;
    while started.elapsed() < IDLE * 5 {
        tokio::time::sleep(IDLE / 2).await;
        let Ok(mut ready) = h2c.clone().ready().await else {
            stalled_ended = true;
            break;
        };
        let req = hyper::Request::get("https://localhost/small")
            .body(())
            .expect("request");
        let Ok((resp, _)) = ready.send_request(req, true) else {
            stalled_ended = true;
            break;
        };
        let Ok(resp) = resp.await else {
            stalled_ended = true;
            break;
        };
        let mut body = resp.into_body();
        while let Some(Ok(d)) = body.data().await {
            let _ = body.flow_control().release_capacity(d.len());
        }
        small += 1;
        if let Ok(next) = tokio::time::timeout(Duration::from_millis(10), stalled.data()).await
            && !matches!(next, Some(Ok(_)))
        {
            stalled_ended = true;
            break;
        }
    }
    assert!(
        stalled_ended || driver.is_finished(),
        "the {BIG}-byte answer whose window stayed shut for {:?} (5 idle limits) was still \
         held ({small} small requests beside it)",
        started.elapsed()
    );
    let _ = stop.send(());
}
