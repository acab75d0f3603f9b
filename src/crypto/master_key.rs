//! The master key file, and the retired keys kept beside it.
//!
//! The key is created only by an explicit step (`brdo keys init`, `brdo
//! demo`): a gateway that finds no key refuses to start instead of making
//! one, because a fresh key silently opens nothing already stored and seals
//! new content under a key the other nodes lack.
//!
//! Beside `master.key` may lie `master.key.new` (a rotation in progress)
//! and `master.key.retired.<id>` (keys a rotation replaced). The gateway
//! loads them all as a ring: it seals under `master.key` and opens under
//! whichever key a stored row names, so a rotation interrupted at any point
//! loses nothing.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// The key that wraps every message's data key, with the older keys that
/// still open rows wrapped before a rotation.
///
/// Held only in memory once loaded; `Debug` prints ids, never keys.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
    raw: Zeroizing<[u8; 32]>,
    older: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field(
                "older",
                &self.older.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
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
    /// There is no key file.
    #[error(
        "master key file {path} does not exist: a new gateway creates it with `brdo keys init --config FILE`; an existing gateway needs its key restored, since a new key opens none of the stored content"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// `keys init` found a key already there.
    #[error("master key file {path} already exists; a key is never replaced by init")]
    Exists {
        /// The file.
        path: PathBuf,
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
    /// Another user owns it.
    #[error(
        "master key file {path} belongs to user {owner}, not to user {euid} the gateway runs as (chown it)"
    )]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective user of this process.
        euid: u32,
    },
    /// Its directory lets others replace the key.
    #[error(
        "directory {path} of the master key {why}: others could replace the key (chmod 700, chown)"
    )]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// It is not 32 random bytes in hex.
    #[error("master key file {path} does not hold a 256-bit key as 64 hex digits")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// Stored data keys name a master key the ring lacks.
    #[error(
        "the database holds data keys wrapped under master key {ids}, which is neither {path} nor a key kept beside it: start with the key file the data was sealed under"
    )]
    UnknownKeys {
        /// The current key file.
        path: PathBuf,
        /// The unknown key ids, comma-separated.
        ids: String,
    },
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// `master.key.new`: the key a rotation in progress re-wraps under.
pub fn pending_path(current: &Path) -> PathBuf {
    suffixed(current, ".new")
}

/// `master.key.retired.<id>`: a key a rotation replaced.
pub(crate) fn retired_path(current: &Path, id: &str) -> PathBuf {
    suffixed(current, &format!(".retired.{id}"))
}

fn suffixed(current: &Path, suffix: &str) -> PathBuf {
    let mut name = current.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    current.with_file_name(name)
}

