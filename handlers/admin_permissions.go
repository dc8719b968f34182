package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/apperr"
	"permsync/views/components"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// permissionService is what the permission pages need.
type permissionService interface {
	Permissions(ctx context.Context, a admin.Actor, query string) (*admin.PermissionList, error)
	PermissionPage(ctx context.Context, a admin.Actor, q admin.PermissionQuery) (*admin.PermissionDetail, error)
	DeletePermission(ctx context.Context, a admin.Actor, id, confirmKey string) (*admin.DeleteResult, error)
}

// AdminPermissions serves the permission list, the permission page with its
// affected-user preview, and the delete that starts a fan-out.
type AdminPermissions struct {
	adminBase
	svc permissionService
}

// List is GET /admin/permissions?q=. The search box asks for the results
// alone (an htmx fragment) as the admin types.
func (h *AdminPermissions) List(c echo.Context) error {
	list, err := asActor(c, h.svc.Permissions, c.QueryParam("q"))
	if err != nil {
		return h.failPage(c, layouts.AdminPermissions, "Permissions", err)
	}
	dead := tombstoneKeys(list.Tombstones)
	p := pages.AdminPermissionsProps{Query: list.Query, Total: list.Total, AsOf: list.AsOf,
		Tombstones: viewTombstones(list.Tombstones)}
	for _, perm := range list.Permissions {
		p.Permissions = append(p.Permissions, viewPermission(perm, dead))
	}
	if isFragment(c) {
		return h.page(c, pages.AdminPermissionResults(p))
	}
	return h.page(c, pages.AdminPermissions(p))
}

// Show is GET /admin/permissions/{id}?q=&offset=: the permission and a page
// of who deleting it would affect (role holders, direct holders, live
// sessions), from the directory, with counts over all of them.
func (h *AdminPermissions) Show(c echo.Context) error {
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	d, err := asActor(c, h.svc.PermissionPage, admin.PermissionQuery{ID: c.Param("id"), Search: c.QueryParam("q"),
		Offset: max(offset, 0)})
	if err != nil {
		return h.failPage(c, layouts.AdminPermissions, "Permission", err)
	}
	p := h.detailProps(d)
	for _, a := range h.takeFlashes(c) {
		if a.Kind == flashConfirmError {
			p.ConfirmError = a.Message
			continue
		}
		p.Flashes = append(p.Flashes, a)
	}
	return h.page(c, pages.AdminPermissionPage(p))
}

// flashConfirmError is the kind of flash that carries a wrong delete
// confirmation back to the permission page, where the form shows it.
const flashConfirmError = "confirm-error"

// Delete is POST /admin/permissions/{id}/delete with the typed key in
// "confirm". On success it redirects to the fan-out page. A wrong key
// changes nothing and goes back to the permission page (303), whose delete
// form shows the error, so the address stays one that can be reopened.
func (h *AdminPermissions) Delete(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	res, err := h.svc.DeletePermission(ctx, a, id, c.FormValue("confirm"))
	if err != nil {
		if apperr.CodeOf(err) == apperr.Invalid && !isHTMX(c) {
			h.flash(c, flashConfirmError, apperr.MessageOf(err))
			return c.Redirect(http.StatusSeeOther, permissionHref(id))
		}
		return err
	}
	if time.Until(res.KindeDueAt) > 0 {
		h.flash(c, "success", fmt.Sprintf(
			"%s is refused to every session now. Kinde deletes it when the undo window ends; then %s get their claims refreshed. Undo until then.",
			res.PermissionKey, plural(res.Affected, "user", "users")))
	} else {
		h.flash(c, "success", fmt.Sprintf(
			"%s is refused to every session now and is being deleted at Kinde; then %s get their claims refreshed.",
			res.PermissionKey, plural(res.Affected, "user", "users")))
	}
	return redirect(c, fanoutHref(res.FanoutID))
}

func (h *AdminPermissions) detailProps(d *admin.PermissionDetail) pages.AdminPermissionProps {
	p := pages.AdminPermissionProps{
		Permission: viewPermission(d.Permission, nil), RoleHolders: d.RoleHolders, DirectHolders: d.DirectHolders,
		SessionHolders: d.SessionHolders, CanDelete: d.CanDelete, DeleteBlocked: d.DeleteBlocked,
		DeleteURL:     permissionHref(d.Permission.ID) + "/delete",
		AffectedTotal: d.AffectedTotal, Matched: d.Matched, Query: d.Query,
	}
	if len(d.Affected) > 0 {
		p.First, p.Last = d.Offset+1, d.Offset+len(d.Affected)
	}
	p.PrevHref, p.NextHref = pageHrefs(permissionHref(d.Permission.ID), d.Query, d.Offset, d.Limit, d.Matched)
	for _, u := range d.Affected {
		p.Affected = append(p.Affected, pages.AdminAffectedUser{UserID: u.UserID, Email: u.Email, Name: u.Name,
			Href: userHref(u.UserID), Reasons: viewReasons(u.Reasons)})
	}
	return p
}

// pageHrefs returns the addresses of the previous and next pages of a
// listing at base filtered by q ("" where there is none).
func pageHrefs(base, q string, offset, limit, total int) (prev, next string) {
	at := func(o int) string {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if o > 0 {
			v.Set("offset", strconv.Itoa(o))
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	if offset > 0 {
		prev = at(max(offset-limit, 0))
	}
	if offset+limit < total {
		next = at(offset + limit)
	}
	return prev, next
}

// plural reads like "1 user" or "3 users".
func plural(n int, one, many string) string { return components.Plural(n, one, many) }
