//! `brdo demo --federation`: three gateways among gateways (SPEC §11) on
//! loopback in one process, each a [`Site`] in its own directory under
//! `demo-federation/` with its own PKI (made with its gateway id), SQLite
//! database, master key, log and policy naming the other two as peers.
//!
//! The hub `EU-HUB` serves Europol (`EU-ECTC`), `AL-NCB` serves `AL-CTD`,
//! `RS-NCB` serves `RS-MOI`. The script: AL-CTD sends to RS-MOI and Europol
//! (relayed, receipts back, a delivered receipt verified with RS-NCB's
//! key); a message RS-NCB's own policy refuses although AL-NCB's allows it;
//! AL-CTD erases the first message and the status shows what the peers
//! confirmed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::site::{DemoGateway, Site};
use super::stage::{Answer, Stage, Step};
use super::{DEMO_P12_PASSWORD, DEMO_POLICY, DemoArgs, LOG_FILE, absolute};
use crate::cli::{EXIT_OK, EXIT_RUNTIME, LogFormatArg, fail};
use brdo::crypto::jose::JwsKeys;
use brdo::federation::Receipt;
use brdo::telemetry::LogSettings;
use brdo_tools::client::{Client, ClientError, ClientResponse};

/// The directory holding the three sites.
pub const DIR: &str = "demo-federation";
/// The receipt the script saves for `brdo verify-receipt`, in [`DIR`].
pub const RECEIPT_FILE: &str = "receipt-RS-MOI-delivered.jws";
/// How long the script waits for a relay or a receipt before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

/// One gateway of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    /// Its gateway id.
    pub id: &'static str,
    /// The one partner it serves.
    pub partner: &'static str,
    /// Its directory under [`DIR`].
    pub dir: &'static str,
    /// Its port is the base port plus this.
    pub offset: u16,
}

/// The hub, Albania's and Serbia's gateways, in the order they start.
pub const NODES: [Node; 3] = [
    Node {
        id: "EU-HUB",
        partner: "EU-ECTC",
        dir: "eu-hub",
        offset: 0,
    },
    Node {
        id: "AL-NCB",
        partner: "AL-CTD",
        dir: "al-ncb",
        offset: 1,
    },
    Node {
        id: "RS-NCB",
        partner: "RS-MOI",
        dir: "rs-ncb",
        offset: 2,
    },
];

/// The partners of the scenario: id, name, country, clearance, third
/// country.
const PARTNERS: [(&str, &str, &str, &str, bool); 3] = [
    (
        "EU-ECTC",
        "Europol, European Counter Terrorism Centre",
        "EU",
        "EU_CONFIDENTIAL",
        false,
    ),
    (
        "AL-CTD",
        "Albania, State Police, Directorate for Counter-Terrorism",
        "AL",
        "EU_RESTRICTED",
        true,
    ),
    (
        "RS-MOI",
        "Serbia, Ministry of Interior",
        "RS",
        "EU_RESTRICTED",
        true,
    ),
];

impl Node {
    /// The site this node runs on, listening on `base + offset`.
    pub fn site(&self, root: &Path, base: u16) -> Site {
        let partners: &'static [&'static str] = match self.offset {
            0 => &["EU-ECTC"],
            1 => &["AL-CTD"],
            _ => &["RS-MOI"],
        };
        Site {
            dir: root.join(self.dir),
            listen: format!("127.0.0.1:{}", base.saturating_add(self.offset)),
            metrics_listen: "127.0.0.1:0".into(),
            gateway_id: Some(self.id.to_owned()),
            partners,
        }
    }
}

/// The node serving `partner`.
fn node_of(partner: &str) -> Option<&'static Node> {
    NODES.iter().find(|n| n.partner == partner)
}

