//! The master key file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// The key that wraps every message's data key.
///
/// Held only in memory once loaded; `Debug` prints its id, never the key.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why the master key cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MasterKeyError {
    /// The file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error(
        "master key file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600)"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It is not 32 random bytes in hex.
    #[error("master key file {path} does not hold a 256-bit key as 64 hex digits")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl MasterKey {
    /// Loads the key, creating it (mode 0600, 256 random bits) if the file
    /// does not exist. Refuses a file that group or others can access: a
    /// key anyone on the host can read protects nothing.
    pub fn load_or_create(path: &Path) -> Result<Self, MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io)?;
            }
            let mut bytes = [0u8; 32];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| MasterKeyError::Random)?;
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| {
                    f.write_all(hex::encode(bytes).as_bytes())?;
                    f.sync_all()
                });
            match created {
                Ok(()) => {}
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        Self::load(path)
    }

    /// Loads an existing key file, checking its permissions.
    pub fn load(path: &Path) -> Result<Self, MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(mode) = super::lax_mode(path).map_err(io)? {
            return Err(MasterKeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = fs::read_to_string(path).map_err(io)?;
        let bytes = hex::decode(text.trim()).map_err(|_| MasterKeyError::Malformed {
            path: path.to_owned(),
        })?;
        Self::from_bytes(&bytes).ok_or_else(|| MasterKeyError::Malformed {
            path: path.to_owned(),
        })
    }

    /// Builds a key from 32 bytes (tests and key rotation).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 32 {
            return None;
        }
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).ok()?);
        // The id names the key in stored rows without revealing it.
        let id = hex::encode(
            &digest(
                &SHA256,
                &[b"brdo-master-key-id:".as_slice(), bytes].concat(),
            )
            .as_ref()[..8],
        );
        Some(Self { key, id })
    }

    /// A short public identifier of this key, stored beside every wrapped
    /// data key so rotation knows which rows still need re-wrapping.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_with_owner_only_mode_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::load_or_create(&path).expect("create");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = MasterKey::load_or_create(&path).expect("reload");
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
    }

    #[test]
    fn refuses_readable_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = MasterKey::load_or_create(&path).expect_err("must refuse");
        assert!(e.to_string().contains("mode 644"), "{e}");
    }

    #[test]
    fn refuses_malformed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        fs::write(&path, "abcd").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(
            MasterKey::load(&path),
            Err(MasterKeyError::Malformed { .. })
        ));
    }
}
