//! The demo's fixed data, shared by `brdo demo`, the integration tests'
//! harness and the benchmarks so they all run the same partners and policy.

/// The embedded demo policy (the repository's `config/policy.toml`).
pub const POLICY: &str = include_str!("../../config/policy.toml");

/// The demo partners, each gets a partner and a DPO certificate.
pub const PARTNERS: &[&str] = &[
    "AL-CTD", "BA-SIPA", "XK-CTD", "ME-MOI", "MK-MOI", "RS-MOI", "EU-ECTC",
];

/// PKCS#12 password of the demo certificates (development only).
pub const P12_PASSWORD: &str = "brdo-demo";
