package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"permsync/app/apptest"
	"permsync/auth"
	"permsync/events"
)

// panelGen returns the session generation the page's refresh form carries.
func panelGen(t *testing.T, r *apptest.Response) string {
	t.Helper()
	g, ok := r.Doc(t).Find(`form.refresh-form input[name="gen"]`).Attr("value")
	if !ok {
		t.Fatalf("no refresh form on %s:\n%.1500s", r.Request.URL, r.Body)
	}
	return g
}

func TestRefreshRotatesTokensAndSessionKeepsWorking(t *testing.T) {
	// A 1 ms overlap: once rotated, the old refresh token is dead, so the
	// second refresh succeeds only if the rotated one was saved.
	env := apptest.Start(t, apptest.Options{RefreshOverlap: time.Millisecond})
	alice := env.Login(t, "alice@acme.test")
	before := alice.Get(t, "/dashboard")
	expBefore := before.TestID(t, "expires-at").AttrOr("datetime", "")
	env.ResetGrants()

	// Without JavaScript: a plain form POST and a 303 back to the dashboard.
	after := alice.PostForm(t, "/session/refresh", url.Values{"gen": {panelGen(t, before)}})
	if after.StatusCode != http.StatusOK || after.Request.URL.Path != "/dashboard" {
		t.Fatalf("refresh ended at %s with %d", after.Request.URL, after.StatusCode)
	}
	if after.TestID(t, "change-summary").Length() != 1 {
		t.Fatalf("no change summary after refresh:\n%.2000s", after.Body)
	}
	// M2M credentials are configured, so refresh_claims ran first and
	// Kinde could not hand back its cached token.
	if after.TestID(t, "token-changed").Length() != 1 {
		t.Errorf("expected a new access token; summary: %s", after.TestID(t, "change-summary").Text())
	}
	if got := env.Refreshes(); got != 1 {
		t.Errorf("refresh_token grants = %d; want 1", got)
	}
	if after.TestID(t, "refreshed-at").Is("time") == false {
		t.Error("last refresh time not shown")
	}
	_ = expBefore

	// With htmx: the panel comes back as a fragment, not a page.
	frag := alice.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {panelGen(t, after)}})
	if frag.StatusCode != http.StatusOK {
		t.Fatalf("htmx refresh = %d:\n%.1500s", frag.StatusCode, frag.Body)
	}
	if strings.Contains(frag.Body, "<html") || frag.TestID(t, "session-panel").Length() != 1 {
		t.Fatalf("htmx refresh should return only the panel:\n%.1500s", frag.Body)
	}
	if frag.TestID(t, "change-summary").Length() != 1 {
		t.Error("htmx refresh has no change summary")
	}
	// refresh_claims ran for alice a moment ago: this click refreshed her
	// tokens only, and the panel says so.
	if frag.TestID(t, "claims-recent").Length() != 1 {
		t.Errorf("a second click within %s should say it refreshed tokens only: %s",
			auth.DefaultClaimsRefreshInterval, frag.TestID(t, "change-summary").Text())
	}
	if got := env.Refreshes(); got != 2 {
		t.Errorf("refresh_token grants = %d; want 2", got)
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Errorf("after two refreshes GET /reports/export = %d", resp.StatusCode)
	}
}

func TestConcurrentRefreshesMakeOneGrant(t *testing.T) {
	env := apptest.Start(t, apptest.Options{RefreshOverlap: time.Millisecond})
	alice := env.Login(t, "alice@acme.test")
	page := alice.Get(t, "/dashboard")
	gen, csrf := panelGen(t, page), alice.CSRF(t)
	env.ResetGrants()

	bases := make([]string, 20)
	for i := range bases {
		bases[i] = env.URL
	}
	refreshAtOnce(t, alice, bases, gen, csrf)
	if got := env.Refreshes(); got != 1 {
		t.Fatalf("refresh_token grants = %d; want exactly 1", got)
	}
	// Nobody was logged out: the session still works and can refresh again.
	page = alice.Get(t, "/dashboard")
	if page.StatusCode != http.StatusOK || page.Request.URL.Path != "/dashboard" {
		t.Fatalf("after the burst GET /dashboard ended at %s (%d)", page.Request.URL, page.StatusCode)
	}
	if next := alice.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {panelGen(t, page)}}); next.StatusCode != http.StatusOK {
		t.Fatalf("refresh after the burst = %d", next.StatusCode)
	}
	if got := env.Refreshes(); got != 2 {
		t.Fatalf("refresh_token grants = %d; want 2", got)
	}
}

