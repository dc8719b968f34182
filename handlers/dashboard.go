package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"permsync/apperr"
	"permsync/auth"
	"permsync/views/components"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// flasher queues and takes one-shot messages.
type flasher interface {
	AddFlash(w http.ResponseWriter, r *http.Request, s *auth.Session, f auth.Flash) error
	TakeFlashes(w http.ResponseWriter, r *http.Request, s *auth.Session) []auth.Flash
}

// refresher is the one refresh code path.
type refresher interface {
	Refresh(ctx context.Context, req auth.RefreshRequest) (*auth.RefreshResult, error)
	CanInvalidateClaims() bool
}

// Dashboard serves the landing page, the dashboard and "Refresh session".
type Dashboard struct {
	rd        *renderer
	sessions  flasher
	refresher refresher
	mw        *auth.Middleware
	log       *slog.Logger
}

// Landing is the signed-out home page (GET /).
func (h *Dashboard) Landing(c echo.Context) error {
	s := auth.SessionFrom(c.Request().Context())
	flashes := h.sessions.TakeFlashes(c.Response(), c.Request(), s)
	p := pages.LandingProps{SignedIn: s != nil}
	if s == nil && c.QueryParam("signed_out") == "admin" {
		// Where an open page goes when an admin revoked its sessions.
		p.Flashes = append(p.Flashes, components.Alert{Kind: "warning",
			Message: "An administrator signed you out, here and at Kinde. Sign in again to continue."})
	}
	for _, f := range flashes {
		p.Flashes = append(p.Flashes, components.Alert{Kind: f.Kind, Message: f.Message})
	}
	return h.rd.render(c, http.StatusOK, pages.Landing(p))
}

// Show renders the dashboard (GET /dashboard).
func (h *Dashboard) Show(c echo.Context) error {
	ctx := c.Request().Context()
	s := auth.SessionFrom(ctx)
	if s == nil {
		return errNoSession
	}
	var change *components.Change
	var alerts []components.Alert
	for _, f := range h.sessions.TakeFlashes(c.Response(), c.Request(), s) {
		if f.Change != nil {
			change = changeProps(f.Change)
		}
		alerts = append(alerts, components.Alert{Kind: f.Kind, Message: f.Message})
	}
	panel := h.panel(s, change)
	if n := auth.NoticeFrom(ctx); n != nil {
		panel.Notice = &components.Alert{Kind: n.Kind, Message: n.Message}
	}
	return h.rd.render(c, http.StatusOK, pages.Dashboard(pages.DashboardProps{
		Greeting: greeting(s, time.Now()), Flashes: alerts, Panel: panel,
	}))
}

