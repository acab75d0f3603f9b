//! `brdo retention run --config FILE [--dry-run] [--as-of TIME]`.

use std::path::PathBuf;

use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use brdo::blobs::BlobStore;
use brdo::config::Config;
use brdo::store::{Store, StoreOptions};

/// Retention commands.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// One retention sweep now: erases messages whose retention ended
    /// (unless held) and uploads no message took up within 24 hours;
    /// prints one erased message id per line.
    Run {
        /// The gateway configuration file.
        #[arg(long)]
        config: PathBuf,
        /// List what would be erased; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Sweep as if it were this time (RFC 3339, e.g. 2030-01-01T00:00:00Z).
        #[arg(long)]
        as_of: Option<String>,
    },
}

/// Runs a retention command.
pub async fn run(cmd: RetentionCommand) -> u8 {
    let RetentionCommand::Run {
        config,
        dry_run,
        as_of,
    } = cmd;
    let as_of = match as_of.as_deref().map(|s| OffsetDateTime::parse(s, &Rfc3339)) {
        None => OffsetDateTime::now_utc(),
        Some(Ok(t)) => t,
        Some(Err(_)) => {
            return fail(
                EXIT_CONFIG,
                "--as-of must be an RFC 3339 time such as 2030-01-01T00:00:00Z",
            );
        }
    };
    let config = match Config::load(&config) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let store = match Store::open(&StoreOptions::for_tool(&config)).await {
        Ok(s) => s,
        Err(e) => return fail(EXIT_RUNTIME, e),
    };
    let blobs = match BlobStore::open(&config.storage.blob_dir) {
        Ok(b) => b,
        Err(e) => return fail(EXIT_RUNTIME, e),
    };
    let opts = brdo::app::sweeper::SweepOptions {
        as_of,
        dry_run,
        audit_retention_days: config.audit.retention_days,
    };
    let signer = match brdo::app::sweeper::receipt_signer(&config) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_CONFIG, format!("the envelope key: {e}")),
    };
    match brdo::app::sweeper::sweep_exclusive(&store, &blobs, &opts, signer.as_ref()).await {
        Ok(None) => {
            store.close().await;
            fail(
                EXIT_RUNTIME,
                "another gateway node is sweeping retention now; nothing was done (try again later)",
            )
        }
        Ok(Some(report)) => {
            for id in &report.erased {
                println!("{id}");
            }
            eprintln!(
                "{} {} message(s) and {} unreferenced upload(s), and {} {} audit record(s) to their hashes, as of {}",
                if dry_run { "would erase" } else { "erased" },
                report.erased.len(),
                report.orphans.len(),
                if dry_run { "would reduce" } else { "reduced" },
                report.audit_reduced,
                brdo::audit::record::format_at(as_of)
            );
            store.close().await;
            EXIT_OK
        }
        Err(e) => fail(EXIT_RUNTIME, format!("the retention sweep failed: {e}")),
    }
}
