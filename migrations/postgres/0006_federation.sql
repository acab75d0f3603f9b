-- Federation (SPEC §11): relaying to peer gateways and their receipts.

-- A recipient behind a peer gateway: the peer its copy travels through.
-- NULL for a partner of this gateway.
ALTER TABLE deliveries ADD COLUMN via TEXT;

-- The durable outbox of the relay. References only, never content: a
-- message row names the message, and the relay opens it when it sends (an
-- erased message is never sent). `body` carries what is not content: a
-- signed receipt or a lifecycle notice. One row per peer and message; the
-- row goes in the transaction that creates the need and leaves in the one
-- that records the peer's answer. `claimed_until_ms` is a lease: a node
-- that sends a row claims it first, so two nodes never send it at once.
CREATE TABLE relay_outbox (
    id               TEXT PRIMARY KEY,      -- UUIDv7
    peer             TEXT NOT NULL,
    kind             TEXT NOT NULL,         -- message | notice | receipt
    message_id       TEXT NOT NULL,
    body             TEXT,                  -- JSON (notice) or a JWS (receipt)
    created_ms       BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    claimed_until_ms BIGINT
);
CREATE INDEX relay_outbox_due ON relay_outbox (peer, next_attempt_ms);

-- Receipts received from peers and issued to them (compact JWS). `peer` is
-- the other gateway; `recipient` is '' for a family-wide receipt.
CREATE TABLE relay_receipts (
    message_id TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    peer       TEXT NOT NULL,
    direction  TEXT NOT NULL,               -- received | issued
    kind       TEXT NOT NULL,
    jws        TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (message_id, recipient, peer, direction, kind)
);

-- Each peer's state: the operator's suspension and the relay's last
-- success and last error (the error's kind, never content or secrets).
CREATE TABLE peer_state (
    peer            TEXT PRIMARY KEY,
    suspended       BIGINT NOT NULL DEFAULT 0,
    last_success_ms BIGINT,
    last_error      TEXT,
    last_error_ms   BIGINT
);
