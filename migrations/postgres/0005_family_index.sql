-- The forwarding-family index holds forwards only. An original's root_id is
-- its own id, so it is found by its primary key; queries ask for
-- `id = $1 OR (root_id = $1 AND root_id <> id)`, which uses both indexes
-- (the former `COALESCE(root_id, id) = $1` used neither and scanned), and a
-- submit no longer adds an entry to this index.
DROP INDEX messages_root;
CREATE INDEX messages_root ON messages (root_id) WHERE root_id <> id;
