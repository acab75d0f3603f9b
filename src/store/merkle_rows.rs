//! The Merkle tree in the database: the frontier and interior nodes the
//! writer maintains and the checkpoints it signs. The proofs served from
//! them are read in `proofs`.

use std::sync::Arc;
use std::time::Duration;

use super::convert::to_i64;
use super::error::StoreError;
use super::write_conn::{Arg, WriteConn};
use crate::audit::merkle::{self, CompactRange, Hash};
use crate::audit::record::{decode_hash, format_at};
use crate::crypto::jose::{Checkpoint, CheckpointSigner};

/// Interior nodes are stored at levels that are multiples of this.
pub(crate) const NODE_LEVEL_STEP: u32 = 4;

/// When the writer signs checkpoints.
#[derive(Clone)]
pub struct CheckpointPolicy {
    /// The signing key; `None` in processes that only append (CLI tools):
    /// the next gateway batch catches up.
    pub signer: Option<Arc<CheckpointSigner>>,
    /// Sign after this many new records.
    pub every: u64,
    /// ... or after this long with new records.
    pub interval: Duration,
}

impl std::fmt::Debug for CheckpointPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointPolicy")
            .field("signing", &self.signer.is_some())
            .field("every", &self.every)
            .field("interval", &self.interval)
            .finish()
    }
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            signer: None,
            every: 1000,
            interval: Duration::from_secs(60),
        }
    }
}

/// The tree as one write batch extends it.
#[derive(Debug, Default)]
pub(super) struct Tree {
    pub range: CompactRange,
    pub nodes: Vec<(u32, u64, Hash)>,
    pub dirty: bool,
}

pub(super) fn corrupt(what: impl ToString) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

impl Tree {
    /// Appends a record's hash (hex) as the next leaf.
    pub fn push(&mut self, record_hash: &str) -> Result<(), StoreError> {
        let leaf = merkle::leaf_hash(&decode_hash(record_hash).map_err(corrupt)?);
        let nodes = &mut self.nodes;
        self.range
            .append_reporting(&leaf, |level, idx, h| {
                if level % NODE_LEVEL_STEP == 0 {
                    nodes.push((level, idx, *h));
                }
            })
            .map_err(corrupt)?;
        self.dirty = true;
        Ok(())
    }
}

/// Loads the frontier and appends any records it does not cover yet (a
/// log written before the tree existed, or by a crash between tables —
/// impossible within one transaction, but cheap to be sure).
pub(super) async fn load_tree(conn: &mut WriteConn, log_size: u64) -> Result<Tree, StoreError> {
    let row = conn
        .fetch_optional("SELECT size, hashes FROM merkle_frontier WHERE id = 1", &[])
        .await?;
    let range = match row {
        None => CompactRange::new(),
        Some(r) => {
            let size = r.int(0)?;
            let bytes = r.blob(1)?;
            let hashes: Vec<Hash> = bytes
                .chunks(32)
                .map(|c| {
                    c.try_into()
                        .map_err(|_| corrupt("frontier hash is not 32 bytes"))
                })
                .collect::<Result<_, _>>()?;
            CompactRange::from_parts(u64::try_from(size).map_err(corrupt)?, hashes)
                .map_err(corrupt)?
        }
    };
    let mut tree = Tree {
        range,
        nodes: Vec::new(),
        dirty: false,
    };
    while tree.range.size() < log_size {
        let rows = conn
            .fetch_all(
                "SELECT hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 10000",
                &[to_i64(tree.range.size())?.into()],
            )
            .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let h = r.text(0)?;
            tree.push(&h)?;
        }
        // Keep memory bounded during a long catch-up.
        flush(conn, &mut tree).await?;
    }
    Ok(tree)
}

/// Interior nodes per `INSERT` (3 parameters each, well under SQLite's
/// and PostgreSQL's parameter limits).
const NODES_PER_INSERT: usize = 64;

/// Writes new interior nodes and the frontier.
pub(super) async fn flush(conn: &mut WriteConn, tree: &mut Tree) -> Result<(), StoreError> {
    if !tree.dirty {
        return Ok(());
    }
    // Multi-row INSERTs: each statement is a round trip to the database
    // connection's worker thread (see BENCHMARKS.md), and a batch of n
    // records makes about n new interior nodes.
    let nodes = std::mem::take(&mut tree.nodes);
    let rows = nodes
        .iter()
        .map(|(level, idx, hash)| {
            Ok([
                i64::from(*level).into(),
                to_i64(*idx)?.into(),
                hash.as_slice().into(),
            ])
        })
        .collect::<Result<Vec<[Arg<'_>; 3]>, StoreError>>()?;
    conn.insert_rows(
        "merkle_nodes (level, idx, hash)",
        &rows,
        NODES_PER_INSERT,
        " ON CONFLICT (level, idx) DO NOTHING",
    )
    .await?;
    let hashes: Vec<u8> = tree.range.hashes().concat();
    conn.execute(
        "INSERT INTO merkle_frontier (id, size, hashes) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET size = excluded.size, hashes = excluded.hashes",
        &[to_i64(tree.range.size())?.into(), hashes.as_slice().into()],
    )
    .await?;
    tree.dirty = false;
    Ok(())
}

/// Signs and stores a checkpoint if one is due: `every` records since the
/// last, or `interval` elapsed with new records.
pub(super) async fn maybe_checkpoint(
    conn: &mut WriteConn,
    tree: &Tree,
    policy: &CheckpointPolicy,
) -> Result<(), StoreError> {
    let Some(signer) = &policy.signer else {
        return Ok(());
    };
    let size = tree.range.size();
    if size == 0 {
        return Ok(());
    }
    let last = conn
        .fetch_optional(
            "SELECT tree_size, at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
            &[],
        )
        .await?;
    let (last_size, last_at) = match &last {
        Some(r) => (u64::try_from(r.int(0)?).map_err(corrupt)?, r.text(1)?),
        None => (0, String::new()),
    };
    if size <= last_size {
        return Ok(());
    }
    let now = time::OffsetDateTime::now_utc();
    let elapsed =
        time::OffsetDateTime::parse(&last_at, &time::format_description::well_known::Rfc3339)
            .map_or(Duration::MAX, |t| {
                (now - t).try_into().unwrap_or(Duration::ZERO)
            });
    if size - last_size < policy.every && elapsed < policy.interval {
        return Ok(());
    }
    let cp = Checkpoint {
        tree_size: size,
        root_hash: hex::encode(tree.range.root()),
        at: format_at(now),
    };
    let jws = signer
        .sign(&cp)
        .map_err(|e| StoreError::Unavailable(format!("signing a checkpoint failed: {e}")))?;
    conn.execute(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, at, jws) VALUES ($1, $2, $3, $4)",
        &[
            to_i64(size)?.into(),
            cp.root_hash.as_str().into(),
            cp.at.as_str().into(),
            jws.as_str().into(),
        ],
    )
    .await?;
    Ok(())
}
