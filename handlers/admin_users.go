package handlers

import (
	"context"
	"fmt"
	"strconv"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/apperr"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// userService is what the user pages and actions need.
type userService interface {
	UsersPage(ctx context.Context, a admin.Actor, q admin.UserQuery) (*admin.UserList, error)
	UserDetail(ctx context.Context, a admin.Actor, userID string) (*admin.UserDetail, error)
	RefreshUserClaims(ctx context.Context, a admin.Actor, userID string) (*admin.FanoutStarted, error)
	RevokeUserSessions(ctx context.Context, a admin.Actor, userID string) (*admin.RevokeResult, error)
}

// AdminUsers serves the users list, a user's page, and the per-user
// "Refresh claims" and "Revoke sessions" actions.
type AdminUsers struct {
	adminBase
	svc userService
}

// List is GET /admin/users?q=.
func (h *AdminUsers) List(c echo.Context) error {
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	list, err := asActor(c, h.svc.UsersPage, admin.UserQuery{Search: c.QueryParam("q"), Offset: max(offset, 0)})
	if err != nil {
		return h.failPage(c, layouts.AdminUsers, "Users", err)
	}
	p := pages.AdminUsersProps{Flashes: h.takeFlashes(c), Query: list.Query, Total: list.Total, AsOf: list.AsOf,
		Matched: list.Matched, First: list.Offset + 1}
	p.PrevHref, p.NextHref = pageHrefs("/admin/users", list.Query, list.Offset, list.Limit, list.Matched)
	for _, u := range list.Users {
		p.Users = append(p.Users, viewUser(u))
	}
	return h.page(c, pages.AdminUsers(p))
}

// Show is GET /admin/users/{id}: grants with reasons and live sessions.
func (h *AdminUsers) Show(c echo.Context) error {
	d, err := asActor(c, h.svc.UserDetail, c.Param("id"))
	if err != nil {
		return h.failPage(c, layouts.AdminUsers, "User", err)
	}
	p := pages.AdminUserProps{Flashes: h.takeFlashes(c), User: viewUser(d.UserSummary)}
	for _, g := range d.Grants {
		p.Grants = append(p.Grants, pages.AdminGrant{Key: g.Key, Name: g.Name, OrgCode: g.OrgCode,
			Reasons: viewReasons(g.Reasons), Tombstoned: g.Tombstoned})
	}
	for _, s := range d.Sessions {
		p.Sessions = append(p.Sessions, pages.AdminSession{OrgCode: s.OrgCode, CreatedAt: s.CreatedAt,
			LastSeenAt: s.LastSeenAt, RefreshedAt: s.RefreshedAt, AccessExpiresAt: s.AccessExpiresAt,
			ClaimsEpoch: s.ClaimsEpoch, Stale: s.Stale, Permissions: s.Permissions, UserAgent: s.UserAgent})
	}
	return h.page(c, pages.AdminUserPage(p))
}

// ConfirmRevoke is GET /admin/users/{id}/sessions/revoke: the page that
// asks before revoking, which the Revoke sessions button opens when the
// browser runs no JavaScript (with it, htmx asks in a dialog).
func (h *AdminUsers) ConfirmRevoke(c echo.Context) error {
	d, err := asActor(c, h.svc.UserDetail, c.Param("id"))
	if err != nil {
		return h.failPage(c, layouts.AdminUsers, "Revoke sessions", err)
	}
	u := viewUser(d.UserSummary)
	return h.page(c, pages.AdminRevokeConfirm(pages.AdminRevokeProps{User: u, ReturnTo: adminReturnTo(c, u.Href)}))
}

// RefreshClaims is POST /admin/users/{id}/refresh-claims: a one-user
// fan-out (refresh_claims at Kinde, then the epoch bump that refreshes the
// user's sessions). It redirects to the fan-out's page.
func (h *AdminUsers) RefreshClaims(c echo.Context) error {
	res, err := asActor(c, h.svc.RefreshUserClaims, c.Param("id"))
	if err != nil {
		return err
	}
	h.flash(c, "success", "Claims refresh queued. The user's sessions pick up their current permissions on their next request.")
	return redirect(c, fanoutHref(res.FanoutID))
}

// RevokeSessions is POST /admin/users/{id}/sessions/revoke: it ends the
// user's permsync sessions and their Kinde sessions, then returns to the
// page the form named (the users list by default). When only the local
// sessions could be ended, the page says so.
func (h *AdminUsers) RevokeSessions(c echo.Context) error {
	res, err := asActor(c, h.svc.RevokeUserSessions, c.Param("id"))
	switch {
	case err != nil && res == nil:
		return err
	case err != nil:
		h.flash(c, "warning", apperr.MessageOf(err))
	default:
		h.flash(c, "success", fmt.Sprintf("Signed out everywhere: %s ended here, and the user's Kinde sessions too.",
			plural(res.LocalSessions, "permsync session", "permsync sessions")))
	}
	return redirect(c, adminReturnTo(c, "/admin/users"))
}
