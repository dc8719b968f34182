package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"permsync/app/apptest"
	"permsync/handlers"
)

// TestEveryRouteIsPublicOrSignedIn walks every registered route: a route
// not on the public list (handlers/access.go) must send a signed-out
// request to sign-in, and nothing else happens.
func TestEveryRouteIsPublicOrSignedIn(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	e, ok := env.App.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("app handler is %T, not *echo.Echo", env.App.Handler())
	}
	methods := map[string]bool{http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
		http.MethodPatch: true, http.MethodDelete: true}
	// A signed-out visitor's real token and the pre-session cookie it is
	// bound to, so CSRF passes and the gate answers.
	visitor := env.NewClient(t)
	token := visitor.CSRF(t)
	pre := visitor.Cookie("permsync_presession")
	if token == "" || pre == nil {
		t.Fatalf("signed-out page gave no CSRF token (%q) or pre-session cookie", token)
	}
	public, gated := 0, 0
	for _, r := range e.Routes() {
		if !methods[r.Method] {
			continue // Echo's own not-found routes of a group; the group's middleware gates them
		}
		if handlers.IsPublic(r.Method, r.Path) {
			public++
			continue
		}
		gated++
		path := concretePath(r.Path)
		req := httptest.NewRequest(r.Method, path, strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("X-CSRF-Token", token)
		req.AddCookie(pre)
		rec := serve(t, env.App.Handler(), req)
		switch r.Method {
		case http.MethodGet:
			if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login?return_to=") {
				t.Errorf("signed-out GET %s (route %s) = %d %q; want a redirect to sign-in",
					path, r.Path, rec.Code, rec.Header().Get("Location"))
			}
		default:
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("signed-out %s %s (route %s) = %d; want 401", r.Method, path, r.Path, rec.Code)
			}
		}
	}
	if public < 5 || gated < 10 {
		t.Fatalf("walked %d public and %d gated routes; is the route table there?", public, gated)
	}

	// Unknown paths stay 404s rather than becoming sign-in redirects.
	if rec := serve(t, env.App.Handler(), httptest.NewRequest(http.MethodGet, "/no-such-page", nil)); rec.Code != http.StatusNotFound {
		t.Errorf("signed-out GET /no-such-page = %d; want 404", rec.Code)
	}
}

// concretePath fills a route pattern's parameters: /admin/users/:id →
// /admin/users/x.
func concretePath(pattern string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || p == "*" {
			parts[i] = "x"
		}
	}
	return strings.Join(parts, "/")
}
