//! The running gateway, below the HTTP layer.
//!
//! Everything here works on domain values and the store; nothing imports
//! `api`. The HTTP layer (`api`) parses requests, calls into this layer and
//! writes answers; the command line and the background tasks call the same
//! code. `gateway` (above both) wires them to listeners.
//!
//! - `state`: the shared state every operation reaches ([`AppState`]).
//! - `inbox_notifier`, `rate_limit`, `refusals`, `cursor`: the pieces of
//!   that state with behaviour of their own.
//! - `content`: sealing and opening message content.
//! - `ops`: the operations (submit, read, forward, ...), typed in and out.
//! - `operator`: reloads, known certificates, the TLS file watch.
//! - `sweeper`: erasure when retention ends, orphans.
//! - `cluster`: following other nodes' commits.
//! - `health`: `/metrics`, `/healthz`, `/readyz`.

pub mod cluster;
pub mod content;
pub mod cursor;
pub mod health;
pub(crate) mod inbox_notifier;
pub mod operator;
pub mod ops;
pub(crate) mod rate_limit;
pub mod refusals;
pub mod relay;
pub mod state;
pub mod sweeper;

pub use state::{AppParts, AppState, Settings};
