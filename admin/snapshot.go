package admin

import (
	"context"

	"permsync/kinde"
)

// KindeDirectory is the service's view of Kinde's directory for Kinde sync
// (kindesync.Directory): the last snapshot the listing pages built, the
// permission id → key map, and holder resolution at Kinde.
type KindeDirectory struct{ s *Service }

// Directory returns the service's KindeDirectory.
func (s *Service) Directory() KindeDirectory { return KindeDirectory{s: s} }

// RememberPermissions records permission ids and keys.
func (d KindeDirectory) RememberPermissions(ctx context.Context, perms []kinde.Permission) {
	d.s.rememberPermissions(ctx, perms)
}

// Invalidate drops the snapshot: the next listing asks Kinde again.
func (d KindeDirectory) Invalidate() { d.s.invalidateDirectory() }

// PermissionHolders asks Kinde who holds p, in the configured organizations
// (none if Kinde cannot list them).
func (d KindeDirectory) PermissionHolders(ctx context.Context, p kinde.Permission) ([]AffectedUser, error) {
	orgs, err := d.s.organizations(ctx)
	if err != nil {
		orgs = nil
	}
	return d.s.resolveAffected(ctx, p, orgs)
}

// cached is the last directory snapshot, however old, or nil. It never
// calls Kinde.
func (d KindeDirectory) cached() *directory {
	d.s.dirMu.Lock()
	defer d.s.dirMu.Unlock()
	return d.s.dir
}

// Permission finds a permission in the last snapshot.
func (d KindeDirectory) Permission(id string) (kinde.Permission, bool) {
	if dir := d.cached(); dir != nil {
		return dir.permission(id)
	}
	return kinde.Permission{}, false
}

// Holders returns the members the last snapshot showed holding key.
func (d KindeDirectory) Holders(key string) []AffectedUser {
	dir := d.cached()
	if dir == nil {
		return nil
	}
	var out []AffectedUser
	for _, u := range dir.users {
		if rs, ok := u.perms[key]; ok {
			out = append(out, AffectedUser{UserID: u.id, Email: u.email, Name: u.name, Reasons: rs})
		}
	}
	return out
}

// RoleKey finds a role's key in the last snapshot, or "".
func (d KindeDirectory) RoleKey(id string) string {
	if dir := d.cached(); dir != nil {
		for _, r := range dir.roles {
			if r.ID == id {
				return r.Key
			}
		}
	}
	return ""
}

// RoleHolders returns the ids of the members the last snapshot showed
// holding the role key.
func (d KindeDirectory) RoleHolders(key string) []string {
	dir := d.cached()
	if dir == nil || key == "" {
		return nil
	}
	var out []string
	for _, u := range dir.users {
		for _, r := range u.roles {
			if r == key {
				out = append(out, u.id)
				break
			}
		}
	}
	return out
}
