// Package directory is permsync's local copy of the Kinde tenant's RBAC
// state: organizations, users, memberships, roles and their permissions, each
// user's roles and direct permissions per organization, and permissions
// (id ↔ key). It answers "who holds key K, and why" and "what does user U hold
// in org O" from the database, without calling Kinde.
//
// The copy is kept true three ways: a resumable full sync in the background
// (Syncer), webhooks applied as they arrive (Prepare, then Update.ApplyTx),
// and a periodic reconciliation, which is the same full sync run again: every
// difference it finds that takes something away is handed to an Enforcer in
// the transaction that records it.
//
// The package has no HTTP; its SQL lives in store.
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"permsync/store"
)

// ErrUnknown is returned for a permission, role or user the directory does
// not hold.
var ErrUnknown = errors.New("directory: not known")

// PathKind says how a user holds a permission.
type PathKind string

// Path kinds.
const (
	ViaRole PathKind = "role"   // through a role that grants it
	Direct  PathKind = "direct" // granted to the user directly in the organization
)

// Path is one reason a user holds a permission in an organization.
type Path struct {
	Kind    PathKind
	RoleID  string // for ViaRole
	RoleKey string // for ViaRole
}

// String is "role:<key>" or "direct".
func (p Path) String() string {
	if p.Kind == ViaRole {
		return "role:" + p.RoleKey
	}
	return string(p.Kind)
}

// Holder is a user holding a permission in one organization, and why.
type Holder struct {
	UserID  string
	Email   string
	Name    string
	OrgCode string
	Via     []Path // roles first (by key), then direct
}

// Permission is a permission the directory knows.
type Permission = store.DirPermission

// Role is a role the directory knows.
type Role = store.DirRole

// User is a user the directory knows.
type User = store.DirUser

// Directory answers questions about the tenant from the local copy. It is
// safe for concurrent use.
type Directory struct {
	db  *store.DB
	log *slog.Logger
}

// New returns a Directory over db.
func New(db *store.DB, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Directory{db: db, log: log}
}

// PermissionByKey returns the permission with that key, or ErrUnknown.
func (d *Directory) PermissionByKey(ctx context.Context, key string) (*Permission, error) {
	p, err := d.db.DirPermissionByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: permission %q", ErrUnknown, key)
	}
	return p, err
}

// PermissionByID returns the permission with that id, or ErrUnknown.
func (d *Directory) PermissionByID(ctx context.Context, id string) (*Permission, error) {
	p, err := d.db.DirPermissionByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: permission id %q", ErrUnknown, id)
	}
	return p, err
}

// HolderIDs returns the distinct ids of the users holding key by any path,
// sorted; none for a key the directory does not know. It is the cheap
// question a deletion's fan-out asks.
func (d *Directory) HolderIDs(ctx context.Context, key string) ([]string, error) {
	p, err := d.db.DirPermissionByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return d.db.DirHolderIDs(ctx, p.ID)
}

// RoleHolderIDs returns the distinct ids of the users holding the role in
// any organization, sorted.
func (d *Directory) RoleHolderIDs(ctx context.Context, roleID string) ([]string, error) {
	return d.db.DirRoleHolderIDs(ctx, roleID)
}

