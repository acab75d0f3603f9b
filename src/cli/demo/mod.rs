//! `brdo demo`: the quickstart.
//!
//! Creates (once) a development PKI, configuration and SQLite database
//! under `./demo`, starts the gateway on 127.0.0.1:8443, runs a scripted
//! exchange among the demo partners through real mTLS clients, prints it as
//! it happens, then keeps serving and prints `curl` lines to try.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{EXIT_OK, EXIT_RUNTIME, fail};
use brdo::pki::{self, Subject};
use brdo_tools::client::{Client, ClientResponse};

pub use brdo_tools::demo_data::{
    P12_PASSWORD as DEMO_P12_PASSWORD, PARTNERS as DEMO_PARTNERS, POLICY as DEMO_POLICY,
};

const DEMO_CONFIG: &str = r#"# Written by `brdo demo`; paths are relative to this file.
[server]
listen = "127.0.0.1:8443"
metrics_listen = "127.0.0.1:9464"

[tls]
cert = "pki/gateway.crt"
key = "pki/gateway.key"
client_ca = "pki/ca.crt"
crl = "pki/ca.crl"

[database]
url = "sqlite://data/brdo.db"

[audit]
signing_key = "pki/audit-signing.key"
public_key = "pki/audit-signing.pub"

[crypto]
master_key_file = "data/master.key"

[policy]
file = "policy.toml"
"#;

/// Creates `dir` with a PKI, config and policy, unless it exists already.
pub fn prepare(dir: &Path) -> Result<PathBuf, String> {
    let pki_dir = dir.join("pki");
    let now = OffsetDateTime::now_utc();
    if !pki_dir.join(pki::CA_KEY_FILE).exists() {
        pki::init(&pki_dir, &[], now).map_err(|e| e.to_string())?;
        for p in DEMO_PARTNERS {
            for subject in [
                Subject::Partner((*p).to_owned()),
                Subject::Dpo((*p).to_owned()),
            ] {
                pki::issue(&pki_dir, &subject, 365, DEMO_P12_PASSWORD, now)
                    .map_err(|e| e.to_string())?;
            }
        }
        // init's own operator and DPO certificates get the demo password too.
        for subject in [
            Subject::Operator("admin".into()),
            Subject::Dpo("gateway".into()),
        ] {
            pki::issue(&pki_dir, &subject, 365, DEMO_P12_PASSWORD, now)
                .map_err(|e| e.to_string())?;
        }
    }
    // A demo directory from before label binding gets its envelope key.
    pki::ensure_envelope_key(&pki_dir).map_err(|e| e.to_string())?;
    // The demo is an explicit init step: it makes the master key on its
    // first run (a gateway never does).
    let key = dir.join("data").join("master.key");
    if !key.exists() {
        brdo::crypto::MasterKey::create(&key).map_err(|e| e.to_string())?;
    }
    let config = dir.join("gateway.toml");
    if !config.exists() {
        std::fs::write(&config, DEMO_CONFIG).map_err(|e| format!("{}: {e}", config.display()))?;
    }
    let policy = dir.join("policy.toml");
    if !policy.exists() {
        std::fs::write(&policy, DEMO_POLICY).map_err(|e| format!("{}: {e}", policy.display()))?;
    }
    Ok(config)
}

/// Runs the demo.
pub async fn run() -> u8 {
    let telemetry = brdo::telemetry::init();
    let dir = PathBuf::from("demo");
    let config_path = match prepare(&dir) {
        Ok(p) => p,
        Err(e) => return fail(EXIT_RUNTIME, format!("preparing ./demo failed: {e}")),
    };
    let gateway = match super::serve::start(
        &config_path,
        &telemetry,
        " (is another gateway or demo already running?)",
    )
    .await
    {
        Ok(g) => g,
        Err(code) => return code,
    };
    println!(
        "Brdo gateway listening on https://{} (mTLS)\n",
        gateway.addr
    );
    if let Err(e) = script(&dir.join("pki"), gateway.addr).await {
        eprintln!("error: the scripted exchange failed: {e}");
        gateway.stop().await;
        return EXIT_RUNTIME;
    }
    print_curl_lines(&dir, gateway.addr.port());
    super::serve::shutdown_signal().await;
    gateway.stop().await;
    EXIT_OK
}

fn show(step: &str, resp: &ClientResponse) {
    println!("{step}\n  → {} {}", resp.status, summary(&resp.json()));
}

fn summary(v: &Value) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_start()
        .to_owned()
}

