package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The directory tables (migration 0040) hold a local copy of the Kinde
// tenant's RBAC state. The SQL is here; package directory decides what to
// write and when.

// DirOrganization is an organization in the directory.
type DirOrganization struct {
	Code string
	Name string
}

// DirUser is a Kinde user in the directory.
type DirUser struct {
	ID        string
	Email     string
	Name      string
	Suspended bool
}

// DirPermission is a permission in the directory.
type DirPermission struct {
	ID          string
	Key         string
	Name        string
	Description string
}

// DirRole is a role in the directory.
type DirRole struct {
	ID          string
	Key         string
	Name        string
	Description string
	IsDefault   bool
}

// DirMember is one user's membership of an organization: the roles they hold
// there and the permissions granted to them directly there (ids).
type DirMember struct {
	UserID        string
	RoleIDs       []string
	PermissionIDs []string
}

// DirGrant is one (user, organization, permission key) the directory says is
// held, by any path. Diffs of sets of these are what a change took away.
type DirGrant struct {
	UserID  string
	OrgCode string
	Key     string
}

// DirHolderRow is one path by which a user holds a permission in an
// organization: through RoleID (with its key), or directly when RoleID is "".
type DirHolderRow struct {
	UserID  string
	OrgCode string
	Email   string
	Name    string
	RoleID  string
	RoleKey string
}

// DirSyncState is the directory sync's one row.
type DirSyncState struct {
	Run          int64
	Status       string // "never", "running", "done" or "failed"
	Phase        string
	ResumeAfter  string // the last organization code finished in this run
	OrgsTotal    int
	OrgsDone     int
	Calls        int64 // Management API calls this run
	StartedAt    time.Time
	UpdatedAt    time.Time
	CompletedAt  time.Time // the last run that finished
	CompletedRun int64
	LastCalls    int64
	LastDuration time.Duration
	LastError    string
	LastErrorAt  time.Time
	ChangedAt    time.Time // the last change applied by a webhook or a targeted re-read
}

// DirCounts are the directory's sizes.
type DirCounts struct {
	Organizations, Users, Roles, Permissions, Memberships int
}

// --- sync state ---

const dirSyncColumns = `run, status, phase, resume_after, orgs_total, orgs_done, calls, started_at, updated_at,
	completed_at, completed_run, last_calls, last_duration, last_error, last_error_at, changed_at`

func scanDirSync(row scanner) (*DirSyncState, error) {
	var s DirSyncState
	var started, updated, completed, dur, errAt, changed int64
	err := row.Scan(&s.Run, &s.Status, &s.Phase, &s.ResumeAfter, &s.OrgsTotal, &s.OrgsDone, &s.Calls, &started, &updated,
		&completed, &s.CompletedRun, &s.LastCalls, &dur, &s.LastError, &errAt, &changed)
	if err != nil {
		return nil, fmt.Errorf("directory sync state: %w", err)
	}
	s.StartedAt, s.UpdatedAt, s.CompletedAt = FromMillis(started), FromMillis(updated), FromMillis(completed)
	s.LastErrorAt, s.ChangedAt = FromMillis(errAt), FromMillis(changed)
	s.LastDuration = time.Duration(dur) * time.Millisecond
	return &s, nil
}

// DirSyncState reads the sync's state.
func (db *DB) DirSyncState(ctx context.Context) (*DirSyncState, error) {
	return scanDirSync(db.QueryRow(ctx, `SELECT `+dirSyncColumns+` FROM dir_sync WHERE id = 1`))
}

// DirSyncState reads the sync's state inside the transaction.
func (tx *Tx) DirSyncState(ctx context.Context) (*DirSyncState, error) {
	return scanDirSync(tx.QueryRow(ctx, `SELECT `+dirSyncColumns+` FROM dir_sync WHERE id = 1`))
}

// PutDirSyncState writes the sync's state.
func (tx *Tx) PutDirSyncState(ctx context.Context, s *DirSyncState) error {
	_, err := tx.Exec(ctx, `UPDATE dir_sync SET run = ?, status = ?, phase = ?, resume_after = ?, orgs_total = ?,
		orgs_done = ?, calls = ?, started_at = ?, updated_at = ?, completed_at = ?, completed_run = ?, last_calls = ?,
		last_duration = ?, last_error = ?, last_error_at = ?, changed_at = ? WHERE id = 1`,
		s.Run, s.Status, s.Phase, s.ResumeAfter, s.OrgsTotal, s.OrgsDone, s.Calls, Millis(s.StartedAt),
		Millis(s.UpdatedAt), Millis(s.CompletedAt), s.CompletedRun, s.LastCalls, s.LastDuration.Milliseconds(),
		s.LastError, Millis(s.LastErrorAt), Millis(s.ChangedAt))
	if err != nil {
		return fmt.Errorf("write directory sync state: %w", err)
	}
	return nil
}

