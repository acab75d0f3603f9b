-- Brdo store, SQLite flavour. PostgreSQL has its own folder with the same
-- tables; queries are written in the SQL both understand ($N parameters,
-- TEXT/INTEGER/BLOB, times as RFC 3339 text plus unix milliseconds).

-- The audit log: one row per request or system action, hash-chained
-- (SPEC §5). Append-only: the triggers below refuse UPDATE and DELETE,
-- except the one UPDATE audit retention needs, which drops a record's
-- fields and keeps seq, prev_hash and hash so every proof still verifies.
CREATE TABLE audit_log (
    seq               INTEGER PRIMARY KEY,
    at                TEXT,
    actor_role        TEXT,
    actor_id          TEXT,
    actor_officer     TEXT,
    actor_cert_serial TEXT,
    action            TEXT,
    message_id        TEXT,
    counterparts      TEXT,     -- JSON array of partner ids
    outcome           TEXT,
    code              TEXT,
    justification     TEXT,
    request_id        TEXT,
    node              TEXT,
    details           TEXT,     -- JSON object, or NULL
    reduced           INTEGER NOT NULL DEFAULT 0,
    prev_hash         TEXT NOT NULL,
    hash              TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_officer ON audit_log (actor_officer, seq);
CREATE INDEX audit_log_outcome ON audit_log (outcome, seq);

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (
    OLD.reduced = 0 AND NEW.reduced = 1
    AND NEW.seq = OLD.seq AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
    AND NEW.at IS NULL AND NEW.actor_role IS NULL AND NEW.actor_id IS NULL
    AND NEW.actor_officer IS NULL AND NEW.actor_cert_serial IS NULL
    AND NEW.action IS NULL AND NEW.message_id IS NULL AND NEW.counterparts IS NULL
    AND NEW.outcome IS NULL AND NEW.code IS NULL AND NEW.justification IS NULL
    AND NEW.request_id IS NULL AND NEW.node IS NULL AND NEW.details IS NULL
)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Which partners a record involves (actor or counterpart), so a partner's
-- DPO query is an index lookup. Derived from audit_log; dropped with a
-- record's fields at the end of audit retention.
CREATE TABLE audit_parties (
    partner TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (partner, seq)
);

-- Which messages a record concerns (its message_id, and the ids an inbox
-- listing showed), for "who saw this message".
CREATE TABLE audit_messages (
    message_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (message_id, seq)
);

-- Messages. Subject, body and the special-categories basis are sealed in
-- `content` under the message's data key (table data_keys); everything
-- here in clear is what routing, policy and tombstones need.
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,       -- UUIDv7
    sender          TEXT NOT NULL,          -- who submitted it (forwarder for a forward)
    originator      TEXT NOT NULL,          -- who first provided the information
    forwarded_from  TEXT,                   -- the message a forward copies
    officer         TEXT NOT NULL,
    classification  INTEGER NOT NULL,       -- rank, 0 = BASIC_PROTECTION
    label           TEXT NOT NULL,          -- JSON
    evaluation      TEXT NOT NULL,          -- JSON
    purpose         TEXT NOT NULL,
    personal_data   TEXT NOT NULL,          -- JSON without the free-text basis
    case_ref        TEXT,
    in_reply_to     TEXT,
    content_type    TEXT NOT NULL,
    retention_days  INTEGER,
    attachments     TEXT NOT NULL,          -- JSON array of attachment ids
    accepted_at     TEXT NOT NULL,
    accepted_ms     INTEGER NOT NULL,
    retain_until_ms INTEGER NOT NULL,
    review_on       TEXT NOT NULL,
    retention_basis TEXT NOT NULL,          -- JSON: which rule set retain_until
    held            INTEGER NOT NULL DEFAULT 0,
    erased_at_ms    INTEGER,
    content         BLOB,                   -- sealed; NULL once erased
    collect_seq     INTEGER NOT NULL        -- audit seq of its collect record
);
CREATE INDEX messages_due ON messages (retain_until_ms) WHERE erased_at_ms IS NULL;
CREATE INDEX messages_sender ON messages (sender, accepted_ms);

-- Data keys wrapped by the master key, one per message or attachment.
-- Erasure deletes the row: with it goes any way to open the content.
CREATE TABLE data_keys (
    owner         TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL
);

-- One row per recipient of a message. `seq` orders inboxes: it is the audit
-- seq of the collect record, strictly increasing in commit order.
CREATE TABLE deliveries (
    message_id TEXT NOT NULL REFERENCES messages (id),
    recipient  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    status     TEXT NOT NULL,               -- queued | delivered | acknowledged
    updated_at TEXT NOT NULL,
    PRIMARY KEY (message_id, recipient)
);
CREATE INDEX deliveries_inbox ON deliveries (recipient, seq);

-- Idempotency keys of accepted submissions: the same key and body return
-- the first answer. Only 201 answers are kept (nothing else is stored for a
-- rejected request).
CREATE TABLE idempotency (
    partner      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    response     TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (partner, key)
);

-- Operator-controlled partner state (suspension).
CREATE TABLE partner_state (
    partner    TEXT PRIMARY KEY,
    suspended  INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
