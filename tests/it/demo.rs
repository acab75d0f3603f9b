//! `brdo demo`: one command, a scripted exchange printed step by step
//! without log lines in between, then curl lines, a browser hint and an
//! audit verification that work when pasted.

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

/// A demo process whose stdout and stderr share one pipe, so the lines
/// arrive in the order they were written, as on a terminal.
struct Demo {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    output: String,
}

impl Demo {
    fn spawn(cwd: &std::path::Path, args: &[&str]) -> Self {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let child = Command::new(env!("CARGO_BIN_EXE_brdo"))
            .arg("demo")
            .args(args)
            .current_dir(cwd)
            // Ephemeral ports so the test never collides with a running demo.
            .env("BRDO_SERVER__LISTEN", "127.0.0.1:0")
            .env("BRDO_SERVER__METRICS_LISTEN", "127.0.0.1:0")
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(writer.try_clone().expect("clone")))
            .stderr(Stdio::from(writer))
            .spawn()
            .expect("spawn demo");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines: rx,
            output: String::new(),
        }
    }

    /// Reads until a line contains `marker`.
    fn until(&mut self, marker: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !self.output.lines().any(|l| l.contains(marker)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push_str(&line);
                    self.output.push('\n');
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("demo did not print {marker:?} in time:\n{}", self.output);
                }
            }
        }
    }

    /// Ctrl-C, and a clean exit.
    fn interrupt(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "demo exits cleanly on Ctrl-C: {status:?}");
    }
}

/// The block of step `n`: its header line through the line before the next
/// blank line.
fn step_block(output: &str, n: usize) -> Vec<&str> {
    let head = format!("{n}. ");
    let lines: Vec<&str> = output.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no step {n}:\n{output}"));
    lines[at..]
        .iter()
        .take_while(|l| !l.is_empty())
        .copied()
        .collect()
}

fn is_json_line(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
}

/// The text after `before` up to the next whitespace, in `text` with its
/// line wrapping undone.
fn word_after(text: &str, before: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let at = flat
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} not in:\n{text}"));
    flat[at + before.len()..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches([')', ','])
        .to_owned()
}

#[test]
fn demo_runs_the_script_and_prints_working_curl_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut demo = Demo::spawn(dir.path(), &[]);
    demo.until("audit verify --config");
    let output = demo.output.clone();

    // Not a terminal: the log lines are JSON, the gateway's start among them.
    let json: Vec<serde_json::Value> = output
        .lines()
        .filter(|l| is_json_line(l))
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(
        json.iter()
            .any(|v| v["message"] == "gateway listening" && v["level"] == "INFO"),
        "{output}"
    );
    // Each step is one block, its lines indented under the header, from
    // what is done to what it proves, with no log line inside.
    for n in 1..=6 {
        let block = step_block(&output, n);
        assert!(
            block[1..].iter().all(|l| l.starts_with("   ")),
            "step {n} is interrupted: {block:#?}"
        );
        assert!(!block.iter().any(|l| l.starts_with('{')), "{block:#?}");
        for part in ["   by ", "   answer → ", "   proves "] {
            assert!(
                block.iter().any(|l| l.starts_with(part)),
                "step {n} lacks {part:?}: {block:#?}"
            );
        }
    }
    // During the script (the first step to the closing sentence) the console
    // is quiet: the request lines went to the log file the output names.
    let script: String = output
        .lines()
        .skip_while(|l| !l.starts_with("1. "))
        .take_while(|l| !l.starts_with("Every step above"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!script.contains("request done"), "{output}");
    assert_eq!(
        word_after(&output, "request logs go to "),
        "demo/data/gateway.log",
        "{output}"
    );
    let log = std::fs::read_to_string(dir.path().join("demo/data/gateway.log")).expect("log");
    let done = log
        .lines()
        .filter(|l| is_json_line(l) && l.contains("\"request done\""))
        .count();
    assert_eq!(done, 6, "one line per scripted request: {log}");

    // The script, as it happened.
    let joined = |n| step_block(&output, n).join("\n");
    assert!(joined(1).starts_with("1. AL-CTD sends"), "{output}");
    assert!(
        joined(1).contains("→ 201 Created"),
        "an allowed message: {output}"
    );
    assert!(
        joined(2).contains("→ 403 Forbidden"),
        "a denied one: {output}"
    );
    for code in [
        "sender_not_cleared",
        "no_legal_basis",
        "personal_data_not_permitted",
    ] {
        assert!(joined(2).contains(code), "its reasons ({code}): {output}");
    }
    assert!(
        joined(4).contains("officer insp.petrovic, justification"),
        "{output}"
    );
    assert!(
        joined(5).contains("status        acknowledged"),
        "an acknowledgement: {output}"
    );
    assert!(
        joined(6).contains("RS-MOI acknowledged"),
        "the sender sees it: {output}"
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
    // After the script the console has its level back: the curl requests
    // are logged there.
    demo.until("\"request done\"");

    // The browser hint: the DPO's PKCS#12 file, with the password given,
    // opens the DPO page at the address given; the operator's file exists.
    let p12 = word_after(&output, "The DPO's page in a browser: import ");
    let password = word_after(&output, "(PKCS#12, password ");
    let url = word_after(&output, "then open ");
    assert!(
        url.starts_with("https://127.0.0.1:") && url.ends_with("/dpo"),
        "{url}"
    );
    let ca = dir.path().join("demo/pki/ca.crt");
    let page = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cert-type",
            "P12",
        ])
        .arg("--cert")
        .arg(format!("{p12}:{password}"))
        .arg("--cacert")
        .arg(&ca)
        .arg(&url)
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&page.stdout), "200", "{p12} {url}");
    let operator = word_after(&output, "The operator's certificate, the same way: ");
    assert!(std::path::Path::new(&operator).is_file(), "{operator}");

    demo.interrupt();

    // The printed verification command passes as printed; a second run
    // would reuse the PKI and database.
    let ca_before = std::fs::read(&ca).expect("ca");
    let verify = output
        .lines()
        .find(|l| l.contains(" audit verify --config "))
        .expect("verify line");
    let out = Command::new("sh")
        .arg("-c")
        .arg(verify)
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "{verify}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&ca).expect("ca"), ca_before);
}

