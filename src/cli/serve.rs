//! `brdo serve --config FILE [--log-format json|text]`.

use std::path::{Path, PathBuf};

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use brdo::config::Config;
use brdo::gateway::Gateway;
use brdo::telemetry::{LogFormat, LogSettings, Telemetry};

/// Runs the gateway until SIGINT or SIGTERM, then drains open requests.
pub async fn run(config_path: PathBuf, log_format: LogFormat) -> u8 {
    let telemetry = brdo::telemetry::init_with(LogSettings {
        format: log_format,
        file: None,
    });
    let gateway = match start(&config_path, &telemetry, "").await {
        Ok(g) => g,
        Err(code) => return code,
    };
    shutdown_signal().await;
    tracing::info!("shutting down: finishing open requests");
    gateway.stop().await;
    EXIT_OK
}

/// Loads the configuration and starts the gateway, its metrics reported to
/// `telemetry`. A failure is printed (with `hint` after it) and given as the
/// exit code, configuration or runtime, so `serve` and `demo` fail alike.
pub(super) async fn start(
    config_path: &Path,
    telemetry: &Telemetry,
    hint: &str,
) -> Result<Gateway, u8> {
    let config = Config::load(config_path).map_err(|e| fail(EXIT_CONFIG, e))?;
    match Gateway::start(&config).await {
        Ok(g) => {
            telemetry.observe(g.app.metrics.clone());
            Ok(g)
        }
        Err(e) => {
            let code = if e.is_config() {
                EXIT_CONFIG
            } else {
                EXIT_RUNTIME
            };
            Err(fail(code, format!("{e}{hint}")))
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
