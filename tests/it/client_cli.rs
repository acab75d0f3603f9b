//! `brdo client`: the real binary against a harness gateway, through a
//! full send → inbox → read → ack → status round, plus forward and the
//! problem document on stderr.

use std::process::Output;

use serde_json::Value;

use crate::harness::{TestGateway, message, text};

/// Runs `brdo client --pki … --as PARTNER --gateway … ARGS` off the
/// runtime (the gateway serves on it meanwhile).
async fn client(gw: &TestGateway, partner: &str, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec![
        "client".into(),
        "--pki".into(),
        gw.pki.display().to_string(),
        "--as".into(),
        partner.into(),
        "--gateway".into(),
        format!("localhost:{}", gw.addr().port()),
        "--officer".into(),
        "insp.cli".into(),
    ];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_brdo"))
            .args(&all)
            .output()
            .expect("run brdo client")
    })
    .await
    .expect("join")
}

fn json_out(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[tokio::test]
async fn full_round_and_forward() {
    let gw = TestGateway::start().await;
    let file = gw.data.join("message.json");
    std::fs::write(&file, message().to_string()).expect("write message");
    let sent = json_out(
        &client(
            &gw,
            "AL-CTD",
            &["send", "--message", file.to_str().expect("utf8")],
        )
        .await,
    );
    let id = sent["id"].as_str().expect("id").to_owned();

    let inbox = json_out(&client(&gw, "RS-MOI", &["inbox", "--wait", "1"]).await);
    assert!(
        inbox["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["id"] == id.as_str()),
        "{inbox}"
    );

    let read = json_out(
        &client(
            &gw,
            "RS-MOI",
            &["read", &id, "--justification", "Case AL-2026-0042"],
        )
        .await,
    );
    assert_eq!(read["subject"], message()["subject"]);

    let ack = json_out(&client(&gw, "RS-MOI", &["ack", &id]).await);
    assert_eq!(ack["status"], "acknowledged");

    let status = json_out(&client(&gw, "AL-CTD", &["status", &id]).await);
    let rs = status["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .find(|r| r["partner"] == "RS-MOI")
        .cloned()
        .expect("RS-MOI");
    assert_eq!(rs["status"], "acknowledged");

    // The harness message is H2: RS-MOI may not forward it without the
    // originator's permission. The refusal is a problem document on stderr.
    let refused = client(
        &gw,
        "RS-MOI",
        &[
            "forward",
            &id,
            "--to",
            "EU-ECTC",
            "--justification",
            "Joint case",
        ],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    let err = text(&refused.stderr);
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(err.contains("urn:brdo:error:"), "{err}");
}

#[tokio::test]
async fn send_from_flags_and_forward() {
    let gw = TestGateway::start().await;
    let sent = json_out(
        &client(
            &gw,
            "AL-CTD",
            &[
                "send",
                "--to",
                "RS-MOI",
                "--subject",
                "From flags",
                "--body",
                "Hello",
                "--classification",
                "EU_RESTRICTED",
                "--evaluation",
                "EU-4x4:B:2",
                "--purpose",
                "investigation",
                "--sign",
            ],
        )
        .await,
    );
    let id = sent["id"].as_str().expect("id").to_owned();
    assert_eq!(sent["recipients"][0]["status"], "queued");
    // --sign sent a sender signature the recipient can check.
    let doc = crate::harness::read(&gw, "RS-MOI", &id).await.json();
    assert_eq!(doc["signatures"][0]["partner"], "AL-CTD");
    let ca = std::fs::read(gw.pki.join("ca.crt")).expect("ca");
    brdo::signature::verify_entry(&doc["signatures"][0], &doc, &ca).expect("verifies");
    let fwd = json_out(
        &client(
            &gw,
            "RS-MOI",
            &[
                "forward",
                &id,
                "--to",
                "EU-ECTC",
                "--justification",
                "Joint case",
            ],
        )
        .await,
    );
    assert_eq!(fwd["forwarded_from"], id.as_str());
    assert_eq!(fwd["originator"], "AL-CTD");
    // Usage errors name the flag and exit 2.
    let bad = client(&gw, "NO-SUCH", &["status", &id]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--as NO-SUCH"));
}
