//! The `brdo` binary: the command line (`cli`) and the load generator
//! (`bench`). Both are tools built on the gateway library (`brdo`) and the
//! shared partner client (`brdo_tools`); the library never depends on them.

#![forbid(unsafe_code)]

mod bench;
mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse())
}
