package admin

import (
	"context"
	"slices"
	"strings"
)

// RoleSummary is one row of the roles page.
type RoleSummary struct {
	ID          string
	Key         string
	Name        string
	Description string
	IsDefault   bool
	Permissions []PermissionRef // by key
	Holders     int             // organization members holding the role
}

// Roles lists Kinde's roles with their permissions and holder counts.
func (s *Service) Roles(ctx context.Context, a Actor) ([]RoleSummary, error) {
	d, err := s.authorizedDirectory(ctx, a)
	if err != nil {
		return nil, err
	}
	out := make([]RoleSummary, 0, len(d.roles))
	for _, r := range d.roles {
		rs := RoleSummary{ID: r.ID, Key: r.Key, Name: r.Name, Description: r.Description, IsDefault: r.IsDefaultRole}
		for _, p := range r.perms {
			rs.Permissions = append(rs.Permissions, PermissionRef{ID: p.ID, Key: p.Key, Name: p.Name})
		}
		slices.SortFunc(rs.Permissions, func(a, b PermissionRef) int { return strings.Compare(a.Key, b.Key) })
		for _, u := range d.users {
			if slices.Contains(u.roles, r.Key) {
				rs.Holders++
			}
		}
		out = append(out, rs)
	}
	return out, nil
}
