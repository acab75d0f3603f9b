//! The `brdo` command line (SPEC §9): one file per command.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration
//! error, 3 verification failed. Errors are one sentence on stderr naming
//! the file, field or flag.

pub mod audit;
pub mod bench;
pub mod client;
pub mod demo;
pub mod keys;
pub mod pki;
pub mod policy;
pub mod retention;
pub mod serve;
pub mod verify_binding;
pub mod verify_receipt;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Success.
pub const EXIT_OK: u8 = 0;
/// A runtime failure.
pub const EXIT_RUNTIME: u8 = 1;
/// A usage or configuration error.
pub const EXIT_CONFIG: u8 = 2;
/// Verification found tampering.
pub const EXIT_VERIFY: u8 = 3;

/// Brdo: secure information exchange for counter-terrorism partner authorities.
#[derive(Debug, Parser)]
#[command(name = "brdo", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Quickstart: a development PKI and database under ./demo, the gateway
    /// on 127.0.0.1:8443, a scripted exchange, then keep serving.
    Demo(demo::DemoArgs),
    /// Run the gateway.
    Serve {
        /// The gateway configuration file.
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// Log lines on stderr: `text` for a person, `json` for a collector;
        /// by default text on a terminal, JSON otherwise.
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Manage the development PKI.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Run retention sweeps.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// Manage the master key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Load-test a gateway with partner certificates (its own in a
    /// temporary directory, or a running one), optionally against a bare
    /// mTLS baseline in the same run.
    Bench(bench::BenchArgs),
    /// Check a message as received against its label binding, offline.
    VerifyBinding(verify_binding::VerifyBindingArgs),
    /// Check a peer gateway's receipt offline with its envelope public key
    /// and print what it states.
    VerifyReceipt(verify_receipt::VerifyReceiptArgs),
    /// Call the partner API with a certificate from a PKI directory and
    /// print the JSON answers.
    Client(Box<client::ClientArgs>),
    /// Print the OpenAPI 3.1 description of the API (the document the
    /// gateway serves at /v1/openapi.json): `brdo openapi > openapi.json`.
    Openapi,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Pki(cmd) => pki::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Demo(args) => with_runtime(demo::run(args)),
        Command::Serve { config, log_format } => {
            with_runtime(serve::run(config, LogFormatArg::resolve(log_format)))
        }
        Command::Audit(cmd) => with_runtime(audit::run(cmd)),
        Command::Retention(cmd) => with_runtime(retention::run(cmd)),
        Command::Keys(cmd) => with_runtime(keys::run(cmd)),
        Command::Bench(args) => with_runtime(bench::run(args)),
        Command::VerifyBinding(args) => verify_binding::run(&args),
        Command::VerifyReceipt(args) => verify_receipt::run(&args),
        Command::Client(args) => with_runtime(client::run(*args)),
        Command::Openapi => {
            print!("{}", brdo::api::openapi::document_json());
            EXIT_OK
        }
    };
    ExitCode::from(code)
}

/// `--log-format`: forces the format of log lines on stderr, for a person
/// reading a redirected log or a collector reading a terminal session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Readable lines with level and target.
    Text,
    /// One JSON object a line.
    Json,
}

impl LogFormatArg {
    /// The library's format for an optional flag: absent means automatic
    /// (text on a terminal, JSON otherwise).
    pub fn resolve(arg: Option<Self>) -> brdo::telemetry::LogFormat {
        match arg {
            None => brdo::telemetry::LogFormat::Auto,
            Some(Self::Text) => brdo::telemetry::LogFormat::Text,
            Some(Self::Json) => brdo::telemetry::LogFormat::Json,
        }
    }
}

fn with_runtime(fut: impl std::future::Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_RUNTIME
        }
    }
}

/// Prints an error sentence and returns its exit code.
pub fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}
