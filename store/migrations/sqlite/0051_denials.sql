-- Denials replace tombstones: a permission key taken away from tokens whose
-- claims predate a change (store/denials.go). user_id and org_code narrow it
-- ('' = everyone); settled_at is when the change was made at Kinde (0: not
-- yet, so it applies to every token and does not expire); expires_at counts
-- from settled_at. Times are unix milliseconds.
CREATE TABLE denials (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    permission_key TEXT NOT NULL,
    user_id        TEXT NOT NULL DEFAULT '',
    org_code       TEXT NOT NULL DEFAULT '',
    permission_id  TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    settled_at     BIGINT NOT NULL DEFAULT 0,
    expires_at     BIGINT NOT NULL DEFAULT 0,
    reason         TEXT NOT NULL DEFAULT '',
    fanout_id      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX denials_fanout ON denials (fanout_id);
CREATE INDEX denials_expires_at ON denials (expires_at);

-- Every tombstone so far was written after Kinde had made the change.
INSERT INTO denials (permission_key, permission_id, created_at, settled_at, expires_at, reason)
    SELECT permission_key, permission_id, created_at, created_at, expires_at, reason FROM tombstones;
DROP TABLE tombstones;

-- When the claims a session's tokens carry are known to be current at Kinde:
-- the start of the sign-in, or of the latest refresh_claims for the user
-- before the session's last refresh. 0 (older rows): unknown, so every
-- denial applies.
ALTER TABLE sessions ADD COLUMN claims_at BIGINT NOT NULL DEFAULT 0;
