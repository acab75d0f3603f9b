//! `brdo verify-receipt` as a process: a receipt signed by a `pki init`
//! envelope key holds (exit 0, its statement one member a line), and a
//! tampered one, one checked with another gateway's key, one for another
//! message or gateway do not (exit 3); unreadable input is exit 2.

use std::path::Path;

use brdo::crypto::jose::JwsKey;
use brdo::domain::PartnerId;
use brdo::federation::{Receipt, ReceiptKind, ReceiptViolation};
use time::OffsetDateTime;

use crate::harness::{brdo, text};

const MESSAGE: &str = "0190f000-0000-7000-8000-0000000000a1";

fn id(s: &str) -> PartnerId {
    PartnerId::parse(s).expect("id")
}

fn receipt(kind: ReceiptKind) -> Receipt {
    Receipt {
        v: 1,
        kind,
        gateway: id("RS-NCB"),
        to: id("AL-NCB"),
        message_id: MESSAGE.into(),
        recipient: Some(id("RS-MOI")),
        at: "2026-12-07T10:00:00.000Z".into(),
        audit_seq: Some(41),
        tree_size: Some(42),
        violations: Vec::new(),
        notice: None,
    }
}

/// Runs `brdo verify-receipt` on `jws` with `args` added; (exit, stdout, stderr).
fn verify(dir: &Path, jws: &str, pubkey: &Path, args: &[&str]) -> (i32, String, String) {
    let file = dir.join("receipt.jws");
    std::fs::write(&file, format!("{jws}\n")).expect("receipt file");
    let mut all = vec![
        "verify-receipt",
        "--receipt",
        file.to_str().expect("utf8"),
        "--pubkey",
        pubkey.to_str().expect("utf8"),
    ];
    all.extend_from_slice(args);
    let out = brdo(&all);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// RS-NCB's PKI and another gateway's under `dir`: RS-NCB's envelope
/// key, its public half's file, and the other PKI's directory.
fn two_gateways(dir: &Path) -> (JwsKey, std::path::PathBuf, std::path::PathBuf) {
    let (peer, other) = (dir.join("peer"), dir.join("other"));
    let now = OffsetDateTime::now_utc();
    brdo::pki::init_gateway(&peer, &[], Some("RS-NCB"), now).expect("init peer");
    brdo::pki::init(&other, &[], now).expect("init other");
    let key = JwsKey::from_pem_file(&peer.join("envelope-signing.key")).expect("key");
    (key, peer.join("envelope-signing.pub"), other)
}

#[test]
fn verify_receipt_states_what_holds_and_refuses_what_does_not() {
    let keep = tempfile::tempdir().expect("tempdir");
    let (key, pubkey, other) = two_gateways(keep.path());
    let jws = receipt(ReceiptKind::Accepted).sign(&key).expect("sign");

    let (code, out, err) = verify(keep.path(), &jws, &pubkey, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "kind: accepted",
            "gateway: RS-NCB",
            "to: AL-NCB",
            &format!("message: {MESSAGE}"),
            "recipient: RS-MOI",
            "at: 2026-12-07T10:00:00.000Z",
            "audit_seq: 41",
            "tree_size: 42",
            "violations: none",
        ]
    );
    let expected = [
        "--message",
        MESSAGE,
        "--gateway",
        "RS-NCB",
        "--to",
        "AL-NCB",
    ];
    let (code, _, err) = verify(keep.path(), &jws, &pubkey, &expected);
    assert_eq!(code, 0, "{err}");

    // A refusal lists its violations; text the peer chose is escaped.
    let mut refused = receipt(ReceiptKind::Refused);
    refused.audit_seq = None;
    refused.tree_size = None;
    refused.violations = vec![ReceiptViolation {
        code: "recipient_not_cleared".into(),
        detail: "RS-MOI is cleared to EU_RESTRICTED\u{1b}[2J".into(),
    }];
    let (code, out, err) = verify(
        keep.path(),
        &refused.sign(&key).expect("sign"),
        &pubkey,
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kind: refused\n"), "{out}");
    assert!(out.contains("audit_seq: -\n"), "{out}");
    assert!(
        out.contains(
            "violation: recipient_not_cleared: RS-MOI is cleared to EU_RESTRICTED\\u{1b}[2J\n"
        ),
        "{out}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "no terminal control reaches the terminal"
    );

    // Does not hold: exit 3 saying why.
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let forged = receipt(ReceiptKind::Delivered);
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        brdo::audit::jcs::canonicalize(&serde_json::to_value(&forged).expect("json")),
    );
    let tampered = parts.join(".");
    let wrong_key = other.join("envelope-signing.pub");
    let cases: [(&str, &str, &Path, &[&str], &str); 5] = [
        ("tampered", &tampered, &pubkey, &[], "signature"),
        ("another gateway's key", &jws, &wrong_key, &[], "signature"),
        (
            "another message",
            &jws,
            &pubkey,
            &["--message", "0190f000-0000-7000-8000-0000000000b2"],
            "message_id",
        ),
        (
            "another gateway",
            &jws,
            &pubkey,
            &["--gateway", "ME-NCB"],
            "gateway",
        ),
        (
            "to another origin",
            &jws,
            &pubkey,
            &["--to", "XK-NCB"],
            "to",
        ),
    ];
    for (what, jws, key, args, says) in cases {
        let (code, out, err) = verify(keep.path(), jws, key, args);
        assert_eq!(code, 3, "{what}: {out}{err}");
        assert!(out.is_empty(), "{what}: states nothing: {out}");
        assert!(err.contains(says), "{what}: {err}");
    }

    // Usage and file errors: exit 2.
    let missing = keep.path().join("missing.pub");
    let (code, _, err) = verify(keep.path(), &jws, &missing, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.pub"), "{err}");
    let (code, _, err) = verify(keep.path(), &jws, &pubkey, &["--gateway", "not an id"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--gateway"), "{err}");
    let out = brdo(&["verify-receipt", "--pubkey", pubkey.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// A receipt signed with others of its batch (SPEC §11, *Batch
/// signatures*) is checked offline, alone, exactly as a plain one: it
/// holds with its gateway's key and states what it says; the same token
/// with another receipt of the batch's statement, another index, another
/// path, or checked with another key does not (exit 3).
#[test]
fn verify_receipt_takes_a_receipt_of_a_batch() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let keep = tempfile::tempdir().expect("tempdir");
    let (key, pubkey, other) = two_gateways(keep.path());
    let batch: Vec<Receipt> = (0..5u64)
        .map(|i| {
            let mut r = receipt(ReceiptKind::Accepted);
            r.message_id = format!("0190f000-0000-7000-8000-00000000010{i}");
            r.audit_seq = Some(40 + i);
            r.tree_size = Some(40 + i);
            r
        })
        .collect();
    let tokens = Receipt::sign_all(&batch, &key).expect("sign");
    assert!(tokens.iter().all(|t| t.contains('~')), "tokens of a batch");
    let (code, out, err) = verify(
        keep.path(),
        &tokens[3],
        &pubkey,
        &["--message", "0190f000-0000-7000-8000-000000000103"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("audit_seq: 43\n"), "{out}");

    let parts: Vec<&str> = tokens[3].split('~').collect();
    let second: Vec<&str> = tokens[1].split('~').collect();
    let mut changed = batch[3].clone();
    changed.audit_seq = Some(99);
    let forged = b64.encode(brdo::audit::jcs::canonicalize(
        &serde_json::to_value(&changed).expect("json"),
    ));
    let swap = |i: usize, v: &str| {
        let mut p = parts.clone();
        p[i] = v;
        p.join("~")
    };
    let cases = [
        ("another receipt's statement", swap(1, second[1])),
        ("a statement not in the batch", swap(1, &forged)),
        ("another index", swap(2, "1")),
        ("another path", swap(3, second[3])),
        ("no path", swap(3, "")),
    ];
    for (what, token) in &cases {
        let (code, out, err) = verify(keep.path(), token, &pubkey, &[]);
        assert_eq!(code, 3, "{what}: {out}{err}");
        assert!(out.is_empty(), "{what}: states nothing: {out}");
    }
    let (code, out, _) = verify(
        keep.path(),
        &tokens[3],
        &other.join("envelope-signing.pub"),
        &[],
    );
    assert_eq!(code, 3, "another gateway's key: {out}");
}
