//! The quickstart scenario: one gateway, an allowed message, a denied one,
//! a justified read, an acknowledgement and the sender's status view; then
//! the hints for trying it further.

use serde_json::{Value, json};

use super::DEMO_P12_PASSWORD;
use super::absolute;
use super::site::DemoGateway;
use super::stage::{Answer, Stage, Step};
use brdo_tools::client::{Client, ClientError};

fn err(e: ClientError) -> String {
    e.to_string()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("?").to_owned()
}

/// `EU-ECTC queued, RS-MOI acknowledged` from a `recipients` array.
fn statuses(recipients: &Value) -> String {
    recipients
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| format!("{} {}", text(&r["partner"]), text(&r["status"])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The message AL-CTD sends; XK-CTD tries the same with its own case.
fn message() -> Value {
    json!({
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
    })
}

/// Plays the script on `gateway`, printing each step on `stage`; returns
/// the id of the message sent.
pub async fn script(gateway: &DemoGateway, stage: &mut Stage) -> Result<String, String> {
    let albania = gateway.client("partner-AL-CTD")?;
    let kosovo = gateway.client("partner-XK-CTD")?;
    let serbia = gateway.client("partner-RS-MOI")?;
    let id = send(&albania, stage).await?;
    deny(&kosovo, stage).await?;
    receive(&serbia, stage, &id).await?;
    status(&albania, stage, &id).await?;
    stage.say(
        "Every step above is an audit record, found by its request id: the DPO's page \
         (below) shows them, with proofs that the log was not altered.",
    );
    Ok(id)
}

/// Step 1: an allowed message.
async fn send(albania: &Client, stage: &mut Stage) -> Result<String, String> {
    let resp = albania
        .post_json(
            "/v1/messages",
            &[("brdo-officer", "insp.hoxha")],
            &message(),
        )
        .await
        .map_err(err)?;
    let body = resp.json();
    stage.step(&Step {
        does: "AL-CTD sends an EU_RESTRICTED message, handling codes H0 H2 H3, to RS-MOI and \
               EU-ECTC (Europol)"
            .into(),
        by: "AL-CTD's partner certificate (partner-AL-CTD), officer insp.hoxha".into(),
        answer: Answer::of(&resp)
            .field("id", text(&body["id"]))
            .field("recipients", statuses(&body["recipients"]))
            .field("retain until", text(&body["retain_until"])),
        proves: "The policy allows it: AL-CTD is cleared for EU_RESTRICTED, and its agreements \
                 with RS-MOI and Europol permit investigation with personal data. The message \
                 is stored encrypted and queued for each recipient."
            .into(),
    });
    if resp.status != 201 {
        return Err(format!("the allowed message was answered {}", resp.status));
    }
    Ok(text(&body["id"]))
}

/// Step 2: the same kind of message from a partner the policy refuses.
async fn deny(kosovo: &Client, stage: &mut Stage) -> Result<(), String> {
    let mut denied = message();
    denied["case_ref"] = json!("XK-2026-0007");
    let resp = kosovo
        .post_json("/v1/messages", &[("brdo-officer", "analyst.7")], &denied)
        .await
        .map_err(err)?;
    let body = resp.json();
    let mut answer = Answer::of(&resp).field("code", text(&body["code"]));
    for v in body["violations"].as_array().into_iter().flatten() {
        let whom = v["recipient"].as_str().unwrap_or("sender");
        answer = answer.field(
            "violation",
            format!("{whom}: {} ({})", text(&v["code"]), text(&v["detail"])),
        );
    }
    stage.step(&Step {
        does: "XK-CTD tries to send the same kind of message to RS-MOI and EU-ECTC".into(),
        by: "XK-CTD's partner certificate (partner-XK-CTD), officer analyst.7".into(),
        answer,
        proves: "The policy refuses before anything is stored and names every rule broken, per \
                 recipient: the classification is above XK-CTD's clearance, no agreement links \
                 it with RS-MOI, and its Europol arrangement excludes personal data. The \
                 refusal is audited too."
            .into(),
    });
    if resp.status == 403 {
        Ok(())
    } else {
        Err(format!("the refused message was answered {}", resp.status))
    }
}

/// Steps 3 to 5: the recipient lists, reads with a justification and
/// acknowledges.
async fn receive(serbia: &Client, stage: &mut Stage, id: &str) -> Result<(), String> {
    let resp = serbia.get("/v1/inbox", &[]).await.map_err(err)?;
    let first = &resp.json()["messages"][0];
    stage.step(&Step {
        does: "RS-MOI lists its inbox".into(),
        by: "RS-MOI's partner certificate (partner-RS-MOI); listing needs no officer".into(),
        answer: Answer::of(&resp)
            .field(
                "first",
                format!("{} from {}", text(&first["id"]), text(&first["from"])),
            )
            .field("marking", text(&first["marking"]))
            .field("status", text(&first["status"])),
        proves: "A recipient sees the label, marking and purpose of what it was sent before \
                 opening it; nothing is marked read yet."
            .into(),
    });

    let path = format!("/v1/messages/{id}");
    let officer = ("brdo-officer", "insp.petrovic");
    let why = ("brdo-justification", "Case AL-2026-0042: border alert");
    let resp = serbia.get(&path, &[officer, why]).await.map_err(err)?;
    let body = resp.json();
    stage.step(&Step {
        does: "RS-MOI reads the message, giving a justification".into(),
        by: "RS-MOI's partner certificate, officer insp.petrovic, justification \"Case \
             AL-2026-0042: border alert\""
            .into(),
        answer: Answer::of(&resp)
            .field("marking", text(&body["marking"]))
            .field("H3", text(&body["label"]["h3_text"]))
            .field(
                "binding",
                if body["binding"].is_string() {
                    "signed by the gateway (check it with brdo verify-binding)"
                } else {
                    "absent"
                },
            ),
        proves: "Reading needs a named officer and a reason, both kept in the audit record; \
                 the handling restriction and the signed label travel with the content."
            .into(),
    });

    let json_type = ("content-type", "application/json");
    let resp = serbia
        .request(
            hyper::Method::POST,
            &format!("{path}/ack"),
            &[officer, json_type],
            None,
        )
        .await
        .map_err(err)?;
    let body = resp.json();
    stage.step(&Step {
        does: "RS-MOI acknowledges the message".into(),
        by: "RS-MOI's partner certificate, officer insp.petrovic".into(),
        answer: Answer::of(&resp)
            .field("status", text(&body["status"]))
            .field("at", text(&body["updated_at"])),
        proves: "Receipt is confirmed by a named officer and recorded for this recipient only."
            .into(),
    });
    Ok(())
}

/// Step 6: the sender's view of delivery.
async fn status(albania: &Client, stage: &mut Stage, id: &str) -> Result<(), String> {
    let resp = albania
        .get(&format!("/v1/messages/{id}/status"), &[])
        .await
        .map_err(err)?;
    stage.step(&Step {
        does: "AL-CTD checks the delivery status of its message".into(),
        by: "AL-CTD's partner certificate (partner-AL-CTD)".into(),
        answer: Answer::of(&resp).field("recipients", statuses(&resp.json()["recipients"])),
        proves: "The sender follows each recipient's status of its own messages: RS-MOI \
                 acknowledged, Europol has not fetched it yet."
            .into(),
    });
    Ok(())
}

/// After the script: curl lines to paste, the DPO page in a browser, and
/// how to verify the audit log.
pub fn hints(gateway: &DemoGateway, stage: &Stage) {
    let port = gateway.addr().port();
    stage.say("The gateway keeps serving, its request logs on this terminal again; press Ctrl-C to stop. Try:");
    stage.verbatim(&curl_lines(&gateway.site().dir.join("pki"), port));
    let pki = absolute(&gateway.site().pki());
    let p12 = |stem: &str| pki.join(format!("{stem}.p12")).display().to_string();
    stage.say(&format!(
        "The DPO's page in a browser: import {} (PKCS#12, password {DEMO_P12_PASSWORD}) as your \
         certificate (Firefox: Settings > Privacy & Security > View Certificates > Your \
         Certificates > Import), trust {} as an authority or accept the warning, then open \
         https://127.0.0.1:{port}/dpo",
        p12("dpo-gateway"),
        pki.join("ca.crt").display(),
    ));
    stage.say(&format!(
        "The operator's certificate, the same way: {} (password {DEMO_P12_PASSWORD}), e.g. \
         https://127.0.0.1:{port}/v1/admin/partners",
        p12("operator-admin"),
    ));
    let exe =
        std::env::current_exe().map_or_else(|_| "brdo".to_owned(), |p| p.display().to_string());
    stage.verbatim(&format!(
        "Verify the audit log offline (hash chain, every signed checkpoint; also after Ctrl-C):\n\
         {exe} audit verify --config {}\n",
        absolute(&gateway.site().config()).display()
    ));
}

/// Four curl lines, with paths relative to the directory the demo runs in.
fn curl_lines(pki: &std::path::Path, port: u16) -> String {
    let base = format!("https://localhost:{port}");
    let p = pki.display();
    let tls =
        |stem: &str| format!("--cacert {p}/ca.crt --cert {p}/{stem}.crt --key {p}/{stem}.key");
    let mut out = String::new();
    out.push_str("# RS-MOI's inbox (long-poll up to 30 s for new messages)\n");
    out.push_str(&format!(
        "curl -s {} '{base}/v1/inbox?wait=30'\n\n",
        tls("partner-RS-MOI")
    ));
    out.push_str("# BA-SIPA sends a message to ME-MOI\n");
    out.push_str(&format!(
        "curl -s {} -H 'Content-Type: application/json' -H 'Brdo-Officer: insp.kovac' \\\n  -d '{{\"recipients\":[\"ME-MOI\"],\"subject\":\"Hello\",\"body\":\"Test message\",\"label\":{{\"classification\":\"BASIC_PROTECTION\"}},\"evaluation\":{{\"scheme\":\"EU-4x4\",\"source\":\"A\",\"information\":\"1\"}},\"purpose\":\"prevention\",\"personal_data\":{{\"subjects\":[]}}}}' \\\n  {base}/v1/messages\n\n",
        tls("partner-BA-SIPA")
    ));
    out.push_str("# ME-MOI reads it (use the id from the answer above)\n");
    out.push_str(&format!(
        "curl -s {} -H 'Brdo-Officer: insp.vukovic' -H 'Brdo-Justification: checking the demo' {base}/v1/messages/ID\n\n",
        tls("partner-ME-MOI")
    ));
    out.push_str("# A certificate with no role on this endpoint gets 403 forbidden_role\n");
    out.push_str(&format!(
        "curl -s {} {base}/v1/inbox\n\n",
        tls("dpo-gateway")
    ));
    out
}