// AllHolders returns every holder of key (one per user and organization),
// by email; none for a key the directory does not know.
func (d *Directory) AllHolders(ctx context.Context, key string) ([]Holder, error) {
	p, err := d.db.DirPermissionByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := d.db.DirHolderRows(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	return groupHolders(rows), nil
}

// groupHolders folds holder rows (sorted by email, user, org) into one
// Holder per user and organization.
func groupHolders(rows []store.DirHolderRow) []Holder {
	var out []Holder
	for _, r := range rows {
		n := len(out)
		if n == 0 || out[n-1].UserID != r.UserID || out[n-1].OrgCode != r.OrgCode {
			out = append(out, Holder{UserID: r.UserID, Email: r.Email, Name: r.Name, OrgCode: r.OrgCode})
			n++
		}
		out[n-1].Via = addPath(out[n-1].Via, r.RoleID, r.RoleKey)
	}
	for i := range out {
		sortPaths(out[i].Via)
	}
	return out
}

// addPath adds to via, once, the path of a grant row: through the role
// roleID, or direct when roleID is "".
func addPath(via []Path, roleID, roleKey string) []Path {
	p := Path{Kind: Direct}
	if roleID != "" {
		p = Path{Kind: ViaRole, RoleID: roleID, RoleKey: roleKey}
	}
	if slices.Contains(via, p) {
		return via
	}
	return append(via, p)
}

func sortPaths(ps []Path) {
	slices.SortFunc(ps, func(a, b Path) int {
		if a.Kind != b.Kind {
			if a.Kind == ViaRole {
				return -1
			}
			return 1
		}
		return strings.Compare(a.RoleKey, b.RoleKey)
	})
}

// HolderQuery picks a page of holders. Search is a case-insensitive
// substring of the email, name, user id or organization code.
type HolderQuery struct {
	Search string
	Offset int
	Limit  int // ≤ 0 means DefaultPageSize
}

// DefaultPageSize is the page size of holder and user listings.
const DefaultPageSize = 50

// HolderCounts are a permission's holder counts, over every holder.
type HolderCounts = store.DirPermissionCounts

// HolderUser is a user holding a permission in one or more organizations,
// and why (every path, in any of them).
type HolderUser struct {
	UserID string
	Email  string
	Name   string
	Orgs   []string // organization codes, sorted
	Via    []Path   // roles first (by key), then direct
}

// HolderUserPage is one page of a permission's holders, one per user, with
// counts over all of them.
type HolderUserPage struct {
	Permission Permission
	Holders    []HolderUser // this page, by email then user id
	Matched    int          // users matching the search
	Offset     int
	Limit      int
	// Counts over every holder, whatever the search: Users (distinct),
	// Grants (user and organization pairs), ViaRoles, Direct, DirectOnly.
	HolderCounts
}

// HolderUsers returns a page of the holders of the permission with that id,
// one per user (the organizations and paths folded together), with counts:
// what a deletion would reach, a page at a time. It returns ErrUnknown for an
// id the directory does not know. The page, the search and the counts are
// answered in SQL from the kept grants and counts: its cost grows with the
// page, not with the number of holders.
func (d *Directory) HolderUsers(ctx context.Context, permID string, q HolderQuery) (*HolderUserPage, error) {
	p, counts, err := d.permissionAndCounts(ctx, permID)
	if err != nil {
		return nil, err
	}
	q = q.normalized()
	keys, matched, err := d.db.DirHolderKeys(ctx, p.ID, q.Search, q.Limit, q.Offset)
	if err != nil {
		return nil, err
	}
	if matched < 0 {
		matched = counts.Users
	}
	out := &HolderUserPage{Permission: *p, Offset: q.Offset, Limit: q.Limit, Matched: matched, HolderCounts: counts}
	hs, err := d.holdersOf(ctx, p.ID, keys)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for _, k := range keys {
		idx[k.UserID] = len(out.Holders)
		out.Holders = append(out.Holders, HolderUser{UserID: k.UserID, Email: k.Email, Name: k.Name})
	}
	for _, h := range hs {
		u := &out.Holders[idx[h.UserID]]
		u.Orgs = append(u.Orgs, h.OrgCode)
		for _, v := range h.Via {
			if !slices.Contains(u.Via, v) {
				u.Via = append(u.Via, v)
			}
		}
	}
	for i := range out.Holders {
		sortPaths(out.Holders[i].Via)
	}
	return out, nil
}

func (q HolderQuery) normalized() HolderQuery {
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	q.Offset = max(q.Offset, 0)
	return q
}

// permissionAndCounts reads a permission and its kept holder counts.
func (d *Directory) permissionAndCounts(ctx context.Context, permID string) (*Permission, HolderCounts, error) {
	p, err := d.PermissionByID(ctx, permID)
	if err != nil {
		return nil, HolderCounts{}, err
	}
	c, err := d.db.DirPermissionCountsOf(ctx, p.ID)
	return p, c, err
}

// holdersOf returns the holders (user and organization) among the users of
// keys, with their paths, by email, user and organization.
func (d *Directory) holdersOf(ctx context.Context, permID string, keys []store.DirHolderRow) ([]Holder, error) {
	users := make([]string, 0, len(keys))
	for _, k := range keys {
		if len(users) == 0 || users[len(users)-1] != k.UserID {
			users = append(users, k.UserID)
		}
	}
	rows, err := d.db.DirHolderRowsOf(ctx, permID, users)
	if err != nil {
		return nil, err
	}
	return groupHolders(rows), nil
}

// Grant is a permission a user holds in an organization, and why.
type Grant struct {
	OrgCode      string
	PermissionID string
	Key          string
	Name         string
	Via          []Path
}

// UserGrants returns what the user holds in org ("" means every
// organization), by organization then key.
func (d *Directory) UserGrants(ctx context.Context, userID, org string) ([]Grant, error) {
	rows, err := d.db.DirUserGrants(ctx, userID, org)
	if err != nil {
		return nil, err
	}
	var out []Grant
	for _, r := range rows {
		n := len(out)
		if n == 0 || out[n-1].OrgCode != r.OrgCode || out[n-1].PermissionID != r.PermissionID {
			out = append(out, Grant{OrgCode: r.OrgCode, PermissionID: r.PermissionID, Key: r.Key, Name: r.Name})
			n++
		}
		out[n-1].Via = addPath(out[n-1].Via, r.RoleID, r.RoleKey)
	}
	for i := range out {
		sortPaths(out[i].Via)
	}
	return out, nil
}

// HeldKeys returns, for each of the users, the keys of the permissions they
// hold in any organization by any path, sorted: one query for a page of
// users.
func (d *Directory) HeldKeys(ctx context.Context, userIDs []string) (map[string][]string, error) {
	return d.db.DirHeldKeys(ctx, userIDs)
}

// User returns one user, or ErrUnknown.
func (d *Directory) User(ctx context.Context, id string) (*User, error) {
	u, err := d.db.DirUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: user %q", ErrUnknown, id)
	}
	return u, err
}