/// `own`'s policy: the three partners (the others `via` their gateways),
/// their agreements, the demo's retention rules and the other two gateways
/// as `[[peer]]`. RS-NCB's copy of the regional convention does not permit
/// prosecution; AL-NCB's and the hub's do: each gateway decides for its own
/// partners.
pub fn policy_text(own: &Node, base: u16) -> String {
    let mut t = format!(
        "# Written by `brdo demo --federation` for {}; rewritten on every run.\n\
         # Paths are relative to this file.\n\n",
        own.id
    );
    for (id, name, country, clearance, third) in PARTNERS {
        t.push_str(&format!(
            "[[partner]]\nid = \"{id}\"\nname = \"{name}\"\ncountry = \"{country}\"\n\
             clearance = \"{clearance}\"\nthird_country = {third}\n"
        ));
        match node_of(id) {
            Some(n) if n.id != own.id => t.push_str(&format!("via = \"{}\"\n", n.id)),
            _ => {}
        }
        t.push('\n');
    }
    for partner in ["AL-CTD", "RS-MOI"] {
        t.push_str(&format!(
            "[[agreement]]\nparties = [\"{partner}\", \"EU-ECTC\"]\nbasis = \"operational_agreement\"\n\
             reference = \"Operational agreement with Europol\"\nmax_classification = \"EU_RESTRICTED\"\n\
             purposes = [\"prevention\", \"investigation\", \"detection\", \"prosecution\"]\n\
             personal_data = true\nspecial_categories = true\n\n"
        ));
    }
    let purposes = if own.id == "RS-NCB" {
        "# RS-NCB has not adopted the prosecution protocol: no prosecution here.\n\
         purposes = [\"prevention\", \"investigation\", \"detection\"]"
    } else {
        "# With the prosecution protocol, as this gateway records it.\n\
         purposes = [\"prevention\", \"investigation\", \"detection\", \"prosecution\"]"
    };
    t.push_str(&format!(
        "[[agreement]]\nparties = [\"AL-CTD\", \"RS-MOI\"]\nbasis = \"appropriate_safeguards\"\n\
         reference = \"Police Cooperation Convention for Southeast Europe (2006)\"\n\
         max_classification = \"EU_RESTRICTED\"\n{purposes}\npersonal_data = true\n\
         special_categories = false\n\n"
    ));
    if let Some(at) = DEMO_POLICY.find("[retention]") {
        t.push_str(&DEMO_POLICY[at..]);
        t.push('\n');
    }
    for peer in NODES.iter().filter(|n| n.id != own.id) {
        t.push_str(&format!(
            "[[peer]]\nid = \"{id}\"\nurl = \"https://127.0.0.1:{port}\"\n\
             ca = \"peers/{id}-ca.crt\"\nenvelope_key = \"peers/{id}-envelope.pub\"\n\n",
            id = peer.id,
            port = base.saturating_add(peer.offset)
        ));
    }
    t
}

/// Prepares the three sites: each one's PKI, key and database (kept between
/// runs), then its configuration, policy and `peers/` folder with the other
/// two's CA and envelope public key (rewritten, so a new base port or a
/// recreated PKI is picked up).
pub fn prepare(root: &Path, base: u16) -> Result<Vec<Site>, String> {
    let sites: Vec<Site> = NODES.iter().map(|n| n.site(root, base)).collect();
    for site in &sites {
        site.prepare()?;
    }
    for (node, site) in NODES.iter().zip(&sites) {
        let write = |path: PathBuf, text: &str| {
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(site.config(), &site.config_text())?;
        write(site.policy(), &policy_text(node, base))?;
        let peers = site.dir.join("peers");
        std::fs::create_dir_all(&peers).map_err(|e| format!("{}: {e}", peers.display()))?;
        for (other, other_site) in NODES.iter().zip(&sites) {
            if other.id == node.id {
                continue;
            }
            for (from, to) in [
                ("ca.crt", format!("{}-ca.crt", other.id)),
                ("envelope-signing.pub", format!("{}-envelope.pub", other.id)),
            ] {
                let (src, dst) = (other_site.pki().join(from), peers.join(to));
                std::fs::copy(&src, &dst)
                    .map_err(|e| format!("copying {} to {}: {e}", src.display(), dst.display()))?;
            }
        }
    }
    Ok(sites)
}

/// Runs the federation demo: prepare `demo-federation/`, start the three
/// gateways, play the script with the console quiet, print the hints,
/// serve until Ctrl-C, stop all three.
pub async fn run(args: DemoArgs) -> u8 {
    let root = PathBuf::from(DIR);
    let sites = match prepare(&root, args.base_port) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_RUNTIME, format!("preparing ./{DIR} failed: {e}")),
    };
    // The console only; each gateway's threads log to its own file too.
    let telemetry = brdo::telemetry::init_with(LogSettings {
        format: LogFormatArg::resolve(args.log_format),
        file: None,
    });
    let mut gws = Gateways {
        all: Vec::new(),
        root,
    };
    for site in sites {
        match site.start_apart(&telemetry).await {
            Ok(g) => gws.all.push(g),
            Err(e) => {
                gws.stop().await;
                return fail(EXIT_RUNTIME, e);
            }
        }
    }
    let mut stage = Stage::new();
    for g in &gws.all {
        stage.say(&format!(
            "{} listening on https://{} (mTLS), serving {}; data in {}.",
            g.site().gateway_id.as_deref().unwrap_or("?"),
            g.addr(),
            g.site().partners.join(", "),
            absolute(&g.site().dir).display()
        ));
    }
    stage.say(&format!(
        "While the script runs, this terminal shows warnings only; each gateway's request logs \
         go to its own data/{LOG_FILE} (JSON lines), e.g. {}.",
        gws.all[1].site().data().join(LOG_FILE).display()
    ));
    let quiet = telemetry.quiet_console();
    let played = script(&gws, &mut stage).await;
    drop(quiet);
    let id = match played {
        Ok(id) => id,
        Err(e) => {
            eprintln!("error: the scripted exchange failed: {e}");
            gws.stop().await;
            return EXIT_RUNTIME;
        }
    };
    hints(&gws, &stage, &id);
    crate::cli::serve::shutdown_signal().await;
    gws.stop().await;
    EXIT_OK
}