// PutDirSyncState writes the sync's state in its own transaction.
func (db *DB) PutDirSyncState(ctx context.Context, s *DirSyncState) error {
	return db.InTx(ctx, func(tx *Tx) error { return tx.PutDirSyncState(ctx, s) })
}

// DirTouch records that a webhook or a targeted re-read changed the
// directory.
func (tx *Tx) DirTouch(ctx context.Context, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE dir_sync SET changed_at = ? WHERE id = 1`, Millis(at))
	return err
}

// --- permissions and roles ---

// DirUpsertPermissions records permissions as seen by run.
func (tx *Tx) DirUpsertPermissions(ctx context.Context, perms []DirPermission, run int64) error {
	for _, p := range perms {
		_, err := tx.Exec(ctx, `INSERT INTO dir_permissions (id, perm_key, name, description, seen_run)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET perm_key = excluded.perm_key, name = excluded.name,
			description = excluded.description, seen_run = excluded.seen_run`, p.ID, p.Key, p.Name, p.Description, run)
		if err != nil {
			return fmt.Errorf("upsert directory permission: %w", err)
		}
	}
	return nil
}

// DirDeletePermission removes a permission and every grant of it, and
// returns it (nil if it was not there).
func (tx *Tx) DirDeletePermission(ctx context.Context, id string) (*DirPermission, error) {
	p, err := dirPermission(ctx, tx, `id = ?`, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		`DELETE FROM dir_role_permissions WHERE permission_id = ?`,
		`DELETE FROM dir_user_permissions WHERE permission_id = ?`,
		`DELETE FROM dir_permissions WHERE id = ?`,
		// Only this permission's grants change: drop them and its counts.
		`DELETE FROM dir_grants WHERE permission_id = ?`,
		`DELETE FROM dir_permission_counts WHERE permission_id = ?`,
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return nil, fmt.Errorf("delete directory permission: %w", err)
		}
	}
	return p, nil
}

// DirPermissionsNotSeen returns the permissions that run did not see.
func (tx *Tx) DirPermissionsNotSeen(ctx context.Context, run int64) ([]DirPermission, error) {
	return dirPermissions(ctx, tx, `seen_run < ?`, run)
}

// DirUpsertRoles records roles as seen by run.
func (tx *Tx) DirUpsertRoles(ctx context.Context, roles []DirRole, run int64) error {
	for _, r := range roles {
		_, err := tx.Exec(ctx, `INSERT INTO dir_roles (id, role_key, name, description, is_default, seen_run)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET role_key = excluded.role_key, name = excluded.name,
			description = excluded.description, is_default = excluded.is_default, seen_run = excluded.seen_run`,
			r.ID, r.Key, r.Name, r.Description, boolInt(r.IsDefault), run)
		if err != nil {
			return fmt.Errorf("upsert directory role: %w", err)
		}
	}
	return nil
}

// DirRolesNotSeen returns the roles that run did not see.
func (tx *Tx) DirRolesNotSeen(ctx context.Context, run int64) ([]DirRole, error) {
	return dirRoles(ctx, tx, `seen_run < ?`, run)
}

// DirDeleteRole removes a role, its permissions and every holding of it.
func (tx *Tx) DirDeleteRole(ctx context.Context, id string) error {
	holders, err := tx.dirRoleHolders(ctx, id)
	if err != nil {
		return err
	}
	err = tx.DirChangeUsers(ctx, holders, func() error {
		for _, q := range []string{
			`DELETE FROM dir_role_permissions WHERE role_id = ?`,
			`DELETE FROM dir_user_roles WHERE role_id = ?`,
			`DELETE FROM dir_roles WHERE id = ?`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("delete directory role: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM dir_role_counts WHERE role_id = ?`, id); err != nil {
		return fmt.Errorf("delete directory role: %w", err)
	}
	return nil
}

