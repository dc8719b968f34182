package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"permsync/app/apptest"
	"permsync/auth"
	"permsync/devkinde"
)

// startLogin follows /login up to devkinde's sign-in form without following
// the redirect back, and returns the callback URL devkinde sends the browser
// to.
func startLogin(t *testing.T, env *apptest.Env, c *apptest.Client, path string) string {
	t.Helper()
	page := c.Get(t, path)
	form := page.Doc(t).Find(`form:has(input[name="email"])`).First()
	vals := url.Values{}
	for _, in := range form.Find("input[name]").EachIter() {
		vals.Set(in.AttrOr("name", ""), in.AttrOr("value", ""))
	}
	vals.Set("email", "alice@acme.test")
	vals.Set("password", devkinde.DemoPassword)
	action, _ := page.Request.URL.Parse(form.AttrOr("action", ""))
	resp := c.NoRedirect().Do(t, http.MethodPost, action.String(), strings.NewReader(vals.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, env.URL+"/callback?") {
		t.Fatalf("sign-in POST = %d, Location %q", resp.StatusCode, loc)
	}
	return loc
}

func TestCallbackRejectsBadState(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	c := env.NewClient(t)
	cb, _ := url.Parse(startLogin(t, env, c, "/login"))
	q := cb.Query()
	state := q.Get("state")

	other := "x" // a first character the real state does not have
	if state[0] == 'x' {
		other = "y"
	}
	for name, bad := range map[string]string{
		"unknown":     other + state[1:],
		"same prefix": state[:16] + strings.Repeat("A", len(state)-16),
		"missing":     "",
		"truncated":   state[:8],
	} {
		t.Run(name, func(t *testing.T) {
			q2 := cb.Query()
			q2.Set("state", bad)
			resp := c.NoRedirect().Get(t, "/callback?"+q2.Encode())
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("callback with %s state = %d; want 400", name, resp.StatusCode)
			}
			if hasSetCookie(resp, auth.SessionCookie) || c.Cookie(auth.SessionCookie) != nil {
				t.Fatal("a session cookie was set")
			}
		})
	}
}

func hasSetCookie(r *apptest.Response, name string) bool {
	for _, ck := range r.Cookies() {
		if ck.Name == name && ck.MaxAge >= 0 && ck.Value != "" {
			return true
		}
	}
	return false
}

func TestCallbackCannotBeReplayed(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	c := env.NewClient(t)
	cbURL := startLogin(t, env, c, "/login")
	flow := flowCookie(t, c, env)

	first := c.NoRedirect().Get(t, cbURL)
	if first.StatusCode != http.StatusSeeOther || first.Header.Get("Location") != "/dashboard" {
		t.Fatalf("first callback = %d %s", first.StatusCode, first.Header.Get("Location"))
	}
	// Replay in the same browser: the flow cookie is gone.
	if again := c.NoRedirect().Get(t, cbURL); again.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed callback = %d; want 400", again.StatusCode)
	}
	// Replay from another browser holding a copy of the old flow cookie: the
	// code was single use at the provider.
	thief := env.NewClient(t)
	u, _ := url.Parse(env.URL + "/callback")
	thief.HTTP.Jar.SetCookies(u, []*http.Cookie{flow})
	if again := thief.NoRedirect().Get(t, cbURL); again.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed callback with the old flow cookie = %d; want 400", again.StatusCode)
	}
	if thief.Cookie(auth.SessionCookie) != nil {
		t.Fatal("the replay got a session")
	}
}

func flowCookie(t *testing.T, c *apptest.Client, env *apptest.Env) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(env.URL + "/callback")
	for _, ck := range c.HTTP.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "permsync_flow_") {
			return &http.Cookie{Name: ck.Name, Value: ck.Value, Path: "/callback"}
		}
	}
	t.Fatal("no flow cookie")
	return nil
}

func TestTamperedSessionCookieIsSignedOut(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	ck := alice.Cookie(auth.SessionCookie)
	if ck == nil {
		t.Fatal("no session cookie")
	}
	b := []byte(ck.Value)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	alice.SetCookie(auth.SessionCookie, string(b))
	resp := alice.NoRedirect().Get(t, "/dashboard")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?return_to=") {
		t.Fatalf("GET /dashboard with a tampered cookie = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// And a well-formed cookie for a row that does not exist.
	alice.SetCookie(auth.SessionCookie, "")
	if resp := alice.NoRedirect().Get(t, "/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /dashboard with an empty cookie = %d", resp.StatusCode)
	}
}

