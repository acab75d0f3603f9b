//! The tamper-evident audit log (SPEC §5).
//!
//! `record` is the record and its chained hash; `jcs` is RFC 8785 canonical
//! JSON, the byte form that is hashed; `merkle` is the RFC 9162 tree over
//! record hashes; `verify` walks a stored log and names the first bad
//! record. All pure: the store appends records, these modules decide what
//! the bytes are.

pub mod jcs;
pub mod merkle;
pub mod record;
pub mod verify;

pub use record::{Action, Actor, AuditRecord, GENESIS_HASH, Outcome, RecordDraft};
