//! Integration tests: the gateway as a whole, over real mTLS with real
//! certificates, on a real SQLite file. One binary; `harness` starts
//! gateways on ephemeral ports and is shared by every module.

mod attachments;
mod audit;
mod bench;
mod browser;
mod cli;
mod demo;
mod dpo;
mod harness;
mod lifecycle;
mod messages;
mod ops;
mod policy;
mod retention;
mod tls;
mod validation;