func TestReturnToNeverLeavesTheSite(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	for _, target := range []string{
		"//evil.example", `/\evil.example`, "https://evil.example", "/%2F%2Fevil.example",
		"javascript:alert(1)", "///evil.example", "\t//evil.example",
	} {
		t.Run(target, func(t *testing.T) {
			c := env.NewClient(t)
			// The client refuses redirects off the test servers, so an open
			// redirect fails the test inside SignIn.
			resp := c.SignIn(t, "/login?return_to="+url.QueryEscape(target), "alice@acme.test", devkinde.DemoPassword)
			if resp.Request.URL.Host != strings.TrimPrefix(env.URL, "http://") {
				t.Fatalf("ended on %s", resp.Request.URL)
			}
			// Only the encoded-slash case is a real path on our site.
			if target != "/%2F%2Fevil.example" && resp.Request.URL.Path != "/dashboard" {
				t.Fatalf("ended at %s; want /dashboard", resp.Request.URL)
			}
		})
	}
	t.Run("relative path kept", func(t *testing.T) {
		c := env.NewClient(t)
		resp := c.SignIn(t, "/login?return_to="+url.QueryEscape("/reports?sort=name"), "alice@acme.test", devkinde.DemoPassword)
		if resp.Request.URL.RequestURI() != "/reports?sort=name" {
			t.Fatalf("ended at %s; want /reports?sort=name", resp.Request.URL)
		}
	})
}

func TestLoginRedirectCarriesPKCEAndNonce(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"KINDE_AUDIENCE": "https://api.acme.test"}})
	c := env.NewClient(t).NoRedirect()
	for path, prompt := range map[string]string{"/login?org_code=org_acme": "", "/register": "create"} {
		resp := c.Get(t, path)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(u.String(), env.IssuerURL+"/oauth2/auth?") {
			t.Fatalf("GET %s redirected to %q", path, resp.Header.Get("Location"))
		}
		q := u.Query()
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(k)) < 43 {
				t.Errorf("%s: %s = %q; want 256 random bits", path, k, q.Get(k))
			}
		}
		if q.Get("code_challenge_method") != "S256" || q.Get("scope") != "openid profile email offline" ||
			q.Get("audience") != "https://api.acme.test" || q.Get("prompt") != prompt {
			t.Errorf("%s: authorize query %v", path, q)
		}
		if strings.Contains(path, "org_code") && q.Get("org_code") != "org_acme" {
			t.Errorf("org_code not passed through: %v", q)
		}
		var flow *http.Cookie
		for _, ck := range resp.Cookies() {
			if strings.HasPrefix(ck.Name, "permsync_flow_") {
				flow = ck
			}
		}
		if flow == nil || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.Path != "/callback" {
			t.Errorf("%s: flow cookie %+v; want HttpOnly, SameSite=Lax, Path=/callback", path, flow)
		}
	}
}

func TestLogoutEndsSessionEverywhere(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	alice.Get(t, "/dashboard")
	resp := alice.NoRedirect().PostForm(t, "/logout", nil)
	want := env.IssuerURL + "/logout?redirect=" + url.QueryEscape(env.URL+"/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Fatalf("POST /logout = %d %q; want 303 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if !clearsCookie(resp, auth.SessionCookie) {
		t.Error("session cookie not cleared")
	}
	if rows, _ := env.DB.UserSessions(t.Context(), env.UserID(t, "alice@acme.test")); len(rows) != 0 {
		t.Errorf("%d session rows left", len(rows))
	}
	if next := alice.NoRedirect().Get(t, "/dashboard"); next.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /dashboard after logout = %d", next.StatusCode)
	}
	// Following Kinde's logout brings the browser back to the landing page.
	if back := alice.Get(t, want); back.Request.URL.String() != env.URL+"/" {
		t.Errorf("logout ended at %s", back.Request.URL)
	}
}

func TestLogoutNeedsCSRF(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	resp := alice.NoRedirect().PostForm(t, "/logout", url.Values{"_csrf": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST /logout with a forged token = %d; want 403", resp.StatusCode)
	}
	if rows, _ := env.DB.UserSessions(t.Context(), env.UserID(t, "alice@acme.test")); len(rows) != 1 {
		t.Fatalf("session rows = %d; want 1", len(rows))
	}
}

func clearsCookie(r *apptest.Response, name string) bool {
	for _, ck := range r.Cookies() {
		if ck.Name == name && ck.MaxAge < 0 {
			return true
		}
	}
	return false
}
