//! `brdo keys rotate --config FILE`: re-wrap every data key under a new
//! master key.
//!
//! Content is never touched: only the small wrapped keys change. The new
//! key is written beside the old one first (`master.key.new`), every
//! wrapped key is re-wrapped in batches (each row records which master key
//! wraps it), and only when none is left under the old key does the new
//! file replace the old. An interrupted rotation is resumed by running the
//! command again. Run it with the gateway stopped: a running gateway holds
//! the old key in memory.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, fail};
use crate::audit::record::{Action, Actor, Outcome, RecordDraft, format_at};
use crate::config::Config;
use crate::crypto::{DataKey, MasterKey};
use crate::store::{Store, StoreOptions, WriteOp};

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every data key under a new master key (gateway stopped).
    Rotate {
        /// The gateway configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

const BATCH: u32 = 500;

/// Runs a keys command.
pub async fn run(cmd: KeysCommand) -> u8 {
    let KeysCommand::Rotate { config } = cmd;
    let config = match Config::load(&config) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    match rotate(&config).await {
        Ok((n, id)) => {
            println!("re-wrapped {n} data key(s); the master key is now {id}");
            EXIT_OK
        }
        Err(e) => fail(EXIT_RUNTIME, e),
    }
}

fn next_path(current: &Path) -> PathBuf {
    let mut name = current.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    current.with_file_name(name)
}

/// Rotates the master key named by `config`; returns the number of keys
/// re-wrapped and the new key's id.
pub async fn rotate(config: &Config) -> Result<(u64, String), String> {
    let current_path = &config.crypto.master_key_file;
    let old = MasterKey::load(current_path).map_err(|e| e.to_string())?;
    let new_path = next_path(current_path);
    let new = MasterKey::load_or_create(&new_path).map_err(|e| e.to_string())?;
    let store = Store::open(&StoreOptions::for_tool(config))
        .await
        .map_err(|e| e.to_string())?;
    let mut total = 0u64;
    loop {
        let batch = store
            .data_keys_under(old.id(), BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            break;
        }
        let mut keys = Vec::with_capacity(batch.len());
        for (owner, wrapped) in &batch {
            let key = DataKey::unwrap_key(&old, owner, wrapped).map_err(|_| {
                format!("the data key of {owner} does not unwrap under the current master key")
            })?;
            let rewrapped = key.wrap(&new, owner).map_err(|e| e.to_string())?;
            keys.push((
                owner.clone(),
                rewrapped.master_key_id,
                rewrapped.wrapped_key,
            ));
        }
        let n = keys.len() as u64;
        let draft = RecordDraft {
            at: format_at(time::OffsetDateTime::now_utc()),
            actor: Actor::system("keys-rotate"),
            action: Action::Alter,
            message_id: None,
            counterparts: Vec::new(),
            outcome: Outcome::Allowed,
            code: None,
            justification: None,
            request_id: None,
            node: None,
            details: json!({"rewrapped": n, "from_key": old.id(), "to_key": new.id()})
                .as_object()
                .cloned(),
        };
        store
            .write(WriteOp::Rewrap { keys }, draft)
            .await
            .map_err(|e| e.to_string())?;
        total += n;
    }
    let strays = store
        .data_keys_not_under(new.id())
        .await
        .map_err(|e| e.to_string())?;
    if strays > 0 {
        return Err(format!(
            "{strays} data key(s) are wrapped under neither the old nor the new master key; nothing was replaced"
        ));
    }
    store.close().await;
    std::fs::rename(&new_path, current_path)
        .map_err(|e| format!("replacing {} failed: {e}", current_path.display()))?;
    Ok((total, new.id().to_owned()))
}
