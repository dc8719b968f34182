package store

import (
	"context"
	"fmt"
)

// The directory reads and writes of RBAC edits: what an edit's plan asks
// (who holds a role, every path to a role's keys) and the targeted writes
// that record an edit once Kinde has made it.

// DirRoleMember is a user holding a role in an organization.
type DirRoleMember struct {
	UserID  string
	Email   string
	OrgCode string
}

// DirRoleMembers returns every user and organization holding the role, by
// email then organization.
func (db *DB) DirRoleMembers(ctx context.Context, roleID string) ([]DirRoleMember, error) {
	rows, err := db.Query(ctx, `SELECT ur.user_id, COALESCE(u.email, ''), ur.org_code FROM dir_user_roles ur
		LEFT JOIN dir_users u ON u.id = ur.user_id WHERE ur.role_id = ?
		ORDER BY COALESCE(u.email, ''), ur.user_id, ur.org_code`, roleID)
	if err != nil {
		return nil, fmt.Errorf("directory role members: %w", err)
	}
	defer rows.Close()
	var out []DirRoleMember
	for rows.Next() {
		var m DirRoleMember
		if err := rows.Scan(&m.UserID, &m.Email, &m.OrgCode); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// DirPathRow is one path by which a user holds a key in an organization:
// through RoleID, or directly (RoleID empty).
type DirPathRow struct {
	UserID  string
	Email   string
	OrgCode string
	Key     string
	RoleID  string
	RoleKey string
}

// DirRoleHolderPaths returns, for every user and organization holding the
// role, every path to each of the role's permissions.
func (db *DB) DirRoleHolderPaths(ctx context.Context, roleID string) ([]DirPathRow, error) {
	rows, err := db.Query(ctx, `SELECT h.user_id, COALESCE(u.email, ''), h.org_code, p.perm_key, h.role_id,
		COALESCE(r.role_key, '') FROM (
		SELECT ur.user_id, ur.org_code, rp.permission_id, ur.role_id FROM dir_user_roles ur
			JOIN dir_role_permissions rp ON rp.role_id = ur.role_id
			JOIN dir_user_roles m ON m.user_id = ur.user_id AND m.org_code = ur.org_code AND m.role_id = ?
		UNION ALL
		SELECT up.user_id, up.org_code, up.permission_id, '' FROM dir_user_permissions up
			JOIN dir_user_roles m ON m.user_id = up.user_id AND m.org_code = up.org_code AND m.role_id = ?) h
		JOIN dir_permissions p ON p.id = h.permission_id
		LEFT JOIN dir_users u ON u.id = h.user_id
		LEFT JOIN dir_roles r ON r.id = h.role_id
		WHERE h.permission_id IN (SELECT permission_id FROM dir_role_permissions WHERE role_id = ?)
		ORDER BY COALESCE(u.email, ''), h.user_id, h.org_code, p.perm_key`, roleID, roleID, roleID)
	if err != nil {
		return nil, fmt.Errorf("directory role holder paths: %w", err)
	}
	defer rows.Close()
	var out []DirPathRow
	for rows.Next() {
		var r DirPathRow
		if err := rows.Scan(&r.UserID, &r.Email, &r.OrgCode, &r.Key, &r.RoleID, &r.RoleKey); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DirRolePermissionKeys returns the keys of the role's permissions, sorted.
func (db *DB) DirRolePermissionKeys(ctx context.Context, roleID string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT p.perm_key FROM dir_role_permissions rp
		JOIN dir_permissions p ON p.id = rp.permission_id WHERE rp.role_id = ? ORDER BY p.perm_key`, roleID)
}

// DirMemberOf reports whether the user belongs to the organization, with
// the ids of the roles they hold there and the keys of their direct grants.
func (db *DB) DirMemberOf(ctx context.Context, userID, org string) (member bool, roleIDs, directKeys []string, err error) {
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM dir_memberships WHERE org_code = ? AND user_id = ?`,
		org, userID).Scan(&n); err != nil {
		return false, nil, nil, fmt.Errorf("directory member: %w", err)
	}
	if n == 0 {
		return false, nil, nil, nil
	}
	if roleIDs, err = queryStrings(ctx, db, `SELECT role_id FROM dir_user_roles WHERE org_code = ? AND user_id = ?
		ORDER BY role_id`, org, userID); err != nil {
		return false, nil, nil, err
	}
	directKeys, err = queryStrings(ctx, db, `SELECT p.perm_key FROM dir_user_permissions up
		JOIN dir_permissions p ON p.id = up.permission_id WHERE up.org_code = ? AND up.user_id = ?
		ORDER BY p.perm_key`, org, userID)
	return true, roleIDs, directKeys, err
}

// DirUserOrgs returns the codes of the organizations the user belongs to.
func (db *DB) DirUserOrgs(ctx context.Context, userID string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT org_code FROM dir_memberships WHERE user_id = ? ORDER BY org_code`, userID)
}

// DirRoleByKey returns the role with the key, or ErrNotFound.
func (db *DB) DirRoleByKey(ctx context.Context, key string) (*DirRole, error) {
	rs, err := dirRoles(ctx, db, `role_key = ?`, key)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, ErrNotFound
	}
	return &rs[0], nil
}

// The writes below keep the derived tables in step (DirChangeUsers), naming
// the users each may change.

// DirGrantRolePermission records that the role grants the permission.
func (tx *Tx) DirGrantRolePermission(ctx context.Context, roleID, permID string) error {
	return tx.dirChangeRoleHolders(ctx, roleID, func() error {
		return dirExec(ctx, tx, "grant role permission", `INSERT INTO dir_role_permissions (role_id, permission_id)
			VALUES (?, ?) ON CONFLICT DO NOTHING`, roleID, permID)
	})
}

// DirRevokeRolePermission records that the role no longer grants the
// permission.
func (tx *Tx) DirRevokeRolePermission(ctx context.Context, roleID, permID string) error {
	return tx.dirChangeRoleHolders(ctx, roleID, func() error {
		return dirExec(ctx, tx, "revoke role permission", `DELETE FROM dir_role_permissions
			WHERE role_id = ? AND permission_id = ?`, roleID, permID)
	})
}

// dirChangeRoleHolders runs write, a change to the role's permissions, for
// its holders.
func (tx *Tx) dirChangeRoleHolders(ctx context.Context, roleID string, write func() error) error {
	users, err := queryStrings(ctx, tx, `SELECT DISTINCT user_id FROM dir_user_roles WHERE role_id = ?`, roleID)
	if err != nil {
		return err
	}
	return tx.DirChangeUsers(ctx, users, write)
}

// DirGrantUserRole records that the user holds the role in the
// organization (and belongs to it).
func (tx *Tx) DirGrantUserRole(ctx context.Context, org, userID, roleID string) error {
	return tx.DirChangeUsers(ctx, []string{userID}, func() error {
		if err := tx.dirEnsureMembership(ctx, org, userID); err != nil {
			return err
		}
		return dirExec(ctx, tx, "grant user role", `INSERT INTO dir_user_roles (org_code, user_id, role_id)
			VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, org, userID, roleID)
	})
}

