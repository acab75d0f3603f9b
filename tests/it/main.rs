//! Integration tests: the gateway as a whole, over real mTLS with real
//! certificates, on a real SQLite file. One binary; `harness` starts
//! gateways on ephemeral ports and is shared by every module.

// A test reads top to bottom as one script: test code is exempt from the length limit.
#![allow(clippy::too_many_lines)]

mod api_fuzz;
mod attachments;
mod audit;
mod audit_bounds;
mod bench;
mod binding;
mod browser;
mod cli;
mod client_cli;
mod cluster;
mod conn_timeouts;
mod crash;
mod demo;
mod dpo;
mod erasure;
mod fed;
mod federation;
mod federation_lifecycle;
mod federation_red;
mod flood;
mod free_text;
mod gate;
mod harness;
mod keys;
mod lifecycle;
mod limits;
mod messages;
mod openapi;
mod ops;
mod params;
mod pki_ops;
mod policy;
mod races;
mod relay_kill;
mod retention;
mod signatures;
mod slow_read;
mod tls;
mod trust;
mod validation;
mod verify_receipt;
mod wire_order;
