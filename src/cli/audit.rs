//! `brdo audit verify`: the whole log, or an export offline.
//!
//! With `--config`, reads the gateway's database: the hash chain, every
//! stored checkpoint's signature (with the published key) and root, and
//! that no checkpoint covers records that are gone. With `--export FILE
//! --checkpoint JWS --pubkey PEM`, does the same for a JSON Lines export,
//! with no database: what a supervisory authority runs on what it was
//! given. Exit 3 names the first bad record.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, EXIT_VERIFY, fail};
use brdo::audit::AuditRecord;
use brdo::audit::verify::{ChainFault, CheckpointClaim, LogReport, LogVerifier};
use brdo::config::Config;
use brdo::crypto::jose::CheckpointVerifier;
use brdo::store::{Block, Store, StoreOptions};

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit log; exit 3 and name the first bad record on
    /// tampering.
    Verify {
        /// The gateway configuration file (its database is verified).
        #[arg(long, conflicts_with_all = ["export", "checkpoint"])]
        config: Option<PathBuf>,
        /// A JSON Lines export (`GET /v1/audit/export`) to verify offline.
        #[arg(long, requires_all = ["checkpoint", "pubkey"])]
        export: Option<PathBuf>,
        /// A signed checkpoint (compact JWS, or a file holding one) the
        /// export must match.
        #[arg(long)]
        checkpoint: Option<String>,
        /// The audit signing public key (PEM); with `--config` the default
        /// is `audit.public_key`.
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
}

/// Runs an audit command.
pub async fn run(cmd: AuditCommand) -> u8 {
    let AuditCommand::Verify {
        config,
        export,
        checkpoint,
        pubkey,
    } = cmd;
    match (config, export, checkpoint, pubkey) {
        (Some(config), None, None, pubkey) => verify_database(&config, pubkey.as_deref()).await,
        (None, Some(export), Some(checkpoint), Some(pubkey)) => {
            verify_export(&export, &checkpoint, &pubkey)
        }
        _ => fail(
            EXIT_CONFIG,
            "give --config FILE, or --export FILE --checkpoint JWS --pubkey PEM",
        ),
    }
}

fn progress(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn report(result: Result<LogReport, ChainFault>, started: Instant) -> u8 {
    match result {
        Ok(r) => {
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            println!(
                "audit log verified: {} records ({} reduced to their hashes by audit retention), {} signed checkpoints, root {}, chain head {}, {:.0} records/s",
                r.records,
                r.reduced,
                r.checkpoints,
                r.root,
                r.head,
                r.records as f64 / secs
            );
            EXIT_OK
        }
        Err(fault) => {
            eprintln!(
                "audit log verification FAILED at record {}: {fault}",
                fault.seq()
            );
            EXIT_VERIFY
        }
    }
}

const PAGE: u32 = 20_000;

async fn verify_database(config_path: &Path, pubkey: Option<&Path>) -> u8 {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let keys = match CheckpointVerifier::from_public_pem_file(
        pubkey.unwrap_or(&config.audit.public_key),
    ) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_CONFIG, format!("audit public key: {e}")),
    };
    let store = match Store::open(&StoreOptions::for_tool(&config)).await {
        Ok(s) => s,
        Err(e) => return fail(EXIT_RUNTIME, e),
    };
    let (claims, total) = match (store.checkpoints().await, store.audit_size().await) {
        (Ok(c), Ok(n)) => (c, n),
        (Err(e), _) | (_, Err(e)) => {
            return fail(EXIT_RUNTIME, format!("reading the audit log failed: {e}"));
        }
    };
    let claims: Vec<CheckpointClaim> = claims
        .into_iter()
        .map(|c| CheckpointClaim {
            tree_size: c.tree_size,
            root_hash: c.root_hash,
            jws: c.jws,
        })
        .collect();
    let started = Instant::now();
    let bar = progress(total);
    // Read blocks on the runtime while a blocking thread hashes: the two
    // halves of the work run on both cores.
    let bulk = match store.bulk_reader(&config.database.url).await {
        Ok(b) => b,
        Err(e) => return fail(EXIT_RUNTIME, e),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Block>(4);
    let reader = tokio::spawn(async move {
        let mut after = 0;
        while let Some((block, next)) = bulk.block(after, PAGE).await? {
            after = next;
            if tx.send(block).await.is_err() {
                break;
            }
        }
        Ok::<(), brdo::store::StoreError>(())
    });
    let checker = tokio::task::spawn_blocking(move || {
        let mut v = LogVerifier::new(claims, &keys);
        while let Some(block) = rx.blocking_recv() {
            let n = block.verify_into(&mut v)?;
            bar.inc(n);
        }
        bar.finish_and_clear();
        v.finish()
    });
    let result = match checker.await {
        Ok(r) => r,
        Err(e) => return fail(EXIT_RUNTIME, format!("verification stopped: {e}")),
    };
    match reader.await {
        // Rows that cannot be read back are a damaged log: verification fails.
        Ok(Err(brdo::store::StoreError::Corrupt(what))) => {
            eprintln!("audit log verification FAILED: {what}");
            EXIT_VERIFY
        }
        Ok(Err(e)) => fail(EXIT_RUNTIME, format!("reading the audit log failed: {e}")),
        _ => report(result, started),
    }
}

fn verify_export(export: &Path, checkpoint: &str, pubkey: &Path) -> u8 {
    let keys = match CheckpointVerifier::from_public_pem_file(pubkey) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_CONFIG, format!("--pubkey: {e}")),
    };
    let jws = if Path::new(checkpoint).is_file() {
        match std::fs::read_to_string(checkpoint) {
            Ok(s) => s.trim().to_owned(),
            Err(e) => return fail(EXIT_CONFIG, format!("--checkpoint {checkpoint}: {e}")),
        }
    } else {
        checkpoint.trim().to_owned()
    };
    let signed = match keys.verify(&jws) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "audit log verification FAILED: the checkpoint given is not validly signed: {e}"
            );
            return EXIT_VERIFY;
        }
    };
    let file = match std::fs::File::open(export) {
        Ok(f) => f,
        Err(e) => return fail(EXIT_CONFIG, format!("--export {}: {e}", export.display())),
    };
    let started = Instant::now();
    let mut v = LogVerifier::new(
        vec![CheckpointClaim {
            tree_size: signed.tree_size,
            root_hash: signed.root_hash.clone(),
            jws,
        }],
        &keys,
    );
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = match line {
            Ok(l) if l.trim().is_empty() => continue,
            Ok(l) => l,
            Err(e) => return fail(EXIT_RUNTIME, format!("{}: {e}", export.display())),
        };
        let parsed = serde_json::from_str(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| AuditRecord::from_served(&v));
        let (rec, reduced) = match parsed {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "audit log verification FAILED at line {} of {}: {e}",
                    n + 1,
                    export.display()
                );
                return EXIT_VERIFY;
            }
        };
        // Records past the checkpoint are chained but not covered by it.
        if let Err(fault) = v.push(&rec, reduced) {
            return report(Err(fault), started);
        }
    }
    report(v.finish(), started)
}