// DirRevokeUserRole records that the user no longer holds the role in the
// organization.
func (tx *Tx) DirRevokeUserRole(ctx context.Context, org, userID, roleID string) error {
	return tx.DirChangeUsers(ctx, []string{userID}, func() error {
		return dirExec(ctx, tx, "revoke user role", `DELETE FROM dir_user_roles
			WHERE org_code = ? AND user_id = ? AND role_id = ?`, org, userID, roleID)
	})
}

// DirGrantUserPermission records a direct grant in the organization.
func (tx *Tx) DirGrantUserPermission(ctx context.Context, org, userID, permID string) error {
	return tx.DirChangeUsers(ctx, []string{userID}, func() error {
		if err := tx.dirEnsureMembership(ctx, org, userID); err != nil {
			return err
		}
		return dirExec(ctx, tx, "grant user permission", `INSERT INTO dir_user_permissions (org_code, user_id,
			permission_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, org, userID, permID)
	})
}

// DirRevokeUserPermission removes a direct grant in the organization.
func (tx *Tx) DirRevokeUserPermission(ctx context.Context, org, userID, permID string) error {
	return tx.DirChangeUsers(ctx, []string{userID}, func() error {
		return dirExec(ctx, tx, "revoke user permission", `DELETE FROM dir_user_permissions
			WHERE org_code = ? AND user_id = ? AND permission_id = ?`, org, userID, permID)
	})
}

func (tx *Tx) dirEnsureMembership(ctx context.Context, org, userID string) error {
	return dirExec(ctx, tx, "ensure membership", `INSERT INTO dir_memberships (org_code, user_id) VALUES (?, ?)
		ON CONFLICT DO NOTHING`, org, userID)
}

func dirExec(ctx context.Context, q querier, what, query string, args ...any) error {
	if _, err := q.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("directory: %s: %w", what, err)
	}
	return nil
}
