-- What the admin pages ask of the directory, kept ready instead of
-- aggregated on every request (store/directory_derived.go):
--
-- dir_grants is every (permission, user, organization) held by any path,
-- derived from dir_user_roles x dir_role_permissions and dir_user_permissions:
-- via_role is 1 when a role grants it there, direct 1 when it is granted
-- directly there. A permission's holders are a range of its primary key.
--
-- dir_permission_counts and dir_role_counts are the holder counts the lists
-- show. Every directory write brings all three up to date for the users it
-- touched, in its own transaction; a permission or role with no row has no
-- holders.
CREATE TABLE dir_grants (
    permission_id TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    org_code      TEXT NOT NULL,
    via_role      INTEGER NOT NULL DEFAULT 0,
    direct        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (permission_id, user_id, org_code)
);
CREATE INDEX dir_grants_user ON dir_grants (user_id);

-- users: distinct holders; grants: (user, organization) pairs; via_roles:
-- users holding it through a role somewhere; direct: users with a direct
-- grant somewhere; direct_only: users holding it only directly.
CREATE TABLE dir_permission_counts (
    permission_id TEXT PRIMARY KEY,
    users         INTEGER NOT NULL DEFAULT 0,
    grants        INTEGER NOT NULL DEFAULT 0,
    via_roles     INTEGER NOT NULL DEFAULT 0,
    direct        INTEGER NOT NULL DEFAULT 0,
    direct_only   INTEGER NOT NULL DEFAULT 0
);

-- users: distinct users holding the role in any organization.
CREATE TABLE dir_role_counts (
    role_id TEXT PRIMARY KEY,
    users   INTEGER NOT NULL DEFAULT 0
);

INSERT INTO dir_grants (permission_id, user_id, org_code, via_role, direct)
SELECT permission_id, user_id, org_code, MAX(via_role), MAX(direct) FROM (
    SELECT rp.permission_id, ur.user_id, ur.org_code, 1 AS via_role, 0 AS direct
    FROM dir_user_roles ur JOIN dir_role_permissions rp ON rp.role_id = ur.role_id
    UNION ALL
    SELECT permission_id, user_id, org_code, 0 AS via_role, 1 AS direct FROM dir_user_permissions) g
GROUP BY permission_id, user_id, org_code;

INSERT INTO dir_permission_counts (permission_id, users, grants, via_roles, direct, direct_only)
SELECT permission_id, COUNT(*), SUM(orgs), SUM(via_role), SUM(direct),
    SUM(CASE WHEN via_role = 0 AND direct = 1 THEN 1 ELSE 0 END)
FROM (SELECT permission_id, user_id, COUNT(*) AS orgs, MAX(via_role) AS via_role, MAX(direct) AS direct
      FROM dir_grants GROUP BY permission_id, user_id) h
GROUP BY permission_id;

INSERT INTO dir_role_counts (role_id, users)
SELECT role_id, COUNT(DISTINCT user_id) FROM dir_user_roles GROUP BY role_id;

-- Holder pages walk users in email order (ties by id) and stop after a page.
DROP INDEX dir_users_email;
CREATE INDEX dir_users_email_id ON dir_users (email, id);
