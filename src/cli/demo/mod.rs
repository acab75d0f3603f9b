//! `brdo demo`: the quickstart.
//!
//! Creates (once) a development PKI, configuration and SQLite database
//! under `./demo`, starts the gateway on 127.0.0.1:8443, plays a scripted
//! exchange among the demo partners through real mTLS clients and prints
//! each step as one block, then keeps serving and prints `curl` lines to
//! try, how to open the DPO page in a browser and how to verify the audit
//! log.
//!
//! While the script runs the console log shows warnings only; every log
//! line also goes to `demo/data/gateway.log` (JSON lines), so the steps read
//! without the gateway's per-request lines between them.
//!
//! The parts a second scenario would reuse: [`site`] (a gateway in its own
//! directory with its own PKI, database and policy) and [`stage`] (printing
//! steps).

pub mod federation;
mod quickstart;
pub mod site;
pub mod stage;

use std::path::{Path, PathBuf};

use super::{EXIT_OK, EXIT_RUNTIME, LogFormatArg, fail};
use brdo::telemetry::LogSettings;

pub use brdo_tools::demo_data::{
    P12_PASSWORD as DEMO_P12_PASSWORD, PARTNERS as DEMO_PARTNERS, POLICY as DEMO_POLICY,
};

/// The file in a site's data directory that keeps the demo's whole log.
pub const LOG_FILE: &str = "gateway.log";

/// `brdo demo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Log lines on stderr: `text` for a person, `json` for a collector;
    /// by default text on a terminal, JSON otherwise.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Three gateways among gateways instead (SPEC §11): EU-HUB, AL-NCB and
    /// RS-NCB under ./demo-federation, relaying to each other.
    #[arg(long)]
    pub federation: bool,
    /// With --federation: EU-HUB listens on this port, AL-NCB on the next,
    /// RS-NCB on the one after.
    #[arg(long, default_value_t = 9441, requires = "federation")]
    pub base_port: u16,
}

/// Runs the quickstart: prepare `./demo`, start the gateway, play the
/// script, print the hints, serve until Ctrl-C.
pub async fn run(args: DemoArgs) -> u8 {
    if args.federation {
        return federation::run(args).await;
    }
    let site = site::Site {
        dir: PathBuf::from("demo"),
        listen: "127.0.0.1:8443".into(),
        metrics_listen: "127.0.0.1:9464".into(),
        gateway_id: None,
        partners: DEMO_PARTNERS,
    };
    if let Err(e) = site.prepare() {
        return fail(EXIT_RUNTIME, format!("preparing ./demo failed: {e}"));
    }
    let log_path = site.data().join(LOG_FILE);
    let (file, log_note) = match open_log(&log_path) {
        Ok(f) => (
            Some(f),
            format!(
                "While the script runs, this terminal shows warnings only; the gateway's \
                 request logs go to {} (JSON lines).",
                log_path.display()
            ),
        ),
        Err(e) => (
            None,
            format!(
                "While the script runs, this terminal shows warnings only ({}: {e}, so the \
                 request logs of the script are not kept).",
                log_path.display()
            ),
        ),
    };
    let telemetry = brdo::telemetry::init_with(LogSettings {
        format: LogFormatArg::resolve(args.log_format),
        file,
    });
    let gateway = match site.start(&telemetry).await {
        Ok(g) => g,
        Err(code) => return code,
    };
    let mut stage = stage::Stage::new();
    stage.say(&format!(
        "Brdo gateway listening on https://{} (mTLS), data in {}.",
        gateway.addr(),
        absolute(&gateway.site().dir).display()
    ));
    stage.say(&log_note);
    let quiet = telemetry.quiet_console();
    let played = quickstart::script(&gateway, &mut stage).await;
    drop(quiet);
    if let Err(e) = played {
        eprintln!("error: the scripted exchange failed: {e}");
        gateway.stop().await;
        return EXIT_RUNTIME;
    }
    quickstart::hints(&gateway, &stage);
    super::serve::shutdown_signal().await;
    gateway.stop().await;
    EXIT_OK
}

/// Opens (appending, owner-only) the file that keeps the demo's log.
fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// `path` from the filesystem root, for hints that must work from any
/// directory (a browser's file dialog); `path` itself if that fails.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
