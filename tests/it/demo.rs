//! `brdo demo`: one command, a scripted exchange, then curl lines that work
//! when pasted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn curl_blocks(output: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        if let Some(c) = current.as_mut() {
            c.push('\n');
            c.push_str(line);
        } else if line.starts_with("curl ") {
            current = Some(line.to_owned());
        }
        if current.is_some() && !line.ends_with('\\') {
            blocks.extend(current.take());
        }
    }
    blocks
}

fn sh(cwd: &std::path::Path, script: &str) -> serde_json::Value {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{script}: not JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn demo_runs_the_script_and_prints_working_curl_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .arg("demo")
        .current_dir(dir.path())
        // Ephemeral ports so the test never collides with a running demo.
        .env("BRDO_SERVER__LISTEN", "127.0.0.1:0")
        .env("BRDO_SERVER__METRICS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !output.contains("Verify the audit log") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                output.push_str(&line);
                output.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("demo did not finish its script in time:\n{output}");
            }
        }
    }
    // The script, as it happened.
    assert!(output.contains("1. AL-CTD"), "{output}");
    assert!(output.contains("→ 201"), "an allowed message: {output}");
    assert!(output.contains("→ 403"), "a denied one: {output}");
    for code in [
        "sender_not_cleared",
        "no_legal_basis",
        "personal_data_not_permitted",
    ] {
        assert!(output.contains(code), "its reasons ({code}): {output}");
    }
    assert!(
        output.contains("4. RS-MOI (officer insp.petrovic) reads it"),
        "{output}"
    );
    assert!(
        output.contains("\"acknowledged\""),
        "an acknowledgement: {output}"
    );
    assert!(dir.path().join("demo/pki/ca.crt").exists());
    assert!(dir.path().join("demo/data/brdo.db").exists());

    // The curl lines work when pasted (run from the same directory).
    let blocks = curl_blocks(&output);
    assert_eq!(blocks.len(), 4, "{output}");
    let inbox = sh(dir.path(), &blocks[0]);
    assert_eq!(inbox["messages"][0]["from"], "AL-CTD", "{inbox}");
    let sent = sh(dir.path(), &blocks[1]);
    let id = sent["id"].as_str().unwrap_or_else(|| panic!("{sent}"));
    let read = sh(dir.path(), &blocks[2].replace("/ID", &format!("/{id}")));
    assert_eq!(read["body"], "Test message", "{read}");
    let refused = sh(dir.path(), &blocks[3]);
    assert_eq!(refused["code"], "forbidden_role");

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "demo exits cleanly on Ctrl-C: {status:?}");

    // Kept between runs: a second run reuses the PKI and database.
    let ca_before = std::fs::read(dir.path().join("demo/pki/ca.crt")).expect("ca");
    let out = Command::new(env!("CARGO_BIN_EXE_brdo"))
        .args(["audit", "verify", "--config", "demo/gateway.toml"])
        .current_dir(dir.path())
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("demo/pki/ca.crt")).expect("ca"),
        ca_before
    );
}
