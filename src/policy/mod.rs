//! The data-protection policy: who may send what to whom, and for how long
//! it is kept.
//!
//! `file` reads `policy.toml` into a validated [`Policy`] (errors carry line
//! and column); `decide` is the pure submit/forward decision of SPEC §4;
//! `retention` computes `retain_until` and `review_on`. Nothing here does
//! I/O beyond reading the file it is given.

pub mod decide;
pub mod file;
pub mod retention;

pub use decide::{Decision, Transfer, Violation, ViolationCode, decide};
pub use file::{
    Agreement, LegalBasis, Partner, Policy, PolicyError, RetentionPolicy, RetentionRule,
};
pub use retention::{Retention, RetentionBasis, compute_retention};
