// Package baseline holds the two servers `make bench-http` compares permsync's
// signed-in page with. They are benchmark fixtures, not part of the product:
// nothing in permsync imports this package except cmd/bench-http.
//
//   - Bare: bare Echo rendering the same templ dashboard for a fixed user, with
//     no session, no middleware and no database. The floor: what rendering and
//     serving the page costs on its own.
//   - Stateless: the usual stateless alternative to a server-side session. The
//     sign-in stores every token (access, ID, refresh) in an encrypted gorilla
//     CookieStore cookie, and every page request decodes that cookie and
//     verifies the access token's signature and expiry with go-oidc before it
//     renders the same dashboard from the token's claims.
//
// Both render pages.Dashboard with the props permsync's own handler builds for
// the same user, so the three bodies differ only in the CSRF token and the
// countdown text.
package baseline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"permsync/views"
	"permsync/views/components"
	"permsync/views/pages"
)

// User is what the dashboard shows about the signed-in user.
type User struct {
	ID, Name, Email, OrgCode string
	Permissions              []string
	Roles                    []components.Role
	IssuedAt, ExpiresAt      time.Time
}

// Bare serves GET /dashboard: the dashboard for u, rendered on every request
// with no session and no middleware.
func Bare(u User) *echo.Echo {
	e := newEcho()
	csrf := randomHex(16)
	signedIn := time.Now()
	e.GET("/dashboard", func(c echo.Context) error {
		return render(c, u, csrf, signedIn)
	})
	return e
}

// StatelessConfig configures Stateless.
type StatelessConfig struct {
	IssuerURL, ClientID, ClientSecret string
	// SiteURL is where the server is reached; its /callback must be an
	// allowed redirect of the client.
	SiteURL string
	// HTTPClient reaches the issuer (discovery, JWKS, token endpoint).
	HTTPClient *http.Client
}

const (
	cookieName = "baseline_tokens"
	scopes     = "openid profile email offline"
)