func TestRefresherSingleFlight(t *testing.T) {
	env := apptest.Start(t, apptest.Options{NoM2M: true, RefreshOverlap: time.Millisecond})
	alice := env.Login(t, "alice@acme.test")
	sessions, err := env.DB.UserSessions(context.Background(), env.UserID(t, "alice@acme.test"))
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions = %d, %v", len(sessions), err)
	}
	row := sessions[0]
	env.ResetGrants()

	const n = 20
	var wg sync.WaitGroup
	results := make([]*auth.RefreshResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = env.App.Refresher().Refresh(context.Background(), auth.RefreshRequest{
				SessionID: row.ID, SeenGeneration: row.Generation, Reason: auth.ReasonBackground,
			})
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if results[i].Session.Generation != row.Generation+1 {
			t.Errorf("refresh %d saw generation %d; want %d", i, results[i].Session.Generation, row.Generation+1)
		}
	}
	if got := env.Refreshes(); got != 1 {
		t.Fatalf("refresh_token grants = %d; want 1", got)
	}
	if resp := alice.Get(t, "/dashboard"); resp.Request.URL.Path != "/dashboard" {
		t.Fatalf("signed out after refreshes: ended at %s", resp.Request.URL)
	}
}

func TestGuardRefreshesWhenEpochIsBehind(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	env.ResetGrants()
	if resp := alice.Get(t, "/dashboard"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	if got := env.Refreshes(); got != 0 {
		t.Fatalf("a fresh session refreshed %d times", got)
	}
	if _, err := env.DB.BumpUserEpoch(context.Background(), env.UserID(t, "alice@acme.test"), "test"); err != nil {
		t.Fatal(err)
	}
	events.NotifyEpochChanged(env.App.Events(), env.UserID(t, "alice@acme.test")) // as every epoch writer does
	if resp := alice.Get(t, "/dashboard"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	if got := env.Refreshes(); got != 1 {
		t.Fatalf("refresh_token grants after the epoch bump = %d; want 1", got)
	}
	// Caught up: no more refreshes.
	alice.Get(t, "/dashboard")
	if got := env.Refreshes(); got != 1 {
		t.Fatalf("refresh_token grants = %d; want still 1", got)
	}
}

func TestGuardRefreshesNearExpiry(t *testing.T) {
	// Tokens live 30 s, inside the 60 s window: every page view refreshes
	// first, and the user stays signed in.
	env := apptest.Start(t, apptest.Options{AccessTokenTTL: 30 * time.Second})
	alice := env.Login(t, "alice@acme.test")
	env.ResetGrants()
	for range 3 {
		resp := alice.Get(t, "/dashboard")
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard" {
			t.Fatalf("GET /dashboard ended at %s (%d)", resp.Request.URL, resp.StatusCode)
		}
	}
	if got := env.Refreshes(); got != 3 {
		t.Fatalf("refresh_token grants = %d; want 3 (one per request)", got)
	}
}

func TestInvalidGrantEndsSession(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	page := alice.Get(t, "/dashboard")
	// Kinde's "force re-login" lever: every refresh token of alice dies.
	if err := env.Kinde().DeleteUserSessions(context.Background(), env.UserID(t, "alice@acme.test")); err != nil {
		t.Fatal(err)
	}

	resp := alice.PostForm(t, "/session/refresh", url.Values{"gen": {panelGen(t, page)}})
	if resp.Request.URL.Path != "/" {
		t.Fatalf("after invalid_grant ended at %s; want /", resp.Request.URL)
	}
	if msg := resp.TestID(t, "alert").Text(); !strings.Contains(msg, "Your session has ended at Kinde. Please sign in again.") {
		t.Fatalf("message = %q", msg)
	}
	if resp.TestID(t, "hero-sign-in").Length() != 1 {
		t.Error("landing should offer sign-in")
	}
	n, err := env.DB.UserSessions(context.Background(), env.UserID(t, "alice@acme.test"))
	if err != nil || len(n) != 0 {
		t.Fatalf("sessions left = %d, %v", len(n), err)
	}
	if next := alice.NoRedirect().Get(t, "/dashboard"); next.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(next.Header.Get("Location"), "/login") {
		t.Fatalf("GET /dashboard after the end = %d %s", next.StatusCode, next.Header.Get("Location"))
	}
}

func TestInvalidGrantEndsSessionForHTMX(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	page := alice.Get(t, "/dashboard")
	if err := env.Kinde().DeleteUserSessions(context.Background(), env.UserID(t, "alice@acme.test")); err != nil {
		t.Fatal(err)
	}
	resp := alice.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {panelGen(t, page)}})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/" {
		t.Fatalf("htmx refresh after invalid_grant = %d, HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
}

