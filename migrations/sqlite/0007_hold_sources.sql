-- Federation (SPEC §11): a holder keeps two holds apart, its own (the
-- originator's on its gateway, or its gateway DPO's) and the one an origin
-- gateway's notice set; lifting one leaves the other standing. `held`
-- stays the effective flag every erasure checks.
ALTER TABLE messages ADD COLUMN hold_local INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN hold_origin INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET hold_local = held;
