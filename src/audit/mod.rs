//! The tamper-evident audit log (SPEC §5).
//!
//! `fields` names the record's fields once; `canonical`, `served` and
//! `stored` derive its hashed, served and stored forms from that list.
//! `record` is the record and its chained hash; `jcs` is RFC 8785 canonical
//! JSON, the byte form that is hashed; `merkle` is the RFC 9162 tree over
//! record hashes; `verify` walks a stored log and names the first bad
//! record. All pure: the store appends records, these modules decide what
//! the bytes are.

pub mod canonical;
pub mod fields;
#[cfg(test)]
mod forms_test;
pub mod jcs;
pub mod merkle;
pub mod proof_doc;
pub mod record;
pub mod role;
pub mod served;
pub mod stored;
pub mod verify;

pub use record::{Action, Actor, AuditRecord, GENESIS_HASH, Outcome, RecordDraft, Role};

/// The conformance vectors (RFC 9162 proofs, RFC 8785 pairs, the audit
/// chain): `$BRDO_VECTORS` if set, else the copy in `tests/vectors` (taken
/// from the project's shared folder so a fresh checkout has them).
#[cfg(test)]
pub(crate) fn vectors_dir() -> std::path::PathBuf {
    std::env::var_os("BRDO_VECTORS").map_or_else(
        || std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors")),
        std::path::PathBuf::from,
    )
}
