//! The DPO page in a real browser (headless Chromium, playwright-core):
//! loading it with a DPO certificate, filtering, opening a record, a form
//! posted from another page refused as cross-site, and a partner
//! certificate refused. `.ci/test` installs Debian's `chromium`
//! and `npm ci`s `tests/browser` first.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn dpo_page_in_a_real_browser() {
    let browser_dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"));
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && browser_dir.join("node_modules/playwright-core").exists(),
        "this test needs Debian's chromium and tests/browser/node_modules: run .ci/test (it installs both)"
    );
    let gw = TestGateway::start_with(&Pki::shared().dir, |c| c.audit.checkpoint_every = 2).await;
    let id = submit_ok(&gw).await;
    read(&gw, "RS-MOI", &id).await;
    let hostile = "<script>alert(1)</script> case 7";
    let r = gw
        .partner("EU-ECTC")
        .get(
            &format!("/v1/messages/{id}"),
            &[
                ("brdo-officer", "analyst.eu"),
                ("brdo-justification", hostile),
            ],
        )
        .await
        .expect("read");
    assert_eq!(r.status, 200);
    let mut other = message();
    other["recipients"] = json!(["ME-MOI"]);
    other["label"] = json!({"classification": "EU_RESTRICTED"});
    send(&gw, "BA-SIPA", &other).await;
    submit(&gw, "XK-CTD", &message()).await;
    // Let a checkpoint cover everything so far.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let shot = std::env::temp_dir().join(format!("brdo-dpo-{}.png", std::process::id()));
    // On a blocking thread: the gateway runs on this test's runtime and
    // must keep serving while the browser talks to it.
    let mut node = Command::new("node");
    node.arg(browser_dir.join("dpo.mjs"))
        .env(
            "BRDO_URL",
            format!("https://localhost:{}", gw.addr().port()),
        )
        .env("BRDO_PKI", &gw.pki)
        .env("BRDO_SHOT", &shot);
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .expect("join")
        .expect("node runs");
    assert!(
        out.status.success(),
        "browser check failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .expect("result line"),
    )
    .expect("json");
    assert_eq!(result["ok"], true);
    assert_eq!(result["partner"]["status"], 403);
    assert_eq!(result["cross_site"]["status"], 403);
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "screenshot written"
    );
    // What the browser did is in the log too: page views are audit_query records.
    let n = gw.audit_size().await;
    let mut views = 0;
    for seq in 1..=n {
        if gw.audit_record(seq).await["action"] == "audit_query" {
            views += 1;
        }
    }
    assert!(views >= 4, "{views} DPO page views audited");
    // The forged form post is a denial, its code naming why.
    let mut forged = 0;
    for seq in 1..=n {
        let rec = gw.audit_record(seq).await;
        if rec["code"] == "cross_site_request" {
            assert_eq!(rec["action"], "deny");
            assert_eq!(rec["details"]["attempted"], "alter");
            forged += 1;
        }
    }
    assert_eq!(forged, 1, "one cross-site request refused and audited");
    let _ = std::fs::remove_file(shot);
    gw.stop().await;
}
