//! Brdo: a secure information-exchange gateway for counter-terrorism
//! partner authorities.
//!
//! Partner systems connect over mutually authenticated TLS and send
//! messages carrying a security label; the gateway routes them only where
//! clearances and legal agreements allow, logs every access in a
//! tamper-evident audit log, and keeps content encrypted until its
//! retention ends. `SPEC.md` (shipped beside the README) is the external
//! contract.
//!
//! # Layout
//!
//! - [`domain`]: labels, evaluations, messages, partner ids; pure parsing
//!   of untrusted JSON with every field error collected.
//! - [`policy`]: `policy.toml`, the pure submit/forward decision, retention.
//! - [`config`]: `gateway.toml` with defaults and `BRDO_*` overrides.
//! - [`crypto`]: master key and per-message AES-256-GCM envelopes.
//! - [`audit`]: records, RFC 8785 canonical form, hash chain, RFC 9162
//!   Merkle tree, verification.
//! - [`store`]: SQLite/PostgreSQL persistence behind one writer task
//!   (group commit, audit chain in commit order); reads through sqlx,
//!   SQLite writes through rusqlite on the writer's own thread.
//! - [`tls`]: rustls server config, peer identity, the accept loop.
//! - [`api`]: routes, the request gate (identity, role, audit), handlers,
//!   problem documents.
//! - [`blobs`]: encrypted, chunked attachment files.
//! - [`retention`]: the sweeper: erasure when retention ends, orphans.
//! - [`pki`]: the development CA: issue, revoke, list, CRL, PKCS#12.
//! - [`client`]: a small mTLS HTTP client (demo, tests, benchmarks).
//! - [`bench`]: `brdo bench`, the load generator and its baseline.
//! - [`ops`]: reloads, known certificates, the TLS file watcher.
//! - [`metrics`], [`health`]: Prometheus text, `/healthz`, `/readyz`.
//! - [`gateway`]: start/stop a whole gateway from a config.
//! - [`cli`]: the `brdo` commands.
//! - [`telemetry`]: logging setup.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod bench;
pub mod binding;
pub mod blobs;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod config_report;
pub mod crypto;
pub mod domain;
pub mod gateway;
pub mod health;
pub mod metrics;
pub mod ops;
pub mod pki;
pub mod policy;
pub mod retention;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod tls;
