//! `brdo verify-binding`: a recipient checks, offline and with only the
//! gateway's envelope public key, that a message as received still carries
//! the label, recipients and content the gateway bound at delivery.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_VERIFY, fail};
use brdo::binding::{self, BindingError};
use brdo::crypto::jose::JwsKeys;

/// Arguments of `verify-binding`.
#[derive(Debug, Args)]
pub struct VerifyBindingArgs {
    /// The message as received from `GET /v1/messages/{id}` (JSON, with its
    /// `binding`).
    #[arg(long)]
    pub message: PathBuf,
    /// The gateway's envelope public key (`envelope-signing.pub`).
    #[arg(long)]
    pub pubkey: PathBuf,
    /// An attachment's content to check against its bound digest, as
    /// `ID=FILE` (repeat).
    #[arg(long = "attachment", value_name = "ID=FILE")]
    pub attachments: Vec<String>,
}

/// Runs the command: 0 when the binding holds, 3 naming every difference
/// when it does not, 2 for unreadable input.
pub fn run(args: &VerifyBindingArgs) -> u8 {
    let doc: serde_json::Value = match std::fs::read(&args.message)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("not JSON: {e}")))
    {
        Ok(d) => d,
        Err(e) => return fail(EXIT_CONFIG, format!("{}: {e}", args.message.display())),
    };
    let keys = match JwsKeys::from_public_pem_file(&args.pubkey) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let mut files = Vec::new();
    for a in &args.attachments {
        let Some((id, path)) = a.split_once('=') else {
            return fail(
                EXIT_CONFIG,
                format!("--attachment {a:?}: give it as ID=FILE"),
            );
        };
        match std::fs::read(path) {
            Ok(bytes) => files.push((id.to_owned(), bytes)),
            Err(e) => return fail(EXIT_CONFIG, format!("--attachment {path}: {e}")),
        }
    }
    match binding::verify(&doc, None, &keys, &files) {
        Ok(v) => {
            println!(
                "the binding of message {} holds: label, evaluation, recipients, subject and body are as the gateway bound them",
                v.id
            );
            for id in &v.attachments_checked {
                println!("attachment {id}: content as bound");
            }
            for id in &v.attachments_unchecked {
                println!("attachment {id}: bound, not checked (give --attachment {id}=FILE)");
            }
            EXIT_OK
        }
        Err(BindingError::Differs(list)) => {
            eprintln!("error: message differs from its binding:");
            for d in list {
                eprintln!("  {d}");
            }
            EXIT_VERIFY
        }
        Err(e @ BindingError::Signature(_)) => fail(EXIT_VERIFY, e),
        Err(e) => fail(EXIT_CONFIG, e),
    }
}
