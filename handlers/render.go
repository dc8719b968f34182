package handlers

import (
	"fmt"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"permsync/auth"
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
	vr := views.Request{AssetVersion: rd.assetVersion, Path: c.Request().URL.Path}
	vr.CSRF, _ = c.Get(csrfKey).(string)
	if s := auth.SessionFrom(c.Request().Context()); s != nil {
		vr.User = &views.NavUser{
			Name: s.Name, Email: s.Email, OrgCode: s.OrgCode,
			CanReports: s.Can(permReadReports),
			CanAdmin:   rd.adminPerm != "" && s.Can(rd.adminPerm),
		}
	}
	return vr
}
