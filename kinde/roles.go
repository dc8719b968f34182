package kinde

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"
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

// RoleInput is the body of a role create or update. Kinde requires Key and
// Name on an update, so UpdateRole refuses an input without them; an empty
// Description is left out.
type RoleInput struct {
	Key           string `json:"key"`
	Name          string `json:"name"`
	Description   string `json:"description,omitempty"`
	IsDefaultRole *bool  `json:"is_default_role,omitempty"`
}

// ErrRoleInput is returned, before any request, for a role input without
// its key or name.
var ErrRoleInput = errors.New("kinde: a role needs a key and a name")

func (in RoleInput) check() error {
	if strings.TrimSpace(in.Key) == "" || strings.TrimSpace(in.Name) == "" {
		return ErrRoleInput
	}
	return nil
}

// CreateRole creates a role (POST /roles) and returns its id. Like
// CreatePermission it is not retried after a 5xx or a network error, which
// might have created the role already; it is retried after a 429.
func (c *Client) CreateRole(ctx context.Context, in RoleInput) (string, error) {
	if err := in.check(); err != nil {
		return "", err
	}
	var resp struct {
		Role struct {
			ID string `json:"id"`
		} `json:"role"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: "/roles", body: in}, &resp); err != nil {
		return "", err
	}
	if resp.Role.ID == "" {
		return "", fmt.Errorf("kinde: POST %s/roles: response has no role id", apiPrefix)
	}
	return resp.Role.ID, nil
}

// UpdateRole renames or re-describes a role (PATCH /roles/{id}). The request
// sets fixed values, so it is retried like an idempotent one.
func (c *Client) UpdateRole(ctx context.Context, id string, in RoleInput) error {
	if err := in.check(); err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodPatch, path: "/roles/" + seg(id), body: in, idempotent: true}, nil)
}

// DeleteRole deletes a role (DELETE /roles/{id}); Kinde takes it from every
// member. Like a permission deletion it does not refresh their claims.
func (c *Client) DeleteRole(ctx context.Context, id string) error {
	return c.do(ctx, del("/roles/"+seg(id)), nil)
}

// RolePermissionsChange is Kinde's answer to a bulk role-permission edit:
// the permission ids it really added and removed (an id already in the state
// asked for is in neither).
type RolePermissionsChange struct {
	Added   []string `json:"permissions_added"`
	Removed []string `json:"permissions_removed"`
}

// maxRolePermissionEdits is how many permissions one bulk edit carries.
const maxRolePermissionEdits = 100

// UpdateRolePermissions adds and removes permissions of a role by id
// (PATCH /roles/{id}/permissions), in batches of 100. The edit states the
// permissions the role should end up with or without, so it is retried like
// an idempotent request. Kinde does not refresh the members' claims.
func (c *Client) UpdateRolePermissions(ctx context.Context, roleID string, add, remove []string) (RolePermissionsChange, error) {
	type item struct {
		ID        string `json:"id"`
		Operation string `json:"operation,omitempty"`
	}
	items := make([]item, 0, len(add)+len(remove))
	for _, id := range add {
		items = append(items, item{ID: id})
	}
	for _, id := range remove {
		items = append(items, item{ID: id, Operation: "delete"})
	}
	out := RolePermissionsChange{Added: []string{}, Removed: []string{}}
	for start := 0; start < len(items); start += maxRolePermissionEdits {
		batch := items[start:min(start+maxRolePermissionEdits, len(items))]
		var resp RolePermissionsChange
		r := request{method: http.MethodPatch, path: "/roles/" + seg(roleID) + "/permissions",
			body: map[string]any{"permissions": batch}, idempotent: true}
		if err := c.do(ctx, r, &resp); err != nil {
			return out, err
		}
		out.Added = append(out.Added, resp.Added...)
		out.Removed = append(out.Removed, resp.Removed...)
	}
	return out, nil
}

// AddRolePermission adds one permission to a role (a one-item
// UpdateRolePermissions; Kinde has no single-add route).
func (c *Client) AddRolePermission(ctx context.Context, roleID, permissionID string) error {
	_, err := c.UpdateRolePermissions(ctx, roleID, []string{permissionID}, nil)
	return err
}

// RemoveRolePermission takes one permission off a role
// (DELETE /roles/{id}/permissions/{permission_id}). A permission the role
// does not have is ErrNotAssigned.
func (c *Client) RemoveRolePermission(ctx context.Context, roleID, permissionID string) error {
	return c.do(ctx, del("/roles/"+seg(roleID)+"/permissions/"+seg(permissionID)), nil)
}
