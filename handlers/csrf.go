package handlers

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"permsync/apperr"
	"permsync/auth"
)

// CSRF: every state-changing request (anything but GET, HEAD, OPTIONS) must
// come from a page of this site, and carry the token that page was given.
//
//   - The token is a synchronizer token bound to the server-side session: an
//     HMAC, under a key derived from PERMSYNC_SECRET, of the session's id.
//     Signed-out visitors get one bound to a random pre-session cookie
//     instead. A new session (sign-in) means a new token, and sign-in and
//     sign-out both replace the pre-session cookie, so no token outlives the
//     state it was issued for. Nobody can make a token without the secret,
//     so a cookie planted by another site (cookie tossing) buys nothing.
//   - The token travels in the form field _csrf or the X-CSRF-Token header
//     (htmx sends the page's <meta name="csrf-token">), never the query
//     string, and is compared in constant time.
//   - A browser's word about where the request came from is checked first:
//     Sec-Fetch-Site must be same-origin when sent (same-site is not enough:
//     a sibling subdomain or another port of the host is another origin),
//     and Origin, when sent, must be the site's own.
//
// Kinde's webhooks are exempt (their JWS signature authenticates them), as
// are probes, /metrics and static files.

// csrfField and csrfHeader carry the token.
const (
	csrfField  = "_csrf"
	csrfHeader = "X-CSRF-Token"
)

// preSessionCookie binds the token of a signed-out visitor.
const preSessionCookie = "permsync_presession"

// Token purposes: a token for one never passes for the other.
const (
	csrfForSession    = "session"
	csrfForPreSession = "pre-session"
)

// errForged is the refusal every failed check gets: one message, so a
// probe learns nothing about which check failed.
var errForged = apperr.E(apperr.Forbidden,
	"This form has expired or did not come from permsync. Reload the page and try again.")

// csrfGuard checks state-changing requests and gives every page its token.
type csrfGuard struct {
	keys       *auth.Keyring
	siteOrigin string // scheme://host[:port] of KINDE_SITE_URL; "" compares Origin with the Host header
	secure     bool
	log        *slog.Logger
}

func newCSRFGuard(keys *auth.Keyring, siteURL string, secure bool, log *slog.Logger) *csrfGuard {
	return &csrfGuard{keys: keys, siteOrigin: originOf(siteURL), secure: secure, log: log}
}

// cookieName is the pre-session cookie's name (__Host- on https).
func (g *csrfGuard) cookieName() string { return auth.HostCookie(preSessionCookie, g.secure) }

// middleware runs after the session is loaded.
func (g *csrfGuard) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isProbeOrStatic(c) || isWebhook(c) {
			return next(c)
		}
		r := c.Request()
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		purpose, binding := g.binding(c, safe)
		if binding != "" {
			c.Set(csrfKey, g.keys.CSRFToken(purpose, binding))
		}
		if safe {
			return next(c)
		}
		if why := g.refuse(r, purpose, binding); why != "" {
			g.log.InfoContext(r.Context(), "csrf: request refused", "method", r.Method, "path", r.URL.Path, "reason", why)
			return errForged
		}
		return next(c)
	}
}

// binding returns what the request's token is bound to: the session's id,
// or the pre-session cookie, which a safe request without one gets.
func (g *csrfGuard) binding(c echo.Context, safe bool) (purpose, binding string) {
	if s := auth.SessionFrom(c.Request().Context()); s != nil {
		return csrfForSession, s.ID
	}
	if ck, err := c.Request().Cookie(g.cookieName()); err == nil && validPreSession(ck.Value) {
		return csrfForPreSession, ck.Value
	}
	if !safe {
		return csrfForPreSession, ""
	}
	return csrfForPreSession, g.newPreSession(c)
}

// rotate gives the browser a new pre-session cookie (at sign-in and
// sign-out), so a signed-out token from before no longer passes.
func (g *csrfGuard) rotate(c echo.Context) { g.newPreSession(c) }

func (g *csrfGuard) newPreSession(c echo.Context) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	v := base64.RawURLEncoding.EncodeToString(b)
	c.SetCookie(&http.Cookie{Name: g.cookieName(), Value: v, Path: "/", HttpOnly: true, Secure: g.secure,
		SameSite: http.SameSiteLaxMode})
	return v
}

func validPreSession(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// refuse returns why a state-changing request is refused, or "".
func (g *csrfGuard) refuse(r *http.Request, purpose, binding string) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin":
	default:
		return "Sec-Fetch-Site " + site
	}
	if o := r.Header.Get("Origin"); o != "" {
		want := g.siteOrigin
		if want == "" {
			want = requestOrigin(r)
		}
		if !strings.EqualFold(o, want) {
			return "Origin " + o
		}
	}
	token := r.Header.Get(csrfHeader)
	if token == "" {
		token = formToken(r)
	}
	if token == "" {
		return "no token"
	}
	if !g.keys.CheckCSRF(purpose, binding, token) {
		return "wrong token for the " + purpose
	}
	return ""
}

// formToken reads _csrf from the request body only: a token in the query
// string would leak through logs and the Referer header, so it never counts.
func formToken(r *http.Request) string {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return ""
		}
		return r.PostForm.Get(csrfField)
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil || r.MultipartForm == nil {
			return ""
		}
		if v := r.MultipartForm.Value[csrfField]; len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// originOf is scheme://host[:port] of an absolute URL, lower case, without
// a default port; "" when it is not one.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + normalHost(u.Host, strings.ToLower(u.Scheme))
}

// requestOrigin is the origin the request was addressed to, when no site
// URL is configured (tests).
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + normalHost(r.Host, scheme)
}
