//! `brdo bench`: the load generator (see [`crate::bench`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use crate::bench::options::{self, BenchOptions, LoadSpec, Mode, Scenario, TargetSpec};

/// The partners messages go to by default (all reachable from AL-CTD under
/// the demo policy).
const DEFAULT_TO: &str = "RS-MOI,EU-ECTC,BA-SIPA,ME-MOI,MK-MOI";

/// Flags of `brdo bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The operation: submit, receive, handshake or mixed.
    #[arg(long, value_enum, default_value = "submit")]
    pub scenario: Scenario,
    /// Workers, each with its own connection (two in `mixed`).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The measured interval (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = options::parse_duration)]
    pub duration: std::time::Duration,
    /// Load before measuring.
    #[arg(long, default_value = "2s", value_parser = options::parse_duration)]
    pub warmup: std::time::Duration,
    /// Open loop at this many requests per second (all workers together);
    /// without it, closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Recipients per message (the first N of `--to`).
    #[arg(long, default_value_t = 1)]
    pub recipients: usize,
    /// Message body size, bytes.
    #[arg(long, default_value_t = 1024)]
    pub body_bytes: usize,
    /// Run the same load first against a bare mTLS server and print ratios
    /// to it: `echo` (the default when no value is given) answers and does
    /// nothing; `durable` stores each body as one row through the store's
    /// writer (group commit, fsync) before answering; `echo,durable` runs
    /// both.
    #[arg(
        long,
        value_name = "echo|durable",
        num_args = 0..=1,
        default_missing_value = "echo",
        value_parser = options::parse_baselines
    )]
    pub baseline: Option<options::Baselines>,
    /// A running gateway's address (with `--pki`); without it the benchmark
    /// starts its own in a temporary directory.
    #[arg(long, requires = "pki")]
    pub target: Option<SocketAddr>,
    /// The database of the benchmark's own gateway (e.g. an empty
    /// PostgreSQL database, `postgres://user@host/db`) instead of a SQLite
    /// file in its temporary directory.
    #[arg(long, conflicts_with = "target")]
    pub database: Option<String>,
    /// PKI directory (from `brdo pki init`) with `ca.crt` and the partner
    /// certificates; `--baseline` also uses its `gateway.crt`, `gateway.key`
    /// and `ca.crl`.
    #[arg(long)]
    pub pki: Option<PathBuf>,
    /// The sending partner (`partner-<ID>.crt`).
    #[arg(long = "as", default_value = "AL-CTD")]
    pub as_partner: String,
    /// Recipient partners, comma-separated; the first receives in
    /// `receive` and `mixed`.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_TO)]
    pub to: Vec<String>,
    /// The running gateway's process id, for its CPU and peak memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

impl BenchArgs {
    /// The options these flags describe (validated by the benchmark).
    pub fn options(&self) -> Result<BenchOptions, String> {
        let target = match (&self.target, &self.pki) {
            (Some(addr), Some(pki)) => TargetSpec::Running {
                addr: *addr,
                pki: pki.clone(),
                server_pid: self.server_pid,
            },
            (None, None) => TargetSpec::Own {
                database: self.database.clone(),
            },
            (None, Some(_)) => {
                return Err("--pki: only with --target (the own gateway makes its own PKI)".into());
            }
            (Some(_), None) => return Err("--target: needs --pki".into()),
        };
        if self.server_pid.is_some() && self.target.is_none() {
            return Err("--server-pid: only with --target".into());
        }
        Ok(BenchOptions {
            load: LoadSpec {
                scenario: self.scenario,
                concurrency: self.concurrency,
                duration: self.duration,
                warmup: self.warmup,
                mode: self.rate.map_or(Mode::Closed, |rate| Mode::Open { rate }),
                recipients: self.recipients,
                body_bytes: self.body_bytes,
                progress: !self.quiet && !self.json,
            },
            target,
            baseline: self.baseline.unwrap_or_default(),
            sender: self.as_partner.clone(),
            to: self.to.clone(),
        })
    }
}

