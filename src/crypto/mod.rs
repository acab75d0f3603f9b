//! Encryption at rest: a master key, and per-message data keys wrapped by it.
//!
//! Subject, body and attachments are sealed with AES-256-GCM under a fresh
//! data key per message; the data key is stored wrapped (AES-256-GCM) under
//! the master key. Erasing a message destroys its wrapped data key, so the
//! ciphertext left in old pages, WAL frames or backups can no longer be
//! opened once the key row is gone (see SECURITY.md for what this does and
//! does not cover). Every seal binds the message id as associated data, so a
//! ciphertext moved to another message's row fails to open.

pub mod envelope;
pub mod jose;
pub mod jws_core;
pub mod key_lock;
pub mod master_key;

pub use envelope::{CryptoError, DataKey, Sealed};

/// The permission bits of a private key file when others than its owner
/// may read or write it (`Ok(None)` when it is owner-only).
///
/// Several gateway nodes share the same key files (master key, audit
/// signing key, envelope key, gateway TLS key), often over a shared or
/// copied directory, where a lax mode is easy to get; a key others can
/// read is a key that may have leaked, so the gateway does not start on
/// it. Every key loader asks this one function.
pub(crate) fn lax_mode(path: &std::path::Path) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    Ok((mode & 0o077 != 0).then_some(mode & 0o777))
}

/// [`lax_mode`] as the sentence a loader's error carries.
pub(crate) fn check_owner_only(path: &std::path::Path) -> Result<(), String> {
    match lax_mode(path) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(format!(
            "has mode {mode:o}; a private key must be readable by its owner only (chmod 600)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub use key_lock::{KeyLock, KeyLockError};
pub use master_key::{MasterKey, MasterKeyError};