/// The retired key files beside `current`.
pub fn retired_files(current: &Path) -> Result<Vec<PathBuf>, MasterKeyError> {
    let dir = parent_of(current);
    let prefix = format!(
        "{}.retired.",
        current.file_name().unwrap_or_default().to_string_lossy()
    );
    let io = |source| MasterKeyError::Io {
        path: dir.clone(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && !name.ends_with(".tmp") {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Refuses a key directory that group or others may write, or that another
/// user (other than root) owns: whoever can write the directory can swap
/// the key file, whatever the file's own mode.
pub(crate) fn check_key_dir(dir: &Path) -> Result<(), MasterKeyError> {
    let meta = fs::metadata(dir).map_err(|source| MasterKeyError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mode = meta.mode() & 0o777;
    let why = if mode & 0o022 != 0 {
        Some(format!("has mode {mode:o}, writable by group or others"))
    } else if meta.uid() != euid() && meta.uid() != 0 {
        Some(format!("belongs to user {}", meta.uid()))
    } else {
        None
    };
    match why {
        Some(why) => Err(MasterKeyError::Directory {
            path: dir.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl MasterKey {
    /// Creates a new key file (mode 0600, 256 random bits; its directory
    /// 0700 if it has to be made) and loads it. Refuses when the file
    /// exists. The file appears whole or not at all: it is written under a
    /// temporary name, flushed, then linked into place (no-clobber) and the
    /// directory flushed.
    pub fn create(path: &Path) -> Result<Self, MasterKeyError> {
        let dir = parent_of(path);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| MasterKeyError::Io {
                path: dir.clone(),
                source,
            })?;
        check_key_dir(&dir)?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| MasterKeyError::Random)?;
        write_key_file(path, &bytes)?;
        Self::load(path)
    }

    /// Loads an existing key file, checking that it exists, that its owner
    /// is this process's user, that only the owner may read it, and that
    /// its directory is not writable by others.
    pub fn load(path: &Path) -> Result<Self, MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MasterKeyError::Missing {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        check_key_dir(&parent_of(path))?;
        if meta.uid() != euid() {
            return Err(MasterKeyError::Owner {
                path: path.to_owned(),
                owner: meta.uid(),
                euid: euid(),
            });
        }
        if let Some(mode) = super::lax_mode(path).map_err(io)? {
            return Err(MasterKeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let malformed = || MasterKeyError::Malformed {
            path: path.to_owned(),
        };
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut bytes[..]).map_err(|_| malformed())?;
        Self::from_bytes(&bytes[..]).ok_or_else(malformed)
    }

    /// Loads `path` as the sealing key, with a pending rotation's key and
    /// every retired key beside it as keys that still open older rows.
    pub fn load_ring(path: &Path) -> Result<Self, MasterKeyError> {
        let mut current = Self::load(path)?;
        let pending = pending_path(path);
        if pending.exists() {
            tracing::warn!(
                file = %pending.display(),
                "a master key rotation was interrupted; its new key opens what it re-wrapped. Run `brdo keys rotate` again to finish it"
            );
            current.older.push(Self::load(&pending)?);
        }
        for file in retired_files(path)? {
            current.older.push(Self::load(&file)?);
        }
        Ok(current)
    }

    /// Builds a key from 32 bytes (tests and key rotation).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let raw: [u8; 32] = bytes.try_into().ok()?;
        let raw = Zeroizing::new(raw);
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw[..]).ok()?);
        // The id names the key in stored rows without revealing it.
        let input = Zeroizing::new([b"brdo-master-key-id:".as_slice(), &raw[..]].concat());
        let id = hex::encode(&digest(&SHA256, &input).as_ref()[..8]);
        Some(Self {
            key,
            id,
            raw,
            older: Vec::new(),
        })
    }

    /// A short public identifier of this key, stored beside every wrapped
    /// data key so rotation knows which rows still need re-wrapping.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key of the ring whose id a stored row names: this one or an
    /// older one still kept.
    pub(crate) fn opener(&self, id: &str) -> Option<&MasterKey> {
        if self.id == id {
            return Some(self);
        }
        self.older.iter().find(|k| k.id == id)
    }

    /// The ids of every key in the ring, the sealing key first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.older.iter().map(|k| k.id.as_str()))
    }

    /// The older keys of the ring.
    pub fn older(&self) -> &[MasterKey] {
        &self.older
    }

    /// Keeps this key as `master.key.retired.<id>` beside `current` (no
    /// change when that file is already there).
    pub fn keep_retired(&self, current: &Path) -> Result<PathBuf, MasterKeyError> {
        let path = retired_path(current, &self.id);
        match write_key_file(&path, &self.raw) {
            Ok(()) | Err(MasterKeyError::Exists { .. }) => Ok(path),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.key
    }
}

/// Writes `bytes` as hex to a new file at `path` (0600), atomically and
/// without replacing an existing file, then flushes the directory.
fn write_key_file(path: &Path, bytes: &[u8; 32]) -> Result<(), MasterKeyError> {
    let io = |source| MasterKeyError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = suffixed(path, &format!(".{}.tmp", uuid::Uuid::now_v7().simple()));
    let text = Zeroizing::new(hex::encode(bytes));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(MasterKeyError::Exists {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io(e)),
    }
    sync_dir(&parent_of(path)).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_with_owner_only_mode_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::create(&path).expect("create");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(dir.path().join("sub"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let b = MasterKey::load(&path).expect("reload");
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        // No temporary file stays behind.
        assert_eq!(fs::read_dir(dir.path().join("sub")).expect("ls").count(), 1);
    }

    #[test]
    fn create_never_replaces_a_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        let a = MasterKey::create(&path).expect("create");
        assert!(matches!(
            MasterKey::create(&path),
            Err(MasterKeyError::Exists { .. })
        ));
        assert_eq!(MasterKey::load(&path).expect("load").id(), a.id());
    }

    #[test]
    fn a_missing_key_is_not_created_by_loading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        let e = MasterKey::load_ring(&path).expect_err("must refuse");
        assert!(matches!(e, MasterKeyError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("brdo keys init"), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn refuses_readable_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        MasterKey::create(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = MasterKey::load(&path).expect_err("must refuse");
        assert!(e.to_string().contains("mode 644"), "{e}");
    }

    #[test]
    fn refuses_a_key_directory_others_may_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        MasterKey::create(&path).expect("create");
        for mode in [0o777, 0o770, 0o702] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).expect("chmod");
            let e = MasterKey::load(&path).expect_err("must refuse");
            assert!(
                matches!(e, MasterKeyError::Directory { .. }),
                "{mode:o}: {e}"
            );
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        MasterKey::load(&path).expect("a directory only its owner writes is fine");
    }

    #[test]
    fn refuses_a_key_file_another_user_owns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        MasterKey::create(&path).expect("create");
        if euid() != 0 {
            // Only root can give a file away; as another user the check
            // is still the same comparison of owner and euid.
            return;
        }
        std::os::unix::fs::chown(&path, Some(4242), None).expect("chown");
        let e = MasterKey::load(&path).expect_err("must refuse");
        assert!(
            matches!(e, MasterKeyError::Owner { owner: 4242, .. }),
            "{e}"
        );
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

    #[test]
    fn the_ring_opens_under_pending_and_retired_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        let current = MasterKey::create(&path).expect("create");
        let pending = MasterKey::create(&pending_path(&path)).expect("pending");
        let old = MasterKey::from_bytes(&[9u8; 32]).expect("key");
        old.keep_retired(&path).expect("retire");
        old.keep_retired(&path).expect("keeping twice is no change");
        let ring = MasterKey::load_ring(&path).expect("ring");
        assert_eq!(ring.id(), current.id());
        for id in [current.id(), pending.id(), old.id()] {
            assert_eq!(ring.opener(id).map(MasterKey::id), Some(id));
        }
        assert!(ring.opener("0000000000000000").is_none());
        assert_eq!(ring.ids().count(), 3);
    }
}
