package kinde

import (
	"context"
	"iter"
	"net/http"
)

// Permission is a Kinde permission. Permissions are business-wide.
type Permission struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// PermissionInput is the body of a permission create or update. Empty fields
// are left out, so an update changes only the fields that are set.
type PermissionInput struct {
	Key         string `json:"key,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// Permissions iterates over every permission (GET /permissions).
func (c *Client) Permissions(ctx context.Context) iter.Seq2[Permission, error] {
	return paginate[Permission](ctx, c, "/permissions", nil, "permissions", nil)
}

// AllPermissions returns every permission.
func (c *Client) AllPermissions(ctx context.Context) ([]Permission, error) {
	return Collect(c.Permissions(ctx))
}

// CreatePermission creates a permission (POST /permissions) and returns its id
// when the server includes one. Kinde's documented response does not, so the
// id may be "": list the permissions to find it by key.
//
// The request is not retried after a 5xx or a network error, since it might
// have created the permission already; it is retried after a 429.
func (c *Client) CreatePermission(ctx context.Context, in PermissionInput) (string, error) {
	var resp struct {
		ID         string `json:"id"`
		Permission struct {
			ID string `json:"id"`
		} `json:"permission"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/permissions", body: in}, &resp)
	if err != nil {
		return "", err
	}
	if resp.Permission.ID != "" {
		return resp.Permission.ID, nil
	}
	return resp.ID, nil
}

// UpdatePermission changes a permission (PATCH /permissions/{id}). The
// request sets fixed values, so it is retried like an idempotent one.
func (c *Client) UpdatePermission(ctx context.Context, id string, in PermissionInput) error {
	return c.do(ctx, request{method: http.MethodPatch, path: "/permissions/" + seg(id), body: in, idempotent: true}, nil)
}

// DeletePermission deletes a permission (DELETE /permissions/{id}). Kinde
// removes it from every user and role; it does not refresh their claims.
//
// When the outcome is unclear (a timeout or 5xx after the request may have
// reached Kinde, then a failure), it lists the permissions: if the id is not
// there, the delete took effect and nil is returned.
func (c *Client) DeletePermission(ctx context.Context, id string) error {
	r := del("/permissions/" + seg(id))
	r.gone = func(ctx context.Context) (bool, error) {
		for p, err := range c.Permissions(ctx) {
			if err != nil {
				return false, err
			}
			if p.ID == id {
				return false, nil
			}
		}
		return true, nil
	}
	return c.do(ctx, r, nil)
}
