//! Reading the audit log's Merkle tree back: subtree roots from the
//! stored interior nodes (or the leaves), RFC 9162 inclusion and
//! consistency proofs, and the signed checkpoints. The writer's side of
//! the tree is `merkle_rows`.

use std::collections::HashMap;

use sqlx::Row;

use super::Store;
use super::convert::to_i64;
use super::error::StoreError;
use super::merkle_rows::{NODE_LEVEL_STEP, corrupt};
use crate::audit::merkle::{self, Hash, SubtreeSource};
use crate::audit::record::decode_hash;

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
    pub(crate) async fn range_root(&self, start: u64, end: u64) -> Result<Hash, StoreError> {
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
