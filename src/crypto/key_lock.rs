//! The lock that keeps `brdo keys rotate` and running gateways apart.
//!
//! A gateway holds the master key in memory and seals under it until it
//! stops; a rotation that replaced the key file under it would leave every
//! message sealed afterwards under a key that exists nowhere. So every
//! gateway holds a shared `flock` on `master.key.lock` for its lifetime and
//! a rotation takes it exclusively: a rotation is refused while any gateway
//! on this key file runs, and a gateway is refused while a rotation runs.
//! The kernel drops the lock when the process dies, so a killed process
//! never leaves it behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLockError {
    /// The lock file cannot be opened.
    #[error("master key lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A rotation holds it: the gateway must not start.
    #[error(
        "a master key rotation is running (it holds {path}); start the gateway when `brdo keys rotate` has finished"
    )]
    RotationRunning {
        /// The lock file.
        path: PathBuf,
    },
    /// A gateway holds it: the rotation must not run.
    #[error(
        "a gateway is running on this master key (it holds {path}); stop every gateway that uses it, then rotate"
    )]
    GatewayRunning {
        /// The lock file.
        path: PathBuf,
    },
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct KeyLock {
    _file: Option<File>,
}

/// `master.key.lock` beside the key file.
pub(crate) fn lock_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    key_file.with_file_name(name)
}

fn open(path: &Path) -> Result<File, KeyLockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| KeyLockError::Io {
            path: path.to_owned(),
            source,
        })
}

/// The lock file on a read-only mount (keys shared read-only between
/// nodes): an existing one opened for reading (`flock` needs no write
/// access), or `None` when there is none, since no rotation can write a
/// new key into that directory either.
fn open_read_only(path: &Path) -> Result<Option<File>, KeyLockError> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyLockError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl KeyLock {
    /// The gateway's share: many gateways may run on one key file.
    pub fn shared(key_file: &Path) -> Result<Self, KeyLockError> {
        let path = lock_path(key_file);
        let file = match open(&path) {
            Ok(f) => f,
            Err(KeyLockError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
            {
                match open_read_only(&path)? {
                    Some(f) => f,
                    None => return Ok(Self { _file: None }),
                }
            }
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Self { _file: Some(file) }),
            Err(TryLockError::WouldBlock) => Err(KeyLockError::RotationRunning { path }),
            Err(TryLockError::Error(source)) => Err(KeyLockError::Io { path, source }),
        }
    }

    /// The rotation's exclusive hold.
    pub fn exclusive(key_file: &Path) -> Result<Self, KeyLockError> {
        let path = lock_path(key_file);
        let file = open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: Some(file) }),
            Err(TryLockError::WouldBlock) => Err(KeyLockError::GatewayRunning { path }),
            Err(TryLockError::Error(source)) => Err(KeyLockError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_share_and_rotation_excludes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("master.key");
        let a = KeyLock::shared(&key).expect("first gateway");
        let b = KeyLock::shared(&key).expect("second gateway");
        assert!(matches!(
            KeyLock::exclusive(&key),
            Err(KeyLockError::GatewayRunning { .. })
        ));
        drop(a);
        assert!(KeyLock::exclusive(&key).is_err(), "one gateway still runs");
        drop(b);
        let rotation = KeyLock::exclusive(&key).expect("no gateway runs");
        assert!(matches!(
            KeyLock::shared(&key),
            Err(KeyLockError::RotationRunning { .. })
        ));
        drop(rotation);
        KeyLock::shared(&key).expect("rotation over");
    }
}