func TestKindeDownKeepsSession(t *testing.T) {
	for name, outage := range map[string]apptest.Outage{"network": apptest.OutageNetwork, "503": apptest.Outage503} {
		t.Run(name, func(t *testing.T) {
			env := apptest.Start(t, apptest.Options{NoM2M: true})
			alice := env.Login(t, "alice@acme.test")
			page := alice.Get(t, "/dashboard")
			env.SetOutage(outage)

			frag := alice.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {panelGen(t, page)}})
			if frag.StatusCode != http.StatusOK || frag.TestID(t, "session-panel").Length() != 1 {
				t.Fatalf("htmx refresh with Kinde down = %d:\n%.1500s", frag.StatusCode, frag.Body)
			}
			if msg := frag.TestID(t, "alert").Text(); !strings.Contains(msg, "could not be reached") {
				t.Fatalf("alert = %q", msg)
			}
			// Plain form: back to the dashboard with the same warning.
			resp := alice.PostForm(t, "/session/refresh", url.Values{"gen": {panelGen(t, page)}})
			if resp.Request.URL.Path != "/dashboard" || !strings.Contains(resp.TestID(t, "alert").Text(), "could not be reached") {
				t.Fatalf("form refresh with Kinde down ended at %s: %q", resp.Request.URL, resp.TestID(t, "alert").Text())
			}

			env.SetOutage(apptest.NoOutage)
			if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
				t.Fatalf("session lost after the outage: %d", resp.StatusCode)
			}
		})
	}
}

// TestManyTabsMakeOneRefreshClaims: "Refresh session" clicked in many tabs
// (separate sessions of one user, all at once) calls refresh_claims at
// Kinde once; every other click refreshes tokens only and says so.
func TestManyTabsMakeOneRefreshClaims(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	const tabs = 6
	type tab struct {
		c    *apptest.Client
		gen  string
		csrf string
	}
	all := make([]tab, tabs)
	for i := range all {
		c := env.Login(t, "alice@acme.test") // a session each, as separate browsers would have
		all[i] = tab{c: c, gen: panelGen(t, c.Get(t, "/dashboard")), csrf: c.CSRF(t)}
	}
	env.DevKinde.ResetRequests()
	var wg sync.WaitGroup
	recent := make([]bool, tabs)
	for i, tb := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			frag := tb.c.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {tb.gen}})
			recent[i] = frag.TestID(t, "claims-recent").Length() == 1
		}()
	}
	wg.Wait()
	calls := 0
	for _, r := range env.DevKinde.Requests() {
		if strings.HasSuffix(r.Path, "/refresh_claims") {
			calls++
		}
	}
	if calls != 1 {
		t.Fatalf("refresh_claims calls = %d; want 1 for %d clicks within %s", calls, tabs, auth.DefaultClaimsRefreshInterval)
	}
	n := 0
	for _, r := range recent {
		if r {
			n++
		}
	}
	if n != tabs-1 {
		t.Fatalf("%d of %d panels say tokens only; want %d", n, tabs, tabs-1)
	}
}

// refreshAtOnce posts c's "Refresh session" (the panel's generation gen,
// and c's CSRF token) once to each of the app URLs in bases, all at once,
// and fails the test unless every answer is the session panel.
func refreshAtOnce(t *testing.T, c *apptest.Client, bases []string, gen, csrf string) {
	t.Helper()
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		statuses = make([]int, len(bases))
		bodies   = make([]string, len(bases))
		errs     = make([]error, len(bases))
	)
	for i, base := range bases {
		wg.Go(func() {
			<-start
			form := url.Values{"gen": {gen}, "_csrf": {csrf}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/session/refresh",
				strings.NewReader(form.Encode()))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("HX-Request", "true")
			req.Header.Set("X-CSRF-Token", csrf)
			resp, err := c.HTTP.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			statuses[i], bodies[i] = resp.StatusCode, string(b)
		})
	}
	close(start)
	wg.Wait()
	for i, base := range bases {
		if errs[i] != nil {
			t.Fatalf("refresh %d (%s): %v", i, base, errs[i])
		}
		if statuses[i] != http.StatusOK || !strings.Contains(bodies[i], `id="session-panel"`) {
			t.Fatalf("refresh %d (%s) = %d:\n%.1000s", i, base, statuses[i], bodies[i])
		}
	}
}
