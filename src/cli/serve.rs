//! `brdo serve --config FILE`.

use std::path::PathBuf;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use brdo::config::Config;
use brdo::gateway::Gateway;

/// Runs the gateway until SIGINT or SIGTERM, then drains open requests.
pub async fn run(config_path: PathBuf) -> u8 {
    let telemetry = brdo::telemetry::init();
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let gateway = match Gateway::start(&config).await {
        Ok(g) => {
            telemetry.observe(g.app.metrics.clone());
            g
        }
        Err(e) => {
            return fail(
                if e.is_config() {
                    EXIT_CONFIG
                } else {
                    EXIT_RUNTIME
                },
                e,
            );
        }
    };
    shutdown_signal().await;
    tracing::info!("shutting down: finishing open requests");
    gateway.stop().await;
    EXIT_OK
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