/// The scripted exchange; returns the id of the message sent.
pub async fn script(pki_dir: &Path, addr: std::net::SocketAddr) -> Result<String, String> {
    let client = |stem: &str| Client::from_pki(pki_dir, stem, addr).map_err(|e| e.to_string());
    let albania = client("partner-AL-CTD")?;
    let kosovo = client("partner-XK-CTD")?;
    let serbia = client("partner-RS-MOI")?;
    let err = |e: brdo_tools::client::ClientError| e.to_string();

    let message = json!({
        "recipients": ["RS-MOI", "EU-ECTC"],
        "subject": "Travel of a returning foreign terrorist fighter",
        "body": "A person known to us as a returning foreign terrorist fighter is expected to cross into Serbia this week. Details in the attached case file.",
        "content_type": "text/plain",
        "label": {
            "classification": "EU_RESTRICTED",
            "handling_codes": ["H0", "H2", "H3"],
            "h3_text": "Not to be shared with border police units.",
            "releasable_to": ["RS-MOI", "EU-ECTC"]
        },
        "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
        "purpose": "investigation",
        "personal_data": {"subjects": ["suspect"], "special_categories": [], "minors": false},
        "case_ref": "AL-2026-0042",
        "retention_days": 365
    });
    let resp = albania
        .post_json("/v1/messages", &[("brdo-officer", "insp.hoxha")], &message)
        .await
        .map_err(err)?;
    show(
        "1. AL-CTD (officer insp.hoxha) sends an EU_RESTRICTED message, H2+H3, to RS-MOI and EU-ECTC",
        &resp,
    );
    if resp.status != 201 {
        return Err(format!("the allowed message was answered {}", resp.status));
    }
    let id = resp.json()["id"].as_str().unwrap_or_default().to_owned();

    let mut denied = message.clone();
    denied["case_ref"] = json!("XK-2026-0007");
    let resp = kosovo
        .post_json("/v1/messages", &[("brdo-officer", "analyst.7")], &denied)
        .await
        .map_err(err)?;
    show(
        "\n2. XK-CTD tries to send the same kind of message: above its clearance, no legal basis with RS-MOI, and its Europol arrangement excludes personal data",
        &resp,
    );

    receive(&serbia, &albania, &id).await?;
    println!(
        "\nEvery step above is an audit record, found by the Brdo-Request-Id response header (the DPO's audit view shows them)."
    );
    Ok(id)
}

/// Steps 3 to 6: the recipient lists, reads with a justification and
/// acknowledges; the sender sees the delivery status.
async fn receive(serbia: &Client, albania: &Client, id: &str) -> Result<(), String> {
    let err = |e: brdo_tools::client::ClientError| e.to_string();
    let resp = serbia.get("/v1/inbox", &[]).await.map_err(err)?;
    show("\n3. RS-MOI lists its inbox", &resp);

    let path = format!("/v1/messages/{id}");
    let resp = serbia
        .get(
            &path,
            &[
                ("brdo-officer", "insp.petrovic"),
                ("brdo-justification", "Case AL-2026-0042: border alert"),
            ],
        )
        .await
        .map_err(err)?;
    println!(
        "\n4. RS-MOI (officer insp.petrovic) reads it, giving a justification\n  → {} marking {} ; H3: {}",
        resp.status,
        resp.json()["marking"].as_str().unwrap_or("?"),
        resp.json()["label"]["h3_text"].as_str().unwrap_or("")
    );

    let resp = serbia
        .request(
            hyper::Method::POST,
            &format!("{path}/ack"),
            &[
                ("brdo-officer", "insp.petrovic"),
                ("content-type", "application/json"),
            ],
            None,
        )
        .await
        .map_err(err)?;
    show("\n5. RS-MOI acknowledges", &resp);

    let resp = albania
        .get(&format!("{path}/status"), &[])
        .await
        .map_err(err)?;
    show("\n6. AL-CTD checks delivery status", &resp);
    Ok(())
}

fn print_curl_lines(dir: &Path, port: u16) {
    let base = format!("https://localhost:{port}");
    let p = dir.join("pki");
    let tls = |stem: &str| {
        format!(
            "--cacert {}/ca.crt --cert {}/{stem}.crt --key {}/{stem}.key",
            p.display(),
            p.display(),
            p.display()
        )
    };
    println!("\nThe gateway keeps serving; press Ctrl-C to stop. Try:\n");
    println!("# RS-MOI's inbox (long-poll up to 30 s for new messages)");
    println!(
        "curl -s {} '{base}/v1/inbox?wait=30'\n",
        tls("partner-RS-MOI")
    );
    println!("# BA-SIPA sends a message to ME-MOI");
    println!(
        "curl -s {} -H 'Content-Type: application/json' -H 'Brdo-Officer: insp.kovac' \\\n  -d '{{\"recipients\":[\"ME-MOI\"],\"subject\":\"Hello\",\"body\":\"Test message\",\"label\":{{\"classification\":\"BASIC_PROTECTION\"}},\"evaluation\":{{\"scheme\":\"EU-4x4\",\"source\":\"A\",\"information\":\"1\"}},\"purpose\":\"prevention\",\"personal_data\":{{\"subjects\":[]}}}}' \\\n  {base}/v1/messages\n",
        tls("partner-BA-SIPA")
    );
    println!("# ME-MOI reads it (use the id from the answer above)");
    println!(
        "curl -s {} -H 'Brdo-Officer: insp.vukovic' -H 'Brdo-Justification: checking the demo' {base}/v1/messages/ID\n",
        tls("partner-ME-MOI")
    );
    println!("# A certificate with no role on this endpoint gets 403 forbidden_role");
    println!("curl -s {} {base}/v1/inbox\n", tls("dpo-gateway"));
    println!(
        "Verify the audit log: cargo run --release -- audit verify --config {}/gateway.toml",
        dir.display()
    );
}
