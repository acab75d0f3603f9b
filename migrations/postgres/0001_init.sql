-- Brdo store, PostgreSQL flavour: the same tables as migrations/sqlite,
-- with PostgreSQL types. See the SQLite file for what each table is for.

CREATE TABLE audit_log (
    seq               BIGINT PRIMARY KEY,
    at                TEXT,
    actor_role        TEXT,
    actor_id          TEXT,
    actor_officer     TEXT,
    actor_cert_serial TEXT,
    action            TEXT,
    message_id        TEXT,
    counterparts      TEXT,
    outcome           TEXT,
    code              TEXT,
    justification     TEXT,
    request_id        TEXT,
    node              TEXT,
    details           TEXT,
    reduced           BIGINT NOT NULL DEFAULT 0,
    prev_hash         TEXT NOT NULL,
    hash              TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_officer ON audit_log (actor_officer, seq);
CREATE INDEX audit_log_outcome ON audit_log (outcome, seq);

-- Append-only, except the reduction audit retention performs.
CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.reduced = 0 AND NEW.reduced = 1
       AND NEW.seq = OLD.seq AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
       AND NEW.at IS NULL AND NEW.actor_role IS NULL AND NEW.actor_id IS NULL
       AND NEW.actor_officer IS NULL AND NEW.actor_cert_serial IS NULL
       AND NEW.action IS NULL AND NEW.message_id IS NULL AND NEW.counterparts IS NULL
       AND NEW.outcome IS NULL AND NEW.code IS NULL AND NEW.justification IS NULL
       AND NEW.request_id IS NULL AND NEW.node IS NULL AND NEW.details IS NULL
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();

CREATE TABLE audit_parties (
    partner TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (partner, seq)
);

CREATE TABLE audit_messages (
    message_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (message_id, seq)
);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    sender          TEXT NOT NULL,
    originator      TEXT NOT NULL,
    forwarded_from  TEXT,
    officer         TEXT NOT NULL,
    classification  BIGINT NOT NULL,
    label           TEXT NOT NULL,
    evaluation      TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    personal_data   TEXT NOT NULL,
    case_ref        TEXT,
    in_reply_to     TEXT,
    content_type    TEXT NOT NULL,
    retention_days  BIGINT,
    attachments     TEXT NOT NULL,
    accepted_at     TEXT NOT NULL,
    accepted_ms     BIGINT NOT NULL,
    retain_until_ms BIGINT NOT NULL,
    review_on       TEXT NOT NULL,
    retention_basis TEXT NOT NULL,
    held            BIGINT NOT NULL DEFAULT 0,
    erased_at_ms    BIGINT,
    content         BYTEA,
    collect_seq     BIGINT NOT NULL
);
CREATE INDEX messages_due ON messages (retain_until_ms) WHERE erased_at_ms IS NULL;
CREATE INDEX messages_sender ON messages (sender, accepted_ms);

CREATE TABLE data_keys (
    owner         TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_key   BYTEA NOT NULL
);

CREATE TABLE deliveries (
    message_id TEXT NOT NULL REFERENCES messages (id),
    recipient  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    status     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (message_id, recipient)
);
CREATE INDEX deliveries_inbox ON deliveries (recipient, seq);

CREATE TABLE idempotency (
    partner      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    response     TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (partner, key)
);

CREATE TABLE partner_state (
    partner    TEXT PRIMARY KEY,
    suspended  BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
