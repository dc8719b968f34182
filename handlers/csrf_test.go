package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"permsync/app/apptest"
	"permsync/devkinde"
)

// TestCSRFIsBoundToTheSession: a state-changing request passes only with
// the token of its own session, in the body or the X-CSRF-Token header,
// from a page of this origin; everything else is refused with 403 and
// changes nothing.
func TestCSRFIsBoundToTheSession(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	bob := env.Login(t, "bob@acme.test")
	visitor := env.NewClient(t)
	aliceTok, bobTok, preTok := alice.CSRF(t), bob.CSRF(t), visitor.CSRF(t)
	if aliceTok == "" || aliceTok == bobTok || aliceTok == preTok {
		t.Fatalf("tokens are not per session: alice %q, bob %q, signed out %q", aliceTok, bobTok, preTok)
	}
	u, _ := url.Parse(env.URL)
	otherPort := "http://" + u.Hostname() + ":1" // the same host on another port: same site, another origin

	form := func(tok string) string { return url.Values{"_csrf": {tok}}.Encode() }
	tests := []struct {
		name   string
		query  string
		body   string
		header http.Header
		ok     bool
	}{
		{"token in the form", "", form(aliceTok), nil, true},
		{"token in the header", "", "", http.Header{"X-Csrf-Token": {aliceTok}}, true},
		{"same-origin fetch with the site's Origin", "", form(aliceTok),
			http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {env.URL}}, true},
		{"no token", "", "", nil, false},
		{"token in the query string only", "?_csrf=" + url.QueryEscape(aliceTok), "", nil, false},
		{"another session's token", "", form(bobTok), nil, false},
		{"a signed-out token", "", form(preTok), nil, false},
		{"a made-up token", "", form(strings.Repeat("A", len(aliceTok))), nil, false},
		{"same-site request", "", form(aliceTok), http.Header{"Sec-Fetch-Site": {"same-site"}}, false},
		{"cross-site request", "", form(aliceTok), http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"another origin", "", form(aliceTok), http.Header{"Origin": {"https://evil.example"}}, false},
		{"another port of the same host", "", form(aliceTok), http.Header{"Origin": {otherPort}}, false},
		{"opaque origin", "", form(aliceTok), http.Header{"Origin": {"null"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
			for k, v := range tt.header {
				h[k] = v
			}
			resp := alice.Do(t, http.MethodPost, "/session/refresh"+tt.query, strings.NewReader(tt.body), h)
			if refused := resp.StatusCode == http.StatusForbidden; refused == tt.ok {
				t.Fatalf("POST /session/refresh = %d; want refused: %v", resp.StatusCode, !tt.ok)
			}
		})
	}
}

// TestCSRFTokensRotate: signing in gives a new token and a new signed-out
// binding; signing out ends the old token and replaces the binding again,
// so a token seen before either no longer passes.
func TestCSRFTokensRotate(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	c := env.NewClient(t)
	before := c.CSRF(t)
	preBefore := c.Cookie("permsync_presession")
	if preBefore == nil {
		t.Fatal("a signed-out page set no pre-session cookie")
	}
	if resp := c.SignIn(t, "/login", "alice@acme.test", devkinde.DemoPassword); resp.Request.URL.Path != "/dashboard" {
		t.Fatalf("sign-in ended at %s", resp.Request.URL)
	}
	signedIn := c.CSRF(t)
	if signedIn == before {
		t.Fatal("the token did not change at sign-in")
	}
	if pre := c.Cookie("permsync_presession"); pre == nil || pre.Value == preBefore.Value {
		t.Fatal("the pre-session cookie was not replaced at sign-in")
	}
	if resp := c.PostForm(t, "/logout", url.Values{"_csrf": {signedIn}}); resp.StatusCode == http.StatusForbidden {
		t.Fatalf("logout with the page's token = %d", resp.StatusCode)
	}
	// Signed out: the session's token is dead, and so is the earlier
	// signed-out one (its cookie was replaced).
	for name, tok := range map[string]string{"the session's": signedIn, "the first signed-out": before} {
		resp := c.Do(t, http.MethodPost, "/logout", strings.NewReader(url.Values{"_csrf": {tok}}.Encode()),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST /logout with %s token after sign-out = %d; want 403", name, resp.StatusCode)
		}
	}
}
