package handlers

import (
	"net/http"
	"slices"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"permsync/auth"
	"permsync/htmx"
	"permsync/views/components"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// Live updates of signed-in pages (docs/ARCHITECTURE.md). Every signed-in page holds
// #live-sync (components.LiveRegion): on claims-changed it sends GET <the
// page's own path> through htmx, with the keys the page was rendered with.
// Going through the page's own route means the guard refreshes the session
// first and the route's own permission gate decides whether the page may
// stay, so no second table of which page needs what can drift from the
// routes. The answer:
//
//   - allowed: out-of-band swaps only: the navigation, the shown keys, a
//     toast naming what changed, and the page's own live parts (the
//     dashboard's session panel, the reports page's Export button);
//   - no longer allowed (the gate refused): the 403 page in place of the
//     page's content, plus the same navigation and toast, so nothing stale
//     stays on screen and a reload shows the same page;
//   - a page that already is that 403 (it showed these very keys), or a 404
//     anyway: the navigation and the toast, if any, alone.

// liveParts returns a page's own out-of-band swaps for its live update.
type liveParts func(c echo.Context, s *auth.Session) []templ.Component

// isLiveSync reports a page's live update: an htmx GET sent by #live-sync.
func isLiveSync(c echo.Context) bool {
	r := c.Request()
	return r.Method == http.MethodGet && htmx.TriggeredBy(r, components.LiveSyncID)
}

// livePage is the last middleware of every signed-in page route (after its
// gates): it answers the page's live update with parts, and lets every other
// request through to the page's handler.
func (rd *renderer) livePage(parts liveParts) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !isLiveSync(c) {
				return next(c)
			}
			return rd.liveUpdate(c, parts, nil)
		}
	}
}

// liveUpdate renders a live update for the request's session as it now
// stands. With forbidden set the page is no longer allowed: its content is
// replaced by that error.
func (rd *renderer) liveUpdate(c echo.Context, parts liveParts, forbidden *pages.ErrorProps) error {
	ctx := c.Request().Context()
	s := auth.SessionFrom(ctx)
	if s == nil {
		return errNoSession
	}
	diff := permissionDiff(strings.Fields(c.QueryParam("shown")), s.Effective())
	if forbidden != nil && (diff.Empty() || (forbidden.Permission != "" && !diff.Removes(forbidden.Permission))) {
		// The page was rendered without the key it needs, so it already is
		// this error (an earlier live update put it in place, or it was a
		// 403 from the start): nothing on it to replace, and only what
		// changed, if anything, to announce.
		forbidden, parts = nil, nil
	}
	var out []templ.Component
	if forbidden != nil {
		// The main swap: the error in place of the page's content.
		htmx.Retarget(c.Response().Header(), "#"+components.PageID, "innerHTML show:window:top")
		out = append(out, pages.ErrorInPlace(*forbidden))
	}
	out = append(out, layouts.LiveStateOOB())
	switch {
	case forbidden != nil:
		out = append(out, components.ToastOOB("warning", diff.Summary()+" You can no longer open this page."))
	case !diff.Empty():
		out = append(out, components.ToastOOB("info", diff.Summary()))
	}
	if n := auth.NoticeFrom(ctx); n != nil {
		out = append(out, components.ToastOOB(n.Kind, n.Message))
	}
	if parts != nil {
		out = append(out, parts(c, s)...)
	}
	// 200 even in place of a 403: the live update itself succeeded, and
	// htmx treats 4xx answers as errors.
	return rd.render(c, http.StatusOK, templ.Join(out...))
}

// liveError answers a live update whose route refused it, when the answer
// is a page state rather than a failure: a 403 (the page is no longer
// allowed) or a 404 (the page is an error page anyway). It reports false
// for anything else, which the error handler answers as for any htmx
// request.
func (rd *renderer) liveError(c echo.Context, p pages.ErrorProps) (bool, error) {
	if !isLiveSync(c) || auth.SessionFrom(c.Request().Context()) == nil {
		return false, nil
	}
	switch p.Status {
	case http.StatusForbidden:
		return true, rd.liveUpdate(c, nil, &p)
	case http.StatusNotFound:
		return true, rd.liveUpdate(c, nil, nil)
	}
	return false, nil
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
