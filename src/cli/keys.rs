//! `brdo keys init|rotate --config FILE`: create the master key, or re-wrap
//! every data key under a new one.
//!
//! Rotation never touches content: only the small wrapped keys change. It
//! takes the master key lock exclusively (`crypto::KeyLock`, and on
//! PostgreSQL the database's advisory lock), so it is refused while any
//! gateway on the key runs: a running gateway seals under the key it
//! loaded, and replacing that key under it would leave everything sealed
//! afterwards under a key that exists nowhere.
//!
//! Every step leaves a state the next start or rerun completes:
//! 1. the new key is written whole beside the old (`master.key.new`);
//! 2. the old key is kept as `master.key.retired.<id>`;
//! 3. every data key under any other key of the ring is re-wrapped, in
//!    batches (each row names its master key);
//! 4. only when none is left under another key does `master.key.new`
//!    replace `master.key` (the directory is flushed after each rename);
//! 5. retired keys older than the one just replaced are removed once no
//!    data key names them; the one just replaced stays until the next
//!    rotation, for rows a node on another host might still seal under it.
//!
//! A gateway started after an interruption loads `.new` and the retired
//! keys as well, so nothing stored becomes unreadable; rerunning the
//! command finishes the rotation.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use brdo::audit::record::{Action, RecordDraft};
use brdo::config::Config;
use brdo::crypto::master_key::{pending_path, retired_files, sync_dir};
use brdo::crypto::{DataKey, KeyLock, KeyLockError, MasterKey, MasterKeyError};
use brdo::store::writes::Rewrap;
use brdo::store::{DataKeyRow, Store, StoreOptions};

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the master key of a new gateway (refused if it exists).
    Init {
        /// The gateway configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Re-wrap every data key under a new master key (every gateway on the
    /// key stopped; refused otherwise).
    Rotate {
        /// The gateway configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Data keys re-wrapped per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
    },
}

/// Runs a keys command.
pub async fn run(cmd: KeysCommand) -> u8 {
    let (config_path, batch) = match &cmd {
        KeysCommand::Init { config } => (config, None),
        KeysCommand::Rotate { config, batch } => (config, Some(*batch)),
    };
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let Some(batch) = batch else {
        return match MasterKey::create(&config.crypto.master_key_file) {
            Ok(key) => {
                println!(
                    "created the master key {} in {}",
                    key.id(),
                    config.crypto.master_key_file.display()
                );
                EXIT_OK
            }
            Err(e @ MasterKeyError::Exists { .. }) => fail(EXIT_CONFIG, e),
            Err(e) => fail(EXIT_RUNTIME, e),
        };
    };
    match rotate(&config, batch).await {
        Ok((n, id)) => {
            println!("re-wrapped {n} data key(s); the master key is now {id}");
            EXIT_OK
        }
        Err(e) => fail(EXIT_RUNTIME, e),
    }
}

fn audit_draft(n: u64, from: &str, to: &str) -> RecordDraft {
    let details = json!({"rewrapped": n, "from_key": from, "to_key": to});
    RecordDraft::system(
        "keys-rotate",
        Action::Alter,
        details.as_object().cloned().unwrap_or_default(),
    )
}

/// Rotates the master key named by `config`, `batch` data keys per
/// transaction; returns the number of keys re-wrapped and the new key's id.
pub async fn rotate(config: &Config, batch: u32) -> Result<(u64, String), String> {
    let current_path = &config.crypto.master_key_file;
    let _lock = exclusive_lock(current_path).await?;
    let ring = MasterKey::load_ring(current_path).map_err(|e| e.to_string())?;
    let store = Store::open(&StoreOptions::for_tool(config))
        .await
        .map_err(|e| e.to_string())?;
    let result = rotate_locked(&store, &ring, current_path, batch).await;
    store.close().await;
    result
}

/// The exclusive key lock, waiting up to two seconds for a gateway that
/// is just stopping (or a child process that has not yet dropped an
/// inherited copy of its descriptor); a gateway that keeps running keeps
/// the rotation refused.
async fn exclusive_lock(current_path: &Path) -> Result<KeyLock, String> {
    let mut tries = 0;
    loop {
        match KeyLock::exclusive(current_path) {
            Ok(lock) => return Ok(lock),
            Err(KeyLockError::GatewayRunning { .. }) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

async fn rotate_locked(
    store: &Store,
    ring: &MasterKey,
    current_path: &Path,
    batch: u32,
) -> Result<(u64, String), String> {
    let _db_lock = store
        .key_use_lock(true)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("a gateway node is running on this database (it holds the master key lock); stop every node, then rotate")?;
    let new_path = pending_path(current_path);
    // Resume with the key an interrupted run wrote, or write one.
    let new = if new_path.exists() {
        MasterKey::load(&new_path)
    } else {
        MasterKey::create(&new_path)
    }
    .map_err(|e| e.to_string())?;
    // The key being replaced stays on disk until the next rotation.
    ring.keep_retired(current_path).map_err(|e| e.to_string())?;
    let mut total = 0u64;
    let sources = std::iter::once(ring)
        .chain(ring.older())
        .filter(|k| k.id() != new.id());
    for old in sources {
        loop {
            let rows = store
                .data_keys_under(old.id(), batch)
                .await
                .map_err(|e| e.to_string())?;
            if rows.is_empty() {
                break;
            }
            let mut keys = Vec::with_capacity(rows.len());
            for DataKeyRow { owner, key } in &rows {
                let key = DataKey::unwrap_key(old, owner, &key.wrapped_key).map_err(|_| {
                    format!(
                        "the data key of {owner} does not unwrap under master key {}",
                        old.id()
                    )
                })?;
                let rewrapped = key.wrap(&new, owner).map_err(|e| e.to_string())?;
                keys.push(DataKeyRow {
                    owner: owner.clone(),
                    key: rewrapped,
                });
            }
            let n = keys.len() as u64;
            store
                .write(Rewrap { keys }.into(), audit_draft(n, old.id(), new.id()))
                .await
                .map_err(|e| e.to_string())?;
            total += n;
        }
    }
    let strays = store
        .data_keys_not_under(new.id())
        .await
        .map_err(|e| e.to_string())?;
    if strays > 0 {
        return Err(format!(
            "{strays} data key(s) are wrapped under a master key that is not in the ring; nothing was replaced"
        ));
    }
    std::fs::rename(&new_path, current_path)
        .map_err(|e| format!("replacing {} failed: {e}", current_path.display()))?;
    let dir = dir_of(current_path);
    sync_dir(dir).map_err(|e| format!("flushing {} failed: {e}", dir.display()))?;
    prune_retired(store, current_path, ring.id()).await?;
    Ok((total, new.id().to_owned()))
}

/// Removes retired keys other than `keep` that no data key names.
async fn prune_retired(store: &Store, current_path: &Path, keep: &str) -> Result<(), String> {
    let mut removed = false;
    for file in retired_files(current_path).map_err(|e| e.to_string())? {
        let key = MasterKey::load(&file).map_err(|e| e.to_string())?;
        if key.id() == keep {
            continue;
        }
        let left = store
            .data_keys_count_under(key.id())
            .await
            .map_err(|e| e.to_string())?;
        if left == 0 {
            std::fs::remove_file(&file)
                .map_err(|e| format!("removing {} failed: {e}", file.display()))?;
            removed = true;
        }
    }
    if removed {
        let dir = dir_of(current_path);
        sync_dir(dir).map_err(|e| format!("flushing {} failed: {e}", dir.display()))?;
    }
    Ok(())
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
