package handlers

import (
	"fmt"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"permsync/auth"
	"permsync/htmx"
	"permsync/views"
)

// renderer renders templ components with the request-wide view values (CSRF
// token, nav user, asset version) in their context.
type renderer struct {
	assetVersion string
	adminPerm    string
}

// render renders comp into a pooled buffer and only then writes it, so a
// failing template becomes a clean 500 instead of half a page.
func (rd *renderer) render(c echo.Context, status int, comp templ.Component) error {
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	ctx := views.WithRequest(c.Request().Context(), rd.viewRequest(c))
	if err := comp.Render(ctx, buf); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// viewRequest collects what layouts need from the request. It reads the
// session at render time, so a session the guard just refreshed is the one
// shown.
func (rd *renderer) viewRequest(c echo.Context) views.Request {
	vr := views.Request{AssetVersion: rd.assetVersion, Path: pagePath(c)}
	vr.CSRF, _ = c.Get(csrfKey).(string)
	if s := auth.SessionFrom(c.Request().Context()); s != nil {
		vr.User = &views.NavUser{
			Name: s.Name, Email: s.Email, OrgCode: s.OrgCode,
			CanReports:  s.Can(permReadReports),
			CanAdmin:    rd.adminPerm != "" && s.Can(rd.adminPerm),
			Permissions: s.Effective(),
		}
	}
	return vr
}

// pagePath is the path of the page the response is for: the request's own,
// or for an htmx request the page that sent it (POST /session/refresh
// answers for /dashboard, whose navigation it swaps out of band).
func pagePath(c echo.Context) string {
	r := c.Request()
	if u := htmx.CurrentURL(r); u != nil && strings.HasPrefix(u.Path, "/") {
		return u.Path
	}
	return r.URL.Path
}
