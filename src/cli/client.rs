//! `brdo client`: the partner API from the command line.
//!
//! Why: integrators can try the API (send, inbox, read, ack, forward,
//! status) with a certificate from a PKI directory before writing any
//! code, and see exactly the JSON the gateway answers. It speaks through
//! the same mTLS client the demo and the tests use (`brdo_tools::client`).
//! Answers go to stdout as pretty JSON; a 4xx/5xx answer's problem document
//! goes to stderr and the exit code is 1.

use std::io::Read;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use brdo_tools::client::{Client, ClientResponse, Protocol, tls_config};

/// Who calls which gateway.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// PKI directory holding `ca.crt` and `partner-<ID>.crt`/`.key`.
    #[arg(long, default_value = "demo/pki")]
    pub pki: PathBuf,
    /// The partner to act as (its certificate is `partner-<ID>.crt`).
    #[arg(long = "as", value_name = "PARTNER_ID")]
    pub partner: String,
    /// The gateway, `host:port`; `host` must be a name in its certificate.
    #[arg(long, default_value = "localhost:8443")]
    pub gateway: String,
    /// The acting officer (`Brdo-Officer`), needed to send, read, ack and
    /// forward.
    #[arg(long, env = "BRDO_OFFICER")]
    pub officer: Option<String>,
    /// The call.
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The calls.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Submit a message: a whole JSON document (`--message FILE`, `-` for
    /// stdin) or one built from flags.
    Send(Box<SendArgs>),
    /// List message headers delivered to the partner.
    Inbox {
        /// Cursor: the `next` of an earlier call (opaque text; `0` or
        /// none starts from the beginning).
        #[arg(long)]
        after: Option<String>,
        /// Page size (1 to 500).
        #[arg(long)]
        limit: Option<u32>,
        /// Seconds to wait for a first message (0 to 60).
        #[arg(long)]
        wait: Option<u64>,
    },
    /// Read a whole message (a consultation: needs a justification).
    Read {
        /// The message id.
        id: String,
        /// Why it is read (`Brdo-Justification`).
        #[arg(long)]
        justification: String,
    },
    /// Acknowledge a received message.
    Ack {
        /// The message id.
        id: String,
    },
    /// Forward a received message onward.
    Forward {
        /// The message id.
        id: String,
        /// New recipients.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// Why it is passed on.
        #[arg(long)]
        justification: String,
    },
    /// Delivery status of a message the partner sent.
    Status {
        /// The message id.
        id: String,
    },
}

/// `send`: a JSON file, or flags for the common fields.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The whole message as JSON (SPEC §3); `-` reads stdin.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["to", "subject", "body"])]
    pub message: Option<PathBuf>,
    /// Recipients.
    #[arg(long = "to", required_unless_present = "message")]
    pub to: Vec<String>,
    /// Subject line.
    #[arg(long, required_unless_present = "message")]
    pub subject: Option<String>,
    /// Body text.
    #[arg(long, required_unless_present = "message")]
    pub body: Option<String>,
    /// Classification.
    #[arg(long, default_value = "BASIC_PROTECTION")]
    pub classification: String,
    /// Handling codes (H0–H3).
    #[arg(long = "handling")]
    pub handling: Vec<String>,
    /// The H3 restriction text.
    #[arg(long)]
    pub h3_text: Option<String>,
    /// Partners the information may ever reach.
    #[arg(long = "releasable-to")]
    pub releasable_to: Vec<String>,
    /// Evaluation as SCHEME:SOURCE:INFORMATION.
    #[arg(long, default_value = "EU-4x4:A:1")]
    pub evaluation: String,
    /// Purpose of processing.
    #[arg(long, default_value = "prevention")]
    pub purpose: String,
    /// Categories of persons concerned (empty: no personal data).
    #[arg(long = "data-subject")]
    pub data_subjects: Vec<String>,
    /// The case reference.
    #[arg(long)]
    pub case_ref: Option<String>,
    /// Retention asked for, in days.
    #[arg(long)]
    pub retention_days: Option<u32>,
    /// `Idempotency-Key`, so a retry cannot send twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Sign what is sent with the partner certificate's key
    /// (`Brdo-Signature`, SPEC §3), for non-repudiation of origin.
    #[arg(long)]
    pub sign: bool,
    /// With `--sign` and attachments: an attachment's SHA-256 as its upload
    /// answered, `ID=HEX` (repeat).
    #[arg(long = "attachment-sha256", value_name = "ID=HEX", requires = "sign")]
    pub attachment_sha256: Vec<String>,
}

/// The `Brdo-Signature` of a submission by `args.partner`, made with its
/// key and certificate from the PKI directory.
fn sign_submission(args: &ClientArgs, send: &SendArgs, doc: &Value) -> Result<String, String> {
    let stem = format!("partner-{}", args.partner);
    let read = |ext: &str| {
        let p = args.pki.join(format!("{stem}.{ext}"));
        std::fs::read(&p).map_err(|e| format!("--sign: {}: {e}", p.display()))
    };
    let (key, crt) = (read("key")?, read("crt")?);
    let mut digests = std::collections::BTreeMap::new();
    for a in &send.attachment_sha256 {
        let (id, hex) = a
            .split_once('=')
            .ok_or_else(|| format!("--attachment-sha256 {a:?}: give it as ID=HEX"))?;
        digests.insert(id.to_owned(), hex.to_ascii_lowercase());
    }
    let statement = brdo::signature::submission_statement(&args.partner, doc, &|id| {
        digests.get(id).cloned().unwrap_or_default()
    })
    .map_err(|e| format!("--sign: {e}"))?;
    brdo::signature::sign(&key, &crt, &statement).map_err(|e| format!("--sign: {e}"))
}

