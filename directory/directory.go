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
		p := Path{Kind: Direct}
		if r.RoleID != "" {
			p = Path{Kind: ViaRole, RoleID: r.RoleID, RoleKey: r.RoleKey}
		}
		if !slices.Contains(out[n-1].Via, p) {
			out[n-1].Via = append(out[n-1].Via, p)
		}
	}
	for i := range out {
		sortPaths(out[i].Via)
	}
	return out
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

// HolderPage is one page of a permission's holders, with counts over all of
// them.
type HolderPage struct {
	Permission Permission
	Holders    []Holder // this page, by email then organization
	Matched    int      // holders (user and organization) matching the search
	Offset     int
	Limit      int
	// Counts over every holder, whatever the search.
	Users      int // distinct users
	Grants     int // user and organization pairs
	ViaRoles   int // distinct users holding it through a role somewhere
	DirectOnly int // distinct users holding it only directly
	Direct     int // distinct users with a direct grant somewhere
}

// Holders returns a page of the holders of the permission with that id, with
// counts. It returns ErrUnknown for an id the directory does not know.
func (d *Directory) Holders(ctx context.Context, permID string, q HolderQuery) (*HolderPage, error) {
	p, err := d.PermissionByID(ctx, permID)
	if err != nil {
		return nil, err
	}
	rows, err := d.db.DirHolderRows(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	q.Offset = max(q.Offset, 0)
	all := groupHolders(rows)
	out := &HolderPage{Permission: *p, Offset: q.Offset, Limit: q.Limit, Grants: len(all)}
	users := map[string]int{} // bit 1: via role, bit 2: direct
	for _, h := range all {
		for _, v := range h.Via {
			if v.Kind == ViaRole {
				users[h.UserID] |= 1
			} else {
				users[h.UserID] |= 2
			}
		}
	}
	out.Users = len(users)
	for _, bits := range users {
		if bits&1 != 0 {
			out.ViaRoles++
		}
		if bits&2 != 0 {
			out.Direct++
		}
		if bits == 2 {
			out.DirectOnly++
		}
	}
	search := strings.ToLower(strings.TrimSpace(q.Search))
	matched := all
	if search != "" {
		matched = nil
		for _, h := range all {
			if strings.Contains(strings.ToLower(h.Email+"\x00"+h.Name+"\x00"+h.UserID+"\x00"+h.OrgCode), search) {
				matched = append(matched, h)
			}
		}
	}
	out.Matched = len(matched)
	if q.Offset < len(matched) {
		out.Holders = matched[q.Offset:min(len(matched), q.Offset+q.Limit)]
	}
	return out, nil
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
		p := Path{Kind: Direct}
		if r.RoleID != "" {
			p = Path{Kind: ViaRole, RoleID: r.RoleID, RoleKey: r.RoleKey}
		}
		if !slices.Contains(out[n-1].Via, p) {
			out[n-1].Via = append(out[n-1].Via, p)
		}
	}
	for i := range out {
		sortPaths(out[i].Via)
	}
	return out, nil
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

// Permissions returns every permission, by key, with its roles and holder
// counts.
func (d *Directory) Permissions(ctx context.Context) ([]PermissionRow, error) {
	perms, err := d.db.DirPermissions(ctx)
	if err != nil {
		return nil, err
	}
	roles, err := d.db.DirRoles(ctx)
	if err != nil {
		return nil, err
	}
	rolePerms, err := d.db.DirRolePermissionIDs(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := d.db.DirPermissionHolderCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PermissionRow, len(perms))
	for i, p := range perms {
		out[i] = PermissionRow{Permission: p, Holders: counts[p.ID]}
		for _, r := range roles {
			if slices.Contains(rolePerms[r.ID], p.ID) {
				out[i].Roles = append(out[i].Roles, r)
			}
		}
	}
	return out, nil
}

// RoleRow is a role with its permissions and how many users hold it.
type RoleRow struct {
	Role
	Permissions []Permission // by key
	Holders     int          // distinct users
}

// Roles returns every role, by key, with its permissions and holder counts.
func (d *Directory) Roles(ctx context.Context) ([]RoleRow, error) {
	roles, err := d.db.DirRoles(ctx)
	if err != nil {
		return nil, err
	}
	perms, err := d.db.DirPermissions(ctx)
	if err != nil {
		return nil, err
	}
	rolePerms, err := d.db.DirRolePermissionIDs(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := d.db.DirRoleHolderCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RoleRow, len(roles))
	for i, r := range roles {
		out[i] = RoleRow{Role: r, Holders: counts[r.ID]}
		for _, p := range perms {
			if slices.Contains(rolePerms[r.ID], p.ID) {
				out[i].Permissions = append(out[i].Permissions, p)
			}
		}
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