/// The three running gateways, in [`NODES`] order.
pub struct Gateways {
    /// EU-HUB, AL-NCB, RS-NCB.
    pub all: Vec<DemoGateway>,
    /// Where the receipt for `verify-receipt` is saved.
    pub root: PathBuf,
}

impl Gateways {
    fn albania(&self) -> &DemoGateway {
        &self.all[1]
    }

    fn serbia(&self) -> &DemoGateway {
        &self.all[2]
    }

    /// Stops all three.
    pub async fn stop(self) {
        for g in self.all {
            g.stop().await;
        }
    }
}

fn err(e: ClientError) -> String {
    e.to_string()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("?").to_owned()
}

/// The message AL-CTD sends to `recipients` for `purpose`.
fn message(recipients: &[&str], purpose: &str, case_ref: &str) -> Value {
    json!({
        "recipients": recipients,
        "subject": "Travel of a returning foreign terrorist fighter",
        "body": "A person known to us as a returning foreign terrorist fighter is expected to cross into Serbia this week.",
        "content_type": "text/plain",
        "label": {
            "classification": "EU_RESTRICTED",
            "handling_codes": ["H0", "H2"],
            "releasable_to": recipients
        },
        "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
        "purpose": purpose,
        "personal_data": {"subjects": ["suspect"], "special_categories": [], "minors": false},
        "case_ref": case_ref,
        "retention_days": 365
    })
}

/// The receipt `jws` as AL-NCB checks it, with the sending peer's envelope
/// key from AL-NCB's `peers/` folder.
fn verified(al: &DemoGateway, via: &str, jws: &str) -> Result<Receipt, String> {
    let key = al
        .site()
        .dir
        .join("peers")
        .join(format!("{via}-envelope.pub"));
    let keys = JwsKeys::from_public_pem_file(&key).map_err(|e| e.to_string())?;
    Receipt::verify(jws, &keys).map_err(|e| e.to_string())
}

/// `RS-MOI relayed via RS-NCB, receipt accepted (verified)` for each
/// recipient of a status answer.
fn statuses(al: &DemoGateway, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for r in body["recipients"].as_array().into_iter().flatten() {
        let mut line = format!("{} {}", text(&r["partner"]), text(&r["status"]));
        if let Some(via) = r["via"].as_str() {
            line.push_str(&format!(" via {via}"));
            if let Some(jws) = r["receipt"].as_str() {
                match verified(al, via, jws) {
                    Ok(rc) => line.push_str(&format!(
                        ", receipt {} (signature verified)",
                        rc.kind.as_str()
                    )),
                    Err(e) => line.push_str(&format!(", receipt does not verify: {e}")),
                }
            }
        }
        out.push(line);
    }
    out
}

/// The status entry of `partner` in a status answer.
fn entry<'a>(body: &'a Value, partner: &str) -> &'a Value {
    body["recipients"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["partner"] == partner))
        .unwrap_or(&Value::Null)
}

