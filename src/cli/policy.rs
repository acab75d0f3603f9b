//! `brdo policy check FILE`.

use std::path::PathBuf;

use clap::Subcommand;

use super::{EXIT_CONFIG, EXIT_OK, fail};
use brdo::policy::Policy;

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file; errors name line and column (exit 2).
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

/// Runs a policy command.
pub fn run(cmd: PolicyCommand) -> u8 {
    match cmd {
        PolicyCommand::Check { file } => match Policy::load(&file) {
            Ok(p) => {
                println!(
                    "policy file {} is valid: {} partners, {} agreements, {} retention rules",
                    file.display(),
                    p.partners.len(),
                    p.agreements.len(),
                    p.retention.rules.len()
                );
                EXIT_OK
            }
            Err(e) => fail(EXIT_CONFIG, e),
        },
    }
}
