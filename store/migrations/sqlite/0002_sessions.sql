-- Server-side sessions. The cookie carries only a random id; the
-- row is keyed by the SHA-256 of that id, so a leaked database cannot be
-- turned back into cookies. Times are unix milliseconds.
CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    org_code           TEXT NOT NULL DEFAULT '',
    email              TEXT NOT NULL DEFAULT '',
    name               TEXT NOT NULL DEFAULT '',
    tokens             BLOB NOT NULL,
    permissions        TEXT NOT NULL DEFAULT '[]',
    roles              TEXT NOT NULL DEFAULT '[]',
    claims_epoch       BIGINT NOT NULL DEFAULT 0,
    access_issued_at   BIGINT NOT NULL DEFAULT 0,
    access_expires_at  BIGINT NOT NULL DEFAULT 0,
    refresh_expires_at BIGINT NOT NULL DEFAULT 0,
    refreshed_at       BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    last_seen_at       BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    generation         BIGINT NOT NULL DEFAULT 1,
    user_agent         TEXT NOT NULL DEFAULT '',
    web_values         BLOB
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- The permission keys each session's token carries, so that "every session
-- holding P" is an indexed lookup.
CREATE TABLE session_permissions (
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    permission_key TEXT NOT NULL,
    PRIMARY KEY (session_id, permission_key)
);
CREATE INDEX session_permissions_key ON session_permissions (permission_key);
