//! Tools around the Brdo gateway, kept out of the gateway library.
//!
//! The `brdo` command line (demo, `client`, `bench`), the integration tests
//! and the benchmarks all talk to a gateway as a partner system would; they
//! share this crate. It depends on nothing of the gateway, so the gateway
//! library holds only the gateway.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod demo_data;
