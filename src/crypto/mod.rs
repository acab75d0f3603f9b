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
pub mod master_key;

pub use envelope::{CryptoError, DataKey, Sealed};
pub use master_key::{MasterKey, MasterKeyError};
