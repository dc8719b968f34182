package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"permsync/auth"
)

// loginFlow is the OIDC client as sign-in and sign-out use it.
type loginFlow interface {
	BeginLogin(w http.ResponseWriter, opts auth.LoginOptions) (string, error)
	CompleteLogin(ctx context.Context, w http.ResponseWriter, r *http.Request) (*auth.Grant, string, error)
	Revoke(ctx context.Context, token, hint string) error
	LogoutURL() string
}

// sessionStarter creates and ends sessions.
type sessionStarter interface {
	Start(ctx context.Context, w http.ResponseWriter, r *http.Request, g *auth.Grant, epoch int64) (*auth.Session, error)
	End(ctx context.Context, w http.ResponseWriter, s *auth.Session) error
	Tokens(s *auth.Session) (auth.Tokens, error)
}

// epochReader reads a user's claims epoch, stamped on new sessions.
type epochReader interface {
	UserEpoch(ctx context.Context, userID string) (int64, error)
}

// Auth signs users in and out.
type Auth struct {
	flow     loginFlow
	sessions sessionStarter
	epochs   epochReader
	csrf     *csrfGuard // replaces the signed-out CSRF binding at sign-in and sign-out
	log      *slog.Logger
}

// Login starts a sign-in at Kinde (GET /login?return_to=&org_code=).
func (h *Auth) Login(c echo.Context) error { return h.begin(c, "") }

// Register starts a sign-up at Kinde (GET /register): prompt=create.
func (h *Auth) Register(c echo.Context) error { return h.begin(c, "create") }

func (h *Auth) begin(c echo.Context, prompt string) error {
	opts := auth.LoginOptions{ReturnTo: c.QueryParam("return_to"), OrgCode: c.QueryParam("org_code"), Prompt: prompt}
	if auth.SessionFrom(c.Request().Context()) != nil && prompt == "" && opts.OrgCode == "" {
		// Already signed in: go where the sign-in would have led.
		if to, ok := auth.SafeReturnTo(opts.ReturnTo); ok {
			return c.Redirect(http.StatusSeeOther, to)
		}
		return c.Redirect(http.StatusSeeOther, "/dashboard")
	}
	u, err := h.flow.BeginLogin(c.Response(), opts)
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusFound, u)
}

// Callback finishes a sign-in (GET /callback): verify, then a new session.
func (h *Auth) Callback(c echo.Context) error {
	ctx := c.Request().Context()
	g, returnTo, err := h.flow.CompleteLogin(ctx, c.Response(), c.Request())
	if err != nil {
		return err
	}
	epoch, err := h.epochs.UserEpoch(ctx, g.UserID)
	if err != nil {
		return err
	}
	if _, err := h.sessions.Start(ctx, c.Response(), c.Request(), g, epoch); err != nil {
		return err
	}
	h.csrf.rotate(c)
	h.log.InfoContext(c.Request().Context(), "signed in", "user_id", g.UserID, "org_code", g.OrgCode)
	return c.Redirect(http.StatusSeeOther, returnTo)
}

// Logout (POST /logout, CSRF-checked) deletes the session, revokes its
// refresh token at Kinde, clears the cookie and sends the browser to Kinde's
// logout, which comes back to KINDE_POST_LOGOUT_REDIRECT_URL.
func (h *Auth) Logout(c echo.Context) error {
	ctx := c.Request().Context()
	s := auth.SessionFrom(ctx)
	if s != nil {
		if toks, err := h.sessions.Tokens(s); err == nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := h.flow.Revoke(rctx, toks.Refresh, "refresh_token"); err != nil {
				h.log.WarnContext(c.Request().Context(), "revoke refresh token", "error", err)
			}
			cancel()
		}
		h.log.InfoContext(c.Request().Context(), "signed out", "user_id", s.UserID)
	}
	if err := h.sessions.End(ctx, c.Response(), s); err != nil {
		return err
	}
	h.csrf.rotate(c)
	return c.Redirect(http.StatusSeeOther, h.flow.LogoutURL())
}
