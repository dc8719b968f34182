package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"permsync/apperr"
	"permsync/htmx"
)

// RefreshWindow is how close to expiry an access token may get before the
// request guard refreshes it.
const RefreshWindow = 60 * time.Second

// Middleware loads sessions, guards them and gates routes. It is the only
// Echo-aware part of auth.
type Middleware struct {
	sessions  *SessionStore
	refresher *Refresher
	state     PermissionState
	log       *slog.Logger
	now       func() time.Time
}

// NewMiddleware builds the middleware.
func NewMiddleware(st *SessionStore, rf *Refresher, ps PermissionState, log *slog.Logger) *Middleware {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Middleware{sessions: st, refresher: rf, state: ps, log: log, now: time.Now}
}

// LoadSession puts the request's *Session (or nothing, when signed out) into
// the request context, with its effective permissions computed.
func (m *Middleware) LoadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		s, err := m.sessions.Load(r)
		if err != nil {
			return err
		}
		if s == nil {
			return next(c)
		}
		if err := m.applyDenials(r, s, s.DenialVersion); err != nil {
			return err
		}
		c.SetRequest(r.WithContext(WithSession(r.Context(), s)))
		return next(c)
	}
}

// applyDenials computes s's effective permissions from the live denials as
// of at least version (the one read with the session row: with several
// replicas, this replica's cache may not have heard of another's change
// yet).
func (m *Middleware) applyDenials(r *http.Request, s *Session, version int64) error {
	d, err := m.state.DenialsAsOf(r.Context(), version)
	if err != nil {
		return fmt.Errorf("read denials: %w", err)
	}
	s.applyDenials(d)
	return nil
}

// Guard refreshes the session before anything renders when its access token
// is within RefreshWindow of expiry, or when the user's claims epoch has moved
// past the session's (their permissions are known to have changed). When the
// refresh token is refused the session ends and the user is sent to sign in;
// when Kinde cannot be reached the session is kept and the page says so (or,
// if the access token has already expired, the request fails with 503).
func (m *Middleware) Guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		s := SessionFrom(r.Context())
		if s == nil {
			return next(c)
		}
		reason := Reason("")
		if m.now().Add(RefreshWindow).After(s.AccessExpiresAt) {
			reason = ReasonExpiring
		} else if epoch, err := m.state.UserEpoch(r.Context(), s.UserID); err != nil {
			return fmt.Errorf("read user epoch: %w", err)
		} else if max(epoch, s.UserEpoch) > s.ClaimsEpoch {
			// UserEpoch was read with the row: it covers a bump made by
			// another replica that this one's cache has not heard of yet.
			reason = ReasonEpoch
		}
		if reason == "" {
			return next(c)
		}
		res, err := m.refresher.Refresh(r.Context(), RefreshRequest{
			SessionID: s.ID, SeenGeneration: s.Generation, Reason: reason,
		})
		switch {
		case errors.Is(err, ErrSessionEnded):
			return m.SessionEnded(c)
		case apperr.CodeOf(err) == apperr.Unavailable && m.now().Before(s.AccessExpiresAt):
			ctx := withNotice(r.Context(), Flash{Kind: "warning", Message: ErrKindeUnavailable.Message})
			c.SetRequest(r.WithContext(ctx))
			return next(c)
		case err != nil:
			return err
		}
		if err := m.Replace(c, res.Session); err != nil {
			return err
		}
		return next(c)
	}
}

// Replace makes a freshly refreshed session the request's session: it keeps
// the gorilla values of the one it replaces and recomputes the effective
// permissions.
func (m *Middleware) Replace(c echo.Context, fresh *Session) error {
	r := c.Request()
	version := fresh.DenialVersion
	if old := SessionFrom(r.Context()); old != nil {
		if fresh.Web == nil {
			fresh.Web = old.Web
		}
		version = max(version, old.DenialVersion)
	}
	if err := m.applyDenials(r, fresh, version); err != nil {
		return err
	}
	c.SetRequest(r.WithContext(WithSession(r.Context(), fresh)))
	return nil
}

// SessionEnded answers a request whose session Kinde has ended: the cookie is
// cleared, the message queued, and the browser sent to the landing page,
// where it can sign in again (HX-Redirect for htmx requests).
func (m *Middleware) SessionEnded(c echo.Context) error {
	w, r := c.Response(), c.Request()
	if err := m.sessions.End(r.Context(), w, SessionFrom(r.Context())); err != nil {
		m.log.Warn("end session", "error", err)
	}
	if err := m.sessions.AddFlash(w, r, nil, Flash{Kind: "warning", Message: ErrSessionEnded.Message}); err != nil {
		m.log.Warn("flash", "error", err)
	}
	if isHTMX(r) {
		htmx.Redirect(w.Header(), "/")
		return c.NoContent(http.StatusUnauthorized)
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// RequireUser lets signed-in requests through. Others are sent to
// /login?return_to=<this page> (page requests), get 401 with HX-Redirect
// (htmx), or 401 (anything else).
func RequireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if SessionFrom(r.Context()) != nil {
			return next(c)
		}
		if isHTMX(r) {
			back := "/dashboard"
			if u := htmx.CurrentURL(r); u != nil {
				if p, ok := SafeReturnTo(u.RequestURI()); ok {
					back = p
				}
			}
			htmx.Redirect(c.Response().Header(), "/login?return_to="+url.QueryEscape(back))
			return c.NoContent(http.StatusUnauthorized)
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return c.Redirect(http.StatusSeeOther, "/login?return_to="+url.QueryEscape(r.URL.RequestURI()))
		}
		return apperr.E(apperr.Unauthorized, "Please sign in first.")
	}
}

// PermissionError is a 403 naming the permission that was missing.
type PermissionError struct {
	Key string
}

func (e *PermissionError) Error() string { return "missing permission " + e.Key }

// RequirePermission lets through only sessions whose effective permissions
// include key; others get a 403 page (a *PermissionError).
func RequirePermission(key string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !Can(c.Request().Context(), key) {
				return &PermissionError{Key: key}
			}
			return next(c)
		}
	}
}

func isHTMX(r *http.Request) bool { return htmx.IsRequest(r) }
