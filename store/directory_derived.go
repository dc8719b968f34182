package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The derived directory tables (migration 0060): dir_grants, every
// (permission, user, organization) held by any path, and the holder counts
// per permission and per role. They answer the admin pages' questions (a
// page of a permission's holders, the lists' counts) without aggregating
// every grant path on each request.
//
// They are kept in step with the base tables by the writes themselves: every
// Tx method in directory.go that changes memberships, user roles, direct
// grants or a role's permissions updates them for the users it touched, in
// the same transaction. A new write path that changes those tables with its
// own SQL wraps the change in DirChangeUsers. DirVerifyDerived recounts from
// the base tables and says where the kept values differ.

// DirPermissionCounts are a permission's holder counts.
type DirPermissionCounts struct {
	Users      int // distinct users holding it by any path
	Grants     int // (user, organization) pairs
	ViaRoles   int // users holding it through a role somewhere
	Direct     int // users with a direct grant somewhere
	DirectOnly int // users holding it only directly
}

// dirUserChunk bounds the users one statement of the upkeep names (an IN
// list), well under both dialects' limits on bind parameters.
const dirUserChunk = 400

// DirChangeUsers runs write, a change to the memberships, roles or direct
// grants of users, and then brings the derived tables up to date for them.
// users must name everyone write may change (before or after); naming more
// is harmless, only slower.
func (tx *Tx) DirChangeUsers(ctx context.Context, users []string, write func() error) error {
	users = dedupe(users)
	before, err := tx.dirUserRoleSets(ctx, users)
	if err != nil {
		return err
	}
	if err := write(); err != nil {
		return err
	}
	after, err := tx.dirUserRoleSets(ctx, users)
	if err != nil {
		return err
	}
	delta := map[string]int{}
	for _, u := range users {
		for r := range before[u] {
			if !after[u][r] {
				delta[r]--
			}
		}
		for r := range after[u] {
			if !before[u][r] {
				delta[r]++
			}
		}
	}
	if err := tx.dirAddRoleCounts(ctx, delta); err != nil {
		return err
	}
	return tx.dirRefreshGrants(ctx, users)
}