func (tx *Tx) dirRoleHolders(ctx context.Context, roleID string) ([]string, error) {
	return queryStrings(ctx, tx, `SELECT DISTINCT user_id FROM dir_user_roles WHERE role_id = ? ORDER BY user_id`, roleID)
}

// DirSetRolePermissions makes permIDs the role's permissions.
func (tx *Tx) DirSetRolePermissions(ctx context.Context, roleID string, permIDs []string) error {
	old, err := tx.DirRolePermissionIDsOf(ctx, roleID)
	if err != nil {
		return err
	}
	permIDs = dedupe(permIDs)
	slices.Sort(old)
	if slices.Equal(old, slices.Sorted(slices.Values(permIDs))) {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM dir_role_permissions WHERE role_id = ?`, roleID); err != nil {
		return fmt.Errorf("set role permissions: %w", err)
	}
	for _, p := range permIDs {
		if _, err := tx.Exec(ctx, `INSERT INTO dir_role_permissions (role_id, permission_id) VALUES (?, ?)`, roleID, p); err != nil {
			return fmt.Errorf("set role permissions: %w", err)
		}
	}
	holders, err := tx.dirRoleHolders(ctx, roleID)
	if err != nil {
		return err
	}
	return tx.dirRefreshGrants(ctx, holders)
}

// --- organizations, users, memberships ---

// DirUpsertOrganizations records organizations as seen by run.
func (tx *Tx) DirUpsertOrganizations(ctx context.Context, orgs []DirOrganization, run int64) error {
	for _, o := range orgs {
		_, err := tx.Exec(ctx, `INSERT INTO dir_organizations (code, name, seen_run) VALUES (?, ?, ?)
			ON CONFLICT (code) DO UPDATE SET name = excluded.name, seen_run = excluded.seen_run`, o.Code, o.Name, run)
		if err != nil {
			return fmt.Errorf("upsert directory organization: %w", err)
		}
	}
	return nil
}

// DirOrganizationsNotSeen returns the codes of the organizations run did not
// see.
func (tx *Tx) DirOrganizationsNotSeen(ctx context.Context, run int64) ([]string, error) {
	return queryStrings(ctx, tx, `SELECT code FROM dir_organizations WHERE seen_run < ? ORDER BY code`, run)
}

// DirDeleteOrganization removes an organization and its memberships.
func (tx *Tx) DirDeleteOrganization(ctx context.Context, code string) error {
	users, err := tx.dirOrgUsers(ctx, code)
	if err != nil {
		return err
	}
	return tx.DirChangeUsers(ctx, users, func() error {
		for _, q := range []string{
			`DELETE FROM dir_user_roles WHERE org_code = ?`,
			`DELETE FROM dir_user_permissions WHERE org_code = ?`,
			`DELETE FROM dir_memberships WHERE org_code = ?`,
			`DELETE FROM dir_organizations WHERE code = ?`,
		} {
			if _, err := tx.Exec(ctx, q, code); err != nil {
				return fmt.Errorf("delete directory organization: %w", err)
			}
		}
		return nil
	})
}

// DirOrganizationCodesAfter returns the organization codes after `after`, in
// order: the organizations a resumed sync still has to read.
func (db *DB) DirOrganizationCodesAfter(ctx context.Context, after string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT code FROM dir_organizations WHERE code > ? ORDER BY code`, after)
}

// DirUpsertUsers records users.
func (tx *Tx) DirUpsertUsers(ctx context.Context, users []DirUser) error {
	now := Millis(time.Now())
	for _, u := range users {
		_, err := tx.Exec(ctx, `INSERT INTO dir_users (id, email, name, suspended, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name,
			suspended = excluded.suspended, updated_at = excluded.updated_at`,
			u.ID, u.Email, u.Name, boolInt(u.Suspended), now)
		if err != nil {
			return fmt.Errorf("upsert directory user: %w", err)
		}
	}
	return nil
}

// DirDeleteUser removes a user and their memberships.
func (tx *Tx) DirDeleteUser(ctx context.Context, id string) error {
	return tx.DirChangeUsers(ctx, []string{id}, func() error {
		for _, q := range []string{
			`DELETE FROM dir_user_roles WHERE user_id = ?`,
			`DELETE FROM dir_user_permissions WHERE user_id = ?`,
			`DELETE FROM dir_memberships WHERE user_id = ?`,
			`DELETE FROM dir_users WHERE id = ?`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("delete directory user: %w", err)
			}
		}
		return nil
	})
}