// Membership is a user's membership of an organization and the roles they
// hold there.
type Membership = store.DirUserMembership

// UserRow is one user of a listing, with their memberships.
type UserRow struct {
	User
	Memberships []Membership
}

// UserPage is a page of users.
type UserPage struct {
	Users   []UserRow
	Matched int // users matching the search
	Total   int // users in the directory
	Offset  int
	Limit   int
}

// Users returns a page of users whose email, name or id contain search, by
// email, with their memberships and roles.
func (d *Directory) Users(ctx context.Context, search string, offset, limit int) (*UserPage, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	offset = max(offset, 0)
	pg, err := d.db.DirUsers(ctx, search, limit, offset)
	if err != nil {
		return nil, err
	}
	out := &UserPage{Matched: pg.Total, Total: pg.Total, Offset: offset, Limit: limit}
	if strings.TrimSpace(search) != "" {
		c, err := d.db.DirCounts(ctx)
		if err != nil {
			return nil, err
		}
		out.Total = c.Users
	}
	ids := make([]string, len(pg.Users))
	for i, u := range pg.Users {
		ids[i] = u.ID
	}
	ms, err := d.db.DirMemberships(ctx, ids)
	if err != nil {
		return nil, err
	}
	byUser := map[string][]Membership{}
	for _, m := range ms {
		byUser[m.UserID] = append(byUser[m.UserID], m)
	}
	for _, u := range pg.Users {
		out.Users = append(out.Users, UserRow{User: u, Memberships: byUser[u.ID]})
	}
	return out, nil
}

// Memberships returns the user's memberships and roles.
func (d *Directory) Memberships(ctx context.Context, userID string) ([]Membership, error) {
	return d.db.DirMemberships(ctx, []string{userID})
}

// PermissionRow is a permission with the roles that grant it and how many
// users hold it.
type PermissionRow struct {
	Permission
	Roles   []Role
	Holders int // distinct users
}

// RoleRow is a role with its permissions and how many users hold it.
type RoleRow struct {
	Role
	Permissions []Permission // by key
	Holders     int          // distinct users
}

// catalog is every permission and role, which roles grant what, and the
// kept holder counts: what the permission and role lists are made of.
type catalog struct {
	perms       []Permission
	roles       []Role
	grants      map[[2]string]bool // (role id, permission id)
	permHolders map[string]HolderCounts
	roleHolders map[string]int
}

