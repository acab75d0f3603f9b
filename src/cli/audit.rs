//! `brdo audit verify --config FILE`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, EXIT_VERIFY, fail};
use crate::audit::verify::ChainVerifier;
use crate::config::Config;
use crate::store::{Store, StoreOptions};

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole audit log; exit 3 and name the first bad record on
    /// tampering.
    Verify {
        /// The gateway configuration file (its database is verified).
        #[arg(long)]
        config: PathBuf,
    },
}

/// Runs an audit command.
pub async fn run(cmd: AuditCommand) -> u8 {
    match cmd {
        AuditCommand::Verify { config } => verify(config).await,
    }
}

const PAGE: u32 = 10_000;

async fn verify(config_path: PathBuf) -> u8 {
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let store = match Store::open(&StoreOptions {
        url: config.database.url.clone(),
        node: None,
        read_connections: 2,
    })
    .await
    {
        Ok(s) => s,
        Err(e) => return fail(EXIT_RUNTIME, e),
    };
    let started = Instant::now();
    let mut verifier = ChainVerifier::new();
    let mut after = 0u64;
    loop {
        let page = match store.audit_page(after, PAGE).await {
            Ok(p) => p,
            Err(e) => return fail(EXIT_RUNTIME, format!("reading the audit log failed: {e}")),
        };
        let Some((last, _)) = page.last() else { break };
        after = last.seq;
        for (rec, reduced) in &page {
            if let Err(fault) = verifier.push(rec, *reduced) {
                eprintln!(
                    "audit log verification FAILED at record {}: {fault}",
                    fault.seq()
                );
                return EXIT_VERIFY;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 {
        verifier.count() as f64 / secs
    } else {
        0.0
    };
    println!(
        "audit log verified: {} records, chain head {}, {:.0} records/s",
        verifier.count(),
        verifier.head(),
        rate
    );
    EXIT_OK
}