// DirDeleteUsersWithoutMembership removes users who belong to no
// organization any more.
func (tx *Tx) DirDeleteUsersWithoutMembership(ctx context.Context) (int64, error) {
	res, err := tx.Exec(ctx, `DELETE FROM dir_users WHERE id NOT IN (SELECT user_id FROM dir_memberships)`)
	if err != nil {
		return 0, fmt.Errorf("delete users without membership: %w", err)
	}
	return res.RowsAffected()
}

// DirReplaceOrganizationMembers makes members the organization's whole
// membership, with their roles and direct permissions.
func (tx *Tx) DirReplaceOrganizationMembers(ctx context.Context, org string, members []DirMember) error {
	users, err := tx.dirOrgUsers(ctx, org)
	if err != nil {
		return err
	}
	for _, m := range members {
		users = append(users, m.UserID)
	}
	return tx.DirChangeUsers(ctx, users, func() error {
		for _, q := range []string{
			`DELETE FROM dir_user_roles WHERE org_code = ?`,
			`DELETE FROM dir_user_permissions WHERE org_code = ?`,
			`DELETE FROM dir_memberships WHERE org_code = ?`,
		} {
			if _, err := tx.Exec(ctx, q, org); err != nil {
				return fmt.Errorf("replace organization members: %w", err)
			}
		}
		for _, m := range members {
			if err := tx.insertMember(ctx, org, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// DirSetMembership makes m the user's membership of org; nil removes it.
func (tx *Tx) DirSetMembership(ctx context.Context, org, userID string, m *DirMember) error {
	return tx.DirChangeUsers(ctx, []string{userID}, func() error {
		for _, q := range []string{
			`DELETE FROM dir_user_roles WHERE org_code = ? AND user_id = ?`,
			`DELETE FROM dir_user_permissions WHERE org_code = ? AND user_id = ?`,
			`DELETE FROM dir_memberships WHERE org_code = ? AND user_id = ?`,
		} {
			if _, err := tx.Exec(ctx, q, org, userID); err != nil {
				return fmt.Errorf("set membership: %w", err)
			}
		}
		if m == nil {
			return nil
		}
		m.UserID = userID
		return tx.insertMember(ctx, org, *m)
	})
}

func (tx *Tx) insertMember(ctx context.Context, org string, m DirMember) error {
	if _, err := tx.Exec(ctx, `INSERT INTO dir_memberships (org_code, user_id) VALUES (?, ?)`, org, m.UserID); err != nil {
		return fmt.Errorf("insert membership: %w", err)
	}
	for _, r := range dedupe(m.RoleIDs) {
		if _, err := tx.Exec(ctx, `INSERT INTO dir_user_roles (org_code, user_id, role_id) VALUES (?, ?, ?)`,
			org, m.UserID, r); err != nil {
			return fmt.Errorf("insert user role: %w", err)
		}
	}
	for _, p := range dedupe(m.PermissionIDs) {
		if _, err := tx.Exec(ctx, `INSERT INTO dir_user_permissions (org_code, user_id, permission_id) VALUES (?, ?, ?)`,
			org, m.UserID, p); err != nil {
			return fmt.Errorf("insert user permission: %w", err)
		}
	}
	return nil
}

// --- effective grants, for diffs ---

// DirScope picks the users whose effective grants DirEffective returns.
type DirScope int

// Scopes of DirEffective; the argument is an organization code, a user id, a
// role id or a permission id.
const (
	ScopeOrganization      DirScope = iota // members of the organization (in that organization only)
	ScopeUser                              // one user, in every organization
	ScopeRoleHolders                       // every holder of the role, in every organization
	ScopePermissionHolders                 // every holder of the permission, in every organization
	ScopeEveryone                          // everyone (the argument is ignored)
)

func (s DirScope) filter(col string) string {
	switch s {
	case ScopeOrganization:
		return col + `.org_code = ?`
	case ScopeUser:
		return col + `.user_id = ?`
	case ScopeRoleHolders:
		return col + `.user_id IN (SELECT user_id FROM dir_user_roles WHERE role_id = ?)`
	case ScopePermissionHolders:
		return `(` + col + `.user_id IN (SELECT ur2.user_id FROM dir_user_roles ur2 JOIN dir_role_permissions rp2
			ON rp2.role_id = ur2.role_id WHERE rp2.permission_id = ?) OR ` + col + `.user_id IN
			(SELECT user_id FROM dir_user_permissions WHERE permission_id = ?))`
	}
	return `1 = 1`
}

func (s DirScope) args(arg string) []any {
	switch s {
	case ScopePermissionHolders:
		return []any{arg, arg}
	case ScopeEveryone:
		return nil
	}
	return []any{arg}
}

// DirEffective returns every (user, organization, key) held, by any path,
// by the users in scope.
func (tx *Tx) DirEffective(ctx context.Context, scope DirScope, arg string) (map[DirGrant]bool, error) {
	q := `SELECT ur.user_id, ur.org_code, p.perm_key FROM dir_user_roles ur
		JOIN dir_role_permissions rp ON rp.role_id = ur.role_id
		JOIN dir_permissions p ON p.id = rp.permission_id WHERE ` + scope.filter("ur") + `
		UNION
		SELECT up.user_id, up.org_code, p.perm_key FROM dir_user_permissions up
		JOIN dir_permissions p ON p.id = up.permission_id WHERE ` + scope.filter("up")
	args := append(scope.args(arg), scope.args(arg)...)
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("directory effective grants: %w", err)
	}
	defer rows.Close()
	out := map[DirGrant]bool{}
	for rows.Next() {
		var g DirGrant
		if err := rows.Scan(&g.UserID, &g.OrgCode, &g.Key); err != nil {
			return nil, err
		}
		out[g] = true
	}
	return out, rows.Err()
}

// DirMembersOf returns the user ids of an organization's members, inside the
// transaction.
func (tx *Tx) DirMembersOf(ctx context.Context, org string) ([]string, error) {
	return queryStrings(ctx, tx, `SELECT user_id FROM dir_memberships WHERE org_code = ? ORDER BY user_id`, org)
}

// DirUserOrganizations returns the codes of the organizations a user belongs
// to, inside the transaction.
func (tx *Tx) DirUserOrganizations(ctx context.Context, userID string) ([]string, error) {
	return queryStrings(ctx, tx, `SELECT org_code FROM dir_memberships WHERE user_id = ? ORDER BY org_code`, userID)
}

// --- reads ---

// DirCounts returns the directory's sizes.
func (db *DB) DirCounts(ctx context.Context) (DirCounts, error) {
	var c DirCounts
	err := db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM dir_organizations), (SELECT COUNT(*) FROM dir_users),
		(SELECT COUNT(*) FROM dir_roles), (SELECT COUNT(*) FROM dir_permissions), (SELECT COUNT(*) FROM dir_memberships)`).
		Scan(&c.Organizations, &c.Users, &c.Roles, &c.Permissions, &c.Memberships)
	if err != nil {
		return c, fmt.Errorf("directory counts: %w", err)
	}
	return c, nil
}

const dirPermissionColumns = `id, perm_key, name, description`

func dirPermission(ctx context.Context, q querier, where string, args ...any) (*DirPermission, error) {
	ps, err := dirPermissions(ctx, q, where, args...)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, ErrNotFound
	}
	return &ps[0], nil
}

func dirPermissions(ctx context.Context, q querier, where string, args ...any) ([]DirPermission, error) {
	rows, err := q.Query(ctx, `SELECT `+dirPermissionColumns+` FROM dir_permissions WHERE `+where+` ORDER BY perm_key, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("directory permissions: %w", err)
	}
	defer rows.Close()
	var out []DirPermission
	for rows.Next() {
		var p DirPermission
		if err := rows.Scan(&p.ID, &p.Key, &p.Name, &p.Description); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DirPermissions returns every permission, by key.
func (db *DB) DirPermissions(ctx context.Context) ([]DirPermission, error) {
	return dirPermissions(ctx, db, `1 = 1`)
}

// DirPermissionByKey returns the permission with that key, or ErrNotFound.
func (db *DB) DirPermissionByKey(ctx context.Context, key string) (*DirPermission, error) {
	return dirPermission(ctx, db, `perm_key = ?`, key)
}

// DirPermissionByID returns the permission with that id, or ErrNotFound.
func (db *DB) DirPermissionByID(ctx context.Context, id string) (*DirPermission, error) {
	return dirPermission(ctx, db, `id = ?`, id)
}

// DirPermissionByID returns the permission with that id inside the
// transaction, or ErrNotFound.
func (tx *Tx) DirPermissionByID(ctx context.Context, id string) (*DirPermission, error) {
	return dirPermission(ctx, tx, `id = ?`, id)
}

func dirRoles(ctx context.Context, q querier, where string, args ...any) ([]DirRole, error) {
	rows, err := q.Query(ctx, `SELECT id, role_key, name, description, is_default FROM dir_roles WHERE `+where+
		` ORDER BY role_key, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("directory roles: %w", err)
	}
	defer rows.Close()
	var out []DirRole
	for rows.Next() {
		var r DirRole
		var def int
		if err := rows.Scan(&r.ID, &r.Key, &r.Name, &r.Description, &def); err != nil {
			return nil, err
		}
		r.IsDefault = def != 0
		out = append(out, r)
	}
	return out, rows.Err()
}

// DirRoles returns every role, by key.
func (db *DB) DirRoles(ctx context.Context) ([]DirRole, error) { return dirRoles(ctx, db, `1 = 1`) }

// DirRoleByID returns a role, or ErrNotFound.
func (db *DB) DirRoleByID(ctx context.Context, id string) (*DirRole, error) {
	return dirRoleByID(ctx, db, id)
}

// DirRoleByID returns a role inside the transaction, or ErrNotFound.
func (tx *Tx) DirRoleByID(ctx context.Context, id string) (*DirRole, error) {
	return dirRoleByID(ctx, tx, id)
}

func dirRoleByID(ctx context.Context, q querier, id string) (*DirRole, error) {
	rs, err := dirRoles(ctx, q, `id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, ErrNotFound
	}
	return &rs[0], nil
}

// DirRoleByKey returns a role inside the transaction, or ErrNotFound.
func (tx *Tx) DirRoleByKey(ctx context.Context, key string) (*DirRole, error) {
	rs, err := dirRoles(ctx, tx, `role_key = ?`, key)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, ErrNotFound
	}
	return &rs[0], nil
}

// DirRolePermissionIDs returns each role's permission ids.
func (db *DB) DirRolePermissionIDs(ctx context.Context) (map[string][]string, error) {
	return dirPairs(ctx, db, `SELECT role_id, permission_id FROM dir_role_permissions ORDER BY role_id, permission_id`)
}

// DirRolePermissionIDsOf returns one role's permission ids inside the
// transaction.
func (tx *Tx) DirRolePermissionIDsOf(ctx context.Context, roleID string) ([]string, error) {
	return queryStrings(ctx, tx, `SELECT permission_id FROM dir_role_permissions WHERE role_id = ? ORDER BY permission_id`, roleID)
}

// DirHolderRows returns every path by which anyone holds the permission.
func (db *DB) DirHolderRows(ctx context.Context, permID string) ([]DirHolderRow, error) {
	return dirHolderRows(ctx, db, permID)
}

// DirHolderRows is DirHolderRows inside the transaction.
func (tx *Tx) DirHolderRows(ctx context.Context, permID string) ([]DirHolderRow, error) {
	return dirHolderRows(ctx, tx, permID)
}

func dirHolderRows(ctx context.Context, q querier, permID string) ([]DirHolderRow, error) {
	return scanHolderRows(ctx, q, `SELECT h.user_id, h.org_code, COALESCE(u.email, ''), COALESCE(u.name, ''), h.role_id,
		COALESCE(r.role_key, '') FROM (
		SELECT ur.user_id, ur.org_code, ur.role_id FROM dir_user_roles ur
			JOIN dir_role_permissions rp ON rp.role_id = ur.role_id WHERE rp.permission_id = ?
		UNION ALL
		SELECT up.user_id, up.org_code, '' FROM dir_user_permissions up WHERE up.permission_id = ?) h
		LEFT JOIN dir_users u ON u.id = h.user_id
		LEFT JOIN dir_roles r ON r.id = h.role_id
		ORDER BY COALESCE(u.email, ''), h.user_id, h.org_code, COALESCE(r.role_key, '')`, permID, permID)
}

func scanHolderRows(ctx context.Context, q querier, query string, args ...any) ([]DirHolderRow, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("directory holders: %w", err)
	}
	defer rows.Close()
	var out []DirHolderRow
	for rows.Next() {
		var h DirHolderRow
		if err := rows.Scan(&h.UserID, &h.OrgCode, &h.Email, &h.Name, &h.RoleID, &h.RoleKey); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// DirHolderIDs returns the distinct ids of the users holding the permission
// by any path, sorted.
func (db *DB) DirHolderIDs(ctx context.Context, permID string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT DISTINCT user_id FROM dir_grants WHERE permission_id = ? ORDER BY user_id`, permID)
}

// DirRoleHolderIDs returns the distinct ids of the role's holders, sorted.
func (db *DB) DirRoleHolderIDs(ctx context.Context, roleID string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT DISTINCT user_id FROM dir_user_roles WHERE role_id = ? ORDER BY user_id`, roleID)
}

// DirUserPage is a page of users, sorted by email, and how many match.
type DirUserPage struct {
	Users []DirUser
	Total int
}

// likePattern turns a search into a case-insensitive LIKE pattern.
func likePattern(search string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(strings.TrimSpace(search))) + "%"
}

// DirUsers returns a page of users whose email, name, id or the key of a
// role they hold contain search (case-insensitive; "" matches everyone), by
// email.
func (db *DB) DirUsers(ctx context.Context, search string, limit, offset int) (*DirUserPage, error) {
	where, args := `1 = 1`, []any{}
	if strings.TrimSpace(search) != "" {
		p := likePattern(search)
		where = `(LOWER(email) LIKE ? ESCAPE '\' OR LOWER(name) LIKE ? ESCAPE '\' OR LOWER(id) LIKE ? ESCAPE '\'
			OR id IN (SELECT ur.user_id FROM dir_user_roles ur WHERE ur.role_id IN
			(SELECT id FROM dir_roles WHERE LOWER(role_key) LIKE ? ESCAPE '\')))`
		args = []any{p, p, p, p}
	}
	// A search counts its matches in the same pass as the page (a window
	// over them); a page past the last match counts them on its own.
	// With no search, COUNT(*) alone is cheap and the page stops early.
	out := &DirUserPage{Total: -1}
	total := `COUNT(*) OVER ()`
	if len(args) == 0 {
		total = `-1`
	}
	rows, err := db.Query(ctx, `SELECT id, email, name, suspended, `+total+` FROM dir_users WHERE `+where+
		` ORDER BY email, id LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, fmt.Errorf("directory users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u DirUser
		var susp int
		if err := rows.Scan(&u.ID, &u.Email, &u.Name, &susp, &out.Total); err != nil {
			return nil, err
		}
		u.Suspended = susp != 0
		out.Users = append(out.Users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if out.Total < 0 {
		out.Total = 0
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM dir_users WHERE `+where, args...).Scan(&out.Total); err != nil {
			return nil, fmt.Errorf("count directory users: %w", err)
		}
	}
	return out, nil
}

// DirUser returns one user, or ErrNotFound.
func (db *DB) DirUser(ctx context.Context, id string) (*DirUser, error) {
	var u DirUser
	var susp int
	err := db.QueryRow(ctx, `SELECT id, email, name, suspended FROM dir_users WHERE id = ?`, id).
		Scan(&u.ID, &u.Email, &u.Name, &susp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("directory user: %w", err)
	}
	u.Suspended = susp != 0
	return &u, nil
}

// DirUserMembership is one user's membership of an organization, with role
// keys.
type DirUserMembership struct {
	UserID   string
	OrgCode  string
	RoleIDs  []string
	RoleKeys []string
}

// DirMemberships returns the memberships of the given users, with the roles
// they hold in each, by user then organization.
func (db *DB) DirMemberships(ctx context.Context, userIDs []string) ([]DirUserMembership, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	args := make([]any, len(userIDs))
	for i, id := range userIDs {
		args[i] = id
	}
	rows, err := db.Query(ctx, `SELECT m.user_id, m.org_code, COALESCE(ur.role_id, ''), COALESCE(r.role_key, '')
		FROM dir_memberships m
		LEFT JOIN dir_user_roles ur ON ur.org_code = m.org_code AND ur.user_id = m.user_id
		LEFT JOIN dir_roles r ON r.id = ur.role_id
		WHERE m.user_id IN (`+sqlMarks(len(args))+`)
		ORDER BY m.user_id, m.org_code, COALESCE(r.role_key, '')`, args...)
	if err != nil {
		return nil, fmt.Errorf("directory memberships: %w", err)
	}
	defer rows.Close()
	var out []DirUserMembership
	for rows.Next() {
		var uid, org, rid, rkey string
		if err := rows.Scan(&uid, &org, &rid, &rkey); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].UserID != uid || out[n-1].OrgCode != org {
			out = append(out, DirUserMembership{UserID: uid, OrgCode: org})
		}
		if rid != "" {
			m := &out[len(out)-1]
			m.RoleIDs = append(m.RoleIDs, rid)
			m.RoleKeys = append(m.RoleKeys, rkey)
		}
	}
	return out, rows.Err()
}

