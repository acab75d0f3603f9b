//! Logging: JSON lines when stdout is not a terminal (collectors), readable
//! text when it is (people). `RUST_LOG` filters; the default is `info`.
//!
//! Nothing logged anywhere in the crate carries message subjects, bodies or
//! attachment content, keys or passwords: handlers log ids, codes and
//! partner names only.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call is a no-op.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stdout().is_terminal() {
        builder.compact().try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}
