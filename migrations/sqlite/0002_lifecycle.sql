-- Data-protection lifecycle: forwarding families, the provider's
-- permissions, legal holds, judicial use, attachments.

-- The originator's message a forward copies (itself for an original), so
-- permissions, holds, label raises and erase decisions apply to every copy.
ALTER TABLE messages ADD COLUMN root_id TEXT;
UPDATE messages SET root_id = id WHERE root_id IS NULL;
CREATE INDEX messages_root ON messages (root_id);
ALTER TABLE messages ADD COLUMN hold_reason TEXT;

-- Permissions the originator grants on its information (H2 forward, H1
-- judicial use), per partner.
CREATE TABLE permissions (
    root_id    TEXT NOT NULL,
    partner    TEXT NOT NULL,
    scope      TEXT NOT NULL,      -- forward | judicial_use
    granted_at TEXT NOT NULL,
    officer    TEXT NOT NULL,
    PRIMARY KEY (root_id, partner, scope)
);

-- Judicial use recorded by a recipient.
CREATE TABLE judicial_uses (
    message_id  TEXT NOT NULL,
    partner     TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    reference   TEXT,
    PRIMARY KEY (message_id, partner, recorded_at)
);

-- Uploaded attachments. The content is an encrypted blob (files under the
-- blob directory); its data key is in data_keys under the attachment id.
CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,    -- the uploading partner
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    erased_at_ms INTEGER
);
CREATE INDEX attachments_owner ON attachments (owner, created_ms);

-- Which messages carry which attachments (a forward shares its original's).
CREATE TABLE message_attachments (
    message_id    TEXT NOT NULL,
    attachment_id TEXT NOT NULL,
    PRIMARY KEY (message_id, attachment_id)
);
CREATE INDEX message_attachments_attachment ON message_attachments (attachment_id);