// Stateless serves GET /login, GET /callback and GET /dashboard, keeping every
// token in an encrypted CookieStore cookie. GET /dashboard verifies the access
// token with go-oidc (signature against the issuer's cached JWKS, issuer,
// expiry) on every request.
func Stateless(ctx context.Context, cfg StatelessConfig) (*echo.Echo, error) {
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	provider, err := oidc.NewProvider(ctx, cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery: %w", err)
	}
	oc := &oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.SiteURL + "/callback",
		Endpoint: provider.Endpoint(), Scopes: strings.Fields(scopes),
	}
	oc.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	idVerifier := provider.Verifier(&oidc.Config{ClientID: cfg.ClientID})
	atVerifier := provider.Verifier(&oidc.Config{SkipClientIDCheck: true})

	// Hash key (HMAC-SHA256) and block key (AES-256), as gorilla's docs
	// recommend. Three JWTs do not fit securecookie's default 4,096-byte
	// limit (a browser would refuse the cookie, which is one reason permsync
	// keeps tokens server-side), so the limit is raised for the comparison.
	cs := sessions.NewCookieStore(randomBytes(32), randomBytes(32))
	for _, c := range cs.Codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxLength(16 << 10)
		}
	}
	cs.Options = &sessions.Options{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	csrf := randomHex(16)

	clientCtx := func(c echo.Context) context.Context {
		if cfg.HTTPClient != nil {
			return oidc.ClientContext(c.Request().Context(), cfg.HTTPClient)
		}
		return c.Request().Context()
	}

	e := newEcho()
	e.GET("/login", func(c echo.Context) error {
		s, _ := cs.New(c.Request(), cookieName)
		state, verifier := randomHex(16), oauth2.GenerateVerifier()
		s.Values = map[any]any{"state": state, "verifier": verifier}
		if err := s.Save(c.Request(), c.Response()); err != nil {
			return err
		}
		return c.Redirect(http.StatusFound, oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	})
	e.GET("/callback", func(c echo.Context) error {
		r := c.Request()
		s, err := cs.Get(r, cookieName)
		if err != nil {
			return err
		}
		state, _ := s.Values["state"].(string)
		verifier, _ := s.Values["verifier"].(string)
		if state == "" || c.QueryParam("state") != state {
			return echo.NewHTTPError(http.StatusBadRequest, "state mismatch")
		}
		tok, err := oc.Exchange(clientCtx(c), c.QueryParam("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			return fmt.Errorf("exchange: %w", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := idVerifier.Verify(clientCtx(c), rawID)
		if err != nil {
			return fmt.Errorf("verify id token: %w", err)
		}
		var ic struct {
			Email      string `json:"email"`
			GivenName  string `json:"given_name"`
			FamilyName string `json:"family_name"`
		}
		if err := idt.Claims(&ic); err != nil {
			return err
		}
		s.Values = map[any]any{
			"access": tok.AccessToken, "id": rawID, "refresh": tok.RefreshToken,
			"email": ic.Email, "name": strings.TrimSpace(ic.GivenName + " " + ic.FamilyName),
			"signed_in": time.Now().Unix(),
		}
		if err := s.Save(r, c.Response()); err != nil {
			return fmt.Errorf("save cookie: %w", err)
		}
		return c.Redirect(http.StatusSeeOther, "/dashboard")
	})
	e.GET("/dashboard", func(c echo.Context) error {
		s, err := cs.Get(c.Request(), cookieName)
		if err != nil {
			return c.Redirect(http.StatusSeeOther, "/login")
		}
		access, _ := s.Values["access"].(string)
		if access == "" {
			return c.Redirect(http.StatusSeeOther, "/login")
		}
		at, err := atVerifier.Verify(c.Request().Context(), access)
		if err != nil {
			return c.Redirect(http.StatusSeeOther, "/login")
		}
		var ac struct {
			OrgCode     string            `json:"org_code"`
			Permissions []string          `json:"permissions"`
			Roles       []components.Role `json:"roles"`
		}
		if err := at.Claims(&ac); err != nil {
			return err
		}
		name, _ := s.Values["name"].(string)
		email, _ := s.Values["email"].(string)
		signedIn, _ := s.Values["signed_in"].(int64)
		perms := slices.Clone(ac.Permissions)
		slices.Sort(perms)
		u := User{ID: at.Subject, Name: name, Email: email, OrgCode: ac.OrgCode, Permissions: perms,
			Roles: ac.Roles, IssuedAt: at.IssuedAt, ExpiresAt: at.Expiry}
		return render(c, u, csrf, time.Unix(signedIn, 0))
	})
	return e, nil
}

// render renders the dashboard for u the way permsync's handler does: into a
// pooled buffer, then written in one piece.
func render(c echo.Context, u User, csrf string, signedIn time.Time) error {
	can := func(k string) bool { return slices.Contains(u.Permissions, k) }
	panel := components.SessionPanel{
		Identity: components.Identity{Name: u.Name, Email: u.Email, OrgCode: u.OrgCode, UserID: u.ID},
		Timing: components.TokenTiming{
			IssuedAt: u.IssuedAt, ExpiresAt: u.ExpiresAt, SignedInAt: signedIn, Now: time.Now(),
		},
		Generation: 1, CanReports: can("read:reports"), CanExport: can("export:reports"), ClaimsRefresh: true,
		Roles: u.Roles,
	}
	for _, k := range u.Permissions {
		panel.Permissions = append(panel.Permissions, components.Permission{Key: k})
	}
	greeting := "Welcome back"
	if first, _, _ := strings.Cut(u.Name, " "); first != "" {
		greeting += ", " + first
	}
	vr := views.Request{CSRF: csrf, AssetVersion: assetVersion, Path: c.Request().URL.Path, User: &views.NavUser{
		Name: u.Name, Email: u.Email, OrgCode: u.OrgCode, CanReports: can("read:reports"),
		CanAdmin: can("admin:permissions"), Permissions: u.Permissions,
	}}
	var comp templ.Component = pages.Dashboard(pages.DashboardProps{Greeting: greeting, Panel: panel})
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := comp.Render(views.WithRequest(c.Request().Context(), vr), buf); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

// assetVersion stands in for permsync's (12 hex digits of a hash of the
// static files), so the pages are the same length.
const assetVersion = "ba5e11e00000"

func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var he *echo.HTTPError
		code := http.StatusInternalServerError
		if errors.As(err, &he) {
			code = he.Code
		}
		_ = c.String(code, http.StatusText(code))
	}
	return e
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }
