//! Crash safety (issue 6): a real `brdo serve` process killed with SIGKILL
//! under load loses nothing it answered `201` for and leaves nothing
//! half-written; SIGTERM lets in-flight requests finish, then exits 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brdo_tools::client::Client;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// Config file, PKI and the files of a stopped test gateway, for a process
/// to run on.
async fn prepared() -> (std::path::PathBuf, std::path::PathBuf, Files) {
    let gw = TestGateway::start().await;
    let config = write_config(&gw);
    let pki = gw.pki.clone();
    let files = gw.stop().await;
    (config, pki, files)
}

/// Every id in `partner`'s inbox, paging to the end.
async fn inbox_ids(client: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let r = client
            .get(&format!("/v1/inbox?after={after}&limit=500"), &[])
            .await
            .expect("inbox");
        assert_eq!(r.status, 200, "{}", text(&r.body));
        let page = r.json();
        let messages = page["messages"].as_array().expect("messages").clone();
        if messages.is_empty() {
            return ids;
        }
        ids.extend(
            messages
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_owned()),
        );
        after = page["next"].as_str().expect("next").to_owned();
    }
}

fn audit_verify(config: &std::path::Path) -> std::process::Output {
    brdo(&[
        "audit",
        "verify",
        "--config",
        config.to_str().expect("utf8"),
    ])
}

#[tokio::test]
async fn sigkill_under_load_loses_no_accepted_message_and_the_log_verifies() {
    let (config, pki, _files) = prepared().await;
    let server = ServeProcess::start(&config, &pki, &[]).await;
    let accepted = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..4 {
        let client = Client::from_pki(&pki, "partner-AL-CTD", server.addr).expect("client");
        let (accepted, ok) = (accepted.clone(), ok.clone());
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let subject = format!("crash test {c}-{n}");
                let mut m = message();
                m["subject"] = json!(subject);
                m["body"] = json!(format!("body of {subject}, complete"));
                match client.post_json("/v1/messages", &[OFFICER], &m).await {
                    Ok(r) if r.status == 201 => {
                        let id = r.json()["id"].as_str().expect("id").to_owned();
                        accepted.lock().expect("lock").push((id, subject.clone()));
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => panic!("unexpected {}: {}", r.status, text(&r.body)),
                    // The gateway died under us.
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill it in the middle of the load, once some messages got through.
    let started = Instant::now();
    while ok.load(Ordering::SeqCst) < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no load got through"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut server = server;
    server.signal("KILL");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), None, "killed by a signal, not exited");
    for c in clients {
        c.await.expect("client task");
    }
    let accepted = accepted.lock().expect("lock").clone();
    assert!(accepted.len() >= 40);

    // The files as the crash left them verify.
    let out = audit_verify(&config);
    assert!(
        out.status.success(),
        "audit verify after SIGKILL: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Restarted on the same files: every 201 is there, whole.
    let mut server = ServeProcess::start(&config, &pki, &[]).await;
    let rs = Client::from_pki(&pki, "partner-RS-MOI", server.addr).expect("client");
    for (id, subject) in &accepted {
        let r = rs
            .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
            .await
            .expect("read");
        assert_eq!(r.status, 200, "accepted message {id}: {}", text(&r.body));
        let m = r.json();
        assert_eq!(m["subject"], json!(subject));
        assert_eq!(m["body"], json!(format!("body of {subject}, complete")));
    }
    // Nothing half-written: whatever the inbox lists reads completely,
    // including a message committed whose 201 the crash swallowed.
    let listed = inbox_ids(&rs).await;
    assert!(listed.len() >= accepted.len(), "{} listed", listed.len());
    for id in &listed {
        let r = rs
            .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
            .await
            .expect("read");
        assert_eq!(r.status, 200, "listed message {id}: {}", text(&r.body));
        let m = r.json();
        let subject = m["subject"].as_str().expect("subject");
        assert!(subject.starts_with("crash test "), "{subject}");
        assert_eq!(m["body"], json!(format!("body of {subject}, complete")));
        assert_eq!(m["label"]["classification"], "EU_RESTRICTED");
        assert_eq!(m["recipients"], json!(["EU-ECTC", "RS-MOI"]));
    }
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0));
    let out = audit_verify(&config);
    assert!(
        out.status.success(),
        "audit verify after the restart: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    let (config, pki, _files) = prepared().await;
    let mut server = ServeProcess::start(&config, &pki, &[]).await;
    let addr = server.addr;

    // A long poll that would wait a minute ...
    let rs = Client::from_pki(&pki, "partner-RS-MOI", addr).expect("client");
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let r = rs.get("/v1/inbox?wait=60", &[]).await;
        (r.map(|r| r.status), started.elapsed())
    });
    // ... and a slow upload, its body still arriving after the signal.
    let size = 256 * 1024;
    let mut upload = raw_tls(&pki, "partner-AL-CTD", addr).await;
    upload
        .write_all(
            format!(
                "POST /v1/attachments HTTP/1.1\r\nHost: localhost\r\nBrdo-Officer: insp.hoxha\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("head");
    let chunk = vec![7u8; size / 8];
    upload.write_all(&chunk).await.expect("first chunk");
    upload.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    server.signal("TERM");
    // The rest of the upload trickles in over the next ~1.4 s.
    for _ in 1..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        upload.write_all(&chunk).await.expect("later chunk");
        upload.flush().await.expect("flush");
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), upload.read(&mut buf))
            .await
            .expect("upload answered within 10 s")
            .expect("read");
        assert!(n > 0, "connection closed before the upload was answered");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = text(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the in-flight upload completes: {answer}"
    );

    let (status, took) = poll.await.expect("poll task");
    assert_eq!(status.expect("the long poll is answered"), 200);
    assert!(
        took < Duration::from_secs(15),
        "the long poll ended {took:?} after it began, not after its 60 s wait"
    );
    let exit = server.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(exit.code(), Some(0), "exit status after SIGTERM");
    let drained_in = signalled.elapsed();
    assert!(drained_in < Duration::from_secs(15), "{drained_in:?}");
    // Stopped means stopped: no new connection is accepted.
    let fresh = Client::from_pki(&pki, "partner-AL-CTD", addr).expect("client");
    assert!(fresh.get("/v1/inbox", &[]).await.is_err());
}