// dirUserRoleSets returns the roles each user holds in any organization.
func (tx *Tx) dirUserRoleSets(ctx context.Context, users []string) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	for chunk := range slices.Chunk(users, dirUserChunk) {
		rows, err := tx.Query(ctx, `SELECT DISTINCT user_id, role_id FROM dir_user_roles WHERE user_id IN (`+
			sqlMarks(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("directory user roles: %w", err)
		}
		for rows.Next() {
			var u, r string
			if err := rows.Scan(&u, &r); err != nil {
				rows.Close()
				return nil, err
			}
			if out[u] == nil {
				out[u] = map[string]bool{}
			}
			out[u][r] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (tx *Tx) dirAddRoleCounts(ctx context.Context, delta map[string]int) error {
	for _, r := range slices.Sorted(maps.Keys(delta)) {
		if delta[r] == 0 {
			continue
		}
		_, err := tx.Exec(ctx, `INSERT INTO dir_role_counts (role_id, users) VALUES (?, ?)
			ON CONFLICT (role_id) DO UPDATE SET users = dir_role_counts.users + excluded.users`, r, delta[r])
		if err != nil {
			return fmt.Errorf("directory role counts: %w", err)
		}
	}
	return nil
}

// grantKey and grantPaths are one row of dir_grants.
type grantKey struct{ perm, user, org string }

type grantPaths struct{ viaRole, direct bool }

// holding is what one user holds of one permission, over every
// organization: what the counts are made of.
type holding struct {
	orgs            int
	viaRole, direct bool
}

func (h holding) add(c *DirPermissionCounts, sign int) {
	if h.orgs == 0 {
		return
	}
	c.Users += sign
	c.Grants += sign * h.orgs
	if h.viaRole {
		c.ViaRoles += sign
	}
	if h.direct {
		c.Direct += sign
		if !h.viaRole {
			c.DirectOnly += sign
		}
	}
}

func holdings(gs map[grantKey]grantPaths) map[[2]string]holding {
	out := map[[2]string]holding{}
	for k, p := range gs {
		h := out[[2]string{k.perm, k.user}]
		h.orgs++
		h.viaRole = h.viaRole || p.viaRole
		h.direct = h.direct || p.direct
		out[[2]string{k.perm, k.user}] = h
	}
	return out
}

// derivedGrantsSQL computes dir_grants rows from the base tables, for the
// users matching userFilter (a condition on user_id, written twice).
func derivedGrantsSQL(userFilter string) string {
	return `SELECT permission_id, user_id, org_code, MAX(via_role), MAX(direct) FROM (
		SELECT rp.permission_id, ur.user_id, ur.org_code, 1 AS via_role, 0 AS direct
		FROM dir_user_roles ur JOIN dir_role_permissions rp ON rp.role_id = ur.role_id WHERE ` +
		strings.ReplaceAll(userFilter, "user_id", "ur.user_id") + `
		UNION ALL
		SELECT permission_id, user_id, org_code, 0 AS via_role, 1 AS direct FROM dir_user_permissions WHERE ` +
		userFilter + `) g GROUP BY permission_id, user_id, org_code`
}

func scanGrants(ctx context.Context, q querier, query string, args ...any) (map[grantKey]grantPaths, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("directory grants: %w", err)
	}
	defer rows.Close()
	out := map[grantKey]grantPaths{}
	for rows.Next() {
		var k grantKey
		var via, direct int
		if err := rows.Scan(&k.perm, &k.user, &k.org, &via, &direct); err != nil {
			return nil, err
		}
		out[k] = grantPaths{viaRole: via != 0, direct: direct != 0}
	}
	return out, rows.Err()
}

// dirRefreshGrants recomputes the users' rows of dir_grants from the base
// tables, writes the difference and adds it to the permission counts.
func (tx *Tx) dirRefreshGrants(ctx context.Context, users []string) error {
	for chunk := range slices.Chunk(users, dirUserChunk) {
		in := `user_id IN (` + sqlMarks(len(chunk)) + `)`
		args := anys(chunk)
		old, err := scanGrants(ctx, tx, `SELECT permission_id, user_id, org_code, via_role, direct FROM dir_grants
			WHERE `+in, args...)
		if err != nil {
			return err
		}
		cur, err := scanGrants(ctx, tx, derivedGrantsSQL(in), append(args, args...)...)
		if err != nil {
			return err
		}
		if err := tx.dirWriteGrants(ctx, old, cur); err != nil {
			return err
		}
	}
	return nil
}

// dirWriteGrants replaces old rows of dir_grants with cur (both for the same
// users) and moves the permission counts by the difference.
func (tx *Tx) dirWriteGrants(ctx context.Context, old, cur map[grantKey]grantPaths) error {
	var gone, added []grantKey
	for k, p := range old {
		if q, ok := cur[k]; !ok || q != p {
			gone = append(gone, k)
		}
	}
	for k, p := range cur {
		if q, ok := old[k]; !ok || q != p {
			added = append(added, k)
		}
	}
	if len(gone) == 0 && len(added) == 0 {
		return nil
	}
	for _, k := range gone {
		if _, err := tx.Exec(ctx, `DELETE FROM dir_grants WHERE permission_id = ? AND user_id = ? AND org_code = ?`,
			k.perm, k.user, k.org); err != nil {
			return fmt.Errorf("directory grants: %w", err)
		}
	}
	for batch := range slices.Chunk(added, 200) {
		args := make([]any, 0, 5*len(batch))
		for _, k := range batch {
			p := cur[k]
			args = append(args, k.perm, k.user, k.org, boolInt(p.viaRole), boolInt(p.direct))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO dir_grants (permission_id, user_id, org_code, via_role, direct) VALUES `+
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?), `, len(batch)), ", "), args...); err != nil {
			return fmt.Errorf("directory grants: %w", err)
		}
	}
	delta := map[string]*DirPermissionCounts{}
	count := func(hs map[[2]string]holding, sign int) {
		for k, h := range hs {
			if delta[k[0]] == nil {
				delta[k[0]] = &DirPermissionCounts{}
			}
			h.add(delta[k[0]], sign)
		}
	}
	count(holdings(old), -1)
	count(holdings(cur), +1)
	var rows []any
	n := 0
	for _, p := range slices.Sorted(maps.Keys(delta)) {
		d := delta[p]
		if *d == (DirPermissionCounts{}) {
			continue
		}
		rows = append(rows, p, d.Users, d.Grants, d.ViaRoles, d.Direct, d.DirectOnly)
		n++
	}
	for start := 0; start < n; start += 100 {
		end := min(n, start+100)
		_, err := tx.Exec(ctx, `INSERT INTO dir_permission_counts (permission_id, users, grants, via_roles, direct,
			direct_only) VALUES `+strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?), `, end-start), ", ")+`
			ON CONFLICT (permission_id) DO UPDATE SET users = dir_permission_counts.users + excluded.users,
			grants = dir_permission_counts.grants + excluded.grants,
			via_roles = dir_permission_counts.via_roles + excluded.via_roles,
			direct = dir_permission_counts.direct + excluded.direct,
			direct_only = dir_permission_counts.direct_only + excluded.direct_only`, rows[6*start:6*end]...)
		if err != nil {
			return fmt.Errorf("directory permission counts: %w", err)
		}
	}
	return nil
}

// dirOrgUsers returns everyone with a membership, a role or a direct grant
// in the organization.
func (tx *Tx) dirOrgUsers(ctx context.Context, org string) ([]string, error) {
	return queryStrings(ctx, tx, `SELECT user_id FROM dir_memberships WHERE org_code = ?
		UNION SELECT user_id FROM dir_user_roles WHERE org_code = ?
		UNION SELECT user_id FROM dir_user_permissions WHERE org_code = ?`, org, org, org)
}

// --- reads ---

// DirPermissionCountsAll returns every permission's holder counts (a
// permission with no holders may be absent).
func (db *DB) DirPermissionCountsAll(ctx context.Context) (map[string]DirPermissionCounts, error) {
	return dirPermissionCounts(ctx, db, `SELECT permission_id, users, grants, via_roles, direct, direct_only
		FROM dir_permission_counts`)
}

// DirPermissionCountsOf returns one permission's holder counts.
func (db *DB) DirPermissionCountsOf(ctx context.Context, permID string) (DirPermissionCounts, error) {
	m, err := dirPermissionCounts(ctx, db, `SELECT permission_id, users, grants, via_roles, direct, direct_only
		FROM dir_permission_counts WHERE permission_id = ?`, permID)
	return m[permID], err
}

func dirPermissionCounts(ctx context.Context, q querier, query string, args ...any) (map[string]DirPermissionCounts, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("directory permission counts: %w", err)
	}
	defer rows.Close()
	out := map[string]DirPermissionCounts{}
	for rows.Next() {
		var id string
		var c DirPermissionCounts
		if err := rows.Scan(&id, &c.Users, &c.Grants, &c.ViaRoles, &c.Direct, &c.DirectOnly); err != nil {
			return nil, err
		}
		if c != (DirPermissionCounts{}) {
			out[id] = c
		}
	}
	return out, rows.Err()
}

// DirRoleCountsAll returns how many distinct users hold each role (a role
// nobody holds may be absent).
func (db *DB) DirRoleCountsAll(ctx context.Context) (map[string]int, error) {
	return dirRoleCounts(ctx, db, `SELECT role_id, users FROM dir_role_counts WHERE users <> 0`)
}

func dirRoleCounts(ctx context.Context, q querier, query string) (map[string]int, error) {
	return dirCounts(ctx, q, query)
}

// DirHolderKeys returns a page of the permission's holders, by email then
// user id: one row per user (org ""). search, when not empty, matches a
// case-insensitive substring of the email, name or user id, or of the code
// of an organization the user holds it in. matched is how many users match;
// with no search it is not counted (-1): the kept counts say it.
//
// The query walks users in email order and probes each one's grants, so a
// page of a permission most users hold stops after the page; every holder
// is in dir_users (the writes record a member's user before the membership,
// and deleting a user deletes their grants).
func (db *DB) DirHolderKeys(ctx context.Context, permID, search string, limit, offset int) (
	keys []DirHolderRow, matched int, err error) {
	match, args := ``, []any{permID}
	searching := strings.TrimSpace(search) != ""
	if searching {
		p := likePattern(search)
		match = ` AND (LOWER(u.email) LIKE ? ESCAPE '\' OR LOWER(u.name) LIKE ? ESCAPE '\' OR LOWER(u.id) LIKE ? ESCAPE '\'` +
			` OR LOWER(g.org_code) LIKE ? ESCAPE '\')`
		args = append(args, p, p, p, p)
	}
	where := `EXISTS (SELECT 1 FROM dir_grants g WHERE g.permission_id = ? AND g.user_id = u.id` + match + `)`
	countQ := `SELECT COUNT(*) FROM dir_users u WHERE ` + where
	pageQ := `SELECT u.id, '', u.email, u.name FROM dir_users u WHERE ` + where + ` ORDER BY u.email, u.id LIMIT ? OFFSET ?`
	matched = -1
	if searching {
		// A search reads every candidate anyway: count them in the same
		// pass (a window over the matches) rather than in a second query.
		pageQ = strings.Replace(pageQ, ` FROM dir_users u`, `, COUNT(*) OVER () FROM dir_users u`, 1)
	}
	rows, err := db.Query(ctx, pageQ, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("directory holders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h DirHolderRow
		dest := []any{&h.UserID, &h.OrgCode, &h.Email, &h.Name}
		if searching {
			dest = append(dest, &matched)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, err
		}
		keys = append(keys, h)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if searching && len(keys) == 0 {
		// Past the last match (or none): count them on their own.
		if err := db.QueryRow(ctx, countQ, args...).Scan(&matched); err != nil {
			return nil, 0, fmt.Errorf("count directory holders: %w", err)
		}
	}
	return keys, matched, nil
}

// DirHolderRowsOf returns every path by which the given users hold the
// permission, in DirHolderRows' order.
func (db *DB) DirHolderRowsOf(ctx context.Context, permID string, users []string) ([]DirHolderRow, error) {
	if len(users) == 0 {
		return nil, nil
	}
	in := sqlMarks(len(users))
	args := append(append([]any{permID}, anys(users)...), permID)
	args = append(args, anys(users)...)
	return scanHolderRows(ctx, db, `SELECT h.user_id, h.org_code, COALESCE(u.email, ''), COALESCE(u.name, ''), h.role_id,
		COALESCE(r.role_key, '') FROM (
		SELECT ur.user_id, ur.org_code, ur.role_id FROM dir_user_roles ur
			JOIN dir_role_permissions rp ON rp.role_id = ur.role_id WHERE rp.permission_id = ? AND ur.user_id IN (`+in+`)
		UNION ALL
		SELECT up.user_id, up.org_code, '' FROM dir_user_permissions up WHERE up.permission_id = ? AND up.user_id IN (`+in+`)) h
		LEFT JOIN dir_users u ON u.id = h.user_id
		LEFT JOIN dir_roles r ON r.id = h.role_id
		ORDER BY COALESCE(u.email, ''), h.user_id, h.org_code, COALESCE(r.role_key, '')`, args...)
}

// DirVerifyDerived recounts dir_grants and the holder counts from the base
// tables and returns an error naming the first differences, nil when the
// kept values are right.
func (db *DB) DirVerifyDerived(ctx context.Context) error {
	var diffs []string
	note := func(format string, args ...any) {
		if len(diffs) < 10 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	kept, err := scanGrants(ctx, db, `SELECT permission_id, user_id, org_code, via_role, direct FROM dir_grants`)
	if err != nil {
		return err
	}
	want, err := scanGrants(ctx, db, derivedGrantsSQL(`1 = 1`))
	if err != nil {
		return err
	}
	for k, p := range want {
		if q, ok := kept[k]; !ok || q != p {
			note("grant %v: kept %+v (present %v), recounted %+v", k, q, ok, p)
		}
	}
	for k, q := range kept {
		if _, ok := want[k]; !ok {
			note("grant %v: kept %+v, recounted none", k, q)
		}
	}
	keptCounts, err := db.DirPermissionCountsAll(ctx)
	if err != nil {
		return err
	}
	wantCounts := map[string]DirPermissionCounts{}
	for k, h := range holdings(want) {
		c := wantCounts[k[0]]
		h.add(&c, 1)
		wantCounts[k[0]] = c
	}
	if !maps.Equal(keptCounts, wantCounts) {
		for _, p := range slices.Sorted(maps.Keys(wantCounts)) {
			if keptCounts[p] != wantCounts[p] {
				note("permission %s: kept %+v, recounted %+v", p, keptCounts[p], wantCounts[p])
			}
		}
		for p := range keptCounts {
			if _, ok := wantCounts[p]; !ok {
				note("permission %s: kept %+v, recounted no holders", p, keptCounts[p])
			}
		}
	}
	keptRoles, err := db.DirRoleCountsAll(ctx)
	if err != nil {
		return err
	}
	wantRoles, err := dirCounts(ctx, db, `SELECT role_id, COUNT(DISTINCT user_id) FROM dir_user_roles GROUP BY role_id`)
	if err != nil {
		return err
	}
	if !maps.Equal(keptRoles, wantRoles) {
		note("role counts: kept %v, recounted %v", keptRoles, wantRoles)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("directory: derived tables differ from a recount: %s", strings.Join(diffs, "; "))
	}
	return nil
}

// DirHeldKeys returns the keys of the permissions each of the users holds
// in any organization, by any path, sorted.
func (db *DB) DirHeldKeys(ctx context.Context, users []string) (map[string][]string, error) {
	out := map[string][]string{}
	for chunk := range slices.Chunk(dedupe(users), dirUserChunk) {
		m, err := dirPairs(ctx, db, `SELECT DISTINCT g.user_id, p.perm_key FROM dir_grants g
			JOIN dir_permissions p ON p.id = g.permission_id WHERE g.user_id IN (`+sqlMarks(len(chunk))+`)
			ORDER BY g.user_id, p.perm_key`, anys(chunk)...)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	return out, nil
}

// DirAnalyze refreshes the query planner's statistics of the directory's
// tables after a full sync rewrote them. Postgres plans the holder pages
// from those statistics (an index walk in email order rather than a hash of
// every holder); until autovacuum gets there, a freshly filled table looks
// empty to it. SQLite's plans here come from the indexes alone: nothing to
// do.
func (db *DB) DirAnalyze(ctx context.Context) error {
	if db.dialect != Postgres {
		return nil
	}
	_, err := db.Exec(ctx, `ANALYZE dir_users, dir_grants, dir_memberships, dir_user_roles, dir_user_permissions,
		dir_role_permissions`)
	return err
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
