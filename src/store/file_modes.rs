//! Owner-only modes for a SQLite database, its journal files and its
//! directory.
//!
//! The database holds officer names, case references, justifications and
//! routing in clear; only content is sealed. Files created with the usual
//! umask (0644 in a 0755 directory) let every local user read them. So the
//! directory is made 0700 and the database file 0600 before SQLite opens
//! it (SQLite gives `-wal` and `-shm` the database file's mode), and a
//! gateway refuses to run on files or a directory that group or others may
//! open, the way it refuses such a key file: fixing modes silently would
//! hide that the data was exposed until now.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::StoreError;

/// Creates the directory (0700) and the database file (0600) if missing,
/// then checks the modes of the directory, the file and its `-wal`,
/// `-shm` and `-journal` companions.
pub(super) fn prepare(db: &Path) -> Result<(), StoreError> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", db.display())))?;
    check(&dir, "database directory", "chmod 700")?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            check(&path, "database file", "chmod 600")?;
        }
    }
    Ok(())
}

fn check(path: &Path, what: &str, fix: &str) -> Result<(), StoreError> {
    let mode = fs::metadata(path)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Exposed(format!(
            "{what} {} has mode {mode:o}, so other local users may read officer names, case references and routing from it; it must be its owner's only ({fix})",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_owner_only_and_refuses_open_modes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = tmp.path().join("data/brdo.db");
        prepare(&db).expect("prepare");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join("data")), 0o700);
        assert_eq!(mode(&db), 0o600);
        prepare(&db).expect("prepared again");

        let wal = tmp.path().join("data/brdo.db-wal");
        fs::write(&wal, b"").expect("wal");
        for (path, bad) in [(&db, 0o644), (&wal, 0o640), (&db, 0o604)] {
            fs::set_permissions(path, fs::Permissions::from_mode(bad)).expect("chmod");
            let e = prepare(&db).expect_err("must refuse");
            assert!(matches!(e, StoreError::Exposed(_)), "{e}");
            assert!(e.to_string().contains("chmod 600"), "{e}");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let dir = tmp.path().join("data");
        for bad in [0o755, 0o750, 0o701] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(bad)).expect("chmod");
            let e = prepare(&db).expect_err("must refuse");
            assert!(e.to_string().contains("chmod 700"), "{e}");
        }
    }
}
