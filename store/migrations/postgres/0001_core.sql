-- Cross-cutting state for keeping permissions true. Times are unix milliseconds.

-- A user's claims epoch is bumped after Kinde's claim cache for them was
-- invalidated; sessions built at an older epoch refresh on their next request.
CREATE TABLE user_epochs (
    user_id    TEXT PRIMARY KEY,
    epoch      BIGINT NOT NULL DEFAULT 0,
    changed_at BIGINT NOT NULL,
    reason     TEXT NOT NULL DEFAULT ''
);

-- A tombstone removes a permission key from every session's effective
-- permissions until it expires (at least the longest access-token lifetime).
CREATE TABLE tombstones (
    permission_key TEXT PRIMARY KEY,
    permission_id  TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    reason         TEXT NOT NULL DEFAULT ''
);

-- Kinde's permission ids mapped to keys, kept from listings and webhooks, since
-- permission.deleted carries only the id.
CREATE TABLE permission_keys (
    permission_id TEXT PRIMARY KEY,
    permission_key TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    deleted_at    BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);

-- Every admin action, with who did it and how it ended.
CREATE TABLE audit_log (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
