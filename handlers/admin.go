package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/apperr"
	"permsync/auth"
	"permsync/htmx"
	"permsync/views/components"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// The admin panel: /admin and below, gated in routes.go by the
// permission PERMSYNC_ADMIN_PERMISSION names, and checked again by every
// admin.Service method. The service returns *apperr.Error values, which the
// central error handler maps to a status (forbidden 403, not found 404,
// invalid 400, conflict 409, unavailable 503, anything else 500) and shows
// by their user-safe message. One feature struct per area (admin_overview.go,
// admin_permissions.go, admin_roles.go, admin_users.go, admin_fanouts.go),
// each declaring the narrow slice of the service it uses; this file holds
// what they share.

// adminService is everything the admin pages use; *admin.Service
// satisfies it.
type adminService interface {
	overviewService
	permissionService
	roleService
	userService
	fanoutService
	rbacService
	authorizer
	// Freshness says how fresh the directory the pages read is.
	Freshness(ctx context.Context) string
}

// adminFreshness puts the directory's freshness ("synced 14 s ago", or the
// sync's progress) where the admin layout shows it, on every admin page.
func adminFreshness(svc interface{ Freshness(context.Context) string }) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			c.SetRequest(r.WithContext(layouts.WithFreshness(r.Context(), svc.Freshness(r.Context()))))
			return next(c)
		}
	}
}

// adminBase is what every admin feature struct shares: rendering, flashes
// and logging.
type adminBase struct {
	rd      *renderer
	flashes flasher
	log     *slog.Logger
}

// actor is the signed-in admin as admin.Service sees them: their effective
// permissions (token permissions minus live tombstones).
func actor(c echo.Context) (admin.Actor, error) {
	s := auth.SessionFrom(c.Request().Context())
	if s == nil {
		return admin.Actor{}, errNoSession
	}
	return admin.Actor{UserID: s.UserID, Email: s.Email, Permissions: s.Effective()}, nil
}

// asActor calls a service method that takes one argument (a search, an id,
// a limit) as the signed-in admin.
func asActor[A, T any](c echo.Context, method func(context.Context, admin.Actor, A) (T, error), arg A) (T, error) {
	a, err := actor(c)
	if err != nil {
		var zero T
		return zero, err
	}
	return method(c.Request().Context(), a, arg)
}

// failPage answers a page whose data could not be loaded. When Kinde is
// unavailable a full-page request gets the admin layout with the message
// (503), so the admin can still move around; everything else goes to the
// central error handler.
func (b *adminBase) failPage(c echo.Context, section, title string, err error) error {
	if apperr.CodeOf(err) != apperr.Unavailable || isFragment(c) {
		return err
	}
	b.log.WarnContext(c.Request().Context(), "admin page without Kinde", "path", c.Request().URL.Path, "error", err)
	return b.rd.render(c, http.StatusServiceUnavailable, pages.AdminProblem(pages.AdminProblemProps{
		Section: section, Title: title, Status: http.StatusServiceUnavailable,
		Message: apperr.MessageOf(err), Retry: c.Request().URL.RequestURI(),
	}))
}

// page renders a full admin page.
func (b *adminBase) page(c echo.Context, comp templ.Component) error {
	return b.rd.render(c, http.StatusOK, comp)
}

// takeFlashes returns the queued one-shot messages and the guard's notice
// for this request, as alerts.
func (b *adminBase) takeFlashes(c echo.Context) []components.Alert {
	var out []components.Alert
	if n := auth.NoticeFrom(c.Request().Context()); n != nil {
		out = append(out, components.Alert{Kind: n.Kind, Message: n.Message})
	}
	s := auth.SessionFrom(c.Request().Context())
	if b.flashes == nil || s == nil {
		return out
	}
	for _, f := range b.flashes.TakeFlashes(c.Response(), c.Request(), s) {
		out = append(out, components.Alert{Kind: f.Kind, Message: f.Message})
	}
	return out
}

// flash queues a message for the next page; a failure only loses the
// message, so it is logged, not returned.
func (b *adminBase) flash(c echo.Context, kind, msg string) {
	s := auth.SessionFrom(c.Request().Context())
	if b.flashes == nil || s == nil {
		return
	}
	if err := b.flashes.AddFlash(c.Response(), c.Request(), s, auth.Flash{Kind: kind, Message: msg}); err != nil {
		b.log.WarnContext(c.Request().Context(), "admin: could not queue flash", "error", err)
	}
}

// redirect ends a POST: HX-Redirect for htmx requests, 303 otherwise.
func redirect(c echo.Context, to string) error {
	if isHTMX(c) {
		htmx.Redirect(c.Response().Header(), to)
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// isFragment reports an htmx request that wants a fragment: not a boosted
// navigation and not a history restore (which needs the whole page).
func isFragment(c echo.Context) bool {
	return htmx.IsFragment(c.Request())
}

// adminReturnTo is a posted return_to when it is an admin page, else def.
func adminReturnTo(c echo.Context, def string) string {
	p, ok := auth.SafeReturnTo(c.FormValue("return_to"))
	if !ok || (p != "/admin" && !strings.HasPrefix(p, "/admin/")) {
		return def
	}
	return p
}

// errAdminUnconfigured is what the admin pages answer when the app runs
// without Management API credentials: there is no Kinde to administer.
var errAdminUnconfigured = apperr.E(apperr.Unavailable,
	"The admin panel needs Kinde Management API credentials. Set KINDE_M2M_CLIENT_ID and KINDE_M2M_CLIENT_SECRET and restart permsync.")

// adminUnconfigured is the admin group's last middleware when there is no
// admin service.
func adminUnconfigured(echo.HandlerFunc) echo.HandlerFunc {
	return func(echo.Context) error { return errAdminUnconfigured }
}
