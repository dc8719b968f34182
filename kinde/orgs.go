package kinde

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// Organization is a Kinde organization.
type Organization struct {
	Code       string `json:"code"`
	Name       string `json:"name"`
	Handle     string `json:"handle"`
	ExternalID string `json:"external_id"`
	IsDefault  bool   `json:"is_default"`
}

// OrganizationUser is a member of an organization.
type OrganizationUser struct {
	ID             string   `json:"id"` // normalised with NormalizeUserID
	Email          string   `json:"email"`
	FullName       string   `json:"full_name"`
	FirstName      string   `json:"first_name"`
	LastName       string   `json:"last_name"`
	Picture        string   `json:"picture"`
	JoinedOn       string   `json:"joined_on"`
	LastAccessedOn string   `json:"last_accessed_on"`
	IsSuspended    bool     `json:"is_suspended"`
	Roles          []string `json:"roles"` // role keys
}

// OrgUserFilter narrows an organization users listing. Kinde matches users
// that have all of the given keys; lists are sent comma-separated.
type OrgUserFilter struct {
	Permissions []string // permission keys
	Roles       []string // role keys
}

// RoleRef identifies a role.
type RoleRef struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// OrganizationUserRole is a role a user holds in an organization.
type OrganizationUserRole struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
}

// OrganizationUserPermission is a permission a user holds in an organization,
// with the roles it comes through (empty for a direct grant).
type OrganizationUserPermission struct {
	ID          string    `json:"id"`
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Roles       []RoleRef `json:"roles"`
}

// orgUserPath is the Management API path of one member of an organization.
func orgUserPath(orgCode, userID string) string {
	return "/organizations/" + seg(orgCode) + "/users/" + seg(NormalizeUserID(userID))
}

// Organizations iterates over every organization (GET /organizations).
func (c *Client) Organizations(ctx context.Context) iter.Seq2[Organization, error] {
	return paginate[Organization](ctx, c, "/organizations", nil, "organizations", nil)
}

// AllOrganizations returns every organization.
func (c *Client) AllOrganizations(ctx context.Context) ([]Organization, error) {
	return Collect(c.Organizations(ctx))
}

// OrganizationUsers iterates over the members of an organization matching f
// (GET /organizations/{code}/users).
func (c *Client) OrganizationUsers(ctx context.Context, orgCode string, f OrgUserFilter) iter.Seq2[OrganizationUser, error] {
	q := url.Values{}
	if len(f.Permissions) > 0 {
		q.Set("permissions", strings.Join(f.Permissions, ","))
	}
	if len(f.Roles) > 0 {
		q.Set("roles", strings.Join(f.Roles, ","))
	}
	return paginate(ctx, c, "/organizations/"+seg(orgCode)+"/users", q, "organization_users", func(u *OrganizationUser) {
		u.ID = NormalizeUserID(u.ID)
	})
}

// AllOrganizationUsers returns every member of an organization matching f.
func (c *Client) AllOrganizationUsers(ctx context.Context, orgCode string, f OrgUserFilter) ([]OrganizationUser, error) {
	return Collect(c.OrganizationUsers(ctx, orgCode, f))
}

// OrganizationUserRoles returns the roles a user holds in an organization
// (GET /organizations/{code}/users/{id}/roles), following pagination.
func (c *Client) OrganizationUserRoles(ctx context.Context, orgCode, userID string) ([]OrganizationUserRole, error) {
	path := orgUserPath(orgCode, userID) + "/roles"
	return Collect(paginate[OrganizationUserRole](ctx, c, path, nil, "roles", nil))
}

// OrganizationUserPermissions returns the permissions a user holds in an
// organization, direct and through roles, with the roles each comes through
// (GET /organizations/{code}/users/{id}/permissions?expand=roles).
func (c *Client) OrganizationUserPermissions(ctx context.Context, orgCode, userID string) ([]OrganizationUserPermission, error) {
	path := orgUserPath(orgCode, userID) + "/permissions"
	return Collect(paginate[OrganizationUserPermission](ctx, c, path, url.Values{"expand": {"roles"}}, "permissions", nil))
}

// addTo builds a POST that adds to a set (a role or a direct permission of a
// member). Repeating it changes nothing, so it is retried like an idempotent
// request; a retry that finds the earlier attempt's work done may be refused
// with ErrExists, which callers take as done.
func addTo(path string, body any) request {
	return request{method: http.MethodPost, path: path, body: body, idempotent: true}
}

// AddOrganizationUserRole gives a member a role in an organization
// (POST /organizations/{code}/users/{id}/roles). Kinde clears the user's
// claim cache. Giving a role the member holds changes nothing, so the call
// is retried like an idempotent one.
func (c *Client) AddOrganizationUserRole(ctx context.Context, orgCode, userID, roleID string) error {
	return c.do(ctx, addTo(orgUserPath(orgCode, userID)+"/roles", map[string]string{"role_id": roleID}), nil)
}

// RemoveOrganizationUserRole takes a role from a member in an organization
// (DELETE /organizations/{code}/users/{id}/roles/{role_id}). A role the
// member does not hold there is ErrNotAssigned.
func (c *Client) RemoveOrganizationUserRole(ctx context.Context, orgCode, userID, roleID string) error {
	return c.do(ctx, del(orgUserPath(orgCode, userID)+"/roles/"+seg(roleID)), nil)
}

// AddOrganizationUserPermission grants a member a permission directly in an
// organization (POST /organizations/{code}/users/{id}/permissions; the body
// names the permission by id). Retried like an idempotent call.
func (c *Client) AddOrganizationUserPermission(ctx context.Context, orgCode, userID, permissionID string) error {
	return c.do(ctx, addTo(orgUserPath(orgCode, userID)+"/permissions", map[string]string{"permission_id": permissionID}), nil)
}

// RemoveOrganizationUserPermission removes a member's direct grant of a
// permission in an organization
// (DELETE /organizations/{code}/users/{id}/permissions/{permission_id}).
// Only direct grants can be removed this way; a permission the member holds
// only through a role is ErrNotAssigned.
func (c *Client) RemoveOrganizationUserPermission(ctx context.Context, orgCode, userID, permissionID string) error {
	return c.do(ctx, del(orgUserPath(orgCode, userID)+"/permissions/"+seg(permissionID)), nil)
}

// RemoveOrganizationUser removes a member from an organization, with the
// roles and permissions they held there
// (DELETE /organizations/{code}/users/{id}). A user who is not a member is
// ErrNotAssigned.
func (c *Client) RemoveOrganizationUser(ctx context.Context, orgCode, userID string) error {
	return c.do(ctx, del(orgUserPath(orgCode, userID)), nil)
}
