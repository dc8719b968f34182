package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"permsync/app/apptest"
)

// The site URL in apptest is http://127.0.0.1:<port>; a browser that opens
// http://localhost:<port> instead is sent to the same path on the site URL,
// so sign-in cookies and the callback share one host.
func TestOtherLoopbackHostIsRedirectedToSiteURL(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	site, _ := url.Parse(env.URL)
	alias := "localhost:" + site.Port()
	h := env.App.Handler()
	req := func(method, target, host string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Host = host
		r.RemoteAddr = "127.0.0.1:40000"
		return serve(t, h, r)
	}

	for _, tt := range []struct {
		method, target, host string
		wantLocation         string // "" means served, not redirected
	}{
		{http.MethodGet, "/dashboard?tab=2", alias, env.URL + "/dashboard?tab=2"},
		{http.MethodHead, "/", alias, env.URL + "/"},
		{http.MethodGet, "/login?return_to=%2Freports", "[::1]:" + site.Port(), env.URL + "/login?return_to=%2Freports"},
		{http.MethodGet, "//evil.example/x", alias, env.URL + "//evil.example/x"},
		{http.MethodGet, "/no-such-page", "LOCALHOST:" + site.Port(), env.URL + "/no-such-page"},
		// Served as they are:
		{http.MethodGet, "/", site.Host, ""},                 // the site's own host
		{http.MethodGet, "/", "example.com", ""},             // not a loopback name: perhaps a proxy's
		{http.MethodPost, "/logout", alias, ""},              // only GET and HEAD move
		{http.MethodGet, "/healthz", alias, ""},              // probes answer under any host
		{http.MethodGet, "/readyz", alias, ""},               //
		{http.MethodGet, "/metrics", alias, ""},              // scrapers call by address
		{http.MethodGet, "/webhooks/kinde", alias, ""},       // webhooks are never redirected
		{http.MethodGet, "/webhooks/kinde/other", alias, ""}, //
		{http.MethodGet, "/static/css/app.css", alias, env.URL + "/static/css/app.css"},
	} {
		rec := req(tt.method, tt.target, tt.host)
		loc := rec.Header().Get("Location")
		if tt.wantLocation == "" {
			if rec.Code == http.StatusTemporaryRedirect {
				t.Errorf("%s %s (Host %s) redirected to %s, want it served", tt.method, tt.target, tt.host, loc)
			}
			continue
		}
		if rec.Code != http.StatusTemporaryRedirect || loc != tt.wantLocation {
			t.Errorf("%s %s (Host %s) = %d Location %q, want 307 to %q", tt.method, tt.target, tt.host, rec.Code, loc, tt.wantLocation)
		}
	}
}

// The whole sign-in works when started on the other loopback name: the first
// request moves to the site URL, then everything happens there.
func TestSignInStartedOnOtherLoopbackHost(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	site, _ := url.Parse(env.URL)
	c := env.NewClient(t)
	resp := c.SignIn(t, "http://localhost:"+site.Port()+"/login", "alice@acme.test", "password")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard" ||
		!strings.HasPrefix(resp.Request.URL.String(), env.URL) {
		t.Fatalf("sign-in begun on localhost ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
}