#[test]
fn demo_log_format_text_is_forced_and_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut demo = Demo::spawn(dir.path(), &["--log-format", "text"]);
    demo.until("audit verify --config");
    let output = demo.output.clone();
    demo.interrupt();
    assert!(!output.lines().any(is_json_line), "{output}");
    // Quiet during the script in this format too.
    let script: Vec<&str> = output
        .lines()
        .skip_while(|l| !l.starts_with("1. "))
        .take_while(|l| !l.starts_with("Every step above"))
        .collect();
    assert!(
        !script.iter().any(|l| l.contains("request done")),
        "{output}"
    );
    // Level and target, and no colour codes into a pipe.
    assert!(
        output
            .lines()
            .any(|l| l.contains(" INFO brdo::gateway: gateway listening")),
        "{output}"
    );
    assert!(!output.contains('\u{1b}'), "{output}");
    assert!(step_block(&output, 6).len() > 3, "{output}");
}

/// A port P with P, P+1 and P+2 free (for the three federation gateways).
fn three_free_ports() -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        let p = first.local_addr().expect("addr").port();
        if p > u16::MAX - 2 {
            continue;
        }
        let rest: Vec<_> = (1..=2)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)))
            .collect();
        if rest.iter().all(Result::is_ok) {
            return p;
        }
    }
    panic!("no three consecutive free ports");
}

fn run_sh(cwd: &std::path::Path, line: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(cwd)
        .output()
        .expect("sh")
}

