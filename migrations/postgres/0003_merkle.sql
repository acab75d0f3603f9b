-- The RFC 9162 Merkle tree over audit record hashes, and signed checkpoints.

-- Roots of complete subtrees at levels 4, 8, 12, ... (16, 256, 4096 …
-- leaves), written as they complete. Proofs are assembled from these and
-- at most 8 leaves or nodes per subtree, so serving one costs a few dozen
-- row reads at any log size. A cache: every value can be recomputed from
-- audit_log.hash, and proofs are checked against signed checkpoints.
CREATE TABLE merkle_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- The frontier (roots of the perfect subtrees covering the log), so each
-- write batch extends the tree in O(log n) without reading old leaves.
CREATE TABLE merkle_frontier (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    size   BIGINT NOT NULL,
    hashes BYTEA NOT NULL
);

-- Signed tree heads: compact JWS over {"tree_size", "root_hash", "at"}.
CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root_hash TEXT NOT NULL,
    at        TEXT NOT NULL,
    jws       TEXT NOT NULL
);