// Refresh is "Refresh session" (POST /session/refresh, CSRF-checked). With
// M2M credentials it first clears Kinde's claim cache for the user, then runs
// the refresh grant. htmx requests get the session panel back, swapped in
// place, with what changed; plain form posts get a 303 to /dashboard with the
// same summary as a flash.
func (h *Dashboard) Refresh(c echo.Context) error {
	ctx := c.Request().Context()
	s := auth.SessionFrom(ctx)
	if s == nil {
		return errNoSession
	}
	// The generation the page showed: if the session has moved past it
	// (another tab refreshed), that refresh is the answer and no second
	// grant is made.
	seen := s.Generation
	if g, err := strconv.ParseInt(c.FormValue("gen"), 10, 64); err == nil && g > 0 {
		seen = g
	}
	res, err := h.refresher.Refresh(ctx, auth.RefreshRequest{
		SessionID: s.ID, SeenGeneration: seen, Reason: auth.ReasonButton, InvalidateClaims: true,
	})
	switch {
	case errors.Is(err, auth.ErrSessionEnded):
		return h.mw.SessionEnded(c)
	case apperr.CodeOf(err) == apperr.Unavailable:
		// Kinde is down: the session stays as it was; say so.
		notice := components.Alert{Kind: "warning", Message: apperr.MessageOf(err)}
		if isHTMX(c) {
			panel := h.panel(s, nil)
			panel.Notice = &notice
			return h.rd.render(c, http.StatusOK, components.SessionPanelView(panel))
		}
		if ferr := h.sessions.AddFlash(c.Response(), c.Request(), s, auth.Flash{Kind: notice.Kind, Message: notice.Message}); ferr != nil {
			return ferr
		}
		return c.Redirect(http.StatusSeeOther, "/dashboard")
	case err != nil:
		return err
	}
	if err := h.mw.Replace(c, res.Session); err != nil {
		return err
	}
	fresh := auth.SessionFrom(c.Request().Context())
	if isHTMX(c) {
		return h.rd.render(c, http.StatusOK, templ.Join(
			components.SessionPanelView(h.panel(fresh, changeProps(&res.Change))),
			layouts.LiveStateOOB(), // the nav's Reports/Admin links follow the new permissions
		))
	}
	f := auth.Flash{Kind: "success", Message: "Session refreshed.", Change: &res.Change}
	if err := h.sessions.AddFlash(c.Response(), c.Request(), fresh, f); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

// liveParts is the dashboard's part of a live update: its session panel as
// the session now stands (the guard refreshed it first if its epoch was
// behind).
func (h *Dashboard) liveParts(_ echo.Context, s *auth.Session) []templ.Component {
	return []templ.Component{components.SessionPanelOOB(h.panel(s, nil))}
}

// panel shapes a session into the dashboard's live panel.
func (h *Dashboard) panel(s *auth.Session, change *components.Change) components.SessionPanel {
	p := components.SessionPanel{
		Identity: components.Identity{Name: s.Name, Email: s.Email, OrgCode: s.OrgCode, UserID: s.UserID},
		Timing: components.TokenTiming{
			IssuedAt: s.AccessIssuedAt, ExpiresAt: s.AccessExpiresAt, RefreshedAt: s.RefreshedAt,
			SignedInAt: s.CreatedAt, Now: time.Now(),
		},
		Change:        change,
		Generation:    s.Generation,
		CanReports:    s.Can(permReadReports),
		CanExport:     s.Can(permExportReports),
		ClaimsRefresh: h.refresher.CanInvalidateClaims(),
	}
	revoked := map[string]bool{}
	for _, k := range s.Revoked() {
		revoked[k] = true
	}
	for _, k := range s.Permissions {
		p.Permissions = append(p.Permissions, components.Permission{Key: k, Revoked: revoked[k]})
	}
	for _, r := range s.Roles {
		p.Roles = append(p.Roles, components.Role{Key: r.Key, Name: r.Name})
	}
	return p
}

func changeProps(c *auth.Change) *components.Change {
	return &components.Change{
		Added: c.Added, Removed: c.Removed, NewExpiry: c.NewExpiry, TokenChanged: c.TokenChanged,
		AlreadyRefreshed: c.AlreadyRefreshed, ClaimsInvalidated: c.ClaimsInvalidated, ClaimsSkipped: c.ClaimsSkipped,
		ClaimsRecent: c.ClaimsRecent, ClaimsEvery: c.ClaimsEvery,
	}
}

// justSignedIn is how long after signing in the dashboard greets with
// "Welcome" rather than "Welcome back".
const justSignedIn = 10 * time.Minute

// greeting is the dashboard's heading: "Welcome, Alice" right after
// signing in, "Welcome back, Alice" when coming back to a session later.
func greeting(s *auth.Session, now time.Time) string {
	name := strings.TrimSpace(s.Name)
	if i := strings.IndexByte(name, ' '); i > 0 {
		name = name[:i]
	}
	hello := "Welcome back"
	if s.CreatedAt.IsZero() || now.Sub(s.CreatedAt) < justSignedIn {
		hello = "Welcome"
	}
	if name == "" {
		return hello
	}
	return hello + ", " + name
}
