//! The `brdo` binary: the command line (`cli`) and the load generator
//! (`bench`). Both are tools built on the gateway library (`brdo`) and the
//! shared partner client (`brdo_tools`); the library never depends on them.

#![forbid(unsafe_code)]

mod bench;
mod cli;

use std::process::ExitCode;

use clap::Parser;

/// The allocator. glibc's spent about a fifth of a relaying gateway's CPU
/// in `malloc`/`free` and in consolidating its free lists after the large
/// buffers of relay batches (`perf`, `brdo bench --scenario relay`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse())
}
