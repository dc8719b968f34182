package kinde

import (
	"context"
	"fmt"
	"iter"
)

// Role is a Kinde role.
type Role struct {
	ID            string `json:"id"`
	Key           string `json:"key"`
	Name          string `json:"name"`
	Description   string `json:"description"`
	IsDefaultRole bool   `json:"is_default_role"`
}

// RoleUser is a holder of a role, with the organizations it holds it in.
type RoleUser struct {
	ID       string   `json:"id"` // normalised with NormalizeUserID
	OrgCodes []string `json:"org_codes"`
}

// Roles iterates over every role (GET /roles).
func (c *Client) Roles(ctx context.Context) iter.Seq2[Role, error] {
	return paginate[Role](ctx, c, "/roles", nil, "roles", nil)
}

// AllRoles returns every role.
func (c *Client) AllRoles(ctx context.Context) ([]Role, error) {
	return Collect(c.Roles(ctx))
}

// Role returns one role (GET /roles/{id}).
func (c *Client) Role(ctx context.Context, id string) (*Role, error) {
	var resp struct {
		Role *Role `json:"role"`
	}
	if err := c.do(ctx, get("/roles/"+seg(id), nil), &resp); err != nil {
		return nil, err
	}
	if resp.Role == nil {
		return nil, fmt.Errorf("kinde: GET %s/roles/%s: response has no role", apiPrefix, id)
	}
	return resp.Role, nil
}

// RolePermissions iterates over the permissions of a role
// (GET /roles/{id}/permissions).
func (c *Client) RolePermissions(ctx context.Context, roleID string) iter.Seq2[Permission, error] {
	return paginate[Permission](ctx, c, "/roles/"+seg(roleID)+"/permissions", nil, "permissions", nil)
}

// AllRolePermissions returns every permission of a role.
func (c *Client) AllRolePermissions(ctx context.Context, roleID string) ([]Permission, error) {
	return Collect(c.RolePermissions(ctx, roleID))
}

// RoleUsers iterates over the users holding a role in any organization
// (GET /roles/{id}/users).
func (c *Client) RoleUsers(ctx context.Context, roleID string) iter.Seq2[RoleUser, error] {
	return paginate(ctx, c, "/roles/"+seg(roleID)+"/users", nil, "users", func(u *RoleUser) {
		u.ID = NormalizeUserID(u.ID)
	})
}

// AllRoleUsers returns every holder of a role.
func (c *Client) AllRoleUsers(ctx context.Context, roleID string) ([]RoleUser, error) {
	return Collect(c.RoleUsers(ctx, roleID))
}