// DirUserGrantRow is one path by which a user holds a permission in an
// organization (RoleID "" for a direct grant).
type DirUserGrantRow struct {
	OrgCode      string
	PermissionID string
	Key          string
	Name         string
	RoleID       string
	RoleKey      string
}

// DirUserGrants returns every path by which the user holds a permission, in
// org ("" means every organization), by organization, key and role.
func (db *DB) DirUserGrants(ctx context.Context, userID, org string) ([]DirUserGrantRow, error) {
	rows, err := db.Query(ctx, `SELECT g.org_code, g.permission_id, p.perm_key, p.name, g.role_id, COALESCE(r.role_key, '')
		FROM (
		SELECT ur.org_code, rp.permission_id, ur.role_id FROM dir_user_roles ur
			JOIN dir_role_permissions rp ON rp.role_id = ur.role_id WHERE ur.user_id = ? AND (? = '' OR ur.org_code = ?)
		UNION ALL
		SELECT up.org_code, up.permission_id, '' FROM dir_user_permissions up
			WHERE up.user_id = ? AND (? = '' OR up.org_code = ?)) g
		JOIN dir_permissions p ON p.id = g.permission_id
		LEFT JOIN dir_roles r ON r.id = g.role_id
		ORDER BY g.org_code, p.perm_key, COALESCE(r.role_key, '')`, userID, org, org, userID, org, org)
	if err != nil {
		return nil, fmt.Errorf("directory user grants: %w", err)
	}
	defer rows.Close()
	var out []DirUserGrantRow
	for rows.Next() {
		var g DirUserGrantRow
		if err := rows.Scan(&g.OrgCode, &g.PermissionID, &g.Key, &g.Name, &g.RoleID, &g.RoleKey); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// --- helpers ---

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	return scanStrings(rows)
}

func dirPairs(ctx context.Context, q querier, query string, args ...any) (map[string][]string, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return nil, err
		}
		out[a] = append(out[a], b)
	}
	return out, rows.Err()
}

