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
//! # Layout, from the ground floor up
//!
//! Each floor imports only from floors below it; `tests/layers.rs` checks.
//!
//! - [`domain`]: labels, evaluations, messages, partner ids, time; pure
//!   parsing of untrusted JSON with every field error collected.
//! - [`crypto`]: master key, per-message AES-256-GCM envelopes, JWS.
//! - [`policy`]: `policy.toml`, the pure submit/forward decision, retention.
//! - [`audit`]: records, RFC 8785 canonical form, hash chain, RFC 9162
//!   Merkle tree, verification.
//! - [`config`]: `gateway.toml` with defaults and `BRDO_*` overrides.
//! - [`pki`]: the development CA: issue, revoke, list, CRL, PKCS#12.
//! - [`metrics`], [`telemetry`]: Prometheus counters, logging setup.
//! - [`store`]: SQLite/PostgreSQL persistence behind one writer task
//!   (group commit, audit chain in commit order).
//! - [`blobs`]: encrypted, chunked attachment files.
//! - [`binding`], [`signature`]: label bindings and sender signatures.
//! - [`tls`]: rustls server config, peer identity, the accept loop.
//! - [`config_report`]: what `GET /v1/admin/config` and `config_start` show.
//! - [`app`]: the running gateway: shared state, operations, reloads, the
//!   sweeper, cluster following, health. Never imports `api`.
//! - [`api`]: routes, the request gate (identity, role, audit), handlers,
//!   problem documents: parse, call `app`, answer.
//! - [`gateway`]: start/stop a whole gateway from a config (wires `app`,
//!   `api` and `tls` to listeners).
//!
//! The `brdo` binary (`src/main.rs`: `cli`, `bench`) and the `brdo-tools`
//! crate (the partner client, the demo's data) are built on this library;
//! it never depends on them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod audit;
pub mod binding;
pub mod blobs;
pub mod config;
pub mod config_report;
pub mod crypto;
pub mod domain;
pub mod federation;
pub mod gateway;
pub mod metrics;
pub mod pki;
pub mod policy;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod tls;
