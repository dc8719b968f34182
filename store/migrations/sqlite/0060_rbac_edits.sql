-- Confirmed RBAC edits (store/rbac_edits.go): one row per change an admin
-- confirmed on a role, a member or a permission. kind names the edit
-- (admin.EditKind), payload is the edit as JSON (ids, keys, the member and
-- organization), summary the edit in plain words and plan what its preview
-- said (JSON: who loses, gains or keeps what). state moves pending (the undo
-- window) → applying (the Kinde call; error says why Kinde last refused) →
-- applied or failed; or pending/applying/failed → undone. outcome is what
-- Kinde answered; fanout_id the fan-out that refreshes the affected users'
-- claims. Times are unix milliseconds.
CREATE TABLE rbac_edits (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    summary        TEXT NOT NULL,
    plan           TEXT NOT NULL DEFAULT '',
    actor_id       TEXT NOT NULL DEFAULT '',
    actor_email    TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    error          TEXT NOT NULL DEFAULT '',
    outcome        TEXT NOT NULL DEFAULT '',
    kinde_attempts INTEGER NOT NULL DEFAULT 0,
    fanout_id      TEXT NOT NULL DEFAULT '',
    affected       INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    due_at         BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL,
    finished_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX rbac_edits_created_at ON rbac_edits (created_at);
CREATE INDEX rbac_edits_fanout_id ON rbac_edits (fanout_id);

-- The Kinde call after an undo window is one job kind for every admin
-- change now; jobs queued under the deletion's old name keep running.
UPDATE river_job SET kind = 'kinde_call' WHERE kind = 'delete_permission';