func dirCounts(ctx context.Context, q querier, query string, args ...any) (map[string]int, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

func dedupe(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DirClaimSync takes (or extends) the lease that lets one process at a time
// run the directory sync: it succeeds when the lease is free, expired, or
// already owner's.
func (db *DB) DirClaimSync(ctx context.Context, owner string, now time.Time, until time.Time) (bool, error) {
	return dirClaimSync(ctx, db, owner, now, until)
}

// DirClaimSync is DirClaimSync inside the transaction.
func (tx *Tx) DirClaimSync(ctx context.Context, owner string, now time.Time, until time.Time) (bool, error) {
	return dirClaimSync(ctx, tx, owner, now, until)
}

func dirClaimSync(ctx context.Context, q querier, owner string, now time.Time, until time.Time) (bool, error) {
	res, err := q.Exec(ctx, `UPDATE dir_sync SET owner = ?, lease_until = ?
		WHERE id = 1 AND (owner = ? OR lease_until < ?)`, owner, Millis(until), owner, Millis(now))
	if err != nil {
		return false, fmt.Errorf("claim directory sync: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DirReleaseSync gives the lease up.
func (db *DB) DirReleaseSync(ctx context.Context, owner string) error {
	_, err := db.Exec(ctx, `UPDATE dir_sync SET lease_until = 0 WHERE id = 1 AND owner = ?`, owner)
	return err
}

// DirEnsureOrganization adds an organization known only by its code (met in
// a webhook before any sync listed it), seen by run; an existing one is left
// as it is.
func (tx *Tx) DirEnsureOrganization(ctx context.Context, code string, run int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO dir_organizations (code, name, seen_run) VALUES (?, '', ?)
		ON CONFLICT (code) DO NOTHING`, code, run)
	if err != nil {
		return fmt.Errorf("ensure directory organization: %w", err)
	}
	return nil
}
