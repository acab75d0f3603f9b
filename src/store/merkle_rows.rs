//! The Merkle tree in the database: the frontier and interior nodes the
//! writer maintains, signed checkpoints, and the proofs served from them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use super::Store;
use super::convert::to_i64;
use super::error::StoreError;
use super::write_conn::{Arg, WriteConn};
use crate::audit::merkle::{self, CompactRange, Hash, SubtreeSource};
use crate::audit::record::{decode_hash, format_at};
use crate::crypto::jose::{Checkpoint, CheckpointSigner};

/// Interior nodes are stored at levels that are multiples of this.
pub const NODE_LEVEL_STEP: u32 = 4;

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

fn corrupt(what: impl ToString) -> StoreError {
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

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Records covered.
    pub tree_size: u64,
    /// Root, hex.
    pub root_hash: String,
    /// When signed.
    pub at: String,
    /// The compact JWS.
    pub jws: String,
}

/// Records which subtree roots a proof algorithm asks for; the answers are
/// placeholders (the algorithms' control flow depends only on sizes).
struct Recorder(Vec<(u64, u64)>);

impl SubtreeSource for Recorder {
    type Error = std::convert::Infallible;
    fn subtree_root(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        self.0.push((start, end));
        Ok([0u8; 32])
    }
}

/// Serves roots fetched beforehand.
struct Fetched(HashMap<(u64, u64), Hash>);

impl SubtreeSource for Fetched {
    type Error = StoreError;
    fn subtree_root(&mut self, start: u64, end: u64) -> Result<Hash, StoreError> {
        self.0
            .get(&(start, end))
            .copied()
            .ok_or_else(|| corrupt(format!("subtree [{start}, {end}) was not fetched")))
    }
}

fn fold_perfect(mut level: Vec<Hash>) -> Result<Hash, StoreError> {
    while level.len() > 1 {
        if !level.len().is_multiple_of(2) {
            return Err(corrupt("not a perfect subtree"));
        }
        level = level
            .chunks(2)
            .map(|p| merkle::node_hash(&p[0], &p[1]))
            .collect();
    }
    level.pop().ok_or_else(|| corrupt("empty subtree"))
}

impl Store {
    /// Leaf hashes of records `[start, end)` (0-based leaf indices).
    async fn leaves(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        let rows =
            sqlx::query("SELECT hash FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq")
                .bind(to_i64(start)?)
                .bind(to_i64(end)?)
                .fetch_all(self.pool())
                .await?;
        if rows.len() as u64 != end - start {
            return Err(StoreError::NotFound);
        }
        rows.iter()
            .map(|r| {
                let h: String = r.try_get(0)?;
                Ok(merkle::leaf_hash(&decode_hash(&h).map_err(corrupt)?))
            })
            .collect()
    }

    /// Root of the perfect subtree at `level` with index `idx`.
    async fn perfect_root(&self, level: u32, idx: u64) -> Result<Hash, StoreError> {
        let base = level - level % NODE_LEVEL_STEP;
        let width = 1u64 << (level - base);
        if base > 0 {
            let rows = sqlx::query(
                "SELECT hash FROM merkle_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            )
            .bind(i64::from(base))
            .bind(to_i64(idx * width)?)
            .bind(to_i64((idx + 1) * width)?)
            .fetch_all(self.pool())
            .await?;
            if rows.len() as u64 == width {
                let hashes = rows
                    .iter()
                    .map(|r| {
                        let b: Vec<u8> = r.try_get(0)?;
                        b.try_into()
                            .map_err(|_| corrupt("node hash is not 32 bytes"))
                    })
                    .collect::<Result<Vec<Hash>, StoreError>>()?;
                return fold_perfect(hashes);
            }
            tracing::warn!(
                level,
                idx,
                "Merkle nodes missing; recomputing the subtree from its leaves"
            );
        }
        let leaf_width = 1u64 << level;
        fold_perfect(
            self.leaves(idx * leaf_width, (idx + 1) * leaf_width)
                .await?,
        )
    }

    /// The RFC 9162 root of leaves `[start, end)`, split as the RFC defines,
    /// with perfect aligned subtrees read from stored nodes.
    pub async fn range_root(&self, start: u64, end: u64) -> Result<Hash, StoreError> {
        if end <= start {
            return Ok(merkle::empty_root());
        }
        // Iterative decomposition: collect the maximal perfect aligned
        // subtrees left to right, then fold from the right as the RFC's
        // recursion does (split at the largest power of two below n).
        let mut parts: Vec<Hash> = Vec::new();
        let mut pos = start;
        while pos < end {
            let mut level = 0u32;
            while level < 63 {
                let w = 1u64 << (level + 1);
                if !pos.is_multiple_of(w) || pos + w > end {
                    break;
                }
                level += 1;
            }
            parts.push(self.perfect_root(level, pos >> level).await?);
            pos += 1u64 << level;
        }
        let mut acc = parts.pop().ok_or_else(|| corrupt("empty range"))?;
        while let Some(left) = parts.pop() {
            acc = merkle::node_hash(&left, &acc);
        }
        Ok(acc)
    }

    async fn fetch_ranges(&self, ranges: Vec<(u64, u64)>) -> Result<Fetched, StoreError> {
        let mut map = HashMap::new();
        for (s, e) in ranges {
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry((s, e)) {
                slot.insert(self.range_root(s, e).await?);
            }
        }
        Ok(Fetched(map))
    }

    /// RFC 9162 inclusion proof of leaf `index` in the tree of `size`.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        let mut rec = Recorder(Vec::new());
        merkle::inclusion_proof(&mut rec, index, size).map_err(|_| StoreError::NotFound)?;
        let mut src = self.fetch_ranges(rec.0).await?;
        merkle::inclusion_proof(&mut src, index, size).map_err(|e| corrupt(format!("{e:?}")))
    }

    /// RFC 9162 consistency proof between tree sizes `old` and `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        let mut rec = Recorder(Vec::new());
        merkle::consistency_proof(&mut rec, old, new).map_err(|_| StoreError::NotFound)?;
        let mut src = self.fetch_ranges(rec.0).await?;
        merkle::consistency_proof(&mut src, old, new).map_err(|e| corrupt(format!("{e:?}")))
    }

    /// The newest checkpoint, or the one at exactly `tree_size`.
    pub async fn checkpoint(
        &self,
        tree_size: Option<u64>,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = match tree_size {
            None => {
                sqlx::query("SELECT tree_size, root_hash, at, jws FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
                    .fetch_optional(self.pool())
                    .await?
            }
            Some(n) => {
                sqlx::query("SELECT tree_size, root_hash, at, jws FROM audit_checkpoints WHERE tree_size = $1")
                    .bind(to_i64(n)?)
                    .fetch_optional(self.pool())
                    .await?
            }
        };
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// Every checkpoint, oldest first (what `audit verify` checks).
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_size, root_hash, at, jws FROM audit_checkpoints ORDER BY tree_size",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }
}

fn checkpoint_from_row(r: &sqlx::any::AnyRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: u64::try_from(r.try_get::<i64, _>(0)?).map_err(corrupt)?,
        root_hash: r.try_get(1)?,
        at: r.try_get(2)?,
        jws: r.try_get(3)?,
    })
}
