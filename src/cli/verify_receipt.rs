//! `brdo verify-receipt`: a DPO or operator checks, offline and with only
//! the peer gateway's envelope public key, what a receipt from that peer
//! proves (SPEC §11 "Receipts"), and optionally that it is the receipt for
//! a given message, from a given gateway, to a given gateway.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_VERIFY, fail};
use brdo::crypto::jose::JwsKeys;
use brdo::domain::PartnerId;
use brdo::federation::{Receipt, ReceiptError};

/// Arguments of `verify-receipt`.
#[derive(Debug, Args)]
pub struct VerifyReceiptArgs {
    /// The receipt: a file holding the compact JWS (as `GET
    /// /v1/messages/{id}/status` shows it in `receipt`).
    #[arg(long)]
    pub receipt: PathBuf,
    /// The acting gateway's envelope public key (its `envelope_key`).
    #[arg(long)]
    pub pubkey: PathBuf,
    /// The message the receipt must be about.
    #[arg(long)]
    pub message: Option<String>,
    /// The gateway that must have acted and signed it.
    #[arg(long)]
    pub gateway: Option<String>,
    /// The gateway it must be addressed to (the message's origin).
    #[arg(long)]
    pub to: Option<String>,
}

/// Runs the command: 0 printing what the receipt states when it holds, 3
/// saying why when it does not, 2 for unreadable input or bad flags.
pub fn run(args: &VerifyReceiptArgs) -> u8 {
    let compact = match std::fs::read_to_string(&args.receipt) {
        Ok(t) => t.trim().to_owned(),
        Err(e) => return fail(EXIT_CONFIG, format!("{}: {e}", args.receipt.display())),
    };
    let keys = match JwsKeys::from_public_pem_file(&args.pubkey) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let id = |flag: &str, v: &Option<String>| -> Result<Option<PartnerId>, String> {
        v.as_deref()
            .map(|s| {
                PartnerId::parse(s)
                    .ok_or_else(|| format!("--{flag} {s:?}: not a gateway id (e.g. RS-NCB)"))
            })
            .transpose()
    };
    let (gateway, to) = match (id("gateway", &args.gateway), id("to", &args.to)) {
        (Ok(g), Ok(t)) => (g, t),
        (Err(e), _) | (_, Err(e)) => return fail(EXIT_CONFIG, e),
    };
    let receipt = match Receipt::verify(&compact, &keys) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_VERIFY, format!("{}: {e}", args.receipt.display())),
    };
    // Flags not given are not checked: the receipt's own values stand in.
    let held = receipt.expect(
        gateway.as_ref().unwrap_or(&receipt.gateway),
        to.as_ref().unwrap_or(&receipt.to),
        args.message.as_deref().unwrap_or(&receipt.message_id),
    );
    match held {
        Ok(()) => {
            print_statement(&receipt);
            EXIT_OK
        }
        Err(e @ ReceiptError::Mismatch { .. }) => fail(
            EXIT_VERIFY,
            format!("{}: the signature holds, but {e}", args.receipt.display()),
        ),
        Err(e) => fail(EXIT_VERIFY, format!("{}: {e}", args.receipt.display())),
    }
}

/// Prints the statement one member a line; text the peer chose is escaped,
/// so a receipt cannot write terminal controls.
fn print_statement(r: &Receipt) {
    for (name, value) in statement(r) {
        println!("{name}: {value}");
    }
}

/// What a receipt states, one member a pair, its peer-given texts escaped:
/// printed by this command, and shown by `brdo demo --federation` so the
/// demo and the command read alike.
pub fn statement(r: &Receipt) -> Vec<(&'static str, String)> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let mut out = vec![
        ("kind", r.kind.as_str().to_owned()),
        ("gateway", r.gateway.to_string()),
        ("to", r.to.to_string()),
        ("message", clean(&r.message_id)),
        (
            "recipient",
            opt(r.recipient.as_ref().map(ToString::to_string)),
        ),
        ("at", clean(&r.at)),
        ("audit_seq", opt(r.audit_seq.map(|n| n.to_string()))),
        ("tree_size", opt(r.tree_size.map(|n| n.to_string()))),
    ];
    if let Some(n) = &r.notice {
        out.push(("notice", clean(n)));
    }
    if r.violations.is_empty() {
        out.push(("violations", "none".to_owned()));
    }
    for v in &r.violations {
        out.push((
            "violation",
            format!("{}: {}", clean(&v.code), clean(&v.detail)),
        ));
    }
    out
}

/// `s` with control and invisible characters escaped.
fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escape = c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
            let out: Vec<char> = if escape { c.escape_unicode().collect() } else { vec![c] };
            out
        })
        .collect()
}