/// AL-CTD asks AL-NCB for the status of `id` until `done` holds of the
/// answer (or [`PATIENCE`] passes; the last answer is given either way).
async fn status_until(
    albania: &Client,
    id: &str,
    done: impl Fn(&Value) -> bool,
    patience: Duration,
) -> Result<ClientResponse, String> {
    let started = Instant::now();
    loop {
        let resp = albania
            .get(&format!("/v1/messages/{id}/status"), &[])
            .await
            .map_err(err)?;
        if resp.status != 200 || done(&resp.json()) || started.elapsed() > patience {
            return Ok(resp);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The answer of a status request, each recipient a field.
fn status_answer(al: &DemoGateway, resp: &ClientResponse) -> Answer {
    let mut answer = Answer::of(resp);
    for line in statuses(al, &resp.json()) {
        answer = answer.field("recipient", line);
    }
    answer
}

/// Plays the script; returns the id of the first message (its receipt is
/// the one saved).
pub async fn script(gws: &Gateways, stage: &mut Stage) -> Result<String, String> {
    let albania = gws.albania().client("partner-AL-CTD")?;
    let serbia = gws.serbia().client("partner-RS-MOI")?;
    let id = send(gws, &albania, stage).await?;
    relayed(gws, &albania, stage, &id).await?;
    read(&serbia, stage, &id).await?;
    delivered(gws, &albania, stage, &id).await?;
    refused(gws, &albania, stage).await?;
    erase(gws, &albania, stage, &id).await?;
    stage.say(
        "Each gateway logged its own side in its own audit log: AL-NCB a disclose record per \
         accepting peer and a deny for RS-NCB's refusal, each peer a collect or deny record \
         naming AL-NCB. Their DPOs can match them by message id without sharing logs.",
    );
    Ok(id)
}

/// Step 1: AL-CTD sends to RS-MOI and Europol, both behind peers.
async fn send(gws: &Gateways, albania: &Client, stage: &mut Stage) -> Result<String, String> {
    let msg = message(&["RS-MOI", "EU-ECTC"], "investigation", "AL-2026-0042");
    let resp = albania
        .post_json("/v1/messages", &[("brdo-officer", "insp.hoxha")], &msg)
        .await
        .map_err(err)?;
    let body = resp.json();
    stage.step(&Step {
        does: "AL-CTD sends an EU_RESTRICTED message for an investigation to RS-MOI and EU-ECTC, \
               through its own gateway AL-NCB"
            .into(),
        by: "AL-CTD's partner certificate from AL-NCB's CA, officer insp.hoxha".into(),
        answer: Answer::of(&resp)
            .field("id", text(&body["id"]))
            .field("recipients", statuses(gws.albania(), &body).join(", ")),
        proves: "AL-NCB ran its whole policy; RS-MOI lives behind RS-NCB and Europol behind \
                 EU-HUB, so each waits, queued, in AL-NCB's durable outbox, one row per peer."
            .into(),
    });
    if resp.status != 201 {
        return Err(format!("the message was answered {}", resp.status));
    }
    Ok(text(&body["id"]))
}

/// Step 2: both relayed, with accepted receipts.
async fn relayed(
    gws: &Gateways,
    albania: &Client,
    stage: &mut Stage,
    id: &str,
) -> Result<(), String> {
    let resp = status_until(
        albania,
        id,
        |b| {
            ["RS-MOI", "EU-ECTC"]
                .iter()
                .all(|p| entry(b, p)["status"] == "relayed")
        },
        PATIENCE,
    )
    .await?;
    stage.step(&Step {
        does: "AL-CTD checks the delivery status on AL-NCB".into(),
        by: "AL-CTD's partner certificate".into(),
        answer: status_answer(gws.albania(), &resp),
        proves: "AL-NCB's relay delivered the message to each peer over mTLS, trusting only that \
                 peer's CA. Each peer ran its own policy, stored the message under its own keys \
                 and answered a receipt signed with its envelope key, naming its audit record."
            .into(),
    });
    let b = resp.json();
    if ["RS-MOI", "EU-ECTC"]
        .iter()
        .all(|p| entry(&b, p)["status"] == "relayed")
    {
        Ok(())
    } else {
        Err(format!(
            "the message was not relayed to both peers in time: {b}"
        ))
    }
}

/// Step 3: RS-MOI reads it on RS-NCB.
async fn read(serbia: &Client, stage: &mut Stage, id: &str) -> Result<(), String> {
    let resp = serbia
        .get(
            &format!("/v1/messages/{id}"),
            &[
                ("brdo-officer", "insp.petrovic"),
                ("brdo-justification", "Case AL-2026-0042: border alert"),
            ],
        )
        .await
        .map_err(err)?;
    let body = resp.json();
    stage.step(&Step {
        does: "RS-MOI reads the message on its own gateway RS-NCB, giving a justification".into(),
        by: "RS-MOI's partner certificate from RS-NCB's CA, officer insp.petrovic".into(),
        answer: Answer::of(&resp)
            .field("id", text(&body["id"]))
            .field("from", text(&body["from"]))
            .field("marking", text(&body["marking"])),
        proves: "The message arrived with the same id, sender and label. RS-NCB audits the read \
                 and, as it is the first, sends AL-NCB a signed delivered receipt."
            .into(),
    });
    if resp.status == 200 {
        Ok(())
    } else {
        Err(format!("RS-MOI's read was answered {}", resp.status))
    }
}

/// Step 4: AL-NCB shows delivered; the receipt verifies with RS-NCB's key
/// and is saved for `brdo verify-receipt`.
async fn delivered(
    gws: &Gateways,
    albania: &Client,
    stage: &mut Stage,
    id: &str,
) -> Result<(), String> {
    let resp = status_until(
        albania,
        id,
        |b| entry(b, "RS-MOI")["status"] == "delivered",
        PATIENCE,
    )
    .await?;
    let body = resp.json();
    let jws = entry(&body, "RS-MOI")["receipt"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let receipt = verified(gws.albania(), "RS-NCB", &jws);
    let mut answer = status_answer(gws.albania(), &resp);
    if let Ok(r) = &receipt {
        for (name, value) in super::super::verify_receipt::statement(r) {
            // The statuses above already use "recipient".
            let name = if name == "recipient" {
                "receipt for"
            } else {
                name
            };
            answer = answer.field(name, value);
        }
    }
    let file = gws.root.join(RECEIPT_FILE);
    std::fs::write(&file, format!("{jws}\n")).map_err(|e| format!("{}: {e}", file.display()))?;
    stage.step(&Step {
        does: "AL-CTD checks the status again; the demo verifies RS-MOI's latest receipt with \
               RS-NCB's envelope public key (Receipt::verify)"
            .into(),
        by: "AL-CTD's partner certificate; the key is AL-NCB's copy, peers/RS-NCB-envelope.pub"
            .into(),
        answer,
        proves: "RS-NCB's statement that RS-MOI first read this message at that time, which \
                 AL-NCB can show anyone without trusting RS-NCB's database. The receipt is \
                 saved beside the gateways for brdo verify-receipt (below)."
            .into(),
    });
    match receipt {
        Ok(r)
            if entry(&body, "RS-MOI")["status"] == "delivered"
                && r.kind.as_str() == "delivered" =>
        {
            Ok(())
        }
        Ok(r) => Err(format!("RS-MOI's receipt is {}: {body}", r.kind.as_str())),
        Err(e) => Err(format!("RS-MOI's receipt does not verify: {e}")),
    }
}

/// Steps 5 and 6: a message AL-NCB allows and RS-NCB refuses.
async fn refused(gws: &Gateways, albania: &Client, stage: &mut Stage) -> Result<(), String> {
    let msg = message(&["RS-MOI"], "prosecution", "AL-2026-0043");
    let resp = albania
        .post_json("/v1/messages", &[("brdo-officer", "insp.hoxha")], &msg)
        .await
        .map_err(err)?;
    let body = resp.json();
    stage.step(&Step {
        does: "AL-CTD sends RS-MOI a message for prosecution".into(),
        by: "AL-CTD's partner certificate, officer insp.hoxha".into(),
        answer: Answer::of(&resp)
            .field("id", text(&body["id"]))
            .field("recipients", statuses(gws.albania(), &body).join(", ")),
        proves: "AL-NCB's policy allows it: its record of the convention with Serbia includes \
                 the prosecution protocol."
            .into(),
    });
    if resp.status != 201 {
        return Err(format!(
            "the prosecution message was answered {}",
            resp.status
        ));
    }
    let id = text(&body["id"]);
    let resp = status_until(
        albania,
        &id,
        |b| entry(b, "RS-MOI")["status"] == "refused",
        PATIENCE,
    )
    .await?;
    let status = resp.json();
    let mut answer = status_answer(gws.albania(), &resp);
    let jws = entry(&status, "RS-MOI")["receipt"].as_str().unwrap_or("");
    if let Ok(r) = verified(gws.albania(), "RS-NCB", jws) {
        for v in &r.violations {
            answer = answer.field("violation", format!("{}: {}", v.code, v.detail));
        }
    }
    stage.step(&Step {
        does: "AL-CTD checks the status of that message".into(),
        by: "AL-CTD's partner certificate".into(),
        answer,
        proves: "RS-NCB is sovereign over its partners: its own policy has no prosecution \
                 purpose with Albania, so it refused, stored nothing, audited the refusal and \
                 sent a signed refused receipt with its codes, which AL-NCB shows its sender."
            .into(),
    });
    if entry(&status, "RS-MOI")["status"] == "refused" {
        Ok(())
    } else {
        Err(format!(
            "RS-NCB's refusal did not come back in time: {status}"
        ))
    }
}

/// Steps 7 and 8: AL-CTD erases the first message; what the peers confirm.
async fn erase(
    gws: &Gateways,
    albania: &Client,
    stage: &mut Stage,
    id: &str,
) -> Result<(), String> {
    let resp = albania
        .post_json(
            &format!("/v1/messages/{id}/review"),
            &[("brdo-officer", "insp.hoxha")],
            &json!({"decision": "erase", "reason": "Case AL-2026-0042 closed"}),
        )
        .await
        .map_err(err)?;
    stage.step(&Step {
        does: "AL-CTD, the originator, decides in a review to erase the first message".into(),
        by: "AL-CTD's partner certificate, officer insp.hoxha".into(),
        answer: Answer::of(&resp)
            .field("decision", text(&resp.json()["decision"]))
            .field("erased", resp.json()["erased"].to_string()),
        proves: "AL-NCB erased its copy of the family at once, and audited the decision.".into(),
    });
    if resp.status != 200 {
        return Err(format!("the erasure was answered {}", resp.status));
    }
    let peers_erased = |b: &Value| {
        ["RS-MOI", "EU-ECTC"].iter().all(|p| {
            let e = entry(b, p);
            e["receipt"].as_str().is_some_and(|jws| {
                e["via"]
                    .as_str()
                    .and_then(|via| verified(gws.albania(), via, jws).ok())
                    .is_some_and(|r| r.kind.as_str() == "erased")
            })
        })
    };
    // Lifecycle notices may not be built into this gateway yet: a short wait.
    let resp = status_until(albania, id, peers_erased, Duration::from_secs(3)).await?;
    let confirmed = peers_erased(&resp.json());
    let proves = if confirmed {
        "The erasure travelled as a notice to RS-NCB and EU-HUB; each erased its copy under its \
         own rules and sent a signed erased receipt."
    } else {
        "AL-NCB's copy is gone, but no peer has confirmed an erasure: this build does not yet \
         send lifecycle notices to peers (SPEC §11), so the copies at RS-NCB and EU-HUB remain \
         and their erasure is outstanding (the latest receipts are still those shown)."
    };
    stage.step(&Step {
        does: "AL-CTD checks the status of the erased message".into(),
        by: "AL-CTD's partner certificate".into(),
        answer: status_answer(gws.albania(), &resp).field(
            "erasure",
            if confirmed {
                "confirmed by both peers"
            } else {
                "outstanding at RS-NCB and EU-HUB"
            },
        ),
        proves: proves.into(),
    });
    Ok(())
}

/// After the script: each gateway's DPO page, `verify-receipt` as it can be
/// pasted, each audit log's verification, Ctrl-C.
pub fn hints(gws: &Gateways, stage: &Stage, id: &str) {
    stage.say(
        "The three gateways keep serving, their request logs on this terminal again; press \
         Ctrl-C to stop all three.",
    );
    for g in &gws.all {
        let pki = absolute(&g.site().pki());
        stage.say(&format!(
            "{}'s DPO page: import {} (PKCS#12, password {DEMO_P12_PASSWORD}) in a browser, \
             trust {} or accept the warning, then open https://127.0.0.1:{}/dpo",
            g.site().gateway_id.as_deref().unwrap_or("?"),
            pki.join("dpo-gateway.p12").display(),
            pki.join("ca.crt").display(),
            g.addr().port()
        ));
    }
    let exe =
        std::env::current_exe().map_or_else(|_| "brdo".to_owned(), |p| p.display().to_string());
    let al = gws.albania().site();
    stage.verbatim(&format!(
        "Verify RS-NCB's delivered receipt offline with its envelope public key (AL-NCB's copy):\n\
         {exe} verify-receipt --receipt {} --pubkey {} --message {id} --gateway RS-NCB --to AL-NCB\n\n",
        absolute(&gws.root.join(RECEIPT_FILE)).display(),
        absolute(&al.dir.join("peers").join("RS-NCB-envelope.pub")).display(),
    ));
    let mut lines = String::from("Verify each gateway's audit log offline (also after Ctrl-C):\n");
    for g in &gws.all {
        lines.push_str(&format!(
            "{exe} audit verify --config {}\n",
            absolute(&g.site().config()).display()
        ));
    }
    lines.push('\n');
    stage.verbatim(&lines);
}
