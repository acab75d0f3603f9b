//! Conversions between the store's Rust values and the integers its
//! columns hold. Kept apart so that every module of the store can use them
//! without importing the writer or the readers (which import each other's
//! neighbours): the arrows inside the store run one way, down to here.

use super::error::StoreError;

/// A sequence number or cursor as the signed integer the database stores.
/// Numbers beyond `i64::MAX` are never written, so one read back or asked
/// for is corrupt rather than wrapped.
pub(super) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("sequence number {n} out of range")))
}

/// A flag as stored: `1` or `0` (SQLite has no boolean type, and the
/// PostgreSQL schema keeps the same INTEGER column so both read alike).
pub(super) fn flag_to_int(flag: bool) -> i64 {
    i64::from(flag)
}

/// A stored flag: any value but `0` is set, as the SQL `held = 0` reads it.
pub(super) fn int_to_flag(n: i64) -> bool {
    n != 0
}
