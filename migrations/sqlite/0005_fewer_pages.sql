-- Fewer pages written per commit. Every B-tree a submit touches costs at
-- least one 4 KiB page in the WAL at each commit, and the write-ahead log is
-- most of the writer's work (BENCHMARKS.md). Two changes, same data:
--
-- 1. Tables whose whole row is (or is close to) their primary key are
--    stored WITHOUT ROWID: one B-tree each instead of a rowid table plus
--    the primary key's index. Their rows are small (ids, sequence numbers,
--    a wrapped data key, a 32-byte hash), which is where SQLite recommends
--    it. Columns, their order and their constraints are as before.
-- 2. The forwarding-family index holds forwards only. An original's root_id
--    is its own id, so it is found by its primary key; queries ask for
--    `id = $1 OR (root_id = $1 AND root_id <> id)`, which uses both indexes
--    (the former `COALESCE(root_id, id) = $1` used neither and scanned).

CREATE TABLE data_keys_new (
    owner         TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO data_keys_new (owner, master_key_id, wrapped_key)
    SELECT owner, master_key_id, wrapped_key FROM data_keys;
DROP TABLE data_keys;
ALTER TABLE data_keys_new RENAME TO data_keys;

CREATE TABLE deliveries_new (
    message_id TEXT NOT NULL REFERENCES messages (id),
    recipient  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    status     TEXT NOT NULL,               -- queued | delivered | acknowledged
    updated_at TEXT NOT NULL,
    PRIMARY KEY (message_id, recipient)
) WITHOUT ROWID;
INSERT INTO deliveries_new (message_id, recipient, seq, status, updated_at)
    SELECT message_id, recipient, seq, status, updated_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_inbox ON deliveries (recipient, seq);

CREATE TABLE audit_parties_new (
    partner TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (partner, seq)
) WITHOUT ROWID;
INSERT INTO audit_parties_new (partner, seq) SELECT partner, seq FROM audit_parties;
DROP TABLE audit_parties;
ALTER TABLE audit_parties_new RENAME TO audit_parties;

CREATE TABLE audit_messages_new (
    message_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;
INSERT INTO audit_messages_new (message_id, seq) SELECT message_id, seq FROM audit_messages;
DROP TABLE audit_messages;
ALTER TABLE audit_messages_new RENAME TO audit_messages;

CREATE TABLE merkle_nodes_new (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
INSERT INTO merkle_nodes_new (level, idx, hash) SELECT level, idx, hash FROM merkle_nodes;
DROP TABLE merkle_nodes;
ALTER TABLE merkle_nodes_new RENAME TO merkle_nodes;

DROP INDEX messages_root;
CREATE INDEX messages_root ON messages (root_id) WHERE root_id <> id;
