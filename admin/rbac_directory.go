package admin

import (
	"context"
	"errors"

	"permsync/directory"
	"permsync/store"
)

// tenantCopy answers an RBAC edit's questions from the directory (the local
// copy of Kinde's RBAC state): it is the RBACDirectory of the service.
type tenantCopy struct {
	db  *store.DB
	dir *directory.Directory
}

var _ RBACDirectory = tenantCopy{}

func (t tenantCopy) KeyHoldings(ctx context.Context, key string) ([]Holding, error) {
	hs, err := t.dir.AllHolders(ctx, key)
	if err != nil {
		return nil, err
	}
	out := make([]Holding, len(hs))
	for i, h := range hs {
		out[i] = Holding{UserID: h.UserID, Email: h.Email, OrgCode: h.OrgCode, Key: key, Via: vias(h.Via)}
	}
	return out, nil
}

func vias(ps []directory.Path) []Via {
	out := make([]Via, len(ps))
	for i, p := range ps {
		if p.Kind == directory.ViaRole {
			out[i] = Via{RoleID: p.RoleID, RoleKey: p.RoleKey}
		}
	}
	return out
}

func (t tenantCopy) RoleMembers(ctx context.Context, roleID string) ([]Member, error) {
	ms, err := t.db.DirRoleMembers(ctx, roleID)
	if err != nil {
		return nil, err
	}
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = Member{UserID: m.UserID, Email: m.Email, OrgCode: m.OrgCode}
	}
	return out, nil
}

func (t tenantCopy) MemberHoldings(ctx context.Context, userID, orgCode string) ([]Holding, error) {
	gs, err := t.dir.UserGrants(ctx, userID, orgCode)
	if err != nil {
		return nil, err
	}
	email := ""
	if u, err := t.dir.User(ctx, userID); err == nil {
		email = u.Email
	}
	out := make([]Holding, 0, len(gs))
	for _, g := range gs {
		if g.OrgCode != orgCode {
			continue
		}
		out = append(out, Holding{UserID: userID, Email: email, OrgCode: g.OrgCode, Key: g.Key, Via: vias(g.Via)})
	}
	return out, nil
}

func (t tenantCopy) RolePermissionKeys(ctx context.Context, roleID string) ([]string, error) {
	return t.db.DirRolePermissionKeys(ctx, roleID)
}

func (t tenantCopy) RoleHoldings(ctx context.Context, roleID string) ([]Holding, error) {
	rows, err := t.db.DirRoleHolderPaths(ctx, roleID)
	if err != nil {
		return nil, err
	}
	var out []Holding
	for _, r := range rows {
		v := Via{RoleID: r.RoleID, RoleKey: r.RoleKey}
		if n := len(out); n > 0 && out[n-1].UserID == r.UserID && out[n-1].OrgCode == r.OrgCode && out[n-1].Key == r.Key {
			out[n-1].Via = appendVia(out[n-1].Via, v)
			continue
		}
		out = append(out, Holding{UserID: r.UserID, Email: r.Email, OrgCode: r.OrgCode, Key: r.Key, Via: []Via{v}})
	}
	return out, nil
}

func (t tenantCopy) RoleByID(ctx context.Context, id string) (*RoleRef, error) {
	r, err := t.db.DirRoleByID(ctx, id)
	return roleRef(r, err)
}

func (t tenantCopy) RoleByKey(ctx context.Context, key string) (*RoleRef, error) {
	r, err := t.db.DirRoleByKey(ctx, key)
	return roleRef(r, err)
}

func roleRef(r *store.DirRole, err error) (*RoleRef, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &RoleRef{ID: r.ID, Key: r.Key, Name: r.Name}, nil
}

func (t tenantCopy) PermissionByID(ctx context.Context, id string) (*PermissionRef, error) {
	p, err := t.db.DirPermissionByID(ctx, id)
	return permissionRef(p, err)
}

func (t tenantCopy) PermissionByKey(ctx context.Context, key string) (*PermissionRef, error) {
	p, err := t.db.DirPermissionByKey(ctx, key)
	return permissionRef(p, err)
}

func permissionRef(p *store.DirPermission, err error) (*PermissionRef, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &PermissionRef{ID: p.ID, Key: p.Key, Name: p.Name}, nil
}

func (t tenantCopy) Member(ctx context.Context, userID, orgCode string) (*MemberInfo, error) {
	u, err := t.dir.User(ctx, userID)
	if errors.Is(err, directory.ErrUnknown) || errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	is, roles, direct, err := t.db.DirMemberOf(ctx, u.ID, orgCode)
	if err != nil {
		return nil, err
	}
	return &MemberInfo{UserID: u.ID, Email: u.Email, IsMember: is, RoleIDs: roles, DirectKeys: direct}, nil
}

func (t tenantCopy) MemberOrgs(ctx context.Context, userID string) ([]string, error) {
	return t.db.DirUserOrgs(ctx, userID)
}

func (t tenantCopy) Roles(ctx context.Context) ([]RoleRef, error) {
	rs, err := t.db.DirRoles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RoleRef, len(rs))
	for i, r := range rs {
		out[i] = RoleRef{ID: r.ID, Key: r.Key, Name: r.Name}
	}
	return out, nil
}

func (t tenantCopy) Permissions(ctx context.Context) ([]PermissionRef, error) {
	ps, err := t.db.DirPermissions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PermissionRef, len(ps))
	for i, p := range ps {
		out[i] = PermissionRef{ID: p.ID, Key: p.Key, Name: p.Name}
	}
	return out, nil
}
