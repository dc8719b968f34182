package handlers

import (
	"context"
	"net/url"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// roleService is what the roles page needs.
type roleService interface {
	Roles(ctx context.Context, a admin.Actor) ([]admin.RoleSummary, error)
}

// AdminRoles serves GET /admin/roles.
type AdminRoles struct {
	adminBase
	svc roleService
}

// List is GET /admin/roles: every role with its permissions and holders.
func (h *AdminRoles) List(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	roles, err := h.svc.Roles(c.Request().Context(), a)
	if err != nil {
		return h.failPage(c, layouts.AdminRoles, "Roles", err)
	}
	p := pages.AdminRolesProps{Roles: make([]pages.AdminRole, len(roles))}
	for i, r := range roles {
		vr := pages.AdminRole{ID: r.ID, Key: r.Key, Name: r.Name, Description: r.Description, IsDefault: r.IsDefault,
			Holders: r.Holders, UsersHref: "/admin/users?q=" + url.QueryEscape(r.Key)}
		for _, perm := range r.Permissions {
			vr.Permissions = append(vr.Permissions, pages.AdminRef{ID: perm.ID, Key: perm.Key, Name: perm.Name,
				Href: permissionHref(perm.ID)})
		}
		p.Roles[i] = vr
	}
	return h.page(c, pages.AdminRoles(p))
}
