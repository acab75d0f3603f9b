//! `brdo bench`: a load generator that talks to the gateway the way partner
//! systems do (mTLS with real client certificates), and a bare mTLS server
//! to compare it with.
//!
//! Machines are shared and noisy, so a figure alone means little: with
//! `--baseline` the same load first runs against an echo server built from
//! the gateway's own TLS configuration and accept loop
//! ([`brdo::tls::serve`]) whose handler answers 202 and does nothing, and
//! every gateway figure is also given as a ratio to it. With `--baseline
//! durable` the echo's handler first stores the body as one row through
//! the store's own writer (group commit, fsync): the least any durable
//! answer costs here, which the gateway's figures are then divided by.
//!
//! - [`options`]: what to run, validated before anything starts.
//! - [`scenario`]: the operations (submit, receive, handshake, mixed).
//! - [`load`]: closed- and open-loop drivers, warm-up, progress line.
//! - [`histogram`]: latency percentiles.
//! - [`procstat`]: server CPU and peak memory from procfs.
//! - [`target`]: a gateway of its own in a temporary directory, or the
//!   baseline echo server.
//! - [`relay`]: the relay scenario, two gateways of its own that are peers.
//! - [`report`]: the figures, ratios, text and JSON.

pub mod histogram;
pub mod load;
pub mod options;
pub mod procstat;
pub mod relay;
pub mod report;
pub mod scenario;
pub mod target;

pub use options::BenchOptions;
pub use report::Report;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A flag has an unusable value (exit code 2).
    #[error("{flag}: {message}")]
    Usage {
        /// The flag.
        flag: &'static str,
        /// Why.
        message: String,
    },
    /// The target could not be prepared or reached (exit code 1).
    #[error("{0}")]
    Setup(String),
}

impl BenchError {
    /// Whether the user must change the command line.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Usage { .. })
    }
}

/// Runs the whole benchmark: prepares the target (and the baseline when
/// asked), runs the load against each, and reports.
pub async fn run(opts: &BenchOptions) -> Result<Report, BenchError> {
    opts.validate()?;
    if opts.load.scenario == options::Scenario::Relay {
        return relay::run(opts).await;
    }
    let machine = report::Machine::read();
    let prepared = target::prepare(&opts.target, &opts.scenario_parties()).await?;
    let mut baselines = Vec::new();
    for (wanted, kind) in [
        (opts.baseline.echo, target::BaselineKind::Echo),
        (opts.baseline.durable, target::BaselineKind::Durable),
    ] {
        if !wanted {
            continue;
        }
        let server = target::Baseline::start(&prepared.pki, kind).await?;
        let endpoint = prepared.endpoint(server.addr, true);
        // In-process: its CPU and memory cannot be told apart from the
        // load generator's, so a baseline reports none.
        let run = load::run(&opts.load, &endpoint, None, kind.label()).await;
        server.stop().await;
        baselines.push((kind, run?));
    }
    let endpoint = prepared.endpoint(prepared.addr, false);
    let gateway = load::run(&opts.load, &endpoint, prepared.server_pid, "gateway").await;
    prepared.stop();
    let mut echo = None;
    let mut durable = None;
    for (kind, run) in baselines {
        match kind {
            target::BaselineKind::Echo => echo = Some(run),
            target::BaselineKind::Durable => durable = Some(run),
        }
    }
    Ok(Report::new(machine, echo, gateway?).with_durable(durable))
}
