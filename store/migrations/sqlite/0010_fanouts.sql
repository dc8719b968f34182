-- Claim-refresh fan-outs. Times are unix milliseconds.

-- One fan-out: the refresh_claims jobs started by one admin action (a
-- permission deletion, a single user's refresh, a webhook).
CREATE TABLE fanouts (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    actor_id       TEXT NOT NULL DEFAULT '',
    actor_email    TEXT NOT NULL DEFAULT '',
    permission_id  TEXT NOT NULL DEFAULT '',
    permission_key TEXT NOT NULL DEFAULT '',
    reason         TEXT NOT NULL DEFAULT '',
    total          INTEGER NOT NULL DEFAULT 0,
    done           INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    finished_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX fanouts_created_at ON fanouts (created_at);

-- One user of a fan-out. status is pending, done or failed; the fan-out's
-- done/failed counters move with every status change, in the same transaction.
-- round counts the retries an admin asked for; only the job of the current
-- round may work the item.
CREATE TABLE fanout_items (
    fanout_id  TEXT NOT NULL REFERENCES fanouts (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    reasons    TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    job_id     BIGINT NOT NULL DEFAULT 0,
    round      INTEGER NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    done_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (fanout_id, user_id)
);
CREATE INDEX fanout_items_status ON fanout_items (status, updated_at);

-- The audit log also keeps the actor's user id beside the display name.
ALTER TABLE audit_log ADD COLUMN actor_id TEXT NOT NULL DEFAULT '';
