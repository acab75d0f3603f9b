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

use super::{CA_CERT_FILE, PkiError};

/// Mode for private keys: only the owner may read them.
pub const KEY_MODE: u32 = 0o600;
/// Mode for certificates, CRLs and public keys, which the gateway and browsers must read.
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode for the PKI directory, which holds the CA key.
pub(crate) const DIR_MODE: u32 = 0o700;

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

/// Creates `dir` (and parents) owner-only; an existing directory must
/// already be owner-only and owned by this user.
///
/// Why not tighten an existing one: a directory the operator made group- or
/// world-readable may be shared on purpose; silently changing it would hide
/// the mistake of putting a CA key there, so it is refused instead.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => check_private(dir, "PKI directory"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| PkiError::io("create directory", dir, e)),
        Err(e) => Err(PkiError::io("inspect", dir, e)),
    }
}

/// Refuses `path` unless it is owned by this process's user and neither
/// group nor others have any access to it.
///
/// Why: the CA key signs every identity the gateway trusts; a key or
/// directory another account can read or replace means anyone with that
/// account can mint partners. Nothing is changed: the operator decides.
pub(crate) fn check_private(path: &Path, what: &'static str) -> Result<(), PkiError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).map_err(|e| PkiError::io("inspect", path, e))?;
    let me = current_uid()?;
    let mode = meta.mode() & 0o7777;
    if meta.uid() != me {
        return Err(PkiError::UnsafePermissions {
            what,
            path: path.to_path_buf(),
            detail: format!(
                "it is owned by user {} but this command runs as user {me}",
                meta.uid()
            ),
        });
    }
    if mode & 0o077 != 0 {
        return Err(PkiError::UnsafePermissions {
            what,
            path: path.to_path_buf(),
            detail: format!(
                "it has mode {mode:o}, which lets other users in (chmod {})",
                if meta.is_dir() { "700" } else { "600" }
            ),
        });
    }
    Ok(())
}

/// The effective user id, read as the owner of `/proc/self` (no libc call
/// needed: the kernel gives that directory the process's effective uid).
fn current_uid() -> Result<u32, PkiError> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| PkiError::io("determine the current user from", "/proc/self", e))
}

/// The `*.crt` files directly in `dir`, except `ca.crt`, sorted by name.
///
/// Why here: listing certificates and checking that a revoked serial was
/// issued in the directory both walk the same files, and neither should
/// depend on the other to do it.
pub(crate) fn cert_files(dir: &Path) -> Result<Vec<PathBuf>, PkiError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PkiError::io("list", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PkiError::io("list", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file && name.ends_with(".crt") && name != CA_CERT_FILE && !name.starts_with('.') {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Name of the lock file every writing PKI command holds.
pub const LOCK_FILE: &str = ".lock";
/// Name of the PKI directory's append-only operations log.
pub const LOG_FILE: &str = "pki.log";

/// An exclusive lock on a PKI directory, released when dropped.
///
/// Why: two `revoke` runs each read `ca.crl`, add their serial and write it
/// back; without mutual exclusion the later write drops the earlier
/// revocation and both lists carry the same CRL number. Every command that
/// writes the directory holds this lock for its whole read-modify-write.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Blocks until this process holds the directory's lock (an OS `flock`,
    /// so a crashed holder never leaves it stuck).
    pub fn acquire(dir: &Path) -> Result<DirLock, PkiError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(KEY_MODE)
            .open(&path)
            .map_err(|e| PkiError::io("open the lock file", &path, e))?;
        file.lock().map_err(|e| PkiError::io("lock", &path, e))?;
        Ok(DirLock { _file: file })
    }
}

/// Appends one line to the directory's operations log (`pki.log`), flushed
/// to disk before returning.
///
/// Why: certificates and CRLs say what the CA signed, not who asked and
/// when; forced revocations in particular must leave a trace beside the CA.
/// Call while holding the [`DirLock`]. The line is JSON (no keys, no
/// passwords: serials, subjects, file names and reasons only).
pub(crate) fn append_log(
    dir: &Path,
    at: time::OffsetDateTime,
    event: &str,
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> Result<(), PkiError> {
    let path = dir.join(LOG_FILE);
    let at = at
        .to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| PkiError::crypto("format the log time", e))?;
    fields.insert("at".into(), at.into());
    fields.insert("event".into(), event.into());
    let mut line = serde_json::Value::Object(fields).to_string();
    line.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(KEY_MODE)
        .open(&path)
        .map_err(|e| PkiError::io("open", &path, e))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| PkiError::io("append to", &path, e))
}

/// A temporary directory with the mode a PKI directory must have (the
/// platform default for temporary directories may be 0755).
#[cfg(test)]
pub(crate) fn private_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(DIR_MODE)).expect("chmod");
    dir
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
    fn private_dir_is_created_owner_only_and_an_open_one_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a").join("pki");
        ensure_private_dir(&p).unwrap();
        assert_eq!(mode_of(&p), 0o700);
        ensure_private_dir(&p).unwrap();
        for open in [0o755, 0o750, 0o701] {
            fs::set_permissions(&p, fs::Permissions::from_mode(open)).unwrap();
            let err = ensure_private_dir(&p).unwrap_err();
            assert!(matches!(err, PkiError::UnsafePermissions { .. }), "{err}");
            assert!(err.to_string().contains("chmod 700"), "{err}");
            assert_eq!(mode_of(&p), open, "the mode is left as the operator set it");
        }
    }

    #[test]
    fn private_file_check_names_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.key");
        write_atomic(&p, b"k", KEY_MODE).unwrap();
        check_private(&p, "CA key").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let err = check_private(&p, "CA key").unwrap_err();
        assert!(err.to_string().contains("640"), "{err}");
    }

    #[test]
    fn log_lines_are_appended_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::macros::datetime!(2030-01-01 00:00 UTC);
        let mut f = serde_json::Map::new();
        f.insert("serial".into(), "0a".into());
        append_log(dir.path(), now, "revoke", f.clone()).unwrap();
        append_log(dir.path(), now, "crl_refresh", serde_json::Map::new()).unwrap();
        let text = fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "revoke");
        assert_eq!(lines[0]["serial"], "0a");
        assert_eq!(lines[1]["at"], "2030-01-01T00:00:00Z");
        assert_eq!(mode_of(&dir.path().join(LOG_FILE)), 0o600);
    }
}