func (d *Directory) catalog(ctx context.Context) (*catalog, error) {
	var c catalog
	var err error
	if c.perms, err = d.db.DirPermissions(ctx); err != nil {
		return nil, err
	}
	if c.roles, err = d.db.DirRoles(ctx); err != nil {
		return nil, err
	}
	rolePerms, err := d.db.DirRolePermissionIDs(ctx)
	if err != nil {
		return nil, err
	}
	c.grants = map[[2]string]bool{}
	for r, ps := range rolePerms {
		for _, p := range ps {
			c.grants[[2]string{r, p}] = true
		}
	}
	if c.permHolders, err = d.db.DirPermissionCountsAll(ctx); err != nil {
		return nil, err
	}
	if c.roleHolders, err = d.db.DirRoleCountsAll(ctx); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *catalog) permissionRow(p Permission) PermissionRow {
	row := PermissionRow{Permission: p, Holders: c.permHolders[p.ID].Users}
	for _, r := range c.roles {
		if c.grants[[2]string{r.ID, p.ID}] {
			row.Roles = append(row.Roles, r)
		}
	}
	return row
}

func (c *catalog) roleRow(r Role) RoleRow {
	row := RoleRow{Role: r, Holders: c.roleHolders[r.ID]}
	for _, p := range c.perms {
		if c.grants[[2]string{r.ID, p.ID}] {
			row.Permissions = append(row.Permissions, p)
		}
	}
	return row
}

// Permissions returns every permission, by key, with its roles and holder
// counts.
func (d *Directory) Permissions(ctx context.Context) ([]PermissionRow, error) {
	c, err := d.catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PermissionRow, len(c.perms))
	for i, p := range c.perms {
		out[i] = c.permissionRow(p)
	}
	return out, nil
}

// PermissionRowByID returns one permission with its roles and holder
// count, or ErrUnknown.
func (d *Directory) PermissionRowByID(ctx context.Context, id string) (*PermissionRow, error) {
	p, err := d.PermissionByID(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := d.catalog(ctx)
	if err != nil {
		return nil, err
	}
	row := c.permissionRow(*p)
	return &row, nil
}

// Roles returns every role, by key, with its permissions and holder counts.
func (d *Directory) Roles(ctx context.Context) ([]RoleRow, error) {
	c, err := d.catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RoleRow, len(c.roles))
	for i, r := range c.roles {
		out[i] = c.roleRow(r)
	}
	return out, nil
}

// Status is the state of the copy: how fresh it is, and the progress of a
// running sync.
type Status struct {
	store.DirSyncState
	Counts store.DirCounts
}

// Synced reports whether a full sync ever completed.
func (s *Status) Synced() bool { return !s.CompletedAt.IsZero() }

// Running reports whether a sync run is in progress (or was interrupted and
// will resume).
func (s *Status) Running() bool { return s.Status == statusRunning }

// Age is how long ago the last full sync completed (0 if never).
func (s *Status) Age(now time.Time) time.Duration {
	if s.CompletedAt.IsZero() {
		return 0
	}
	return now.Sub(s.CompletedAt)
}

// Summary says in a few words how fresh the copy is: "synced 14 s ago",
// "syncing: 120 of 1,000 organizations (first sync)", "never synced".
func (s *Status) Summary(now time.Time) string {
	var parts []string
	if s.Synced() {
		parts = append(parts, "synced "+Ago(now.Sub(s.CompletedAt))+" ago")
	}
	if s.Running() {
		p := "syncing"
		if s.Phase == phaseMembers || s.OrgsTotal > 0 {
			p += fmt.Sprintf(": %s of %s organizations", thousands(s.OrgsDone), thousands(s.OrgsTotal))
		} else if s.Phase != "" {
			p += ": " + s.Phase
		}
		if !s.Synced() {
			p += " (first sync)"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		parts = append(parts, "never synced")
	}
	if s.LastError != "" && s.LastErrorAt.After(s.CompletedAt) {
		parts = append(parts, "last attempt failed "+Ago(now.Sub(s.LastErrorAt))+" ago")
	}
	return strings.Join(parts, "; ")
}

// Ago renders a duration the way the pages say it: "14 s", "3 min", "2 h",
// "5 d".
func Ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d d", int(d.Hours()/24))
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Status returns the sync's state and the directory's sizes.
func (d *Directory) Status(ctx context.Context) (*Status, error) {
	st, err := d.db.DirSyncState(ctx)
	if err != nil {
		return nil, err
	}
	c, err := d.db.DirCounts(ctx)
	if err != nil {
		return nil, err
	}
	return &Status{DirSyncState: *st, Counts: c}, nil
}

// RoleByID returns a role, or ErrUnknown.
func (d *Directory) RoleByID(ctx context.Context, id string) (*Role, error) {
	r, err := d.db.DirRoleByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: role %q", ErrUnknown, id)
	}
	return r, err
}
