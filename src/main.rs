//! The `brdo` binary: parses the command line and hands over to the
//! library (`brdo::cli`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    brdo::cli::run(brdo::cli::Cli::parse())
}
