-- The directory: a local copy of the Kinde tenant's RBAC state, so that "who
-- holds key K, and why" and "what does user U hold in org O" are answered
-- without calling Kinde. Kept true by a resumable full sync, by webhooks and by
-- a periodic reconciliation (package directory). Times are unix milliseconds.
--
-- seen_run on organizations, roles and permissions is the sync run that last
-- saw the row in a Kinde listing (or the run in progress when a webhook wrote
-- it): a listing deletes the rows of its kind that it did not see.

CREATE TABLE dir_organizations (
    code     TEXT PRIMARY KEY,
    name     TEXT NOT NULL DEFAULT '',
    seen_run BIGINT NOT NULL DEFAULT 0
);

-- Kinde users met as organization members (or through a user.* webhook).
CREATE TABLE dir_users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL DEFAULT '',
    suspended  INTEGER NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX dir_users_email ON dir_users (email);

-- Permissions, id <-> key (keys are unique at Kinde).
CREATE TABLE dir_permissions (
    id          TEXT PRIMARY KEY,
    perm_key    TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    seen_run    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX dir_permissions_key ON dir_permissions (perm_key);

CREATE TABLE dir_roles (
    id          TEXT PRIMARY KEY,
    role_key    TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    is_default  INTEGER NOT NULL DEFAULT 0,
    seen_run    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX dir_roles_key ON dir_roles (role_key);

-- The permissions each role grants.
CREATE TABLE dir_role_permissions (
    role_id       TEXT NOT NULL,
    permission_id TEXT NOT NULL,
    PRIMARY KEY (role_id, permission_id)
);
CREATE INDEX dir_role_permissions_perm ON dir_role_permissions (permission_id);

-- A user's membership of an organization.
CREATE TABLE dir_memberships (
    org_code TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (org_code, user_id)
);
CREATE INDEX dir_memberships_user ON dir_memberships (user_id);

-- The roles a user holds in an organization.
CREATE TABLE dir_user_roles (
    org_code TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    role_id  TEXT NOT NULL,
    PRIMARY KEY (org_code, user_id, role_id)
);
CREATE INDEX dir_user_roles_role ON dir_user_roles (role_id);
CREATE INDEX dir_user_roles_user ON dir_user_roles (user_id);

-- The permissions granted to a user directly in an organization.
CREATE TABLE dir_user_permissions (
    org_code      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    permission_id TEXT NOT NULL,
    PRIMARY KEY (org_code, user_id, permission_id)
);
CREATE INDEX dir_user_permissions_perm ON dir_user_permissions (permission_id);
CREATE INDEX dir_user_permissions_user ON dir_user_permissions (user_id);

-- The sync's state, one row. run is the current (or last) full sync run;
-- phase and resume_after say where a running one is, so a restart resumes it.
-- completed_at is when the last run finished: how fresh the copy is. owner
-- and lease_until let one replica at a time run it.
CREATE TABLE dir_sync (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    run            BIGINT NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'never',
    phase          TEXT NOT NULL DEFAULT '',
    resume_after   TEXT NOT NULL DEFAULT '',
    orgs_total     INTEGER NOT NULL DEFAULT 0,
    orgs_done      INTEGER NOT NULL DEFAULT 0,
    calls          BIGINT NOT NULL DEFAULT 0,
    started_at     BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL DEFAULT 0,
    completed_at   BIGINT NOT NULL DEFAULT 0,
    completed_run  BIGINT NOT NULL DEFAULT 0,
    last_calls     BIGINT NOT NULL DEFAULT 0,
    last_duration  BIGINT NOT NULL DEFAULT 0,
    last_error     TEXT NOT NULL DEFAULT '',
    last_error_at  BIGINT NOT NULL DEFAULT 0,
    changed_at     BIGINT NOT NULL DEFAULT 0,
    owner          TEXT NOT NULL DEFAULT '',
    lease_until    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO dir_sync (id) VALUES (1);
