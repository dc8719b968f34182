package admin

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// directory is one snapshot of Kinde's RBAC data: permissions, roles with
// their permissions, and organization members with the permissions they hold
// and why. The listing pages share it for DirectoryTTL.
type directory struct {
	builtAt   time.Time
	orgs      []string
	perms     []kinde.Permission // by key
	roles     []*dirRole         // by key
	users     []*dirUser         // by email, then id
	userByID  map[string]*dirUser
	roleByKey map[string]*dirRole
}

// dirRole is a role and the permissions it grants.
type dirRole struct {
	kinde.Role
	perms []kinde.Permission
}

// dirUser is an organization member.
type dirUser struct {
	id, email, name string
	orgs            []string
	roles           []string            // role keys
	perms           map[string][]Reason // effective permission key → why
}

// permission finds a permission by id.
func (d *directory) permission(id string) (kinde.Permission, bool) {
	i := slices.IndexFunc(d.perms, func(p kinde.Permission) bool { return p.ID == id })
	if i < 0 {
		return kinde.Permission{}, false
	}
	return d.perms[i], true
}

// rolesWith returns the roles that grant the permission.
func (d *directory) rolesWith(p kinde.Permission) []RoleRef {
	var out []RoleRef
	for _, r := range d.roles {
		if slices.ContainsFunc(r.perms, samePermission(p)) {
			out = append(out, RoleRef{ID: r.ID, Key: r.Key, Name: r.Name})
		}
	}
	return out
}

// holders counts the members holding the permission key.
func (d *directory) holders(key string) int {
	n := 0
	for _, u := range d.users {
		if _, ok := u.perms[key]; ok {
			n++
		}
	}
	return n
}

// samePermission matches by id, or by key when an id is missing.
func samePermission(p kinde.Permission) func(kinde.Permission) bool {
	return func(q kinde.Permission) bool {
		if p.ID != "" && q.ID != "" {
			return p.ID == q.ID
		}
		return p.Key == q.Key
	}
}

// directory returns a snapshot no older than DirectoryTTL, building one if
// needed; fresh forces a new one. Concurrent callers share one build.
func (s *Service) directory(ctx context.Context, fresh bool) (*directory, error) {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if !fresh && s.dir != nil && time.Since(s.dir.builtAt) < s.dirTTL {
		return s.dir, nil
	}
	d, err := s.buildDirectory(ctx)
	if err != nil {
		return nil, kindeError(err, "")
	}
	s.dir = d
	return d, nil
}

// authorizedDirectory checks the actor, then returns the snapshot.
func (s *Service) authorizedDirectory(ctx context.Context, a Actor) (*directory, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	return s.directory(ctx, false)
}

// search is the list pages' filter: a case-insensitive substring of any of
// a row's fields. The empty search matches every row.
type search struct {
	query string // as typed, trimmed
	lower string
}

func newSearch(query string) search {
	query = strings.TrimSpace(query)
	return search{query: query, lower: strings.ToLower(query)}
}

func (q search) matches(fields ...string) bool {
	return q.lower == "" || strings.Contains(strings.ToLower(strings.Join(fields, "\x00")), q.lower)
}

// invalidateDirectory drops the cached snapshot after a change.
func (s *Service) invalidateDirectory() {
	s.dirMu.Lock()
	s.dir = nil
	s.dirMu.Unlock()
}

// organizations returns the configured organizations, or every one.
func (s *Service) organizations(ctx context.Context) ([]string, error) {
	if len(s.orgCodes) > 0 {
		return s.orgCodes, nil
	}
	orgs, err := s.kinde.AllOrganizations(ctx)
	if err != nil {
		return nil, err
	}
	codes := make([]string, len(orgs))
	for i, o := range orgs {
		codes[i] = o.Code
	}
	return codes, nil
}

