package admin

import (
	"context"
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

// Roles lists the directory's roles with their permissions and holder
// counts.
func (s *Service) Roles(ctx context.Context, a Actor) ([]RoleSummary, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	rows, err := s.dir.Roles(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	out := make([]RoleSummary, 0, len(rows))
	for _, r := range rows {
		rs := RoleSummary{ID: r.ID, Key: r.Key, Name: r.Name, Description: r.Description, IsDefault: r.IsDefault,
			Holders: r.Holders}
		for _, p := range r.Permissions {
			rs.Permissions = append(rs.Permissions, PermissionRef{ID: p.ID, Key: p.Key, Name: p.Name})
		}
		out = append(out, rs)
	}
	return out, nil
}
