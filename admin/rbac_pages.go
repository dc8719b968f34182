package admin

import (
	"context"
	"errors"
	"slices"

	"permsync/apperr"
	"permsync/directory"
	"permsync/store"
)

// The RBAC panel's pages read the directory: a role with its permissions
// and members, a user's access in each organization, and the overview.

// RBACOverview is the RBAC panel's front page.
type RBACOverview struct {
	Roles       []RoleSummary
	Permissions []PermissionRow
	Edits       *EditPage
}

// PermissionRow is a permission with the roles that grant it and how many
// users hold it.
type PermissionRow struct {
	PermissionRef
	Description string
	Holders     int
	Roles       []RoleRef
}

// RBAC returns the RBAC panel's overview: every role and permission, and
// one page of the confirmed edits.
func (s *Service) RBAC(ctx context.Context, a Actor, editsOffset int) (*RBACOverview, error) {
	roles, err := s.Roles(ctx, a)
	if err != nil {
		return nil, err
	}
	rows, err := s.dir.Permissions(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	out := &RBACOverview{Roles: roles}
	for _, r := range rows {
		ps := PermissionRow{PermissionRef: PermissionRef{ID: r.ID, Key: r.Key, Name: r.Name},
			Description: r.Description, Holders: r.Holders}
		for _, rl := range r.Roles {
			ps.Roles = append(ps.Roles, RoleRef{ID: rl.ID, Key: rl.Key, Name: rl.Name})
		}
		out.Permissions = append(out.Permissions, ps)
	}
	if out.Edits, err = s.Edits(ctx, a, editsOffset, 20); err != nil {
		return nil, err
	}
	return out, nil
}

// RoleDetail is a role's page: its permissions, the permissions it could
// be given, and a page of its members.
type RoleDetail struct {
	Role        RoleRef
	Description string
	Permissions []PermissionRef // what it grants, by key
	Addable     []PermissionRef // what it does not grant yet
	Members     []Member        // this page, by email then organization
	MemberTotal int
	Offset      int
	Limit       int
}

// RoleDetail returns a role, its permissions and one page of its members.
func (s *Service) RoleDetail(ctx context.Context, a Actor, id string, offset int) (*RoleDetail, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	r, err := s.db.DirRoleByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apperr.E(apperr.NotFound, "Role not found. It may have been deleted, or be newer than the directory's last sync.")
	}
	if err != nil {
		return nil, errInternal(err)
	}
	d := &RoleDetail{Role: RoleRef{ID: r.ID, Key: r.Key, Name: r.Name}, Description: r.Description,
		Offset: max(offset, 0), Limit: directory.DefaultPageSize}
	keys, err := s.db.DirRolePermissionKeys(ctx, r.ID)
	if err != nil {
		return nil, errInternal(err)
	}
	all, err := s.tenant().Permissions(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	slices.SortFunc(all, func(x, y PermissionRef) int { return compareStrings(x.Key, y.Key) })
	for _, p := range all {
		if slices.Contains(keys, p.Key) {
			d.Permissions = append(d.Permissions, p)
		} else {
			d.Addable = append(d.Addable, p)
		}
	}
	members, err := s.tenant().RoleMembers(ctx, r.ID)
	if err != nil {
		return nil, errInternal(err)
	}
	d.MemberTotal = len(members)
	d.Members = members[min(d.Offset, len(members)):min(d.Offset+d.Limit, len(members))]
	return d, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// OrgAccess is what a user holds in one organization.
type OrgAccess struct {
	OrgCode    string
	Roles      []RoleRef        // held there
	Direct     []PermissionRef  // granted directly there
	Effective  []UserPermission // every key held there, and why
	AddRoles   []RoleRef        // roles they could be given
	GrantPerms []PermissionRef  // permissions they could be granted directly
}

// UserAccess is a user's access page.
type UserAccess struct {
	UserID string
	Email  string
	Name   string
	Orgs   []OrgAccess
}

// UserAccess returns what the user holds in each organization they belong
// to, and what they could be given.
func (s *Service) UserAccess(ctx context.Context, a Actor, userID string) (*UserAccess, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	u, err := s.dir.User(ctx, userID)
	if errors.Is(err, directory.ErrUnknown) {
		return nil, apperr.E(apperr.NotFound, "User not found in the directory.")
	}
	if err != nil {
		return nil, errInternal(err)
	}
	t := s.tenant()
	roles, err := t.Roles(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	perms, err := t.Permissions(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	slices.SortFunc(roles, func(x, y RoleRef) int { return compareStrings(x.Key, y.Key) })
	slices.SortFunc(perms, func(x, y PermissionRef) int { return compareStrings(x.Key, y.Key) })
	orgs, err := t.MemberOrgs(ctx, u.ID)
	if err != nil {
		return nil, errInternal(err)
	}
	grants, err := s.dir.UserGrants(ctx, u.ID, "")
	if err != nil {
		return nil, errInternal(err)
	}
	out := &UserAccess{UserID: u.ID, Email: u.Email, Name: u.Name}
	for _, org := range orgs {
		m, err := t.Member(ctx, u.ID, org)
		if err != nil {
			return nil, errInternal(err)
		}
		oa := OrgAccess{OrgCode: org}
		for _, r := range roles {
			if slices.Contains(m.RoleIDs, r.ID) {
				oa.Roles = append(oa.Roles, r)
			} else {
				oa.AddRoles = append(oa.AddRoles, r)
			}
		}
		for _, p := range perms {
			if slices.Contains(m.DirectKeys, p.Key) {
				oa.Direct = append(oa.Direct, p)
			} else {
				oa.GrantPerms = append(oa.GrantPerms, p)
			}
		}
		for _, g := range grants {
			if g.OrgCode == org {
				oa.Effective = append(oa.Effective, UserPermission{Key: g.Key, Name: g.Name, OrgCode: org,
					Reasons: directory.Reasons(g.Via)})
			}
		}
		out.Orgs = append(out.Orgs, oa)
	}
	return out, nil
}
