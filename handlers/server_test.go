package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"permsync/app/apptest"
)

// serve runs one request through the app's handler with a recorder.
func serve(t *testing.T, h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	rec := serve(t, env.App.Handler(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Fatalf("GET /healthz = %d %q", rec.Code, rec.Body.String())
	}
	rec = serve(t, env.App.Handler(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /readyz = %d %q", rec.Code, rec.Body.String())
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	for _, path := range []string{"/", "/no-such-page", "/healthz"} {
		rec := serve(t, env.App.Handler(), httptest.NewRequest(http.MethodGet, path, nil))
		h := rec.Header()
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{
			"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
			"connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
			"form-action 'self' " + env.IssuerURL,
		} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe sources: %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "strict-origin-when-cross-origin" {
			t.Errorf("%s: headers %v", path, h)
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: no request id", path)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS on a plain-http site", path)
		}
	}
}

func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	bob := env.Login(t, "bob@acme.test")
	anon := env.NewClient(t)
	pages := []*apptest.Response{
		anon.Get(t, "/"), alice.Get(t, "/dashboard"), alice.Get(t, "/reports"), anon.Get(t, "/nope"),
		alice.Get(t, "/reports/nope"), bob.Get(t, "/reports/export"),
	}
	// Live updates too (fragments; swapped into the page, so the same rules
	// hold): out-of-band parts, and a 403 put in place.
	fragments := []*apptest.Response{
		alice.LiveSync(t, "/dashboard", "read:reports"), alice.LiveSync(t, "/reports", "read:reports"),
		bob.LiveSync(t, "/reports/export", "read:reports export:reports"),
	}
	if fragments[2].Header.Get("HX-Retarget") != "#page" {
		t.Fatalf("bob's live update of /reports/export is not the 403 in place: %v", fragments[2].Header)
	}
	for _, p := range fragments {
		doc := p.Doc(t)
		if doc.Find("script, style").Length() > 0 {
			t.Errorf("%s live update: inline script or style", p.Request.URL.Path)
		}
		doc.Find("*").Each(func(_ int, s *goquery.Selection) {
			for _, a := range s.Nodes[0].Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s live update: inline %s attribute on <%s>", p.Request.URL.Path, a.Key, goquery.NodeName(s))
				}
			}
		})
	}
	for _, p := range pages {
		doc := p.Doc(t)
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			if src, ok := s.Attr("src"); !ok || src == "" || strings.TrimSpace(s.Text()) != "" {
				t.Errorf("%s: inline script %q", p.Request.URL.Path, s.Text())
			}
		})
		doc.Find("*").Each(func(_ int, s *goquery.Selection) {
			for _, a := range s.Nodes[0].Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: inline %s attribute on <%s>", p.Request.URL.Path, a.Key, goquery.NodeName(s))
				}
			}
		})
		if doc.Find("style").Length() > 0 {
			t.Errorf("%s: inline <style>", p.Request.URL.Path)
		}
		if _, ok := doc.Find(`meta[name="csrf-token"]`).Attr("content"); !ok {
			t.Errorf("%s: no csrf-token meta", p.Request.URL.Path)
		}
	}
}

func TestErrorPages(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	h := env.App.Handler()

	rec := serve(t, h, httptest.NewRequest(http.MethodGet, "/no-such-page", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "<html") ||
		!strings.Contains(rec.Body.String(), `data-testid="error-page"`) || !strings.Contains(rec.Body.String(), "Page not found") {
		t.Fatalf("404 page = %d:\n%.800s", rec.Code, rec.Body.String())
	}
	if !strings.Contains(rec.Body.String(), "<code>/no-such-page</code>") {
		t.Errorf("the 404 page does not name the address:\n%.2000s", rec.Body.String())
	}
	long := "/" + strings.Repeat("a", 300)
	rec = serve(t, h, httptest.NewRequest(http.MethodGet, long, nil))
	if strings.Contains(rec.Body.String(), strings.Repeat("a", 100)) || !strings.Contains(rec.Body.String(), "…</code>") {
		t.Errorf("a long address is named in full on the 404 page")
	}

	req := httptest.NewRequest(http.MethodGet, "/no-such-page", nil)
	req.Header.Set("HX-Request", "true")
	rec = serve(t, h, req)
	if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "<html") ||
		!strings.Contains(rec.Body.String(), `class="alert alert-error"`) {
		t.Fatalf("htmx 404 = %d:\n%.800s", rec.Code, rec.Body.String())
	}
	if rec.Header().Get("HX-Retarget") != "#alerts" || rec.Header().Get("HX-Reswap") != "innerHTML" {
		t.Errorf("htmx error not retargeted: %v", rec.Header())
	}

	// Internal text never leaks: a bad callback names no Go error.
	rec = serve(t, h, httptest.NewRequest(http.MethodGet, "/callback?state=aaaaaaaaaaaaaaaaaaaaaaaaa&code=x", nil))
	if rec.Code != http.StatusBadRequest || strings.Contains(rec.Body.String(), "http: named cookie") {
		t.Fatalf("bad callback = %d:\n%.800s", rec.Code, rec.Body.String())
	}
}

func TestSignedOutRequestsAreSentToSignIn(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	h := env.App.Handler()

	rec := serve(t, h, httptest.NewRequest(http.MethodGet, "/reports?x=1", nil))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?return_to="+url.QueryEscape("/reports?x=1") {
		t.Fatalf("GET /reports signed out = %d %q", rec.Code, rec.Header().Get("Location"))
	}
	req := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Current-URL", env.URL+"/reports")
	rec = serve(t, h, req)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("HX-Redirect") != "/login?return_to=%2Freports" {
		t.Fatalf("htmx signed out = %d %q", rec.Code, rec.Header().Get("HX-Redirect"))
	}
}

func TestStateChangingRoutesNeedCSRF(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	for _, path := range []string{"/session/refresh", "/logout"} {
		// No token at all.
		resp := alice.Do(t, http.MethodPost, path, strings.NewReader(""),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without a token = %d; want 403", path, resp.StatusCode)
		}
		// A browser telling us the request is cross-site.
		resp = alice.Do(t, http.MethodPost, path, strings.NewReader("_csrf="+alice.CSRF(t)), http.Header{
			"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"cross-site"},
		})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %s = %d; want 403", path, resp.StatusCode)
		}
	}
	if rows, _ := env.DB.UserSessions(t.Context(), env.UserID(t, "alice@acme.test")); len(rows) != 1 {
		t.Fatalf("session rows = %d; want 1", len(rows))
	}
}

func TestStaticAssetsAreVersionedAndCached(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	page := env.NewClient(t).Get(t, "/")
	href, _ := page.Doc(t).Find(`link[rel="stylesheet"]`).Attr("href")
	if !strings.HasPrefix(href, "/static/css/app.css?v=") {
		t.Fatalf("stylesheet href = %q", href)
	}
	rec := serve(t, env.App.Handler(), httptest.NewRequest(http.MethodGet, href, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("GET %s = %d, Cache-Control %q", href, rec.Code, rec.Header().Get("Cache-Control"))
	}
	for _, src := range page.Doc(t).Find("script[src]").EachIter() {
		s := src.AttrOr("src", "")
		if rec := serve(t, env.App.Handler(), httptest.NewRequest(http.MethodGet, s, nil)); rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d", s, rec.Code)
		}
	}
	if rec := serve(t, env.App.Handler(), httptest.NewRequest(http.MethodGet, "/static/css/", nil)); rec.Code == http.StatusOK {
		t.Error("static directory listing served")
	}
}
