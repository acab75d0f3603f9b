//! Integration tests: the gateway as a whole, over real mTLS with real
//! certificates, on a real SQLite file. One binary; `harness` starts
//! gateways on ephemeral ports and is shared by every module.

mod api_fuzz;
mod attachments;
mod audit;
mod bench;
mod binding;
mod browser;
mod cli;
mod client_cli;
mod cluster;
mod crash;
mod demo;
mod dpo;
mod gate;
mod harness;
mod lifecycle;
mod limits;
mod messages;
mod openapi;
mod ops;
mod policy;
mod retention;
mod signatures;
mod tls;
mod validation;