/// Runs `brdo bench`; exit 1 if any operation failed.
pub async fn run(args: BenchArgs) -> u8 {
    let opts = match args.options() {
        Ok(o) => o,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    if let Err(e) = opts.validate() {
        return fail(EXIT_CONFIG, e);
    }
    let report = match crate::bench::run(&opts).await {
        Ok(r) => r,
        Err(e) => {
            return fail(
                if e.is_usage() {
                    EXIT_CONFIG
                } else {
                    EXIT_RUNTIME
                },
                e,
            );
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(EXIT_RUNTIME, e),
        }
    } else {
        print!("{}", report.text());
    }
    if report.has_errors() {
        eprintln!("error: some operations failed (see the errors above)");
        return EXIT_RUNTIME;
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let mut all = vec!["brdo", "bench"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Command::Bench(b) => Ok(b),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_run_closed_loop_submit_on_an_own_gateway() {
        let o = parse(&[]).expect("parse").options().expect("options");
        o.validate().expect("valid");
        assert!(matches!(o.target, TargetSpec::Own { database: None }));
        assert_eq!(o.load.mode, Mode::Closed);
        assert_eq!(o.load.scenario, Scenario::Submit);
        assert_eq!(o.to.len(), 5);
        assert_eq!(o.load.body_bytes, 1024);
    }

    #[test]
    fn open_loop_and_a_running_target() {
        let o = parse(&[
            "--scenario",
            "handshake",
            "--rate",
            "1000",
            "--duration",
            "2s",
            "--warmup",
            "0",
            "--target",
            "127.0.0.1:8443",
            "--pki",
            "demo/pki",
            "--as",
            "BA-SIPA",
            "--to",
            "ME-MOI",
            "--server-pid",
            "42",
            "--json",
        ])
        .expect("parse")
        .options()
        .expect("options");
        o.validate().expect("valid");
        assert_eq!(o.load.mode, Mode::Open { rate: 1000.0 });
        assert_eq!(o.load.warmup, std::time::Duration::ZERO);
        assert!(!o.load.progress);
        assert!(matches!(
            o.target,
            TargetSpec::Running {
                server_pid: Some(42),
                ..
            }
        ));
        assert_eq!(o.to, vec!["ME-MOI"]);
    }

    #[test]
    fn baseline_values() {
        let b = |args: &[&str]| {
            parse(args)
                .expect("parse")
                .options()
                .expect("options")
                .baseline
        };
        assert!(!b(&[]).any());
        let echo = options::Baselines {
            echo: true,
            durable: false,
        };
        assert_eq!(b(&["--baseline"]), echo);
        assert_eq!(b(&["--baseline", "--concurrency", "4"]), echo);
        assert_eq!(b(&["--baseline", "echo"]), echo);
        assert_eq!(
            b(&["--baseline", "durable", "--concurrency", "4"]),
            options::Baselines {
                echo: false,
                durable: true
            }
        );
        assert_eq!(
            b(&["--baseline=echo,durable"]),
            options::Baselines {
                echo: true,
                durable: true
            }
        );
        assert!(parse(&["--baseline", "none"]).is_err());
    }

    #[test]
    fn inconsistent_flags_are_refused() {
        assert!(parse(&["--scenario", "nope"]).is_err());
        assert!(parse(&["--duration", "soon"]).is_err());
        assert!(parse(&["--target", "127.0.0.1:1"]).is_err(), "needs --pki");
        let e = parse(&["--pki", "x"]).expect("parse").options();
        assert!(e.expect_err("pki without target").starts_with("--pki"));
        let e = parse(&["--server-pid", "1"]).expect("parse").options();
        assert!(
            e.expect_err("pid without target")
                .starts_with("--server-pid")
        );
        assert!(
            parse(&[
                "--database",
                "postgres://h/d",
                "--target",
                "127.0.0.1:1",
                "--pki",
                "p"
            ])
            .is_err(),
            "a running gateway has its own database"
        );
        let o = parse(&["--database", "postgres://h/d"])
            .expect("parse")
            .options()
            .expect("options");
        assert!(matches!(
            o.target,
            TargetSpec::Own { database: Some(ref d) } if d == "postgres://h/d"
        ));
        let o = parse(&["--recipients", "6"])
            .expect("parse")
            .options()
            .expect("options");
        assert!(o.validate().is_err());
    }
}