// buildDirectory reads Kinde: permissions, roles and their permissions,
// organization members, and direct grants. Direct grants are found with
// whichever costs fewer calls per organization: the users filter once per
// permission, or each member's permissions once per member.
func (s *Service) buildDirectory(ctx context.Context) (*directory, error) {
	d := &directory{builtAt: time.Now(), userByID: map[string]*dirUser{}, roleByKey: map[string]*dirRole{}}
	var err error
	if d.orgs, err = s.organizations(ctx); err != nil {
		return nil, err
	}
	if d.perms, err = s.kinde.AllPermissions(ctx); err != nil {
		return nil, err
	}
	slices.SortFunc(d.perms, func(a, b kinde.Permission) int { return strings.Compare(a.Key, b.Key) })
	s.rememberPermissions(ctx, d.perms)

	roles, err := s.kinde.AllRoles(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		perms, err := s.kinde.AllRolePermissions(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		dr := &dirRole{Role: r, perms: perms}
		d.roles = append(d.roles, dr)
		d.roleByKey[r.Key] = dr
	}
	slices.SortFunc(d.roles, func(a, b *dirRole) int { return strings.Compare(a.Key, b.Key) })

	for _, org := range d.orgs {
		members, err := s.kinde.AllOrganizationUsers(ctx, org, kinde.OrgUserFilter{})
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			u := d.member(m, org)
			for _, rk := range m.Roles {
				if !slices.Contains(u.roles, rk) {
					u.roles = append(u.roles, rk)
				}
				if r := d.roleByKey[rk]; r != nil {
					for _, p := range r.perms {
						u.perms[p.Key] = fanout.AddReason(u.perms[p.Key], Reason{Kind: ReasonRole, RoleKey: rk})
					}
				}
			}
		}
		if err := s.directGrants(ctx, d, org, members); err != nil {
			return nil, err
		}
	}
	for _, u := range d.users {
		slices.Sort(u.roles)
		for _, rs := range u.perms {
			fanout.SortReasons(rs)
		}
	}
	slices.SortFunc(d.users, func(a, b *dirUser) int {
		return cmp.Or(strings.Compare(a.email, b.email), strings.Compare(a.id, b.id))
	})
	return d, nil
}

// member returns the directory entry for an organization member, adding it.
func (d *directory) member(m kinde.OrganizationUser, org string) *dirUser {
	u := d.userByID[m.ID]
	if u == nil {
		u = &dirUser{id: m.ID, email: m.Email, name: m.FullName, perms: map[string][]Reason{}}
		if u.name == "" {
			u.name = strings.TrimSpace(m.FirstName + " " + m.LastName)
		}
		d.userByID[m.ID] = u
		d.users = append(d.users, u)
	}
	if !slices.Contains(u.orgs, org) {
		u.orgs = append(u.orgs, org)
	}
	return u
}

// directGrants adds the permissions members of org hold directly.
func (s *Service) directGrants(ctx context.Context, d *directory, org string, members []kinde.OrganizationUser) error {
	if len(d.perms) <= len(members) {
		for _, p := range d.perms {
			holders, err := s.kinde.AllOrganizationUsers(ctx, org, kinde.OrgUserFilter{Permissions: []string{p.Key}})
			if err != nil {
				return err
			}
			for _, h := range holders {
				u := d.member(h, org)
				// The filter may also match grants through roles; those already
				// have their role reasons.
				if !fanout.HasRoleReason(u.perms[p.Key]) {
					u.perms[p.Key] = fanout.AddReason(u.perms[p.Key], Reason{Kind: ReasonDirect})
				}
			}
		}
		return nil
	}
	for _, m := range members {
		perms, err := s.kinde.OrganizationUserPermissions(ctx, org, m.ID)
		if err != nil {
			return err
		}
		u := d.userByID[m.ID]
		for _, p := range perms {
			if len(p.Roles) == 0 {
				u.perms[p.Key] = fanout.AddReason(u.perms[p.Key], Reason{Kind: ReasonDirect})
				continue
			}
			for _, r := range p.Roles {
				u.perms[p.Key] = fanout.AddReason(u.perms[p.Key], Reason{Kind: ReasonRole, RoleKey: r.Key})
			}
		}
	}
	return nil
}

// rememberPermissions keeps the permission id → key map current. A key
// created again under a new id lifts nothing: its denial keeps it from the
// tokens whose claims predate the deletion, and tokens granted after the new
// grant carry it (store.Denial). Failures are logged: the listing itself
// succeeded.
func (s *Service) rememberPermissions(ctx context.Context, perms []kinde.Permission) {
	rows := make([]store.PermissionKey, len(perms))
	for i, p := range perms {
		rows[i] = store.PermissionKey{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}
	}
	if err := s.db.UpsertPermissionKeys(ctx, rows); err != nil {
		s.log.WarnContext(ctx, "admin: could not record permission keys", "error", err)
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