/// Runs a client call; the exit code.
pub async fn run(args: ClientArgs) -> u8 {
    let client = match connect(&args) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let officer = args.officer.clone();
    let mut headers: Vec<(&str, String)> = Vec::new();
    if let Some(o) = &officer {
        headers.push(("brdo-officer", o.clone()));
    }
    let (method, path, body) = match &args.command {
        ClientCommand::Send(send) => {
            let doc = match message_of(send) {
                Ok(d) => d,
                Err(e) => return fail(EXIT_CONFIG, e),
            };
            if let Some(k) = &send.idempotency_key {
                headers.push(("idempotency-key", k.clone()));
            }
            if send.sign {
                match sign_submission(&args, send, &doc) {
                    Ok(sig) => headers.push(("brdo-signature", sig)),
                    Err(e) => return fail(EXIT_CONFIG, e),
                }
            }
            (Method::POST, "/v1/messages".to_owned(), Some(doc))
        }
        ClientCommand::Inbox { after, limit, wait } => {
            let query: Vec<String> = [
                ("after", after.as_deref().map(segment)),
                ("limit", limit.map(|l| l.to_string())),
                ("wait", wait.map(|w| w.to_string())),
            ]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
            let path = if query.is_empty() {
                "/v1/inbox".to_owned()
            } else {
                format!("/v1/inbox?{}", query.join("&"))
            };
            (Method::GET, path, None)
        }
        ClientCommand::Read { id, justification } => {
            headers.push(("brdo-justification", justification.clone()));
            (Method::GET, format!("/v1/messages/{}", segment(id)), None)
        }
        ClientCommand::Ack { id } => (
            Method::POST,
            format!("/v1/messages/{}/ack", segment(id)),
            None,
        ),
        ClientCommand::Forward {
            id,
            to,
            justification,
        } => (
            Method::POST,
            format!("/v1/messages/{}/forward", segment(id)),
            Some(json!({"recipients": to, "justification": justification})),
        ),
        ClientCommand::Status { id } => (
            Method::GET,
            format!("/v1/messages/{}/status", segment(id)),
            None,
        ),
    };
    let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bytes = body.map(|b| b.to_string().into_bytes());
    // State-changing calls declare JSON even without a body (SPEC §3).
    if method != Method::GET {
        h.push(("content-type", "application/json"));
    }
    match client.request(method, &path, &h, bytes).await {
        Ok(resp) => print(&resp),
        Err(e) => fail(EXIT_RUNTIME, format!("{}: {e}", args.gateway)),
    }
}

/// Percent-encodes anything but unreserved characters, so an id cannot
/// change the path.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn connect(args: &ClientArgs) -> Result<Client, String> {
    let stem = format!("partner-{}", args.partner);
    let cert = args.pki.join(format!("{stem}.crt"));
    if !cert.exists() {
        return Err(format!(
            "--as {}: {} does not exist (issue it with `brdo pki issue --dir {} --partner {}`)",
            args.partner,
            cert.display(),
            args.pki.display(),
            args.partner
        ));
    }
    let tls = tls_config(
        &cert,
        &args.pki.join(format!("{stem}.key")),
        &args.pki.join("ca.crt"),
        Protocol::Http1,
    )
    .map_err(|e| format!("--pki: {e}"))?;
    let (host, _) = args
        .gateway
        .rsplit_once(':')
        .ok_or_else(|| format!("--gateway {}: must be host:port", args.gateway))?;
    let addr = args
        .gateway
        .to_socket_addrs()
        .map_err(|e| format!("--gateway {}: {e}", args.gateway))?
        .next()
        .ok_or_else(|| format!("--gateway {}: the name has no address", args.gateway))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(Client::new(tls, addr, host, Protocol::Http1))
}

/// The message document, from the file or the flags.
fn message_of(send: &SendArgs) -> Result<Value, String> {
    if let Some(path) = &send.message {
        return read_json(path);
    }
    let mut parts = send.evaluation.splitn(3, ':');
    let (Some(scheme), Some(source), Some(information)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "--evaluation {}: must be SCHEME:SOURCE:INFORMATION, e.g. EU-4x4:B:2",
            send.evaluation
        ));
    };
    let mut label = json!({"classification": send.classification});
    if !send.handling.is_empty() {
        label["handling_codes"] = json!(send.handling);
    }
    if let Some(t) = &send.h3_text {
        label["h3_text"] = json!(t);
    }
    if !send.releasable_to.is_empty() {
        label["releasable_to"] = json!(send.releasable_to);
    }
    let mut doc = json!({
        "recipients": send.to,
        "subject": send.subject,
        "body": send.body,
        "label": label,
        "evaluation": {"scheme": scheme, "source": source, "information": information},
        "purpose": send.purpose,
        "personal_data": {"subjects": send.data_subjects},
    });
    if let Some(c) = &send.case_ref {
        doc["case_ref"] = json!(c);
    }
    if let Some(d) = send.retention_days {
        doc["retention_days"] = json!(d);
    }
    Ok(doc)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| format!("--message {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("--message {}: not JSON: {e}", path.display()))
}

/// Prints the answer: JSON to stdout on success, the problem document to
/// stderr otherwise.
fn print(resp: &ClientResponse) -> u8 {
    let body = match serde_json::from_slice::<Value>(&resp.body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&resp.body).into_owned(),
    };
    if resp.status < 400 {
        println!("{body}");
        EXIT_OK
    } else {
        eprintln!("HTTP {}\n{body}", resp.status);
        EXIT_RUNTIME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(segment("0193a1b2-7c3d"), "0193a1b2-7c3d");
        assert_eq!(segment("../admin?x"), "..%2Fadmin%3Fx");
    }
}
