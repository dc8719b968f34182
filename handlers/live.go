package handlers

import (
	"net/http"
	"slices"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"permsync/auth"
	"permsync/views/components"
)

// isLiveUpdate reports an htmx request for a fragment (not a boosted page
// load): the dashboard answers it with its session panel alone.
func isLiveUpdate(c echo.Context) bool {
	return isHTMX(c) && c.Request().Header.Get("HX-Boosted") == ""
}

// livePanel answers the dashboard's live update (GET /dashboard from htmx,
// triggered by a claims-changed event): the session panel as the request's
// session now stands (the guard refreshed it first if its epoch was behind),
// plus a toast naming what changed since the keys the page showed.
func (h *Dashboard) livePanel(c echo.Context, s *auth.Session) error {
	diff := permissionDiff(strings.Fields(c.QueryParam("shown")), s.Effective())
	parts := []templ.Component{components.SessionPanelView(h.panel(s, nil))}
	if !diff.Empty() {
		parts = append(parts, components.ToastOOB("info", "Your permissions changed: "+diff.Summary()))
	}
	return h.rd.render(c, http.StatusOK, templ.Join(parts...))
}

// permissionDiff compares the keys a page showed with the effective keys now.
func permissionDiff(shown, now []string) components.PermissionDiff {
	var d components.PermissionDiff
	for _, k := range shown {
		if !slices.Contains(now, k) {
			d.Removed = append(d.Removed, k)
		}
	}
	for _, k := range now {
		if !slices.Contains(shown, k) {
			d.Added = append(d.Added, k)
		}
	}
	slices.Sort(d.Removed)
	slices.Sort(d.Added)
	return d
}
