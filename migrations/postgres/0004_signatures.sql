-- Sender signatures (non-repudiation of origin): the detached JWS a partner
-- sent in Brdo-Signature, with the statement it signed, kept and delivered
-- so a recipient can prove who sent what without trusting the gateway. A
-- forwarded message carries the originator's signatures and adds the
-- forwarder's; `position` keeps that order.
CREATE TABLE message_signatures (
    message_id TEXT NOT NULL,
    position   INTEGER NOT NULL,
    partner    TEXT NOT NULL,
    role       TEXT NOT NULL,
    jws        TEXT NOT NULL,
    statement  TEXT NOT NULL,
    PRIMARY KEY (message_id, position)
);