#[test]
#[allow(clippy::too_many_lines)]
fn demo_federation_relays_among_three_gateways_and_prints_working_hints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = three_free_ports();
    let mut demo = Demo::spawn(
        dir.path(),
        &["--federation", "--base-port", &base.to_string()],
    );
    demo.until("rs-ncb/gateway.toml");
    let output = demo.output.clone();
    let root = dir.path().join("demo-federation");

    // Eight steps, each one block with no log line inside.
    for n in 1..=8 {
        let block = step_block(&output, n);
        assert!(
            block[1..].iter().all(|l| l.starts_with("   ")),
            "step {n} is interrupted: {block:#?}"
        );
        for part in ["   by ", "   answer → ", "   proves "] {
            assert!(
                block.iter().any(|l| l.starts_with(part)),
                "step {n}: {block:#?}"
            );
        }
    }
    let step = |n| step_block(&output, n).join("\n");
    let flat = |n| step(n).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(step(1).contains("→ 201 Created"), "{output}");
    assert!(
        flat(1).contains("EU-ECTC queued, RS-MOI queued"),
        "{output}"
    );
    for line in [
        "EU-ECTC relayed via EU-HUB, receipt accepted (signature verified)",
        "RS-MOI relayed via RS-NCB, receipt accepted (signature verified)",
    ] {
        assert!(flat(2).contains(line), "{line}: {output}");
    }
    assert!(flat(3).contains("→ 200 OK"), "{output}");
    assert!(flat(3).contains("from AL-CTD"), "{output}");
    for line in [
        "RS-MOI delivered via RS-NCB, receipt delivered (signature verified)",
        "kind delivered",
        "gateway RS-NCB",
        "to AL-NCB",
        "receipt for RS-MOI",
    ] {
        assert!(flat(4).contains(line), "{line}: {output}");
    }
    assert!(
        flat(5).contains("RS-MOI queued"),
        "AL-NCB allows it: {output}"
    );
    assert!(
        flat(6).contains("RS-MOI refused via RS-NCB, receipt refused (signature verified)"),
        "{output}"
    );
    assert!(
        flat(6).contains("violation purpose_not_permitted"),
        "{output}"
    );
    assert!(flat(7).contains("decision erase"), "{output}");
    for line in ["EU-ECTC erased via EU-HUB", "RS-MOI erased via RS-NCB"] {
        assert!(flat(8).contains(line), "{line}: {output}");
    }
    // Without lifecycle notices the peers never confirm; with them, both do.
    assert!(
        flat(8).contains("erasure outstanding at RS-NCB and EU-HUB")
            || flat(8).contains("erasure confirmed by both peers"),
        "{output}"
    );

    // Quiet during the script; each gateway's requests in its own log.
    let script: String = output
        .lines()
        .skip_while(|l| !l.starts_with("1. "))
        .take_while(|l| !l.starts_with("Each gateway logged"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!script.contains("request done"), "{output}");
    for (gw, route) in [
        ("al-ncb", "/v1/messages/{id}/review"),
        ("rs-ncb", "/v1/federation/messages"),
        ("eu-hub", "/v1/federation/messages"),
    ] {
        let log = std::fs::read_to_string(root.join(gw).join("data/gateway.log")).expect("log");
        assert!(
            log.lines()
                .any(|l| is_json_line(l) && l.contains("\"request done\"") && l.contains(route)),
            "{gw}: {log}"
        );
    }
    let hub_log = std::fs::read_to_string(root.join("eu-hub/data/gateway.log")).expect("log");
    assert!(
        !hub_log.contains("RS-MOI"),
        "RS-NCB's requests stay in its own log"
    );

    // The printed verify-receipt command works as printed, and a receipt
    // checked with the wrong peer's key does not.
    let verify = output
        .lines()
        .find(|l| l.contains(" verify-receipt --receipt "))
        .expect("verify-receipt line");
    let out = run_sh(dir.path(), verify);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{verify}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kind: delivered"), "{stdout}");
    assert!(stdout.contains("gateway: RS-NCB"), "{stdout}");
    let wrong = verify.replace("RS-NCB-envelope.pub", "EU-HUB-envelope.pub");
    assert_eq!(run_sh(dir.path(), &wrong).status.code(), Some(3), "{wrong}");

    // Each DPO page opens with the printed PKCS#12 file and password.
    for gw in ["EU-HUB", "AL-NCB", "RS-NCB"] {
        let hint = format!("{gw}'s DPO page: import ");
        let p12 = word_after(&output, &hint);
        let flat_out = output.split_whitespace().collect::<Vec<_>>().join(" ");
        let after = &flat_out[flat_out.find(&hint).expect("hint")..];
        let password = word_after(after, "(PKCS#12, password ");
        let url = word_after(after, "then open ");
        let ca = word_after(after, "trust ");
        let page = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cert-type",
                "P12",
            ])
            .arg("--cert")
            .arg(format!("{p12}:{password}"))
            .arg("--cacert")
            .arg(&ca)
            .arg(&url)
            .output()
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&page.stdout),
            "200",
            "{gw}: {p12} {url}"
        );
    }

    demo.interrupt();
    // Each gateway's audit log verifies, with the commands as printed.
    let verifies: Vec<&str> = output
        .lines()
        .filter(|l| l.contains(" audit verify --config "))
        .collect();
    assert_eq!(verifies.len(), 3, "{output}");
    for line in verifies {
        let out = run_sh(dir.path(), line);
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
