//! Crash-safe, permission-safe file writing: the only place the `pki` module writes files.
//!
//! Every file is first written to a fresh temporary file in the same directory
//! (created with `O_CREAT|O_EXCL` and its final mode, so a key is never readable
//! by others even for an instant), flushed to disk, and then renamed over the
//! target. A watcher (the gateway reloading `ca.crl`) therefore sees either the
//! old or the new content, never half a file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::PkiError;

/// Mode for private keys: only the owner may read them.
pub const KEY_MODE: u32 = 0o600;
/// Mode for certificates, CRLs and public keys, which the gateway and browsers must read.
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode for the PKI directory, which holds the CA key.
pub const DIR_MODE: u32 = 0o700;

/// Replaces `path` with `bytes` atomically, with exactly `mode` permissions.
///
/// Why: a reader must never observe a partial certificate, key or CRL, and a
/// private key must never exist on disk with looser permissions than `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = write_temp(path, bytes, mode)?;
    if let Err(error) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(PkiError::io("replace", path, error));
    }
    sync_parent(path);
    Ok(())
}

/// Like [`write_atomic`], but fails instead of replacing an existing file.
///
/// Used for `ca.key`, where two racing `init` runs must not overwrite each other's CA.
pub(crate) fn write_atomic_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = write_temp(path, bytes, mode)?;
    // A hard link, unlike rename, refuses to replace an existing target.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(PkiError::AlreadyInitialised {
                path: path.to_path_buf(),
            })
        }
        Err(error) => Err(PkiError::io("create", path, error)),
    }
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::io("read", path, e))
}

/// Creates `dir` (and parents) owner-only, or tightens an existing one to owner-only.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| PkiError::io("create directory", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| PkiError::io("set permissions on", dir, e))
}

/// Writes `bytes` to a new uniquely named file next to `path` and returns its name.
fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, PkiError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());

    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            random_tag()?
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                attempt += 1;
            }
            Err(e) => return Err(PkiError::io("create a temporary file for", path, e)),
        }
    };

    let result = fill(&mut file, bytes, mode);
    drop(file);
    if let Err(error) = result {
        let _ = fs::remove_file(&tmp);
        return Err(PkiError::io("write", path, error));
    }
    Ok(tmp)
}

/// Sets the exact mode (the umask may have narrowed it), writes and flushes to disk.
fn fill(file: &mut File, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename durable; best effort, because some filesystems cannot sync directories.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// A random suffix so concurrent writers never share a temporary file.
fn random_tag() -> Result<String, PkiError> {
    let mut buf = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|e| PkiError::crypto("generate a temporary file name", e))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn writes_with_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.key");
        write_atomic(&p, b"one", KEY_MODE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(mode_of(&p), 0o600);
        write_atomic(&p, b"two", PUBLIC_MODE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), 0o644);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.key")]);
    }

    #[test]
    fn write_new_refuses_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.key");
        write_atomic_new(&p, b"first", KEY_MODE).unwrap();
        let err = write_atomic_new(&p, b"second", KEY_MODE).unwrap_err();
        assert!(matches!(err, PkiError::AlreadyInitialised { .. }), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_reported_with_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("a.crt");
        let err = write_atomic(&p, b"x", PUBLIC_MODE).unwrap_err();
        assert!(err.to_string().contains("a.crt"), "{err}");
    }

    #[test]
    fn private_dir_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a").join("pki");
        ensure_private_dir(&p).unwrap();
        assert_eq!(mode_of(&p), 0o700);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&p).unwrap();
        assert_eq!(mode_of(&p), 0o700);
    }
}
